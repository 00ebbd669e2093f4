//! Selections shared by the lists and the aggregated balances: a metadata containment filter,
//! and an account id pattern.

use ledger::AccountId;
use partida_service::ApiError;
use serde_json::Value;

/// The `metadata` filter: a JSON object the selected rows' metadata must contain (`@>`: every
/// key with an equal value, nested objects contained, arrays holding the given elements). As
/// JSON text, or `None` when absent or `{}` (which every row contains).
pub(crate) fn metadata_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let invalid = |why: String| ApiError::validation(format!("metadata {why}"), "metadata");
    let object = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(object)) => object,
        _ => return Err(invalid("must be a JSON object, e.g. {\"tier\":\"gold\"}".to_owned())),
    };
    partida_service::metadata::check(&object).map_err(invalid)?;
    if object.is_empty() {
        return Ok(None);
    }
    let object = Value::Object(object);
    // PostgreSQL's jsonb refuses U+0000.
    partida_service::reject_nul(&object, "metadata")?;
    Ok(Some(object.to_string()))
}

/// `AND` the SQL condition for a [`metadata_filter`] bound as `$n`, when there is one. It repeats
/// the partial index's predicate (non-empty metadata, which any non-empty filter implies) so the
/// planner can use the index.
pub(crate) fn metadata_condition(filter: Option<&str>, alias: &str, n: usize) -> String {
    match filter {
        Some(_) => format!("AND {alias}metadata @> ${n}::jsonb AND {alias}metadata <> '{{}}'::jsonb"),
        None => String::new(),
    }
}

/// An account id pattern: account id characters, where `*` stands for any run of characters
/// other than `:` (one segment), so `users:*:wallet` matches `users:alice:wallet` but not
/// `users:alice:savings:wallet`. Without `*` it matches the id itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// Everything before the first `*`: every match starts with it, which bounds an index scan.
    pub prefix: String,
    /// The whole pattern as an anchored POSIX regular expression.
    pub regex: String,
}

impl Pattern {
    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        let literal = raw.replace('*', "x");
        if raw.len() > AccountId::MAX_LEN || AccountId::parse(literal).is_err() {
            return Err(ApiError::validation(
                format!(
                    "accounts must be a pattern of up to {} characters of [A-Za-z0-9:._-], with * for one segment",
                    AccountId::MAX_LEN
                ),
                "accounts",
            ));
        }
        let prefix = raw.split('*').next().unwrap_or_default().to_owned();
        let mut regex = String::from("^");
        for c in raw.chars() {
            match c {
                '*' => regex.push_str("[^:]*"),
                '.' => regex.push_str("\\."),
                c => regex.push(c),
            }
        }
        regex.push('$');
        Ok(Self { prefix, regex })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_is_one_segment_and_the_prefix_bounds_the_scan() -> Result<(), ApiError> {
        let pattern = Pattern::parse("users:*:wallet.v1")?;
        assert_eq!(pattern.prefix, "users:");
        assert_eq!(pattern.regex, "^users:[^:]*:wallet\\.v1$");
        assert_eq!(Pattern::parse("*")?.prefix, "");
        assert!(Pattern::parse("users:%").is_err());
        assert!(Pattern::parse("").is_err());
        Ok(())
    }

    #[test]
    fn a_metadata_filter_is_a_bounded_object() -> Result<(), ApiError> {
        assert_eq!(metadata_filter(None)?, None);
        assert_eq!(metadata_filter(Some("{}"))?, None);
        assert_eq!(
            metadata_filter(Some(r#"{"tier": "gold"}"#))?.as_deref(),
            Some(r#"{"tier":"gold"}"#)
        );
        assert!(metadata_filter(Some("[1]")).is_err());
        assert!(metadata_filter(Some("tier=gold")).is_err());
        assert!(metadata_filter(Some(r#"{"a":"\u0000"}"#)).is_err());
        // An escaped backslash before "u0000" is no NUL.
        assert!(metadata_filter(Some(r#"{"a":"C:\\u0000"}"#))?.is_some());
        Ok(())
    }
}
