//! What the browser asks the console's server: one server function per page load or form.
//! Each is a thin door to [`crate::server::ops`], which runs only on the server.

pub mod error;
pub mod types;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use error::UiError;
use types::{
    Account, Asset, Balances, Checkpoint, Entry, LogEvent, Operator, Page, Projection, ServiceHealth, Transfer,
    TrialBalance,
};

/// A transfer with each posting's amount written out with its asset (`12.50 EUR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    pub transfer: Transfer,
    pub amounts: Vec<String>,
    /// A hold's reserved amounts, written out.
    pub held_amounts: Vec<String>,
}

/// One transfer, and a stem for the idempotency keys of the changes its page offers: new at each
/// load, so a double submit is one change and a change after the page shows it is another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferDetail {
    pub row: TransferRow,
    pub form_key: String,
}

/// What metadata belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataOf {
    Account,
    Transfer,
}

impl MetadataOf {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Transfer => "transfer",
        }
    }

    /// Where the APIs keep them: `{api_path}/{id}`.
    pub fn api_path(self) -> &'static str {
        match self {
            Self::Account => "/v1/accounts",
            Self::Transfer => "/v1/transfers",
        }
    }

    /// Where the console shows one of them: `{pages}/{id}`.
    pub fn pages(self) -> &'static str {
        match self {
            Self::Account => "/accounts",
            Self::Transfer => "/transfers",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub assets: Vec<Asset>,
    pub recent: Vec<TransferRow>,
    pub projections: Vec<Projection>,
    pub services: Vec<ServiceHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountList {
    pub accounts: Page<Account, String>,
    pub assets: Vec<Asset>,
}

/// One account, a page of its entries (newest first) and the points of its balance chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountDetail {
    pub account: Account,
    pub scale: u8,
    pub entries: Page<Entry, String>,
    /// `(position, balance)` after each of the latest entries, oldest first.
    pub history: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemView {
    pub projections: Vec<Projection>,
    pub services: Vec<ServiceHealth>,
    pub head: i64,
    /// The latest signed checkpoint, when one exists.
    pub checkpoint: Option<Checkpoint>,
}

/// What the trial-balance form asks: a point of the log (a position, or a recorded time) and an
/// effective time, each optional; times typed in the form are UTC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BooksPoint {
    pub at_position: Option<String>,
    pub at_time: Option<String>,
    pub as_of_effective: Option<String>,
}

/// What the balances form asks: an id pattern, one metadata key's text value, an asset and a
/// metadata key to group by, each optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BalancesQuery {
    pub accounts: Option<String>,
    pub metadata_key: Option<String>,
    pub metadata_value: Option<String>,
    pub asset: Option<String>,
    pub group_by: Option<String>,
}

/// Aggregated balances and the scale of every asset, to show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceSums {
    pub balances: Balances,
    pub scales: std::collections::BTreeMap<String, u8>,
}

/// One leg of the transfer form, as typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegInput {
    #[serde(default)]
    pub debit: String,
    #[serde(default)]
    pub credit: String,
    #[serde(default)]
    pub amount: String,
}

/// One condition of the transfer form, as typed: `check` is `available_at_least` (`value` an
/// amount) or `revision` (`value` a whole number).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionInput {
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub check: String,
    #[serde(default)]
    pub value: String,
}

/// The transfer form's fields beside its legs and conditions, as typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferOptions {
    pub memo: String,
    pub effective_at: String,
    /// A hold: reserve the amounts, to post or void later.
    pub hold: bool,
    /// A hold's lifetime in seconds; blank: until resolved.
    pub timeout_secs: String,
}

/// Signs in with an API token or a JWT: the APIs must accept it, then it is kept in the
/// session cookie and the browser goes on to `next`.
#[server(endpoint = "login")]
pub async fn login(token: String, next: Option<String>) -> Result<(), UiError> {
    crate::server::session::login(token.trim(), next.as_deref()).await
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), UiError> {
    crate::server::session::logout();
    Ok(())
}

/// The signed-in operator; an error when no one is.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Operator, UiError> {
    crate::server::backend()?.whoami().await
}

#[server(endpoint = "dashboard")]
pub async fn load_dashboard() -> Result<Dashboard, UiError> {
    crate::server::ops::dashboard(&crate::server::backend()?).await
}

#[server(endpoint = "assets")]
pub async fn load_assets() -> Result<Vec<Asset>, UiError> {
    crate::server::backend()?.assets().await
}

#[server(endpoint = "accounts")]
pub async fn load_accounts(
    prefix: Option<String>,
    asset: Option<String>,
    status: Option<String>,
    metadata_key: Option<String>,
    metadata_value: Option<String>,
    after: Option<String>,
) -> Result<AccountList, UiError> {
    let backend = crate::server::backend()?;
    let metadata = (metadata_key, metadata_value);
    crate::server::ops::accounts(&backend, prefix, asset, status, metadata, after).await
}

#[server(endpoint = "account")]
pub async fn load_account(
    id: String,
    min_position: Option<i64>,
    after: Option<String>,
) -> Result<AccountDetail, UiError> {
    crate::server::ops::account(&crate::server::backend()?, &id, min_position, after).await
}

#[server(endpoint = "transfers")]
pub async fn load_transfers(
    after: Option<i64>,
    status: Option<String>,
    metadata_key: Option<String>,
    metadata_value: Option<String>,
    min_position: Option<i64>,
) -> Result<Page<TransferRow, i64>, UiError> {
    let metadata = (metadata_key, metadata_value);
    crate::server::ops::transfers(&crate::server::backend()?, after, status, metadata, min_position).await
}

#[server(endpoint = "transfer")]
pub async fn load_transfer(id: String, min_position: Option<i64>) -> Result<TransferDetail, UiError> {
    crate::server::ops::transfer(&crate::server::backend()?, &id, min_position).await
}

#[server(endpoint = "events")]
pub async fn load_events(
    after: Option<i64>,
    event_type: Option<String>,
    stream: Option<String>,
) -> Result<Page<LogEvent, i64>, UiError> {
    crate::server::ops::events(&crate::server::backend()?, after, event_type, stream).await
}

#[server(endpoint = "system")]
pub async fn load_system() -> Result<SystemView, UiError> {
    crate::server::ops::system(&crate::server::backend()?).await
}

#[server(endpoint = "trial_balance")]
pub async fn load_trial_balance(
    at_position: Option<String>,
    at_time: Option<String>,
    as_of_effective: Option<String>,
) -> Result<TrialBalance, UiError> {
    let point = BooksPoint {
        at_position,
        at_time,
        as_of_effective,
    };
    crate::server::ops::trial_balance(&crate::server::backend()?, point).await
}

#[server(endpoint = "balances")]
pub async fn load_balances(
    accounts: Option<String>,
    metadata_key: Option<String>,
    metadata_value: Option<String>,
    asset: Option<String>,
    group_by: Option<String>,
) -> Result<BalanceSums, UiError> {
    let asked = BalancesQuery {
        accounts,
        metadata_key,
        metadata_value,
        asset,
        group_by,
    };
    crate::server::ops::balances(&crate::server::backend()?, asked).await
}

/// A fresh id for a form, chosen once when the form is shown: submitting twice (a retry after
/// a network error) sends the same id, which the API writes at most once.
#[server(endpoint = "new_id")]
pub async fn new_id(prefix: String) -> Result<String, UiError> {
    Ok(crate::server::ops::new_id(&prefix))
}

#[server(endpoint = "open_account")]
pub async fn open_account(id: String, name: String, asset: String, limit: String) -> Result<(), UiError> {
    let written = crate::server::ops::open_account(&crate::server::backend()?, &id, &name, &asset, &limit).await?;
    crate::server::redirect_to_written("/accounts", &written.id, &written);
    Ok(())
}

#[server(endpoint = "change_account")]
pub async fn change_account(id: String, change: String, key: String) -> Result<(), UiError> {
    let written = crate::server::ops::change_account(&crate::server::backend()?, &id, &change, &key).await?;
    crate::server::redirect_to_written("/accounts", &id, &written);
    Ok(())
}

/// Sets one metadata key of an account or a transfer (`value` text), or removes it (`value`
/// empty).
#[server(endpoint = "set_metadata")]
pub async fn set_metadata(
    of: MetadataOf,
    id: String,
    entry_key: String,
    value: String,
    key: String,
) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let written = crate::server::ops::set_metadata(&backend, of, &id, (&entry_key, &value), &key).await?;
    crate::server::redirect_to_written(of.pages(), &id, &written);
    Ok(())
}

/// Erases the personal data of `subject`, then shows account `id` once the erasure is projected.
#[server(endpoint = "erase_subject")]
pub async fn erase_subject(id: String, subject: String) -> Result<(), UiError> {
    let written = crate::server::ops::erase_subject(&crate::server::backend()?, &subject).await?;
    crate::server::redirect_to_written("/accounts", &id, &written);
    Ok(())
}

/// Posts a transfer, or places a hold (`hold` is `on`, as a checkbox sends it).
#[server(endpoint = "post_transfer")]
pub async fn post_transfer(
    id: String,
    legs: Vec<LegInput>,
    #[server(default)] conditions: Vec<ConditionInput>,
    memo: Option<String>,
    effective_at: Option<String>,
    hold: Option<String>,
    timeout_secs: Option<String>,
) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let options = TransferOptions {
        memo: memo.unwrap_or_default(),
        effective_at: effective_at.unwrap_or_default(),
        hold: hold.is_some_and(|hold| !hold.is_empty()),
        timeout_secs: timeout_secs.unwrap_or_default(),
    };
    let written = crate::server::ops::post_transfer(&backend, &id, &legs, &conditions, &options).await?;
    crate::server::redirect_to_written("/transfers", &written.id, &written);
    Ok(())
}

#[server(endpoint = "resolve_hold")]
pub async fn resolve_hold(id: String, action: String) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let written = crate::server::ops::resolve_hold(&backend, &id, &action).await?;
    // Back to the hold's page, once the projection has its resolution.
    crate::server::redirect_to_written("/transfers", &written.id, &written);
    Ok(())
}

/// Posts part of a hold: `amounts[i]` of its held leg `i` (blank: none of it); the rest is released.
#[server(endpoint = "post_hold_part")]
pub async fn post_hold_part(id: String, #[server(default)] amounts: Vec<String>) -> Result<(), UiError> {
    let written = crate::server::ops::post_hold_part(&crate::server::backend()?, &id, &amounts).await?;
    crate::server::redirect_to_written("/transfers", &written.id, &written);
    Ok(())
}

/// Posts in full (`decision` is `post`), or voids, the holds `ids` together: all or none.
#[server(endpoint = "resolve_holds")]
pub async fn resolve_holds(#[server(default)] ids: Vec<String>, decision: String) -> Result<(), UiError> {
    let latest = crate::server::ops::resolve_holds(&crate::server::backend()?, &ids, &decision).await?;
    leptos_axum::redirect(&format!("/transfers?status=pending&min_position={latest}"));
    Ok(())
}

#[server(endpoint = "reverse_transfer")]
pub async fn reverse_transfer(id: String, reversal_id: String) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let written = crate::server::ops::reverse_transfer(&backend, &id, &reversal_id).await?;
    crate::server::redirect_to_written("/transfers", &written.id, &written);
    Ok(())
}
