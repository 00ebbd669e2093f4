//! The transfer form read into a transfer: its legs and conditions, the times typed in it, and
//! command-api's errors mapped back onto the form's fields.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::{ConditionInput, LegInput, TransferOptions};
use crate::money::{format_amount, parse_amount};

/// Whether every one of a row's fields is blank.
pub(super) fn blank(fields: &[&String]) -> bool {
    fields.iter().all(|field| field.trim().is_empty())
}

/// What was typed, by form field name, to show again after an error.
pub(super) fn typed_input(
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
pub(super) fn condition_body(
    index: usize,
    condition: &ConditionInput,
    assets: &std::collections::HashMap<String, crate::server::AssetOf>,
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
pub(super) fn condition_failed(
    details: &Value,
    conditions: &[(usize, &ConditionInput)],
    assets: &std::collections::HashMap<String, crate::server::AssetOf>,
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

/// `postings[2].amount` in the API's body is `legs[i][amount]` in the form, and
/// `conditions[0].account` is `conditions[j][account]` (blank rows skipped).
pub(super) fn form_field(
    api_field: &str,
    legs: &[(usize, &LegInput)],
    conditions: &[(usize, &ConditionInput)],
) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
