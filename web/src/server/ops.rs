//! What each server function does: reads shaped for the pages, commands checked and sent.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::backend::{Backend, segment};
use crate::api::types::{
    Account, Balances, Checkpoint, Entry, LogEvent, Page, Projection, Transfer, TrialBalance, Written,
};
use crate::api::{
    AccountDetail, AccountList, BalanceSums, BalancesQuery, BooksPoint, ConditionInput, Dashboard, LegInput,
    MetadataOf, SystemView, TransferDetail, TransferOptions, TransferRow, UiError,
};
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
    metadata: (Option<String>, Option<String>),
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
        ("metadata", metadata_param(metadata)?),
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

pub async fn transfers(
    backend: &Backend,
    after: Option<i64>,
    status: Option<String>,
    metadata: (Option<String>, Option<String>),
    min_position: Option<i64>,
) -> Result<Page<TransferRow, i64>, UiError> {
    let mut query = vec![("order", "desc".to_owned()), ("limit", LIST_PAGE.to_string())];
    query.extend(after.map(|position| ("after", position.to_string())));
    query.extend(non_blank(status.as_deref()).map(|status| ("status", status.to_owned())));
    query.extend(metadata_param(metadata)?.map(|metadata| ("metadata", metadata)));
    query.extend(min_position.map(|position| ("min_position", position.to_string())));
    let page: Transfers = backend.read("/v1/transfers", &query).await?;
    Ok(Page {
        items: rows(backend, page.transfers).await,
        next: page.next,
    })
}

pub async fn transfer(backend: &Backend, id: &str, min_position: Option<i64>) -> Result<TransferDetail, UiError> {
    let query: Vec<_> = min_position
        .map(|p| ("min_position", p.to_string()))
        .into_iter()
        .collect();
    let transfer: Transfer = backend.read(&format!("/v1/transfers/{}", segment(id)), &query).await?;
    Ok(TransferDetail {
        row: rows(backend, vec![transfer]).await.remove(0),
        form_key: new_id("form"),
    })
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

pub async fn trial_balance(backend: &Backend, point: BooksPoint) -> Result<TrialBalance, UiError> {
    let mut query = Vec::new();
    if let Some(position) = non_blank(point.at_position.as_deref()) {
        query.push(("at_position", position.to_owned()));
    }
    if let Some(at) = point.at_time.as_deref().and_then(utc_time) {
        query.push(("at_time", at));
    }
    if let Some(at) = point.as_of_effective.as_deref().and_then(utc_time) {
        query.push(("as_of_effective", at));
    }
    let mut books: TrialBalance = backend.read("/v1/trial-balance", &query).await?;
    // Only the lines a page shows travel to the browser; the totals cover every account.
    for asset in &mut books.assets {
        asset.hidden = asset.accounts.len().saturating_sub(TRIAL_BALANCE_LINES);
        asset.accounts.truncate(TRIAL_BALANCE_LINES);
    }
    Ok(books)
}

/// Account lines of a trial balance shown per asset.
const TRIAL_BALANCE_LINES: usize = 1_000;

/// Aggregated balances, with each asset's scale to show them.
pub async fn balances(backend: &Backend, asked: BalancesQuery) -> Result<BalanceSums, UiError> {
    let mut query = Vec::new();
    for (name, value) in [
        ("accounts", &asked.accounts),
        ("asset", &asked.asset),
        ("group_by", &asked.group_by),
    ] {
        query.extend(non_blank(value.as_deref()).map(|value| (name, value.to_owned())));
    }
    query.extend(metadata_param((asked.metadata_key, asked.metadata_value))?.map(|metadata| ("metadata", metadata)));
    let (sums, scales) = tokio::join!(backend.read::<Balances>("/v1/balances", &query), backend.scales());
    Ok(BalanceSums {
        balances: sums?,
        scales: scales?.into_iter().collect(),
    })
}

/// A list filter on one metadata key's text value (`key`, `value` as typed) as the APIs take it:
/// a JSON object the metadata must contain. None when no key is given.
fn metadata_param((key, value): (Option<String>, Option<String>)) -> Result<Option<String>, UiError> {
    let value = non_blank(value.as_deref());
    match non_blank(key.as_deref()) {
        Some(key) => Ok(Some(json!({ key: value.unwrap_or_default() }).to_string())),
        None if value.is_some() => Err(UiError::field(
            "validation_failed",
            "metadata_key",
            "Name the metadata key the value is for.",
        )),
        None => Ok(None),
    }
}

/// A form's text, trimmed, when not blank.
fn non_blank(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
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

/// Sets one metadata key of an account or a transfer to a text value, or removes it when `value`
/// is empty.
pub async fn set_metadata(
    backend: &Backend,
    of: MetadataOf,
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
    let path = format!("{}/{}/metadata", of.api_path(), segment(id));
    // The key, chosen when the page was shown, makes a double click one change.
    let key = Some(key).filter(|k| !k.is_empty());
    backend.patch(&path, &Value::Object(patch), key).await
}

/// Checks the transfer form, then posts the transfer (or places the hold) it describes, its
/// amounts read with each account's scale. Errors name the form's fields and keep what was typed.
pub async fn post_transfer(
    backend: &Backend,
    id: &str,
    legs: &[LegInput],
    conditions: &[ConditionInput],
    options: &TransferOptions,
) -> Result<Written, UiError> {
    let input = typed_input(id, legs, conditions, options);
    let fail =
        |field: String, message: String| UiError::field("validation_failed", &field, message).with_input(input.clone());
    // Legs and conditions left entirely blank are ignored: a form may show more than are needed.
    let filled: Vec<(usize, &LegInput)> = legs
        .iter()
        .enumerate()
        .filter(|(_, leg)| !blank(&[&leg.debit, &leg.credit, &leg.amount]))
        .collect();
    let conditions: Vec<(usize, &ConditionInput)> = conditions
        .iter()
        .enumerate()
        .filter(|(_, condition)| !blank(&[&condition.account, &condition.value]))
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
    for (index, condition) in &conditions {
        if condition.account.trim().is_empty() {
            return Err(fail(
                format!("conditions[{index}][account]"),
                format!("Condition {}: name the account it checks.", index + 1),
            ));
        }
    }
    let accounts: Vec<&str> = filled
        .iter()
        .flat_map(|(_, leg)| [leg.debit.trim(), leg.credit.trim()])
        .chain(conditions.iter().map(|(_, condition)| condition.account.trim()))
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
    let mut checks = Vec::with_capacity(conditions.len());
    for (index, condition) in &conditions {
        checks.push(condition_body(*index, condition, &assets).map_err(|(field, message)| fail(field, message))?);
    }
    let mut body = json!({"id": id.trim(), "postings": postings});
    if !options.memo.trim().is_empty() {
        body["metadata"] = json!({"memo": options.memo.trim()});
    }
    if let Some(at) = utc_time(&options.effective_at) {
        body["effective_at"] = json!(at);
    }
    if options.hold {
        body["pending"] = json!(true);
        if let Some(timeout) = non_blank(Some(&options.timeout_secs)) {
            let seconds: u64 = timeout
                .parse()
                .ok()
                .filter(|seconds| *seconds > 0)
                .ok_or_else(|| fail("timeout_secs".into(), "Choose when the hold expires.".into()))?;
            body["timeout_secs"] = json!(seconds);
        }
    }
    if !checks.is_empty() {
        body["conditions"] = Value::Array(checks);
    }
    backend.write("/v1/transfers", &body, None).await.map_err(|mut error| {
        // The API names fields of its own body; point them at the form's.
        error.field = error.field.map(|field| form_field(&field, &filled, &conditions));
        if error.code == "condition_failed" {
            let details = error.details.as_deref().unwrap_or(&Value::Null);
            error.message = condition_failed(details, &conditions, &assets);
        }
        error.with_input(input)
    })
}

/// Whether every one of a row's fields is blank.
fn blank(fields: &[&String]) -> bool {
    fields.iter().all(|field| field.trim().is_empty())
}

/// What was typed, by form field name, to show again after an error.
fn typed_input(
    id: &str,
    legs: &[LegInput],
    conditions: &[ConditionInput],
    options: &TransferOptions,
) -> BTreeMap<String, String> {
    let mut input = BTreeMap::from([
        ("id".to_owned(), id.to_owned()),
        ("memo".to_owned(), options.memo.clone()),
        ("effective_at".to_owned(), options.effective_at.clone()),
        ("timeout_secs".to_owned(), options.timeout_secs.clone()),
    ]);
    if options.hold {
        input.insert("hold".to_owned(), "on".to_owned());
    }
    for (index, leg) in legs.iter().enumerate() {
        input.insert(format!("legs[{index}][debit]"), leg.debit.clone());
        input.insert(format!("legs[{index}][credit]"), leg.credit.clone());
        input.insert(format!("legs[{index}][amount]"), leg.amount.clone());
    }
    for (index, condition) in conditions.iter().enumerate() {
        input.insert(format!("conditions[{index}][account]"), condition.account.clone());
        input.insert(format!("conditions[{index}][check]"), condition.check.clone());
        input.insert(format!("conditions[{index}][value]"), condition.value.clone());
    }
    input
}

/// A condition of the form as the API takes it; or the field at fault and why.
fn condition_body(
    index: usize,
    condition: &ConditionInput,
    assets: &std::collections::HashMap<String, super::AssetOf>,
) -> Result<Value, (String, String)> {
    let account = condition.account.trim();
    let number = index + 1;
    let Some(asset) = assets.get(account) else {
        return Err((
            format!("conditions[{index}][account]"),
            format!("Condition {number}: there is no account {account}."),
        ));
    };
    let value_field = format!("conditions[{index}][value]");
    match condition.check.as_str() {
        "available_at_least" => {
            let amount = parse_threshold(&condition.value, asset.scale)
                .map_err(|error| (value_field, format!("Condition {number}: {error}.")))?;
            Ok(json!({"account": account, "available_at_least": amount}))
        }
        "revision" => {
            let revision: i64 = condition
                .value
                .trim()
                .parse()
                .ok()
                .filter(|revision| *revision >= 0)
                .ok_or_else(|| {
                    (
                        value_field,
                        format!("Condition {number}: a revision is a whole number, e.g. 3."),
                    )
                })?;
            Ok(json!({"account": account, "revision": revision}))
        }
        _ => Err((
            format!("conditions[{index}][check]"),
            format!("Condition {number}: choose what it checks."),
        )),
    }
}

/// A threshold: any amount, zero or below too (`available_at_least: 0` is "not overdrawn").
fn parse_threshold(text: &str, scale: u8) -> Result<i64, crate::money::AmountError> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    match parse_amount(digits, scale) {
        Ok(amount) if negative => Ok(-amount),
        Ok(amount) => Ok(amount),
        Err(crate::money::AmountError::NotPositive) => Ok(0),
        Err(error) => Err(error),
    }
}

/// `condition_failed` in words, its amounts written with the account's asset.
fn condition_failed(
    details: &Value,
    conditions: &[(usize, &ConditionInput)],
    assets: &std::collections::HashMap<String, super::AssetOf>,
) -> String {
    let account = details.get("account").and_then(Value::as_str).unwrap_or("?");
    let number = details
        .get("condition")
        .and_then(Value::as_u64)
        .and_then(|index| conditions.get(usize::try_from(index).ok()?))
        .map_or(1, |(row, _)| row + 1);
    let amount = |key: &str| -> String {
        let minor = details.get(key).and_then(Value::as_i64).unwrap_or(0);
        match assets.get(account) {
            Some(asset) => format!("{} {}", format_amount(minor, asset.scale), asset.code),
            None => minor.to_string(),
        }
    };
    let whole = |key: &str| details.get(key).map_or_else(|| "?".to_owned(), Value::to_string);
    match details.get("check").and_then(Value::as_str) {
        Some("available_at_least") => format!(
            "Condition {number} not met: account {account} has {} available, and the transfer requires at least {}.",
            amount("actual"),
            amount("expected")
        ),
        Some("revision") => format!(
            "Condition {number} not met: account {account} is at revision {}, not {}; it changed since it was read.",
            whole("actual"),
            whole("expected")
        ),
        _ => format!("Condition {number} on account {account} is not met."),
    }
}

/// A form's time as the API takes it. A `datetime-local` control sends minutes or seconds and no
/// zone, and the forms ask for UTC; a time with a zone is passed on as typed (the API refuses what
/// is no time, naming the field). Blank: none.
fn utc_time(text: &str) -> Option<String> {
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

/// `postings[2].amount` in the API's body is `legs[i][amount]` in the form, and
/// `conditions[0].account` is `conditions[j][account]` (blank rows skipped).
fn form_field(api_field: &str, legs: &[(usize, &LegInput)], conditions: &[(usize, &ConditionInput)]) -> String {
    let row = |list: &str, index: &str, name: &str, rows: Vec<usize>| {
        index
            .parse::<usize>()
            .ok()
            .and_then(|i| rows.get(i).copied())
            .map(|row| format!("{list}[{row}][{name}]"))
    };
    let mapped = if let Some((index, name)) = api_field.strip_prefix("postings[").and_then(|r| r.split_once("].")) {
        row("legs", index, name, legs.iter().map(|(row, _)| *row).collect())
    } else if let Some(index) = api_field.strip_prefix("postings[").and_then(|r| r.strip_suffix(']')) {
        // The leg as a whole (e.g. debit and credit the same account): shown by its credit.
        row("legs", index, "credit", legs.iter().map(|(row, _)| *row).collect())
    } else if let Some((index, name)) = api_field.strip_prefix("conditions[").and_then(|r| r.split_once("].")) {
        // The API names the check (`available_at_least`, `revision`); the form has one value box.
        let name = if name == "account" { "account" } else { "value" };
        row(
            "conditions",
            index,
            name,
            conditions.iter().map(|(row, _)| *row).collect(),
        )
    } else {
        None
    };
    mapped.unwrap_or_else(|| api_field.to_owned())
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

/// Posts part of a hold: `amounts[i]` (as typed) of its held leg `i`; a blank one posts nothing
/// of that leg. Whatever is not posted is released.
pub async fn post_hold_part(backend: &Backend, id: &str, amounts: &[String]) -> Result<Written, UiError> {
    let hold: Transfer = backend.read(&format!("/v1/transfers/{}", segment(id)), &[]).await?;
    let held = hold.held.unwrap_or_default();
    let debits: Vec<&str> = held.iter().map(|leg| leg.debit.as_str()).collect();
    let assets = backend.assets_of(&debits).await;
    let mut postings = Vec::new();
    for (index, leg) in held.iter().enumerate() {
        let Some(text) = amounts.get(index).and_then(|text| non_blank(Some(text))) else {
            continue;
        };
        let scale = assets.get(&leg.debit).map_or(0, |asset| asset.scale);
        let amount = parse_amount(text, scale).map_err(|error| {
            UiError::field(
                "validation_failed",
                &format!("amounts[{index}]"),
                format!("Leg {}: {error}.", index + 1),
            )
        })?;
        postings.push(json!({"debit": leg.debit, "credit": leg.credit, "amount": amount}));
    }
    if postings.is_empty() {
        return Err(UiError::field(
            "validation_failed",
            "amounts[0]",
            "Enter the amount to post of at least one leg.",
        ));
    }
    let path = format!("/v1/transfers/{}/post", segment(id));
    backend.write(&path, &json!({ "postings": postings }), None).await
}

/// The most holds resolved together from the console (a page of them).
const MAX_RESOLVED_TOGETHER: usize = LIST_PAGE as usize;

/// Posts in full, or voids, several holds as one chain: all of them or none. Answers the latest
/// position written.
pub async fn resolve_holds(backend: &Backend, ids: &[String], decision: &str) -> Result<i64, UiError> {
    if !matches!(decision, "post" | "void") {
        return Err(UiError::field("validation_failed", "decision", "Unknown action."));
    }
    let ids: Vec<&str> = ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()).collect();
    if ids.is_empty() {
        return Err(UiError::field("validation_failed", "ids", "Select at least one hold."));
    }
    if ids.len() > MAX_RESOLVED_TOGETHER {
        return Err(UiError::field(
            "validation_failed",
            "ids",
            format!("Select at most {MAX_RESOLVED_TOGETHER} holds."),
        ));
    }
    // Resolving a hold again is a replay: a double submit resolves each once.
    let items = ids
        .iter()
        .map(|id| json!({"resolve": id, "action": decision, "chain": "console"}))
        .collect();
    let results = backend.batch(items).await?;
    let mut latest = 0;
    for (id, result) in ids.iter().zip(&results) {
        if let Some(position) = result.get("position").and_then(Value::as_i64) {
            latest = latest.max(position);
            continue;
        }
        // The member that failed answers its own error; the others `linked_failed`.
        let mut error = UiError::from_api(result);
        if error.code != "linked_failed" {
            // A refusal wrote nothing of the chain; a failure to write leaves the outcome open.
            let refused = !matches!(
                error.code.as_str(),
                "overloaded" | "unavailable" | "outcome_unknown" | "internal"
            );
            error.status = Some(if refused { 422 } else { 503 });
            error.message = if refused {
                format!("Hold {id}: {} None of the selected holds was resolved.", error.message)
            } else {
                format!("Hold {id}: {}", error.message)
            };
            return Err(error);
        }
    }
    if results.len() != ids.len() {
        return Err(UiError::new(
            "unexpected_answer",
            "command-api answered a different number of items",
        ));
    }
    Ok(latest)
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
        assert_eq!(utc_time("  "), None);
        assert_eq!(utc_time("2026-10-31T23:59").as_deref(), Some("2026-10-31T23:59:00Z"));
        assert_eq!(utc_time("2026-10-31T23:59:30").as_deref(), Some("2026-10-31T23:59:30Z"));
        assert_eq!(
            utc_time("2026-10-31T23:59:30+02:00").as_deref(),
            Some("2026-10-31T23:59:30+02:00")
        );
        assert_eq!(
            utc_time("2026-10-31T23:59:30Z").as_deref(),
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
        assert_eq!(form_field("postings[1].amount", &filled, &[]), "legs[2][amount]");
        assert_eq!(form_field("postings[1]", &filled, &[]), "legs[2][credit]");
        assert_eq!(form_field("id", &filled, &[]), "id");
        assert_eq!(
            form_field("postings[9].debit", &[(0, &blank)], &[]),
            "postings[9].debit"
        );
        let condition = ConditionInput::default();
        let conditions = vec![(1, &condition)];
        assert_eq!(
            form_field("conditions[0].revision", &filled, &conditions),
            "conditions[1][value]"
        );
        assert_eq!(
            form_field("conditions[0].account", &filled, &conditions),
            "conditions[1][account]"
        );
    }

    #[test]
    fn a_threshold_may_be_zero_or_below() {
        assert_eq!(parse_threshold("0", 2), Ok(0));
        assert_eq!(parse_threshold("-1.50", 2), Ok(-150));
        assert_eq!(parse_threshold(" 12 ", 2), Ok(1_200));
        assert!(parse_threshold("", 2).is_err());
        assert!(parse_threshold("--1", 2).is_err());
    }

    #[test]
    fn new_ids_are_valid_account_and_transfer_ids() {
        let id = new_id("t/x");
        assert!(id.starts_with("tx-"), "{id}");
        assert!(id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c)));
        assert_ne!(new_id("t"), new_id("t"));
    }
}
