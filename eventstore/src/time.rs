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
///
/// Written digit by digit for years 0 to 9999: query-api formats two of these per entry it
/// lists, and `time`'s interpreter of format descriptions was 2% of the machine under W5's
/// entries pages. Other years (which the log cannot hold) go through that interpreter.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    with_timestamp_text(at, str::to_owned)
}

/// Calls `write` with `at` as [`format_timestamp`] writes it, from a buffer on the stack: what
/// writes it into a larger text (a JSON answer) allocates nothing for it.
pub fn with_timestamp_text<R>(at: OffsetDateTime, write: impl FnOnce(&str) -> R) -> R {
    let at = at.to_offset(::time::UtcOffset::UTC);
    let (year, month, day) = at.to_calendar_date();
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return write(&at.format(RFC3339_MICROS).unwrap_or_default());
    };
    let (hour, minute, second, micro) = at.to_hms_micro();
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], u32::from(u8::from(month)));
    put_digits(&mut text[8..10], u32::from(day));
    put_digits(&mut text[11..13], u32::from(hour));
    put_digits(&mut text[14..16], u32::from(minute));
    put_digits(&mut text[17..19], u32::from(second));
    put_digits(&mut text[20..26], micro);
    // Digits and ASCII punctuation only: always UTF-8.
    write(std::str::from_utf8(&text).unwrap_or_default())
}

/// Writes `value`'s last `digits.len()` decimal digits, zero-padded.
fn put_digits(digits: &mut [u8], mut value: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
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

    #[test]
    fn the_digit_writer_agrees_with_the_format_description() {
        let reference = |at: OffsetDateTime| {
            at.to_offset(::time::UtcOffset::UTC)
                .format(RFC3339_MICROS)
                .expect("formats")
        };
        let (min, max) = (
            datetime_to_micros(::time::PrimitiveDateTime::MIN.assume_utc()),
            datetime_to_micros(::time::PrimitiveDateTime::MAX.assume_utc()),
        );
        let mut edges = vec![min, max, FIRST_MICROS, LAST_MICROS, 0, -1, 1, 951_782_400_000_000];
        // Year 0 (formatted) and year -1 (the fallback) meet here.
        edges.push(-62_167_219_200_000_000);
        edges.push(-62_167_219_200_000_001);
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let span = (max - min) as u64;
        let random = std::iter::from_fn(|| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Some(min + (state % span) as i64)
        });
        for micros in edges.into_iter().chain(random.take(200_000)) {
            let at = micros_to_datetime(micros);
            assert_eq!(format_timestamp(at), reference(at), "{micros}");
            if let Some(finer) = at.checked_add(::time::Duration::nanoseconds(999)) {
                assert_eq!(format_timestamp(finer), reference(finer), "{micros} and 999 ns");
            }
        }
        let offset = at_offset(1_700_000_000_000_001, 5);
        assert_eq!(format_timestamp(offset), "2023-11-14T22:13:20.000001Z");
    }

    fn at_offset(micros: i64, hours: i8) -> OffsetDateTime {
        micros_to_datetime(micros).to_offset(::time::UtcOffset::from_hms(hours, 0, 0).expect("offset"))
    }
}
