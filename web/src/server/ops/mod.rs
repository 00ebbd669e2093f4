//! What each server function does: reads shaped for the pages ([`reads`]), commands checked and
//! sent ([`commands`]), the transfer form's parsing and error mapping ([`transfer_form`]).

mod commands;
mod reads;
mod transfer_form;

pub use commands::{
    change_account, erase_subject, open_account, post_hold_part, post_transfer, resolve_hold, resolve_holds,
    reverse_transfer, set_metadata,
};
pub use reads::{account, accounts, balances, dashboard, events, system, transfer, transfers, trial_balance};

/// Rows per page of a list, and the most holds resolved together.
const LIST_PAGE: i64 = 25;

/// A form's text, trimmed, when not blank.
fn non_blank(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

pub fn new_id(prefix: &str) -> String {
    let prefix: String = prefix.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
    format!("{prefix}-{}", uuid::Uuid::now_v7())
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
    fn new_ids_are_valid_account_and_transfer_ids() {
        let id = new_id("t/x");
        assert!(id.starts_with("tx-"), "{id}");
        assert!(id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c)));
        assert_ne!(new_id("t"), new_id("t"));
    }
}
