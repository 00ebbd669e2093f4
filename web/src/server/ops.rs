//! What each server function does: reads shaped for the pages, commands checked and sent.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::backend::{Backend, segment};
use crate::api::types::{Account, Checkpoint, Entry, LogEvent, Page, Projection, Transfer, Written};
use crate::api::{AccountDetail, AccountList, Dashboard, LegInput, SystemView, TransferRow, UiError};
use crate::money::{format_amount, parse_amount};

/// Entries shown per page of an account, and drawn in its chart.
const ENTRIES_PAGE: i64 = 25;
const CHART_POINTS: i64 = 200;
const LIST_PAGE: i64 = 25;
const MAX_LEGS: usize = 64;

#[derive(Deserialize)]
struct Projections {
    projections: Vec<Projection>,
}

#[derive(Deserialize)]
struct Transfers {
    transfers: Vec<Transfer>,
    next: Option<i64>,
}

pub async fn dashboard(backend: &Backend) -> Result<Dashboard, UiError> {
    let recent = async {
        let page: Transfers = backend
            .read("/v1/transfers", &[("order", "desc".into()), ("limit", "10".into())])
            .await?;
        Ok::<_, UiError>(rows(backend, page.transfers).await)
    };
    let projections = backend.read::<Projections>("/v1/projections", &[]);
    let (assets, recent, projections, services) = tokio::join!(backend.assets(), recent, projections, backend.health());
    Ok(Dashboard {
        assets: assets?,
        recent: recent?,
        projections: projections?.projections,
        services,
    })
}

pub async fn accounts(
    backend: &Backend,
    prefix: Option<String>,
    asset: Option<String>,
    status: Option<String>,
    after: Option<String>,
) -> Result<AccountList, UiError> {
    #[derive(Deserialize)]
    struct Accounts {
        accounts: Vec<Account>,
        next: Option<String>,
    }
    let mut query = vec![("limit", LIST_PAGE.to_string())];
    let filters = [
        ("prefix", prefix),
        ("asset", asset),
        ("status", status),
        ("after", after),
    ];
    for (name, value) in filters {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            query.push((name, value.trim().to_owned()));
        }
    }
    let (page, assets) = tokio::join!(backend.read::<Accounts>("/v1/accounts", &query), backend.assets());
    let page = page?;
    Ok(AccountList {
        accounts: Page {
            items: page.accounts,
            next: page.next,
        },
        assets: assets?,
    })
}

pub async fn account(
    backend: &Backend,
    id: &str,
    min_position: Option<i64>,
    after: Option<String>,
) -> Result<AccountDetail, UiError> {
    #[derive(Deserialize)]
    struct Entries {
        entries: Vec<Entry>,
        next: Option<String>,
    }
    let path = format!("/v1/accounts/{}", segment(id));
    let min = min_position.map(|p| ("min_position", p.to_string()));
    let account: Account = backend
        .read(&path, &min.clone().into_iter().collect::<Vec<_>>())
        .await?;
    let entries_path = format!("{path}/entries");
    let mut page_query = vec![("order", "desc".to_owned()), ("limit", ENTRIES_PAGE.to_string())];
    page_query.extend(after.map(|cursor| ("after", cursor)));
    let chart_query = [("order", "desc".to_owned()), ("limit", CHART_POINTS.to_string())];
    let (entries, chart, scales) = tokio::join!(
        backend.read::<Entries>(&entries_path, &page_query),
        backend.read::<Entries>(&entries_path, &chart_query),
        backend.scales()
    );
    let entries = entries?;
    let scale = scales?.get(&account.asset).copied().unwrap_or(0);
    let mut history: Vec<(i64, i64)> = chart?.entries.iter().map(|e| (e.position, e.balance)).collect();
    history.reverse();
    Ok(AccountDetail {
        account,
        scale,
        entries: Page {
            items: entries.entries,
            next: entries.next,
        },
        history,
    })
}

pub async fn transfers(backend: &Backend, after: Option<i64>) -> Result<Page<TransferRow, i64>, UiError> {
    let mut query = vec![("order", "desc".to_owned()), ("limit", LIST_PAGE.to_string())];
    query.extend(after.map(|position| ("after", position.to_string())));
    let page: Transfers = backend.read("/v1/transfers", &query).await?;
    Ok(Page {
        items: rows(backend, page.transfers).await,
        next: page.next,
    })
}

pub async fn transfer(backend: &Backend, id: &str, min_position: Option<i64>) -> Result<TransferRow, UiError> {
    let query: Vec<_> = min_position
        .map(|p| ("min_position", p.to_string()))
        .into_iter()
        .collect();
    let transfer: Transfer = backend.read(&format!("/v1/transfers/{}", segment(id)), &query).await?;
    Ok(rows(backend, vec![transfer]).await.remove(0))
}

/// Transfers with their amounts written out; an account whose asset cannot be found shows the
/// bare number.
async fn rows(backend: &Backend, transfers: Vec<Transfer>) -> Vec<TransferRow> {
    let accounts: Vec<&str> = transfers
        .iter()
        .flat_map(|t| {
            t.postings
                .iter()
                .chain(t.held.iter().flatten())
                .map(|p| p.debit.as_str())
        })
        .collect();
    let assets = backend.assets_of(&accounts).await;
    let written = |postings: &[crate::api::types::Posting]| -> Vec<String> {
        postings
            .iter()
            .map(|posting| match assets.get(&posting.debit) {
                Some(asset) => format!("{} {}", format_amount(posting.amount, asset.scale), asset.code),
                None => posting.amount.to_string(),
            })
            .collect()
    };
    transfers
        .into_iter()
        .map(|transfer| {
            let amounts = written(&transfer.postings);
            let held_amounts = transfer.held.as_deref().map(written).unwrap_or_default();
            TransferRow {
                transfer,
                amounts,
                held_amounts,
            }
        })
        .collect()
}

pub async fn events(
    backend: &Backend,
    after: Option<i64>,
    event_type: Option<String>,
    stream: Option<String>,
) -> Result<Page<LogEvent, i64>, UiError> {
    #[derive(Deserialize)]
    struct Events {
        events: Vec<LogEvent>,
        next: Option<i64>,
    }
    let event_type = event_type.filter(|t| !t.trim().is_empty());
    if let Some(stream) = stream.filter(|s| !s.trim().is_empty()) {
        // A stream is short and read in version order; `after` is a stream version here.
        let mut query = vec![("limit", LIST_PAGE.to_string())];
        query.extend(after.map(|version| ("after_version", version.to_string())));
        let page: Events = match backend
            .read(&format!("/v1/streams/{}", segment(stream.trim())), &query)
            .await
        {
            Err(error) if error.code == "stream_not_found" => Events {
                events: Vec::new(),
                next: None,
            },
            other => other?,
        };
        let events = page
            .events
            .into_iter()
            .filter(|e| event_type.as_ref().is_none_or(|t| &e.event_type == t))
            .collect();
        return Ok(Page {
            items: events,
            next: page.next,
        });
    }
    let mut query = vec![("order", "desc".to_owned()), ("limit", LIST_PAGE.to_string())];
    query.extend(after.map(|position| ("after", position.to_string())));
    query.extend(event_type.map(|t| ("type", t)));
    let page: Events = backend.read("/v1/events", &query).await?;
    Ok(Page {
        items: page.events,
        next: page.next,
    })
}

pub async fn system(backend: &Backend) -> Result<SystemView, UiError> {
    let (projections, services, checkpoint) = tokio::join!(
        backend.read::<Projections>("/v1/projections", &[]),
        backend.health(),
        backend.read::<Checkpoint>("/v1/audit/checkpoints/latest", &[])
    );
    let projections = projections?.projections;
    let head = projections.iter().map(|p| p.head).max().unwrap_or(0);
    let checkpoint = match checkpoint {
        Ok(checkpoint) => Some(checkpoint),
        Err(error) if error.code == "checkpoint_not_found" => None,
        Err(error) => return Err(error),
    };
    Ok(SystemView {
        projections,
        services,
        head,
        checkpoint,
    })
}

pub fn new_id(prefix: &str) -> String {
    let prefix: String = prefix.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

pub async fn open_account(
    backend: &Backend,
    id: &str,
    name: &str,
    asset: &str,
    limit: &str,
) -> Result<Written, UiError> {
    let input = BTreeMap::from([
        ("id".to_owned(), id.to_owned()),
        ("name".to_owned(), name.to_owned()),
        ("asset".to_owned(), asset.to_owned()),
        ("limit".to_owned(), limit.to_owned()),
    ]);
    let (id, name, asset) = (id.trim(), name.trim(), asset.trim());
    let fail =
        |field: &str, message: &str| Err(UiError::field("validation_failed", field, message).with_input(input.clone()));
    if id.is_empty() {
        return fail("id", "Enter an account id, e.g. customers:alice.");
    }
    if id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c)) {
        return fail("id", "An id is up to 128 letters, digits and : . _ - only.");
    }
    if name.is_empty() {
        return fail("name", "Enter a name people will recognise.");
    }
    if asset.is_empty() {
        return fail("asset", "Choose the asset the account holds.");
    }
    let flags = match limit {
        "no_overdraft" => json!({"debits_must_not_exceed_credits": true}),
        "no_overcredit" => json!({"credits_must_not_exceed_debits": true}),
        "none" | "" => json!({}),
        _ => return fail("limit", "Choose one of the limits offered."),
    };
    let body = json!({"id": id, "name": name, "asset": asset, "flags": flags});
    backend
        .write("/v1/accounts", &body, None)
        .await
        .map_err(|error| error.with_input(input))
}

pub async fn change_account(backend: &Backend, id: &str, action: &str, key: &str) -> Result<Written, UiError> {
    if !matches!(action, "freeze" | "unfreeze" | "close") {
        return Err(UiError::field("validation_failed", "action", "Unknown action."));
    }
    let path = format!("/v1/accounts/{}/{action}", segment(id));
    // The key, chosen when the page was shown, makes a double click one change.
    let key = Some(key).filter(|k| !k.is_empty());
    backend.write(&path, &json!({}), key).await
}

/// Erases a data subject's personal data: its key is destroyed, everywhere, for good.
pub async fn erase_subject(backend: &Backend, subject: &str) -> Result<Written, UiError> {
    let path = format!("/v1/subjects/{}/erase", segment(subject));
    backend.write(&path, &json!({}), None).await
}

/// The longest metadata key the console sets.
const MAX_METADATA_KEY_CHARS: usize = 256;

/// Sets one metadata key of an account to a text value, or removes it when `value` is empty.
pub async fn set_account_metadata(
    backend: &Backend,
    id: &str,
    (entry_key, value): (&str, &str),
    key: &str,
) -> Result<Written, UiError> {
    let entry_key = entry_key.trim();
    if entry_key.is_empty() || entry_key.chars().count() > MAX_METADATA_KEY_CHARS {
        return Err(UiError::field(
            "validation_failed",
            "entry_key",
            format!("A key is 1 to {MAX_METADATA_KEY_CHARS} characters."),
        ));
    }
    let value = match value.trim() {
        "" => Value::Null,
        text => Value::String(text.to_owned()),
    };
    let mut patch = serde_json::Map::new();
    patch.insert(entry_key.to_owned(), value);
    let path = format!("/v1/accounts/{}/metadata", segment(id));
    // The key, chosen when the page was shown, makes a double click one change.
    let key = Some(key).filter(|k| !k.is_empty());
    backend.patch(&path, &Value::Object(patch), key).await
}

pub async fn post_transfer(
    backend: &Backend,
    id: &str,
    legs: &[LegInput],
    memo: &str,
    effective_at: &str,
) -> Result<Written, UiError> {
    let mut input = BTreeMap::from([
        ("id".to_owned(), id.to_owned()),
        ("memo".to_owned(), memo.to_owned()),
        ("effective_at".to_owned(), effective_at.to_owned()),
    ]);
    for (index, leg) in legs.iter().enumerate() {
        input.insert(format!("legs[{index}][debit]"), leg.debit.clone());
        input.insert(format!("legs[{index}][credit]"), leg.credit.clone());
        input.insert(format!("legs[{index}][amount]"), leg.amount.clone());
    }
    let fail =
        |field: String, message: String| UiError::field("validation_failed", &field, message).with_input(input.clone());
    // Legs left entirely blank are ignored: a form may show more than are needed.
    let filled: Vec<(usize, &LegInput)> = legs
        .iter()
        .enumerate()
        .filter(|(_, leg)| {
            !(leg.debit.trim().is_empty() && leg.credit.trim().is_empty() && leg.amount.trim().is_empty())
        })
        .collect();
    if filled.is_empty() {
        return Err(fail("legs[0][debit]".into(), "Fill in at least one leg.".into()));
    }
    if filled.len() > MAX_LEGS {
        return Err(fail("legs".into(), format!("A transfer has at most {MAX_LEGS} legs.")));
    }
    for (index, leg) in &filled {
        for (name, value) in [("debit", &leg.debit), ("credit", &leg.credit)] {
            if value.trim().is_empty() {
                return Err(fail(
                    format!("legs[{index}][{name}]"),
                    format!("Leg {}: name the {name} account.", index + 1),
                ));
            }
        }
    }
    let accounts: Vec<&str> = filled
        .iter()
        .flat_map(|(_, leg)| [leg.debit.trim(), leg.credit.trim()])
        .collect();
    let assets = backend.assets_of(&accounts).await;
    let mut postings = Vec::with_capacity(filled.len());
    for (index, leg) in &filled {
        let (debit, credit) = (leg.debit.trim(), leg.credit.trim());
        for (name, account) in [("debit", debit), ("credit", credit)] {
            if !assets.contains_key(account) {
                return Err(fail(
                    format!("legs[{index}][{name}]"),
                    format!("Leg {}: there is no account {account}.", index + 1),
                ));
            }
        }
        let scale = assets.get(debit).map_or(0, |asset| asset.scale);
        let amount = parse_amount(&leg.amount, scale)
            .map_err(|error| fail(format!("legs[{index}][amount]"), format!("Leg {}: {error}.", index + 1)))?;
        postings.push(json!({"debit": debit, "credit": credit, "amount": amount}));
    }
    let mut body = json!({"id": id.trim(), "postings": postings});
    if !memo.trim().is_empty() {
        body["metadata"] = json!({"memo": memo.trim()});
    }
    if let Some(at) = effective_at_utc(effective_at) {
        body["effective_at"] = json!(at);
    }
    backend.write("/v1/transfers", &body, None).await.map_err(|mut error| {
        // The API names fields of its own body; point them at the form's.
        error.field = error.field.map(|field| form_field(&field, &filled));
        error.with_input(input)
    })
}

/// The form's effective time as the API takes it. A `datetime-local` control sends minutes or
/// seconds and no zone, and the form asks for UTC; a time with a zone is passed on as typed (the
/// API refuses what is no time, naming the field). Blank: none.
fn effective_at_utc(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let zoned = text.ends_with(['Z', 'z']) || text.get(19..).is_some_and(|rest| rest.contains(['+', '-']));
    Some(match (zoned, text.len()) {
        (true, _) => text.to_owned(),
        (false, 16) => format!("{text}:00Z"),
        (false, _) => format!("{text}Z"),
    })
}

/// `postings[2].amount` in the API's body is `legs[i][amount]` in the form (blank legs skipped).
fn form_field(api_field: &str, filled: &[(usize, &LegInput)]) -> String {
    let Some(rest) = api_field.strip_prefix("postings[") else {
        return api_field.to_owned();
    };
    let Some((index, name)) = rest.split_once("].") else {
        return api_field.to_owned();
    };
    match index.parse::<usize>().ok().and_then(|i| filled.get(i)) {
        Some((leg, _)) => format!("legs[{leg}][{name}]"),
        None => api_field.to_owned(),
    }
}

pub async fn reverse_transfer(backend: &Backend, id: &str, reversal_id: &str) -> Result<Written, UiError> {
    let original: Transfer = backend.read(&format!("/v1/transfers/{}", segment(id)), &[]).await?;
    let postings: Vec<Value> = original
        .postings
        .iter()
        .map(|p| json!({"debit": p.credit, "credit": p.debit, "amount": p.amount}))
        .collect();
    let body = json!({
        "id": reversal_id,
        "postings": postings,
        "reverses": original.id,
        "metadata": {"memo": format!("reversal of {}", original.id)},
    });
    backend.write("/v1/transfers", &body, None).await
}

/// Posts a hold in full, or voids it.
pub async fn resolve_hold(backend: &Backend, id: &str, action: &str) -> Result<Written, UiError> {
    if !matches!(action, "post" | "void") {
        return Err(UiError::field("validation_failed", "action", "Unknown action."));
    }
    // A hold resolves once: a double click is answered with the first resolution.
    backend
        .write(&format!("/v1/transfers/{}/{action}", segment(id)), &json!({}), None)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_time_as_utc_unless_zoned() {
        assert_eq!(effective_at_utc("  "), None);
        assert_eq!(
            effective_at_utc("2026-10-31T23:59").as_deref(),
            Some("2026-10-31T23:59:00Z")
        );
        assert_eq!(
            effective_at_utc("2026-10-31T23:59:30").as_deref(),
            Some("2026-10-31T23:59:30Z")
        );
        assert_eq!(
            effective_at_utc("2026-10-31T23:59:30+02:00").as_deref(),
            Some("2026-10-31T23:59:30+02:00")
        );
        assert_eq!(
            effective_at_utc("2026-10-31T23:59:30Z").as_deref(),
            Some("2026-10-31T23:59:30Z")
        );
    }

    #[test]
    fn maps_api_fields_to_form_legs() {
        let blank = LegInput::default();
        let leg = LegInput {
            debit: "a".into(),
            credit: "b".into(),
            amount: "1".into(),
        };
        let filled = vec![(0, &leg), (2, &leg)];
        assert_eq!(form_field("postings[1].amount", &filled), "legs[2][amount]");
        assert_eq!(form_field("id", &filled), "id");
        assert_eq!(form_field("postings[9].debit", &[(0, &blank)]), "postings[9].debit");
    }

    #[test]
    fn new_ids_are_valid_account_and_transfer_ids() {
        let id = new_id("t/x");
        assert!(id.starts_with("tx-"), "{id}");
        assert!(id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c)));
        assert_ne!(new_id("t"), new_id("t"));
    }
}
