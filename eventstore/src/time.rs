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

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the times RFC 3339 can write in UTC.
const FIRST_MICROS: i64 = -62_135_596_800_000_000;
const LAST_MICROS: i64 = 253_402_300_799_999_999;

/// Microseconds from an RFC 3339 timestamp (any offset; finer digits than microseconds refused,
/// since the log has none). Only times in years 1 to 9999 in UTC, which [`format_timestamp`]
/// can write back: `9999-12-31T23:00:00-05:00` is in year 10000.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &::time::format_description::well_known::Rfc3339).ok()?;
    let nanos = at.unix_timestamp_nanos();
    (nanos % 1_000 == 0)
        .then(|| i64::try_from(nanos / 1_000).ok())
        .flatten()
        .filter(|micros| (FIRST_MICROS..=LAST_MICROS).contains(micros))
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
        // Only what can be written back in UTC.
        for edge in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let micros = parse_timestamp(edge).expect(edge);
            assert_eq!(
                parse_timestamp(&format_timestamp(micros_to_datetime(micros))),
                Some(micros)
            );
        }
        assert_eq!(parse_timestamp("9999-12-31T23:00:00-05:00"), None);
        assert_eq!(parse_timestamp("0001-01-01T00:30:00+01:00"), None);
        assert_eq!(parse_timestamp("2023-11-14T22:13:20.0000011Z"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
