//! Commands: what a client asks the ledger to do, already parsed into valid shapes.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, Amount, AssetCode, Scale, TransferId};

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
}

/// Posts a balanced transfer atomically. Construct it with [`PostTransfer::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct PostTransfer {
    pub id: TransferId,
    postings: Vec<Posting>,
    pub metadata: Metadata,
    pub reverses: Option<TransferId>,
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
        if postings.is_empty() || postings.len() > Self::MAX_POSTINGS {
            return Err(PostingsError::Count {
                max: Self::MAX_POSTINGS,
            });
        }
        if let Some(index) = postings.iter().position(|p| p.debit == p.credit) {
            return Err(PostingsError::SameAccount { index });
        }
        Ok(Self {
            id,
            postings,
            metadata: normalized(metadata),
            reverses,
        })
    }

    /// The legs in the client's order; never empty, never more than [`Self::MAX_POSTINGS`].
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }
}

/// Metadata as the log will store and read it back (see [`crate::canonical::normalize`]).
fn normalized(mut metadata: Metadata) -> Metadata {
    metadata.values_mut().for_each(crate::canonical::normalize);
    metadata
}
