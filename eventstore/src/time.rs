//! The log's clock: microseconds since the epoch, the resolution PostgreSQL stores exactly.

use ::time::OffsetDateTime;
use ::time::format_description::FormatItem;
use ::time::macros::format_description;

const RFC3339_MICROS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// This machine's clock, in the log's resolution.
pub fn now_micros() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

pub fn micros_to_datetime(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn datetime_to_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// RFC 3339 in UTC with exactly six fractional digits, so the hashed microseconds are always
/// recoverable from the text.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(::time::UtcOffset::UTC)
        .format(RFC3339_MICROS)
        .unwrap_or_default()
}

/// Microseconds from an RFC 3339 timestamp (any offset; finer digits than microseconds refused,
/// since the log has none).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &::time::format_description::well_known::Rfc3339).ok()?;
    let nanos = at.unix_timestamp_nanos();
    (nanos % 1_000 == 0)
        .then(|| i64::try_from(nanos / 1_000).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_six_digits_and_round_trip() {
        let at = micros_to_datetime(1_700_000_000_000_001);
        assert_eq!(format_timestamp(at), "2023-11-14T22:13:20.000001Z");
        assert_eq!(datetime_to_micros(at), 1_700_000_000_000_001);
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.000001Z"),
            Some(1_700_000_000_000_001)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20.000001+01:00"),
            Some(1_700_000_000_000_001)
        );
        assert_eq!(parse_timestamp("2023-11-14T22:13:20.0000011Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
