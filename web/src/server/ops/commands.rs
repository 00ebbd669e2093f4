//! Commands checked and sent: what the console's forms and buttons write through command-api.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::transfer_form::{blank, condition_body, condition_failed, form_field, typed_input};
use super::{LIST_PAGE, non_blank, utc_time};
use crate::api::types::{Transfer, Written};
use crate::api::{ConditionInput, LegInput, MetadataOf, TransferOptions, UiError};
use crate::money::parse_amount;
use crate::server::backend::{Backend, segment};

const MAX_LEGS: usize = 64;

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
