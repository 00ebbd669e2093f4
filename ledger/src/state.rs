//! The state decisions are made against, and [`evolve`], the only way it changes.
//!
//! The writer loads just the part of the state a batch touches; anything absent from the maps is
//! treated as nonexistent, so the loader must bring every id a command names.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::command::{AccountFlags, Metadata, NormalSide, OpenAccount, PostTransfer, Posting};
use crate::event::{Event, PendingPosted, PendingReleased, StreamId, TransferPending, TransferPosted};
use crate::ids::{AccountId, AssetCode, Scale, SubjectId, TransferId};

/// SHA-256 of a command's canonical body: equal fingerprints mean an identical replay.
pub type Fingerprint = [u8; 32];

pub(crate) fn fingerprint(value: &Value) -> Fingerprint {
    Sha256::digest(canonical::to_vec(value)).into()
}

/// The state's maps. foldhash rather than SipHash: a replay looks up every posting's accounts
/// and every transfer id, and foldhash is several times faster on short keys while still seeded
/// per map, so chosen ids cannot be aimed at collisions.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub assets: Map<AssetCode, Asset>,
    pub accounts: Map<AccountId, Account>,
    /// Boxed: a replay keeps every transfer, and a table of small slots costs far less to grow
    /// (each growth copies every slot into freshly faulted memory; docs/PERFORMANCE.md, W6).
    pub transfers: Map<TransferId, Box<Transfer>>,
    /// The data subjects whose personal data is erased.
    pub erased: HashSet<SubjectId, foldhash::fast::RandomState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub scale: Scale,
    /// Everything ever posted in this asset: the sum of its accounts' debits, and of their credits.
    pub posted: i64,
    /// What open holds reserve in this asset: the sum of its accounts' pending debits, and of
    /// their pending credits. Every account counter is bounded by `posted + held`, so checking
    /// that sum alone for overflow keeps every counter of the ledger inside i64.
    pub held: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Open,
    Frozen,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Frozen => "frozen",
            Self::Closed => "closed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "open" => Some(Self::Open),
            "frozen" => Some(Self::Frozen),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub asset: AssetCode,
    pub normal_side: NormalSide,
    pub flags: AccountFlags,
    pub status: AccountStatus,
    pub debits: i64,
    pub credits: i64,
    /// Reserved by open holds: they count against the limits as if posted.
    pub pending_debits: i64,
    pub pending_credits: i64,
    /// Events in the account's stream so far.
    pub version: i64,
    /// Events that changed the account so far: its opening and lifecycle changes, and every
    /// transfer, hold and resolution with a leg on it (each once); not metadata changes, which
    /// decide nothing. A transfer can require it unchanged.
    pub revision: i64,
    pub fingerprint: Fingerprint,
}

impl Account {
    /// The balance signed by the normal side: positive when the account holds its normal balance.
    pub fn balance(&self) -> i64 {
        signed_balance(self.normal_side, self.debits, self.credits)
    }

    /// The balance less what open holds reserve against it: what a transfer can still spend.
    pub fn available(&self) -> i64 {
        let reserved = match self.normal_side {
            NormalSide::Debit => self.pending_credits,
            NormalSide::Credit => self.pending_debits,
        };
        self.balance().saturating_sub(reserved)
    }

    /// Whether open holds still reserve anything on this account.
    pub fn has_pending(&self) -> bool {
        self.pending_debits != 0 || self.pending_credits != 0
    }
}

/// Both totals are non-negative i64s, so their difference always fits.
pub fn signed_balance(normal_side: NormalSide, debits: i64, credits: i64) -> i64 {
    match normal_side {
        NormalSide::Debit => debits - credits,
        NormalSide::Credit => credits - debits,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub fingerprint: Fingerprint,
    /// The legs it moved, or for a hold the legs it reserves.
    pub postings: Vec<Posting>,
    pub reversed_by: Option<TransferId>,
    /// Present for a pending transfer. Boxed: holds are the exception, and a replay keeps
    /// every transfer.
    pub hold: Option<Box<HoldState>>,
    /// Events in the transfer's stream so far: its first, its resolution, metadata changes.
    pub version: i64,
}

impl Transfer {
    /// A transfer as its first event records it; `None` for events that do not open a transfer.
    pub fn opened_by(event: &Event) -> Option<Self> {
        match event {
            Event::TransferPosted(e) => Some(Self {
                fingerprint: e.fingerprint(),
                postings: e.postings.clone(),
                reversed_by: None,
                hold: None,
                version: 1,
            }),
            Event::TransferPending(e) => Some(Self {
                fingerprint: e.fingerprint(),
                postings: e.postings.clone(),
                reversed_by: None,
                hold: Some(Box::new(HoldState {
                    expires_at_micros: e.expires_at_micros,
                    resolution: None,
                })),
                version: 1,
            }),
            _ => None,
        }
    }

    /// What the transfer moved: its postings, or what its hold posted (nothing while open,
    /// voided or expired).
    pub fn moved(&self) -> Option<&[Posting]> {
        match self.hold.as_deref() {
            None => Some(&self.postings),
            Some(HoldState {
                resolution: Some(Resolution::Posted(postings)),
                ..
            }) => Some(postings),
            Some(_) => None,
        }
    }
}

/// A hold's terms and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldState {
    pub expires_at_micros: Option<i64>,
    pub resolution: Option<Resolution>,
}

impl HoldState {
    /// Whether the hold's timeout has passed at `now_micros`.
    pub fn expired_at(&self, now_micros: i64) -> bool {
        self.expires_at_micros.is_some_and(|at| now_micros >= at)
    }
}

/// How a hold was resolved: exactly once, by version 2 of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Posted(Vec<Posting>),
    Voided,
    Expired,
}

impl Resolution {
    /// As the API and the read tables spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Posted(_) => "posted",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    /// The resolution an event records, if it records one.
    pub fn of(event: &Event) -> Option<Self> {
        match event {
            Event::PendingPosted(e) => Some(Self::Posted(e.postings.clone())),
            Event::PendingVoided(_) => Some(Self::Voided),
            Event::PendingExpired(_) => Some(Self::Expired),
            _ => None,
        }
    }
}

impl OpenAccount {
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

impl PostTransfer {
    /// The fingerprint of the transfer's first event: equal for an identical retry, whenever
    /// it comes.
    pub fn fingerprint(&self) -> Fingerprint {
        transfer_fingerprint(
            &self.id,
            &self.metadata,
            self.hold.map(|h| h.timeout_secs),
            self.postings(),
            self.reverses.as_ref(),
            self.effective().map(|t| t.0),
        )
    }

    /// The event this transfer records when accepted at `now_micros`: posted, or held.
    pub fn to_event(&self, now_micros: i64) -> Event {
        match self.hold {
            None => Event::TransferPosted(TransferPosted {
                id: self.id.clone(),
                postings: self.postings().to_vec(),
                metadata: self.metadata.clone(),
                reverses: self.reverses.clone(),
                effective_at_micros: self.effective().map(|t| t.0),
            }),
            Some(hold) => Event::TransferPending(TransferPending {
                id: self.id.clone(),
                postings: self.postings().to_vec(),
                metadata: self.metadata.clone(),
                timeout_secs: hold.timeout_secs,
                expires_at_micros: hold
                    .timeout_secs
                    .map(|secs| now_micros.saturating_add(i64::from(secs) * 1_000_000)),
            }),
        }
    }
}

impl TransferPosted {
    /// `fingerprint(&to_value(self))`, with the canonical bytes written directly rather than
    /// through a `Value` tree: a replay fingerprints every transfer it applies.
    pub fn fingerprint(&self) -> Fingerprint {
        transfer_fingerprint(
            &self.id,
            &self.metadata,
            None,
            &self.postings,
            self.reverses.as_ref(),
            self.effective_at_micros,
        )
    }
}

impl TransferPending {
    /// The fingerprint of the command that holds: its transfer's, with `"pending": true` and
    /// the timeout it gave (the expiry time depends on when it was recorded, so it is left out).
    pub fn fingerprint(&self) -> Fingerprint {
        transfer_fingerprint(
            &self.id,
            &self.metadata,
            Some(self.timeout_secs),
            &self.postings,
            None,
            None,
        )
    }
}

/// The canonical JSON of a transfer command, hashed. Keys in code point order:
/// `effective_at_micros`, `id`, `metadata`, `pending`, `postings` (`amount`, `credit`, `debit`),
/// `reverses`, `timeout_secs`.
fn transfer_fingerprint(
    id: &TransferId,
    metadata: &Metadata,
    hold: Option<Option<u32>>,
    postings: &[Posting],
    reverses: Option<&TransferId>,
    effective_at_micros: Option<i64>,
) -> Fingerprint {
    let mut out = Vec::with_capacity(128 + 96 * postings.len());
    out.push(b'{');
    if let Some(at) = effective_at_micros {
        out.extend_from_slice(b"\"effective_at_micros\":");
        canonical::write_display(at, &mut out);
        out.push(b',');
    }
    out.extend_from_slice(b"\"id\":");
    canonical::write_string(id.as_str(), &mut out);
    out.extend_from_slice(b",\"metadata\":");
    canonical::write_object(metadata, &mut out);
    if hold.is_some() {
        out.extend_from_slice(b",\"pending\":true");
    }
    out.extend_from_slice(b",\"postings\":[");
    for (i, posting) in postings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"amount\":");
        canonical::write_display(posting.amount.get(), &mut out);
        out.extend_from_slice(b",\"credit\":");
        canonical::write_string(posting.credit.as_str(), &mut out);
        out.extend_from_slice(b",\"debit\":");
        canonical::write_string(posting.debit.as_str(), &mut out);
        out.push(b'}');
    }
    out.push(b']');
    if let Some(reverses) = reverses {
        out.extend_from_slice(b",\"reverses\":");
        canonical::write_string(reverses.as_str(), &mut out);
    }
    if let Some(Some(timeout)) = hold {
        out.extend_from_slice(b",\"timeout_secs\":");
        canonical::write_display(timeout, &mut out);
    }
    out.push(b'}');
    Sha256::digest(&out).into()
}

impl State {
    /// How many events the stream holds in this state: the version its next event gets minus one.
    pub fn stream_version(&self, stream: &StreamId) -> i64 {
        match stream {
            StreamId::Asset(code) => i64::from(self.assets.contains_key(code)),
            StreamId::Account(id) => self.accounts.get(id).map_or(0, |a| a.version),
            StreamId::Transfer(id) => self.transfers.get(id).map_or(0, |t| t.version),
            StreamId::Subject(id) => i64::from(self.erased.contains(id)),
        }
    }

    /// Folds one event in. Events are facts: applying one never fails.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::AssetRegistered(e) => {
                self.assets.insert(
                    e.code.clone(),
                    Asset {
                        scale: e.scale,
                        posted: 0,
                        held: 0,
                    },
                );
            }
            Event::AccountOpened(e) => {
                let account = Account {
                    asset: e.asset.clone(),
                    normal_side: e.normal_side,
                    flags: e.flags,
                    status: AccountStatus::Open,
                    debits: 0,
                    credits: 0,
                    pending_debits: 0,
                    pending_credits: 0,
                    version: 1,
                    revision: 1,
                    fingerprint: e.fingerprint(),
                };
                self.accounts.insert(e.id.clone(), account);
            }
            Event::AccountFrozen(e) => self.set_status(&e.id, AccountStatus::Frozen),
            Event::AccountUnfrozen(e) => self.set_status(&e.id, AccountStatus::Open),
            Event::AccountClosed(e) => self.set_status(&e.id, AccountStatus::Closed),
            Event::TransferPosted(e) => {
                self.move_legs(&e.postings, Counters::Posted);
                self.revise(&e.postings);
                self.mark_reversed(e);
                self.open_transfer(&e.id, event);
            }
            Event::TransferPending(e) => {
                self.move_legs(&e.postings, Counters::Pending(1));
                self.revise(&e.postings);
                self.open_transfer(&e.id, event);
            }
            Event::PendingPosted(e) => self.resolve(&e.id, Resolution::Posted(e.postings.clone()), &e.postings),
            Event::PendingVoided(e) => self.resolve(&e.id, Resolution::Voided, &[]),
            Event::PendingExpired(e) => self.resolve(&e.id, Resolution::Expired, &[]),
            // Metadata decides nothing, so the state keeps none: only the streams grow.
            Event::AccountMetadataSet(e) => {
                if let Some(account) = self.accounts.get_mut(&e.id) {
                    account.version += 1;
                }
            }
            Event::TransferMetadataSet(e) => {
                if let Some(transfer) = self.transfers.get_mut(&e.id) {
                    transfer.version += 1;
                }
            }
            Event::PersonalDataErased(e) => {
                self.erased.insert(e.subject.clone());
            }
        }
    }

    fn set_status(&mut self, id: &AccountId, status: AccountStatus) {
        if let Some(account) = self.accounts.get_mut(id) {
            account.status = status;
            account.version += 1;
            account.revision += 1;
        }
    }

    /// [`apply`](Self::apply), taking the event: a transfer's postings move into the state
    /// rather than being copied (a replay applies every event it has decided).
    pub fn apply_owned(&mut self, event: Event) {
        match event {
            Event::TransferPosted(transfer) => {
                let fingerprint = transfer.fingerprint();
                self.move_legs(&transfer.postings, Counters::Posted);
                self.revise(&transfer.postings);
                self.mark_reversed(&transfer);
                let record = Transfer {
                    fingerprint,
                    postings: transfer.postings,
                    reversed_by: None,
                    hold: None,
                    version: 1,
                };
                self.transfers.insert(transfer.id, Box::new(record));
            }
            other => self.apply(&other),
        }
    }

    fn open_transfer(&mut self, id: &TransferId, event: &Event) {
        if let Some(record) = Transfer::opened_by(event) {
            self.transfers.insert(id.clone(), Box::new(record));
        }
    }

    /// Releases a hold's reservation, records how it ended (`resolution`), and moves what its
    /// post moves (`posted`, a subset of what was held).
    fn resolve(&mut self, id: &TransferId, resolution: Resolution, posted: &[Posting]) {
        let Some(transfer) = self.transfers.get_mut(id) else {
            return;
        };
        let Some(hold) = transfer.hold.as_mut() else {
            return;
        };
        hold.resolution = Some(resolution);
        transfer.version += 1;
        // Lent out while the accounts change, rather than copied.
        let held = std::mem::take(&mut transfer.postings);
        self.move_legs(&held, Counters::Pending(-1));
        self.move_legs(posted, Counters::Posted);
        // The held legs name every account the resolution changes.
        self.revise(&held);
        if let Some(transfer) = self.transfers.get_mut(id) {
            transfer.postings = held;
        }
    }

    /// Adds the legs' amounts to the accounts' and assets' `counters`.
    fn move_legs(&mut self, postings: &[Posting], counters: Counters) {
        let sign = match counters {
            Counters::Posted => 1,
            Counters::Pending(sign) => sign,
        };
        for posting in postings {
            let amount = sign * posting.amount.get();
            if let Some(account) = self.accounts.get_mut(&posting.debit) {
                let total = match counters {
                    Counters::Posted => &mut account.debits,
                    Counters::Pending(_) => &mut account.pending_debits,
                };
                *total = total.saturating_add(amount);
                if let Some(asset) = self.assets.get_mut(&account.asset) {
                    let total = match counters {
                        Counters::Posted => &mut asset.posted,
                        Counters::Pending(_) => &mut asset.held,
                    };
                    *total = total.saturating_add(amount);
                }
            }
            if let Some(account) = self.accounts.get_mut(&posting.credit) {
                let total = match counters {
                    Counters::Posted => &mut account.credits,
                    Counters::Pending(_) => &mut account.pending_credits,
                };
                *total = total.saturating_add(amount);
            }
        }
    }

    /// Counts one event on every account the legs name, each once.
    fn revise(&mut self, postings: &[Posting]) {
        for (index, posting) in postings.iter().enumerate() {
            let earlier = &postings[..index];
            // A leg's two accounts always differ.
            for id in [&posting.debit, &posting.credit] {
                if !earlier.iter().any(|p| &p.debit == id || &p.credit == id)
                    && let Some(account) = self.accounts.get_mut(id)
                {
                    account.revision += 1;
                }
            }
        }
    }

    fn mark_reversed(&mut self, transfer: &TransferPosted) {
        if let Some(original) = transfer.reverses.as_ref().and_then(|id| self.transfers.get_mut(id)) {
            original.reversed_by = Some(transfer.id.clone());
        }
    }
}

/// Which totals legs move: what was posted, or what open holds reserve (1 to reserve, -1 to
/// release).
#[derive(Clone, Copy)]
enum Counters {
    Posted,
    Pending(i64),
}

/// What a chain's events changed, to be put back if a later member is refused: each entry's
/// value before the first event that touched it.
#[derive(Debug, Default)]
pub struct Undo {
    assets: Vec<(AssetCode, Option<Asset>)>,
    accounts: Vec<(AccountId, Option<Account>)>,
    transfers: Vec<(TransferId, Option<Box<Transfer>>)>,
    erased: Vec<SubjectId>,
}

impl State {
    /// [`apply`](Self::apply), first saving into `undo` every entry the event changes.
    pub fn apply_undoable(&mut self, event: &Event, undo: &mut Undo) {
        let mut accounts: Vec<&AccountId> = Vec::new();
        let mut transfers: Vec<&TransferId> = Vec::new();
        match event {
            Event::AssetRegistered(e) => undo.assets.push((e.code.clone(), self.assets.get(&e.code).cloned())),
            Event::AccountOpened(e) => accounts.push(&e.id),
            Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => accounts.push(&e.id),
            Event::AccountMetadataSet(e) => accounts.push(&e.id),
            Event::TransferMetadataSet(e) => transfers.push(&e.id),
            Event::PersonalDataErased(e) => {
                if !self.erased.contains(&e.subject) {
                    undo.erased.push(e.subject.clone());
                }
            }
            Event::TransferPosted(e) => {
                accounts.extend(e.postings.iter().flat_map(|p| [&p.debit, &p.credit]));
                transfers.push(&e.id);
                transfers.extend(e.reverses.as_ref());
            }
            Event::TransferPending(e) => {
                accounts.extend(e.postings.iter().flat_map(|p| [&p.debit, &p.credit]));
                transfers.push(&e.id);
            }
            Event::PendingPosted(PendingPosted { id, .. })
            | Event::PendingVoided(PendingReleased { id })
            | Event::PendingExpired(PendingReleased { id }) => {
                // What is posted is a subset of what was held.
                let held = self
                    .transfers
                    .get(id)
                    .map(|t| t.postings.as_slice())
                    .unwrap_or_default();
                accounts.extend(held.iter().flat_map(|p| [&p.debit, &p.credit]));
                transfers.push(id);
            }
        }
        for id in accounts {
            let saved = self.accounts.get(id).cloned();
            if let Some(asset) = saved.as_ref().map(|a| &a.asset) {
                undo.assets.push((asset.clone(), self.assets.get(asset).cloned()));
            }
            undo.accounts.push((id.clone(), saved));
        }
        for id in transfers {
            undo.transfers.push((id.clone(), self.transfers.get(id).cloned()));
        }
        self.apply(event);
    }

    /// Puts back what `undo` saved: the state as it was before its first event.
    pub fn undo(&mut self, undo: Undo) {
        // Latest first, so an entry saved twice ends at its earliest value.
        for (code, saved) in undo.assets.into_iter().rev() {
            restore(&mut self.assets, code, saved);
        }
        for (id, saved) in undo.accounts.into_iter().rev() {
            restore(&mut self.accounts, id, saved);
        }
        for (id, saved) in undo.transfers.into_iter().rev() {
            restore(&mut self.transfers, id, saved);
        }
        for subject in undo.erased {
            self.erased.remove(&subject);
        }
    }
}

fn restore<K: std::hash::Hash + Eq, V>(map: &mut Map<K, V>, key: K, saved: Option<V>) {
    match saved {
        Some(value) => map.insert(key, value),
        None => map.remove(&key),
    };
}

/// `evolve(state, event)`: the state after `event`.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.apply(event);
    state
}
