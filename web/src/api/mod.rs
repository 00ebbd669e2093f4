//! What the browser asks the console's server: one server function per page load or form.
//! Each is a thin door to [`crate::server::ops`], which runs only on the server.

pub mod error;
pub mod types;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

pub use error::UiError;
use types::{Account, Asset, Checkpoint, Entry, LogEvent, Operator, Page, Projection, ServiceHealth, Transfer};

/// A transfer with each posting's amount written out with its asset (`12.50 EUR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    pub transfer: Transfer,
    pub amounts: Vec<String>,
    /// A hold's reserved amounts, written out.
    pub held_amounts: Vec<String>,
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
    after: Option<String>,
) -> Result<AccountList, UiError> {
    let backend = crate::server::backend()?;
    crate::server::ops::accounts(&backend, prefix, asset, status, after).await
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
pub async fn load_transfers(after: Option<i64>) -> Result<Page<TransferRow, i64>, UiError> {
    crate::server::ops::transfers(&crate::server::backend()?, after).await
}

#[server(endpoint = "transfer")]
pub async fn load_transfer(id: String, min_position: Option<i64>) -> Result<TransferRow, UiError> {
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

/// Sets one metadata key of an account (`value` text), or removes it (`value` empty).
#[server(endpoint = "set_account_metadata")]
pub async fn set_account_metadata(id: String, entry_key: String, value: String, key: String) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let written = crate::server::ops::set_account_metadata(&backend, &id, (&entry_key, &value), &key).await?;
    crate::server::redirect_to_written("/accounts", &id, &written);
    Ok(())
}

/// Erases the personal data of `subject`, then shows account `id` once the erasure is projected.
#[server(endpoint = "erase_subject")]
pub async fn erase_subject(id: String, subject: String) -> Result<(), UiError> {
    let written = crate::server::ops::erase_subject(&crate::server::backend()?, &subject).await?;
    crate::server::redirect_to_written("/accounts", &id, &written);
    Ok(())
}

#[server(endpoint = "post_transfer")]
pub async fn post_transfer(
    id: String,
    legs: Vec<LegInput>,
    memo: Option<String>,
    effective_at: Option<String>,
) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let written = crate::server::ops::post_transfer(
        &backend,
        &id,
        &legs,
        memo.as_deref().unwrap_or(""),
        effective_at.as_deref().unwrap_or(""),
    )
    .await?;
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

#[server(endpoint = "reverse_transfer")]
pub async fn reverse_transfer(id: String, reversal_id: String) -> Result<(), UiError> {
    let backend = crate::server::backend()?;
    let written = crate::server::ops::reverse_transfer(&backend, &id, &reversal_id).await?;
    crate::server::redirect_to_written("/transfers", &written.id, &written);
    Ok(())
}
