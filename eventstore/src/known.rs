//! What the writer knows of the write side: the accounts and assets its batches touched, as of the
//! head its last batch left. A batch of plain transfers between accounts it knows is then decided
//! without the state query (`batch::from_memory`), which was a round trip and a tenth of a
//! millisecond of PostgreSQL's time per transfer on the writer's serial path.
//!
//! Nothing here is trusted beyond that head: the write moves the head only from the row version
//! this was known at, so a batch decided on it after any other write (another instance's, a
//! rebuild of the write side) writes nothing and is decided again on a fresh load, which this
//! then forgets for.

use ledger::{Account, AccountId, Asset, AssetCode, Command, Map, State, StreamId};

use crate::load::{Head, Loaded};
use crate::writer::Unit;

pub(crate) struct Known {
    /// The head everything below is true at; none until a batch is written.
    head: Option<Head>,
    accounts: Map<AccountId, Account>,
    assets: Map<AssetCode, Asset>,
    /// The position of each known account's and asset's first event.
    origins: Map<StreamId, i64>,
    /// Accounts kept at most; past it, what is known is forgotten and learnt again.
    capacity: usize,
}

impl Known {
    pub fn new(capacity: usize) -> Self {
        Self {
            head: None,
            accounts: Map::default(),
            assets: Map::default(),
            origins: Map::default(),
            capacity,
        }
    }

    /// What `units` touch, as the state query would load it, when every unit is a plain transfer
    /// between known accounts; otherwise `None`. Plain: no idempotency key (its record is in the
    /// database), no reversal (the original transfer is), and no other kind of command. The log's
    /// transfers are not loaded: a transfer id the log already holds is refused by its unique
    /// key when the batch is written.
    pub fn recall(&self, units: &[Unit<'_>]) -> Option<Loaded> {
        let head = self.head.clone()?;
        let mut state = State::default();
        let mut origins = Map::default();
        for unit in units {
            if unit.key.is_some() {
                return None;
            }
            for submission in unit.submissions {
                let Command::PostTransfer(transfer) = &submission.command else {
                    return None;
                };
                if submission.idempotency_key.is_some() || transfer.reverses.is_some() {
                    return None;
                }
                let legs = transfer.postings().iter().flat_map(|p| [&p.debit, &p.credit]);
                let conditions = transfer.conditions().iter().map(|c| &c.account);
                for id in legs.chain(conditions) {
                    if !state.accounts.contains_key(id) {
                        self.recall_account(id, &mut state, &mut origins)?;
                    }
                }
            }
        }
        Some(Loaded {
            head,
            state,
            origins,
            resolutions: Map::default(),
            keys: Map::default(),
        })
    }

    fn recall_account(&self, id: &AccountId, state: &mut State, origins: &mut Map<StreamId, i64>) -> Option<()> {
        let account = self.accounts.get(id)?;
        if !state.assets.contains_key(&account.asset) {
            let asset = self.assets.get(&account.asset)?;
            let stream = StreamId::Asset(account.asset.clone());
            origins.insert(stream.clone(), *self.origins.get(&stream)?);
            state.assets.insert(account.asset.clone(), asset.clone());
        }
        let stream = StreamId::Account(id.clone());
        origins.insert(stream.clone(), *self.origins.get(&stream)?);
        state.accounts.insert(id.clone(), account.clone());
        Some(())
    }

    /// Learns `loaded`, a state decided on its head and, if `written` is the head the batch left,
    /// written (none: nothing was, and the head is where it was). What was known stays true only
    /// if it was known at that same head: no other write came between.
    pub fn remember(&mut self, loaded: Loaded, written: Option<Head>) {
        let Loaded {
            head, state, origins, ..
        } = loaded;
        let current = self.head.as_ref() == Some(&head);
        if !current || self.accounts.len() + state.accounts.len() > self.capacity {
            self.forget();
        }
        self.accounts.extend(state.accounts);
        self.assets.extend(state.assets);
        self.origins.extend(
            origins
                .into_iter()
                .filter(|(stream, _)| matches!(stream, StreamId::Account(_) | StreamId::Asset(_))),
        );
        self.head = Some(written.unwrap_or(head));
    }

    pub fn forget(&mut self) {
        self.head = None;
        self.accounts.clear();
        self.assets.clear();
        self.origins.clear();
    }
}

#[cfg(test)]
mod tests {
    use ledger::testing::*;
    use ledger::{AccountFlags, Command, State};

    use super::*;
    use crate::writer::{IdempotencyKey, Submission};

    fn head(position: i64, xmin: &str) -> Head {
        Head {
            xmin: xmin.into(),
            position,
            ..Head::default()
        }
    }

    /// A state of EUR and the accounts `ids`, as a batch decided at `head` would leave it.
    fn loaded(head: Head, ids: &[&str]) -> Loaded {
        let mut state = State::default();
        let mut origins = Map::default();
        let events = std::iter::once(asset_registered("EUR", 2))
            .chain(ids.iter().map(|id| account_opened(id, "EUR", AccountFlags::default())));
        for (position, event) in (1..).zip(events) {
            origins.insert(event.stream_id(), position);
            state.apply(&event);
        }
        Loaded {
            head,
            state,
            origins,
            resolutions: Map::default(),
            keys: Map::default(),
        }
    }

    fn known(ids: &[&str]) -> Known {
        let mut known = Known::new(100);
        known.remember(loaded(head(0, "1"), ids), Some(head(5, "7")));
        known
    }

    fn recall(known: &Known, submissions: &[Submission]) -> Option<Loaded> {
        known.recall(&[Unit { submissions, key: None }])
    }

    fn plain(id: &str, legs: &[(&str, &str, i64)]) -> Submission {
        Submission::new(Command::PostTransfer(post_transfer(id, legs)))
    }

    #[test]
    fn a_plain_transfer_between_known_accounts_is_recalled_with_what_it_touches() {
        let known = known(&["a", "b", "c"]);
        let recalled = recall(&known, &[plain("t", &[("a", "b", 1)])]).expect("recalled");
        assert_eq!(recalled.head, head(5, "7"));
        let mut ids: Vec<&str> = recalled.state.accounts.keys().map(AccountId::as_str).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a", "b"]);
        assert!(
            recalled
                .state
                .assets
                .contains_key(&AssetCode::parse("EUR").expect("code"))
        );
        assert_eq!(recalled.origins.get(&StreamId::Account(account_id("b"))), Some(&3));
    }

    #[test]
    fn what_needs_the_database_is_not_recalled() {
        let known = known(&["a", "b"]);
        let keyed = Submission {
            idempotency_key: Some(IdempotencyKey {
                key: "k".into(),
                request_hash: [0; 32],
            }),
            ..plain("t", &[("a", "b", 1)])
        };
        let reversal = Submission::new(Command::PostTransfer(reversal("r", "t", &[("b", "a", 1)])));
        let open = Submission::new(Command::OpenAccount(open_account("c", "EUR", AccountFlags::default())));
        for batch in [
            vec![plain("t", &[("a", "unknown", 1)])],
            vec![plain("t", &[("a", "b", 1)]), keyed],
            vec![reversal],
            vec![open],
        ] {
            assert!(recall(&known, &batch).is_none(), "{batch:?}");
        }
        assert!(recall(&Known::new(100), &[plain("t", &[("a", "b", 1)])]).is_none());
    }

    #[test]
    fn a_batch_decided_on_another_head_replaces_what_was_known() {
        let mut known = known(&["a", "b"]);
        // Decided at the head this knows: both kept.
        known.remember(loaded(head(5, "7"), &["c"]), Some(head(6, "8")));
        assert!(recall(&known, &[plain("t", &[("a", "c", 1)])]).is_some());
        // Decided on a head someone else left: only what it loaded is known.
        known.remember(loaded(head(9, "12"), &["c", "d"]), Some(head(10, "13")));
        assert!(recall(&known, &[plain("t", &[("c", "d", 1)])]).is_some());
        assert!(recall(&known, &[plain("t", &[("a", "c", 1)])]).is_none());
    }

    #[test]
    fn past_its_capacity_it_starts_over() {
        let mut known = Known::new(3);
        known.remember(loaded(head(0, "1"), &["a", "b"]), Some(head(1, "2")));
        known.remember(loaded(head(1, "2"), &["c", "d"]), Some(head(2, "3")));
        assert!(recall(&known, &[plain("t", &[("c", "d", 1)])]).is_some());
        assert!(recall(&known, &[plain("t", &[("a", "b", 1)])]).is_none());
        known.forget();
        assert!(recall(&known, &[plain("t", &[("c", "d", 1)])]).is_none());
    }

    #[test]
    fn only_the_first_events_of_accounts_and_assets_are_kept() {
        let mut loaded = loaded(head(0, "1"), &["a"]);
        let transfer = post_transfer("t", &[("a", "b", 1)]);
        loaded.origins.insert(transfer_posted(&transfer).stream_id(), 9);
        let mut known = Known::new(10);
        known.remember(loaded, Some(head(1, "2")));
        assert_eq!(known.origins.len(), 2);
    }
}
