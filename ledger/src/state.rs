//! The state decisions are made against, and [`evolve`], the only way it changes.
//!
//! The writer loads just the part of the state a batch touches; anything absent from the maps is
//! treated as nonexistent, so the loader must bring every id a command names.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::command::{AccountFlags, NormalSide, OpenAccount, PostTransfer, Posting};
use crate::event::{Event, StreamId, TransferPosted};
use crate::ids::{AccountId, AssetCode, Scale, TransferId};

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
    pub transfers: Map<TransferId, Transfer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub scale: Scale,
    /// Everything ever posted in this asset. Every account counter is bounded by it, so checking
    /// it alone for overflow keeps every counter of the ledger inside i64.
    pub posted: i64,
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
    /// Events in the account's stream so far.
    pub version: i64,
    pub fingerprint: Fingerprint,
}

impl Account {
    /// The balance signed by the normal side: positive when the account holds its normal balance.
    pub fn balance(&self) -> i64 {
        signed_balance(self.normal_side, self.debits, self.credits)
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
    pub postings: Vec<Posting>,
    pub reversed_by: Option<TransferId>,
}

impl OpenAccount {
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

impl PostTransfer {
    /// The event this transfer records when accepted.
    pub fn to_event(&self) -> TransferPosted {
        TransferPosted {
            id: self.id.clone(),
            postings: self.postings().to_vec(),
            metadata: self.metadata.clone(),
            reverses: self.reverses.clone(),
        }
    }
}

impl TransferPosted {
    /// `fingerprint(&to_value(self))`, with the canonical bytes written directly rather than
    /// through a `Value` tree: a replay fingerprints every transfer it applies. Keys in code
    /// point order: `id`, `metadata`, `postings` (`amount`, `credit`, `debit`), `reverses`.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut out = Vec::with_capacity(128 + 96 * self.postings.len());
        out.extend_from_slice(b"{\"id\":");
        canonical::write_string(self.id.as_str(), &mut out);
        out.extend_from_slice(b",\"metadata\":");
        canonical::write_object(&self.metadata, &mut out);
        out.extend_from_slice(b",\"postings\":[");
        for (i, posting) in self.postings.iter().enumerate() {
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
        if let Some(reverses) = &self.reverses {
            out.extend_from_slice(b",\"reverses\":");
            canonical::write_string(reverses.as_str(), &mut out);
        }
        out.push(b'}');
        Sha256::digest(&out).into()
    }
}

impl State {
    /// How many events the stream holds in this state: the version its next event gets minus one.
    pub fn stream_version(&self, stream: &StreamId) -> i64 {
        match stream {
            StreamId::Asset(code) => i64::from(self.assets.contains_key(code)),
            StreamId::Account(id) => self.accounts.get(id).map_or(0, |a| a.version),
            StreamId::Transfer(id) => i64::from(self.transfers.contains_key(id)),
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
                    version: 1,
                    fingerprint: e.fingerprint(),
                };
                self.accounts.insert(e.id.clone(), account);
            }
            Event::AccountFrozen(e) => self.set_status(&e.id, AccountStatus::Frozen),
            Event::AccountUnfrozen(e) => self.set_status(&e.id, AccountStatus::Open),
            Event::AccountClosed(e) => self.set_status(&e.id, AccountStatus::Closed),
            Event::TransferPosted(e) => self.apply_transfer(e),
        }
    }

    fn set_status(&mut self, id: &AccountId, status: AccountStatus) {
        if let Some(account) = self.accounts.get_mut(id) {
            account.status = status;
            account.version += 1;
        }
    }

    /// [`apply`](Self::apply), taking the event: a transfer's postings move into the state
    /// rather than being copied (a replay applies every event it has decided).
    pub fn apply_owned(&mut self, event: Event) {
        match event {
            Event::TransferPosted(transfer) => {
                let fingerprint = transfer.fingerprint();
                self.post(&transfer);
                let record = Transfer {
                    fingerprint,
                    postings: transfer.postings,
                    reversed_by: None,
                };
                self.transfers.insert(transfer.id, record);
            }
            other => self.apply(&other),
        }
    }

    fn apply_transfer(&mut self, transfer: &TransferPosted) {
        self.post(transfer);
        let record = Transfer {
            fingerprint: transfer.fingerprint(),
            postings: transfer.postings.clone(),
            reversed_by: None,
        };
        self.transfers.insert(transfer.id.clone(), record);
    }

    /// A transfer's effect on the accounts, the assets' totals and the transfer it reverses.
    fn post(&mut self, transfer: &TransferPosted) {
        for posting in &transfer.postings {
            let amount = posting.amount.get();
            if let Some(debit) = self.accounts.get_mut(&posting.debit) {
                debit.debits = debit.debits.saturating_add(amount);
                if let Some(asset) = self.assets.get_mut(&debit.asset) {
                    asset.posted = asset.posted.saturating_add(amount);
                }
            }
            if let Some(credit) = self.accounts.get_mut(&posting.credit) {
                credit.credits = credit.credits.saturating_add(amount);
            }
        }
        if let Some(original) = transfer.reverses.as_ref().and_then(|id| self.transfers.get_mut(id)) {
            original.reversed_by = Some(transfer.id.clone());
        }
    }
}

/// `evolve(state, event)`: the state after `event`.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.apply(event);
    state
}
