//! Small views: errors, amounts, statuses, timestamps.

use leptos::prelude::*;

use crate::api::UiError;
use crate::money::format_amount;

/// An error the page could not get past, in plain words.
#[component]
pub fn ErrorBox(error: UiError) -> impl IntoView {
    view! {
        <div class="error-box" role="alert" data-code=error.code.clone()>
            <strong>"Something went wrong. "</strong>
            {error.message}
        </div>
    }
}

/// An amount with its asset, never through a float.
#[component]
pub fn Amount(#[prop(into)] minor: i128, scale: u8, asset: String) -> impl IntoView {
    let class = if minor < 0 { "amount negative" } else { "amount" };
    view! {
        <span class=class>{format_amount(minor, scale)}" "<abbr class="asset">{asset}</abbr></span>
    }
}

#[component]
pub fn Status(status: String) -> impl IntoView {
    let class = format!("status status-{status}");
    view! { <span class=class>{status}</span> }
}

/// `2026-11-22T10:15:30.123456Z` as `2026-11-22 10:15:30` (UTC), the full value on hover.
#[component]
pub fn Time(at: String) -> impl IntoView {
    let short = at.get(..19).map(|t| t.replace('T', " ")).unwrap_or_else(|| at.clone());
    view! { <time datetime=at.clone() title=at>{short}" UTC"</time> }
}

/// The error a form's last submission got, if it concerns `field`.
pub fn field_error(error: &Option<UiError>, field: &str) -> Option<String> {
    error
        .as_ref()
        .filter(|error| error.field.as_deref() == Some(field))
        .map(|error| error.message.clone())
}

/// What was typed in `field` before the error, to show it again.
pub fn typed(error: &Option<UiError>, field: &str) -> Option<String> {
    error.as_ref().and_then(|error| error.input.get(field).cloned())
}

/// The console's page for a stream (`account:x` → `/accounts/x`), when it has one.
pub fn stream_href(stream: &str) -> Option<String> {
    if let Some(id) = stream.strip_prefix("account:") {
        Some(format!("/accounts/{id}"))
    } else {
        stream.strip_prefix("transfer:").map(|id| format!("/transfers/{id}"))
    }
}

/// Links to the first page (when not on it) and the next one (when there is one).
#[component]
pub fn Pager(first: Option<String>, next: Option<String>, next_label: &'static str) -> impl IntoView {
    view! {
        <nav class="pager" aria-label="Pages">
            {first.map(|href| view! { <a href=href>"Newest"</a> })}
            {next.map(|href| view! { <a href=href rel="next">{next_label}</a> })}
        </nav>
    }
}
