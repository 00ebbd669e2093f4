//! Why the ledger refuses a command. Each rejection has a stable machine code and details that name
//! what was wrong; the APIs map them to HTTP without rewording.

use serde_json::{Value, json};

use crate::command::Check;
use crate::ids::{AccountId, AssetCode, TransferId};

/// A balance limit an account was opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitFlag {
    DebitsMustNotExceedCredits,
    CreditsMustNotExceedDebits,
}

impl LimitFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DebitsMustNotExceedCredits => "debits_must_not_exceed_credits",
            Self::CreditsMustNotExceedDebits => "credits_must_not_exceed_debits",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("transfer would break the {} limit of account {account}", flag.as_str())]
    LimitExceeded {
        account: AccountId,
        flag: LimitFlag,
        debits: i64,
        credits: i64,
        pending_debits: i64,
        pending_credits: i64,
    },
    #[error("account {account} does not exist")]
    AccountNotFound { account: AccountId },
    #[error("asset {asset} is not registered")]
    AssetNotFound { asset: AssetCode },
    #[error("accounts {debit} ({debit_asset}) and {credit} ({credit_asset}) hold different assets")]
    AssetMismatch {
        debit: AccountId,
        debit_asset: AssetCode,
        credit: AccountId,
        credit_asset: AssetCode,
    },
    #[error("account {account} is frozen")]
    AccountFrozen { account: AccountId },
    #[error("account {account} is not frozen")]
    AccountNotFrozen { account: AccountId },
    #[error("account {account} is closed")]
    AccountClosed { account: AccountId },
    #[error("account {account} still has a balance of {balance}")]
    AccountNotEmpty { account: AccountId, balance: i64 },
    #[error("account {account} still has amounts reserved by open holds")]
    AccountHasPending {
        account: AccountId,
        pending_debits: i64,
        pending_credits: i64,
    },
    #[error("transfer {transfer} is not pending")]
    TransferNotPending { transfer: TransferId },
    #[error("pending transfer {transfer} was already {resolution}")]
    PendingResolved {
        transfer: TransferId,
        resolution: &'static str,
    },
    #[error("pending transfer {transfer} has expired")]
    PendingExpired {
        transfer: TransferId,
        expires_at_micros: i64,
    },
    #[error("pending transfer {transfer} has not expired")]
    PendingNotExpired { transfer: TransferId },
    #[error("leg {index} of the post of {transfer} is not within a held leg between the same accounts")]
    PendingAmountExceeded { transfer: TransferId, index: usize },
    #[error("transfer {transfer} moved nothing to reverse: its hold is open, voided or expired")]
    TransferNotPosted { transfer: TransferId },
    #[error("transfer {transfer} does not exist")]
    TransferNotFound { transfer: TransferId },
    #[error("transfer {transfer} was already reversed by {reversed_by}")]
    AlreadyReversed {
        transfer: TransferId,
        reversed_by: TransferId,
    },
    #[error("a reversal of {transfer} must post exactly its postings with debit and credit swapped")]
    ReversalMismatch { transfer: TransferId },
    #[error("the total posted in {asset} would exceed the largest representable amount")]
    Overflow { asset: AssetCode },
    #[error("{kind} {id} already exists with a different body")]
    IdempotencyConflict { kind: &'static str, id: String },
    #[error("condition {index} failed: {} of account {account} is {actual}, not {}", check.as_str(), check.expectation())]
    ConditionFailed {
        index: usize,
        account: AccountId,
        check: Check,
        actual: i64,
    },
    #[error("transfer {transfer} would take effect more than a day after it is recorded")]
    EffectiveTooLate {
        transfer: TransferId,
        effective_at_micros: i64,
        latest_micros: i64,
    },
    #[error("chain {chain} was not written: its member {member} ({id}) was refused with {code}")]
    LinkedFailed {
        chain: String,
        member: usize,
        id: String,
        code: &'static str,
    },
}

impl Rejection {
    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::AccountNotFound { .. } => "account_not_found",
            Self::AssetNotFound { .. } => "asset_not_found",
            Self::AssetMismatch { .. } => "asset_mismatch",
            Self::AccountFrozen { .. } => "account_frozen",
            Self::AccountNotFrozen { .. } => "account_not_frozen",
            Self::AccountClosed { .. } => "account_closed",
            Self::AccountNotEmpty { .. } => "account_not_empty",
            Self::AccountHasPending { .. } => "account_has_pending",
            Self::TransferNotPending { .. } => "transfer_not_pending",
            Self::PendingResolved { .. } => "pending_resolved",
            Self::PendingExpired { .. } => "pending_expired",
            Self::PendingNotExpired { .. } => "pending_not_expired",
            Self::PendingAmountExceeded { .. } => "pending_amount_exceeded",
            Self::TransferNotPosted { .. } => "transfer_not_posted",
            Self::TransferNotFound { .. } => "transfer_not_found",
            Self::AlreadyReversed { .. } => "already_reversed",
            Self::ReversalMismatch { .. } => "reversal_mismatch",
            Self::Overflow { .. } => "overflow",
            Self::IdempotencyConflict { .. } => "idempotency_conflict",
            Self::ConditionFailed { .. } => "condition_failed",
            Self::LinkedFailed { .. } => "linked_failed",
            Self::EffectiveTooLate { .. } => "effective_too_late",
        }
    }

    /// Structured details naming what was wrong.
    pub fn details(&self) -> Value {
        match self {
            Self::LimitExceeded {
                account,
                flag,
                debits,
                credits,
                pending_debits,
                pending_credits,
            } => json!({
                "account": account, "flag": flag.as_str(), "debits": debits, "credits": credits,
                "pending_debits": pending_debits, "pending_credits": pending_credits
            }),
            Self::AccountHasPending {
                account,
                pending_debits,
                pending_credits,
            } => json!({"account": account, "pending_debits": pending_debits, "pending_credits": pending_credits}),
            Self::TransferNotPending { transfer }
            | Self::PendingNotExpired { transfer }
            | Self::TransferNotPosted { transfer } => json!({"transfer": transfer}),
            Self::PendingResolved { transfer, resolution } => json!({"transfer": transfer, "resolution": resolution}),
            Self::PendingExpired {
                transfer,
                expires_at_micros,
            } => json!({"transfer": transfer, "expires_at_micros": expires_at_micros}),
            Self::PendingAmountExceeded { transfer, index } => json!({"transfer": transfer, "posting": index}),
            Self::AccountNotFound { account }
            | Self::AccountFrozen { account }
            | Self::AccountNotFrozen { account }
            | Self::AccountClosed { account } => json!({"account": account}),
            Self::AccountNotEmpty { account, balance } => {
                json!({"account": account, "balance": balance})
            }
            Self::AssetNotFound { asset } | Self::Overflow { asset } => json!({"asset": asset}),
            Self::AssetMismatch {
                debit,
                debit_asset,
                credit,
                credit_asset,
            } => json!({
                "debit": debit, "debit_asset": debit_asset, "credit": credit, "credit_asset": credit_asset
            }),
            Self::TransferNotFound { transfer } | Self::ReversalMismatch { transfer } => {
                json!({"transfer": transfer})
            }
            Self::AlreadyReversed { transfer, reversed_by } => {
                json!({"transfer": transfer, "reversed_by": reversed_by})
            }
            Self::IdempotencyConflict { kind, id } => json!({"kind": kind, "id": id}),
            Self::ConditionFailed {
                index,
                account,
                check,
                actual,
            } => json!({
                "condition": index, "account": account, "check": check.as_str(), "expected": check.expected(),
                "actual": actual
            }),
            Self::EffectiveTooLate {
                transfer,
                effective_at_micros,
                latest_micros,
            } => json!({
                "transfer": transfer, "effective_at_micros": effective_at_micros, "latest_micros": latest_micros
            }),
            Self::LinkedFailed {
                chain,
                member,
                id,
                code,
            } => {
                json!({"chain": chain, "member": member, "id": id, "code": code})
            }
        }
    }

    /// A conflict with an earlier write, as opposed to a business rule.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::IdempotencyConflict { .. })
    }
}
