//! What the console shows, as the APIs send it (a subset of their fields). Shared by the server,
//! which fetches them, and the browser, which receives them with the page.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub code: String,
    pub scale: u8,
    /// Everything ever posted in the asset (total debits, equal to total credits).
    pub posted: i64,
    pub accounts: i64,
    pub transfers: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flags {
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub asset: String,
    pub name: String,
    pub normal_side: String,
    pub flags: Flags,
    pub metadata: Value,
    pub status: String,
    pub debits: i64,
    pub credits: i64,
    pub balance: i64,
    /// Reserved by open holds.
    #[serde(default)]
    pub pending_debits: i64,
    #[serde(default)]
    pub pending_credits: i64,
    /// The balance less what open holds would take from it.
    #[serde(default)]
    pub available: i64,
    /// How many events changed the account: what a `revision` condition names.
    #[serde(default)]
    pub revision: i64,
    pub last_position: i64,
    pub opened_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub position: i64,
    pub seq: i32,
    pub transfer_id: String,
    pub side: String,
    pub amount: i64,
    pub balance: i64,
    pub recorded_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posting {
    pub debit: String,
    pub credit: String,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: String,
    pub position: i64,
    /// `posted`, or for a hold `pending`, `posted`, `voided` or `expired`.
    #[serde(default = "posted")]
    pub status: String,
    /// What moved (for a hold, what its post moved).
    pub postings: Vec<Posting>,
    /// What a hold reserved.
    #[serde(default)]
    pub held: Option<Vec<Posting>>,
    #[serde(default)]
    pub expires_at: Option<String>,
    pub metadata: Value,
    pub reverses: Option<String>,
    pub reversed_by: Option<String>,
    pub recorded_at: String,
    /// When what moved takes effect for the books; absent while nothing moved.
    #[serde(default)]
    pub effective_at: Option<String>,
}

fn posted() -> String {
    "posted".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    pub position: i64,
    pub event_id: String,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Value,
    pub recorded_at: String,
    pub prev_hash: String,
    pub hash: String,
}

impl LogEvent {
    /// Whether this event changed the account `id` (its lifecycle, or a posting to it).
    pub fn touches_account(&self, id: &str) -> bool {
        if self.stream_id.strip_prefix("account:") == Some(id) {
            return true;
        }
        self.data
            .get("postings")
            .and_then(Value::as_array)
            .is_some_and(|postings| {
                postings.iter().any(|posting| {
                    posting.get("debit").and_then(Value::as_str) == Some(id)
                        || posting.get("credit").and_then(Value::as_str) == Some(id)
                })
            })
    }

    /// One line for people: what happened, from the event's data.
    pub fn summary(&self) -> String {
        let text = |key: &str| self.data.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
        match self.event_type.as_str() {
            "TransferPosted" => {
                let legs = self.data.get("postings").and_then(Value::as_array).map_or(0, Vec::len);
                let plural = if legs == 1 { "posting" } else { "postings" };
                format!("transfer {} posted ({legs} {plural})", text("id"))
            }
            "TransferPending" => format!("hold {} placed", text("id")),
            "PendingPosted" => format!("hold {} posted", text("id")),
            "PendingVoided" => format!("hold {} voided", text("id")),
            "PendingExpired" => format!("hold {} expired", text("id")),
            "AccountOpened" => format!("account {} opened in {}", text("id"), text("asset")),
            "AccountFrozen" => format!("account {} frozen", text("id")),
            "AccountUnfrozen" => format!("account {} unfrozen", text("id")),
            "AccountClosed" => format!("account {} closed", text("id")),
            "AssetRegistered" => format!("asset {} registered", text("code")),
            "AccountMetadataSet" => format!("metadata of account {} changed", text("id")),
            "TransferMetadataSet" => format!("metadata of transfer {} changed", text("id")),
            "PersonalDataErased" => format!("personal data of {} erased", text("subject")),
            other => format!("{other} on {}", self.stream_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub name: String,
    pub generation: i32,
    pub checkpoint: i64,
    pub head: i64,
    pub lag: i64,
    pub updated_at: String,
}

/// A signed checkpoint (hashes and signature in hex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub position: i64,
    pub chain_hash: String,
    pub merkle_root: String,
    pub signed_at: String,
    pub key_id: String,
    pub signature: String,
}

/// One service as the console's server sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub name: String,
    pub url: String,
    pub ready: bool,
    /// What it answered, or why it could not be asked.
    pub detail: String,
}

/// The projection's progress as the live stream reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub checkpoint: i64,
    pub head: i64,
    pub lag: i64,
}

/// A page of a list and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// What a write answered: the id and the position to read it at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub id: String,
    pub position: i64,
}

/// The signed-in operator, as the APIs see their credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operator {
    pub subject: String,
    pub role: String,
    pub permissions: Vec<String>,
}

/// One account's line of a trial balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialLine {
    pub id: String,
    pub normal_side: String,
    pub debits: i64,
    pub credits: i64,
    pub balance: i64,
}

/// One asset's part of a trial balance: its accounts and the totals of both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetBooks {
    pub asset: String,
    pub scale: u8,
    pub debits: i64,
    pub credits: i64,
    pub balanced: bool,
    pub accounts: Vec<TrialLine>,
    /// Accounts in the totals whose lines the console does not list.
    #[serde(default)]
    pub hidden: usize,
}

/// The trial balance at a point of the log, by recorded or by effective time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialBalance {
    pub at_position: i64,
    #[serde(default)]
    pub as_of_effective: Option<String>,
    pub assets: Vec<AssetBooks>,
}

/// One group of aggregated balances: the accounts of one asset (and one value of the grouping
/// key), summed. Sums may pass the 64-bit range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceGroup {
    pub asset: String,
    #[serde(default)]
    pub value: Option<Value>,
    pub accounts: i64,
    pub debits: i128,
    pub credits: i128,
    pub balance: i128,
    pub pending_debits: i128,
    pub pending_credits: i128,
    pub available: i128,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balances {
    pub at_position: i64,
    #[serde(default)]
    pub group_by: Option<String>,
    pub groups: Vec<BalanceGroup>,
}
