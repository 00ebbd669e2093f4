//! Commands: what a client asks the ledger to do, already parsed into valid shapes.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, Amount, AssetCode, Scale, SubjectId, Timestamp, TransferId};

/// Free-form client data attached to accounts and transfers: always a JSON object.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// Which side of an account's balance grows with its normal activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalSide {
    Debit,
    Credit,
}

impl NormalSide {
    /// As the API and the tables spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Credit => "credit",
        }
    }
}

/// Balance limits an account enforces on every transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountFlags {
    /// No overdraft: the account's posted debits never exceed its posted credits.
    pub debits_must_not_exceed_credits: bool,
    /// The mirror limit, for accounts that must never hold a credit balance.
    pub credits_must_not_exceed_debits: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RegisterAsset(RegisterAsset),
    OpenAccount(OpenAccount),
    ChangeAccount {
        account: AccountId,
        change: AccountLifecycle,
    },
    PostTransfer(PostTransfer),
    /// Posts, voids or expires a pending transfer (a hold).
    ResolveHold(ResolveHold),
    /// Changes an account's or a transfer's metadata.
    SetMetadata(SetMetadata),
    /// Records that a data subject's personal data is erased: its key is destroyed with the
    /// event, so what was sealed under it can no longer be read.
    ErasePersonalData(SubjectId),
}

impl Command {
    /// The most legs deciding the command can move or release: a transfer's, the legs a post
    /// names, or for a resolution that names none the most a hold may have; 1 for the others.
    /// What the batch caps count.
    pub fn legs(&self) -> usize {
        match self {
            Self::PostTransfer(t) => t.postings().len(),
            Self::ResolveHold(ResolveHold {
                action: HoldAction::Post { postings: Some(legs) },
                ..
            }) => legs.len(),
            Self::ResolveHold(_) => PostTransfer::MAX_POSTINGS,
            Self::RegisterAsset(_)
            | Self::OpenAccount(_)
            | Self::ChangeAccount { .. }
            | Self::SetMetadata(_)
            | Self::ErasePersonalData(_) => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAsset {
    pub code: AssetCode,
    pub scale: Scale,
}

/// Opens an account. Construct it with [`OpenAccount::new`], which resolves the normal side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAccount {
    pub id: AccountId,
    pub asset: AssetCode,
    pub name: String,
    pub normal_side: NormalSide,
    pub flags: AccountFlags,
    pub metadata: Metadata,
}

impl OpenAccount {
    /// The normal side defaults to credit for accounts that may not be overdrawn (they hold what
    /// the ledger owes), and to debit otherwise.
    pub fn new(
        id: AccountId,
        asset: AssetCode,
        name: String,
        normal_side: Option<NormalSide>,
        flags: AccountFlags,
        metadata: Metadata,
    ) -> Self {
        let normal_side = normal_side.unwrap_or(if flags.debits_must_not_exceed_credits {
            NormalSide::Credit
        } else {
            NormalSide::Debit
        });
        Self {
            id,
            asset,
            name,
            normal_side,
            flags,
            metadata: normalized(metadata),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountLifecycle {
    Freeze,
    Unfreeze,
    Close,
}

/// One leg of a transfer: `amount` is debited to `debit` and credited to `credit`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posting {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostingsError {
    #[error("a transfer has 1 to {max} postings")]
    Count { max: usize },
    #[error("debit and credit are the same account")]
    SameAccount { index: usize },
    #[error("a reversal cannot be pending")]
    PendingReversal,
    #[error("a hold's timeout is 1 to {max} seconds")]
    Timeout { max: u32 },
    #[error("a transfer has at most {max} conditions")]
    Conditions { max: usize },
    #[error("a hold takes effect when it is posted: it cannot have an effective time")]
    PendingEffective,
}

/// A precondition a transfer sets on an account, checked against the state it is decided on
/// (including the earlier transfers of its batch). Conditions are part of the command, not of
/// the event: the log records what happened, not what the client feared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub account: AccountId,
    pub check: Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The account's available balance (its normal-side balance less what open holds reserve
    /// against it) is at least this much before the transfer.
    AvailableAtLeast(i64),
    /// The account's revision is exactly this: nothing changed it since the client read it.
    Revision(i64),
}

impl Check {
    /// As the API and the rejections spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AvailableAtLeast(_) => "available_at_least",
            Self::Revision(_) => "revision",
        }
    }

    /// The value the condition expects.
    pub fn expected(self) -> i64 {
        match self {
            Self::AvailableAtLeast(value) | Self::Revision(value) => value,
        }
    }

    /// Whether the account's `actual` value (its available balance, or its revision) passes.
    pub fn holds(self, actual: i64) -> bool {
        match self {
            Self::AvailableAtLeast(at_least) => actual >= at_least,
            Self::Revision(revision) => actual == revision,
        }
    }

    /// What the condition asks, for messages: "at least 5", or "5".
    pub fn expectation(self) -> String {
        match self {
            Self::AvailableAtLeast(at_least) => format!("at least {at_least}"),
            Self::Revision(revision) => revision.to_string(),
        }
    }
}

/// Posts a balanced transfer atomically. Construct it with [`PostTransfer::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct PostTransfer {
    pub id: TransferId,
    postings: Vec<Posting>,
    pub metadata: Metadata,
    pub reverses: Option<TransferId>,
    /// Present for a pending transfer: it reserves its amounts until posted, voided or expired.
    pub hold: Option<Hold>,
    /// When the transfer takes effect for the books, if not when it is recorded.
    effective_at: Option<Timestamp>,
    /// Checked before the transfer is accepted; not recorded.
    conditions: Vec<Condition>,
}

/// The terms of a pending transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// Seconds after the hold's recorded time at which it expires; never, when absent.
    pub timeout_secs: Option<u32>,
}

impl PostTransfer {
    /// The most legs one transfer may have.
    pub const MAX_POSTINGS: usize = 64;

    pub fn new(
        id: TransferId,
        postings: Vec<Posting>,
        metadata: Metadata,
        reverses: Option<TransferId>,
    ) -> Result<Self, PostingsError> {
        check_legs(&postings)?;
        Ok(Self {
            id,
            postings,
            metadata: normalized(metadata),
            reverses,
            hold: None,
            effective_at: None,
            conditions: Vec::new(),
        })
    }

    /// How far ahead of its recorded time a transfer may take effect: a day, for clocks and
    /// time zones, not for scheduling.
    pub const MAX_EFFECTIVE_AHEAD_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

    /// This transfer, taking effect for the books at `at` rather than when it is recorded: any
    /// time before, or at most [`Self::MAX_EFFECTIVE_AHEAD_MICROS`] after (checked when decided).
    pub fn effective_at(mut self, at: Timestamp) -> Result<Self, PostingsError> {
        if self.hold.is_some() {
            return Err(PostingsError::PendingEffective);
        }
        self.effective_at = Some(at);
        Ok(self)
    }

    /// When the transfer takes effect, if the client said.
    pub fn effective(&self) -> Option<Timestamp> {
        self.effective_at
    }

    /// The most conditions one transfer may set.
    pub const MAX_CONDITIONS: usize = 16;

    /// This transfer, accepted only if every condition holds when it is decided.
    pub fn with_conditions(mut self, conditions: Vec<Condition>) -> Result<Self, PostingsError> {
        if conditions.len() > Self::MAX_CONDITIONS {
            return Err(PostingsError::Conditions {
                max: Self::MAX_CONDITIONS,
            });
        }
        self.conditions = conditions;
        Ok(self)
    }

    /// The preconditions, in the client's order.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The longest a hold may wait for its resolution: a year.
    pub const MAX_TIMEOUT_SECS: u32 = 366 * 24 * 60 * 60;

    /// This transfer as a hold: it reserves its amounts instead of moving them.
    pub fn pending(mut self, timeout_secs: Option<u32>) -> Result<Self, PostingsError> {
        if self.reverses.is_some() {
            return Err(PostingsError::PendingReversal);
        }
        if self.effective_at.is_some() {
            return Err(PostingsError::PendingEffective);
        }
        if timeout_secs.is_some_and(|t| t == 0 || t > Self::MAX_TIMEOUT_SECS) {
            return Err(PostingsError::Timeout {
                max: Self::MAX_TIMEOUT_SECS,
            });
        }
        self.hold = Some(Hold { timeout_secs });
        Ok(self)
    }

    /// The legs in the client's order; never empty, never more than [`Self::MAX_POSTINGS`].
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }
}

/// What to do with a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldAction {
    /// Post it: in full when `postings` is absent, otherwise the given amounts, each leg at most
    /// what a held leg with the same accounts reserved.
    Post { postings: Option<Vec<Posting>> },
    /// Release it without posting anything.
    Void,
    /// Release it because its timeout has passed (the expiry sweeper's command).
    Expire,
}

impl HoldAction {
    /// A post of the given amounts; the legs are checked as a transfer's are.
    pub fn post(postings: Option<Vec<Posting>>) -> Result<Self, PostingsError> {
        if let Some(postings) = &postings {
            check_legs(postings)?;
        }
        Ok(Self::Post { postings })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveHold {
    pub id: TransferId,
    pub action: HoldAction,
}

fn check_legs(postings: &[Posting]) -> Result<(), PostingsError> {
    if postings.is_empty() || postings.len() > PostTransfer::MAX_POSTINGS {
        return Err(PostingsError::Count {
            max: PostTransfer::MAX_POSTINGS,
        });
    }
    if let Some(index) = postings.iter().position(|p| p.debit == p.credit) {
        return Err(PostingsError::SameAccount { index });
    }
    Ok(())
}

/// What a metadata change is about: an account or a transfer, of any status.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Account(AccountId),
    Transfer(TransferId),
}

/// Changes a subject's metadata by a patch: each key given replaces that key's whole value (a
/// nested object is replaced, not merged), and a key given as `null` is removed. Construct it
/// with [`SetMetadata::new`].
///
/// Metadata decides nothing: it is not loaded to decide, and a change to it is not an identical
/// replay of an earlier one even when it changes nothing (retries are made safe with an
/// idempotency key, as for lifecycle changes).
#[derive(Debug, Clone, PartialEq)]
pub struct SetMetadata {
    pub subject: Subject,
    patch: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a metadata change sets or removes at least one key")]
pub struct EmptyPatch;

impl SetMetadata {
    pub fn new(subject: Subject, patch: Metadata) -> Result<Self, EmptyPatch> {
        if patch.is_empty() {
            return Err(EmptyPatch);
        }
        Ok(Self {
            subject,
            patch: normalized(patch),
        })
    }

    /// The keys to set, and with `null` values the keys to remove; never empty.
    pub fn patch(&self) -> &Metadata {
        &self.patch
    }
}

/// Applies a metadata patch (see [`SetMetadata`]) to `metadata`.
pub fn apply_patch(metadata: &mut Metadata, patch: &Metadata) {
    for (key, value) in patch {
        if value.is_null() {
            metadata.remove(key);
        } else {
            metadata.insert(key.clone(), value.clone());
        }
    }
}

/// Metadata as the log will store and read it back (see [`crate::canonical::normalize`]).
fn normalized(mut metadata: Metadata) -> Metadata {
    metadata.values_mut().for_each(crate::canonical::normalize);
    metadata
}
