//! An export line in exactly the form query-api writes it, read without a general JSON parser:
//! the keys in their order, strings without escapes, integers as JSON writes them, `data` and
//! `metadata` canonical (so their text is also what is hashed). A verifier reads millions of
//! these, and a general parser spent a sixth of its time on them (docs/PERFORMANCE.md, W6).
//!
//! Only a fast path: anything else, including every malformed line, answers `None` and is read
//! by serde (whose messages then say what is wrong). Whatever this accepts, serde reads the same.

use std::borrow::Cow;

use ledger::canonical;
use uuid::Uuid;

use crate::log::{RecordLine, wire};

/// `line` as a record when it is in the export's own form.
pub(crate) fn parse(line: &str) -> Option<RecordLine<'_>> {
    let mut cursor = Cursor { line, at: 0 };
    cursor.expect("{\"position\":")?;
    let position = cursor.integer()?;
    cursor.expect(",\"event_id\":")?;
    let event_id = Uuid::parse_str(cursor.string()?).ok()?;
    cursor.expect(",\"stream_id\":")?;
    let stream_id = cursor.string()?;
    cursor.expect(",\"stream_version\":")?;
    let stream_version = cursor.integer()?;
    cursor.expect(",\"event_type\":")?;
    let event_type = cursor.string()?;
    cursor.expect(",\"schema_version\":")?;
    let schema_version = i32::try_from(cursor.integer()?).ok()?;
    cursor.expect(",\"data\":")?;
    let data = cursor.canonical()?;
    cursor.expect(",\"metadata\":")?;
    let metadata = cursor.canonical()?;
    cursor.expect(",\"recorded_at\":")?;
    let recorded_at = cursor.string()?;
    cursor.expect(",\"prev_hash\":")?;
    let prev_hash = wire::hash("prev_hash", cursor.string()?).ok()?;
    cursor.expect(",\"hash\":")?;
    let hash = wire::hash("hash", cursor.string()?).ok()?;
    cursor.expect("}")?;
    if cursor.at != line.len() {
        return None;
    }
    Some(RecordLine {
        position,
        event_id,
        stream_id: Cow::Borrowed(stream_id),
        stream_version,
        event_type: Cow::Borrowed(event_type),
        schema_version,
        data,
        metadata,
        canonical: true,
        recorded_at_micros: wire::micros(recorded_at).ok()?,
        recorded_at: Cow::Borrowed(recorded_at),
        prev_hash,
        hash,
    })
}

struct Cursor<'a> {
    line: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.line.as_bytes()[self.at..]
    }

    fn expect(&mut self, text: &str) -> Option<()> {
        self.rest().starts_with(text.as_bytes()).then(|| self.at += text.len())
    }

    /// `0|-?[1-9][0-9]*` of at most 18 digits: what JSON writes for an i64 this size.
    fn integer(&mut self) -> Option<i64> {
        let rest = self.rest();
        let negative = rest.first() == Some(&b'-');
        let digits = &rest[usize::from(negative)..];
        let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        // serde_json reads `-0` as a float, which an integer field refuses.
        let zero_led = digits.first() == Some(&b'0') && (count > 1 || negative);
        if !(1..=18).contains(&count) || zero_led {
            return None;
        }
        let magnitude = digits[..count]
            .iter()
            .fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0'));
        self.at += usize::from(negative) + count;
        Some(if negative { -magnitude } else { magnitude })
    }

    /// A string without escapes or control characters: its contents, as written.
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let length = rest[1..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[1 + length] != b'"' {
            return None;
        }
        // Both ends are ASCII quotes, so the contents are whole characters of the line.
        let contents = self.line.get(self.at + 1..self.at + 1 + length)?;
        self.at += length + 2;
        Some(contents)
    }

    /// A JSON value in canonical form: its text.
    fn canonical(&mut self) -> Option<&'a str> {
        let length = canonical::canonical_prefix(self.rest())?;
        let text = self.line.get(self.at..self.at + length)?;
        self.at += length;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::log::RecordLine;

    const LINE: &str = concat!(
        r#"{"position":20000,"event_id":"01a24c6e-786e-742f-a8ec-3503a675ce68","#,
        r#""stream_id":"transfer:w1-16-1-437","stream_version":1,"event_type":"TransferPosted","#,
        r#""schema_version":1,"data":{"id":"w1-16-1-437","metadata":{},"postings":[{"amount":100,"#,
        r#""credit":"acc-02497","debit":"acc-06102"}]},"metadata":{"actor":"bench","#,
        r#""request_id":"00c430b6-1c14-4fe8-b3dd-32f365c40d63"},"recorded_at":"2026-12-06T17:37:17.932586Z","#,
        r#""prev_hash":"103d63733df88556c4806363fe1c90f4d0420aa657cb8ead6b484fa4d7b3cb2b","#,
        r#""hash":"244676eaf781f00625a2cfee98aedd9cb2a21072500bb653c3dc39a842dc0217"}"#
    );

    fn fields(record: &RecordLine<'_>) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {}",
            record.position,
            record.event_id,
            record.stream_id,
            record.stream_version,
            record.event_type,
            record.schema_version,
            record.data,
            record.metadata,
            record.recorded_at,
            record.recorded_at_micros,
            hex::encode(record.prev_hash),
            hex::encode(record.hash)
        )
    }

    /// What serde alone makes of `line`.
    fn general(line: &str) -> Result<String, String> {
        RecordLine::parse_general(line).map(|record| fields(&record))
    }

    #[test]
    fn the_exports_own_form_is_read_as_serde_reads_it() {
        let fast = parse(LINE).map(|record| fields(&record));
        assert_eq!(fast.as_deref(), general(LINE).ok().as_deref());
        assert!(fast.is_some());
        let negative = LINE.replace(r#""schema_version":1"#, r#""schema_version":-7"#);
        assert_eq!(parse(&negative).map(|r| r.schema_version), Some(-7));
    }

    /// Each variant is valid to serde or not; either way the fast path must not read it
    /// differently, and it leaves everything unusual to serde.
    #[test]
    fn anything_else_is_left_to_serde() {
        let metadata = LINE.find(r#"{"actor"#).expect("metadata");
        let recorded_at = LINE.find(r#","recorded_at"#).expect("recorded_at");
        let variants = [
            LINE.replace(r#"{"position":20000,"#, r#"{ "position":20000,"#),
            LINE.replace(r#""position":20000"#, r#""position":020000"#),
            LINE.replace(r#""position":20000"#, r#""position":1234567890123456789"#),
            LINE.replace(r#""position":20000"#, r#""position":2e4"#),
            LINE.replace(r#""stream_version":1"#, r#""stream_version":-0"#),
            LINE.replace("w1-16-1-437\",\"stream_version", "w1-16-1-\\u0034\",\"stream_version"),
            LINE.replace("w1-16-1-437\",\"stream_version", "w1-16\t-437\",\"stream_version"),
            LINE.replace(r#""schema_version":1"#, r#""schema_version":3000000000"#),
            LINE.replace(r#""metadata":{},"#, r#""metadata":{ },"#),
            LINE.replace(r#""amount":100,"#, r#""amount":100.0,"#),
            LINE.replace(r#"{"actor":"bench","#, r#"{"request_id":"x","actor":"bench","#),
            LINE.replace(r#"{"actor":"bench","#, r#"{"actor":"bench","actor":"bench","#),
            LINE.replace("T17:37:17.932586Z", "T17:37:17.9325861Z"),
            LINE.replace("103d6373", "103D6373"),
            LINE.replace("103d6373", "103g6373"),
            LINE.replace("01a24c6e-786e", "01a24c6e786e"),
            LINE.replace(r#""hash":"2446"#, r#""hash": "2446"#),
            format!("{LINE} "),
            format!("{}}}", LINE),
            LINE.replace(r#","hash":"#, r#","extra":1,"hash":"#),
            LINE[..LINE.len() - 1].to_owned(),
            format!("{}[[[[1]]]]{}", &LINE[..metadata], &LINE[recorded_at..]),
        ];
        for variant in &variants {
            let fast = parse(variant).map(|record| fields(&record));
            if let Some(fast) = &fast {
                assert_eq!(Ok(fast), general(variant).as_ref(), "{variant}");
            }
        }
        // Only these are read by the fast path too (as serde reads them): upper-case hex, and a
        // canonical array as metadata.
        let taken: Vec<usize> = (0..variants.len()).filter(|i| parse(&variants[*i]).is_some()).collect();
        assert_eq!(taken, [13, 21]);
    }

    /// Every line one byte away from a real one (each byte replaced by a few telling ones, or
    /// dropped): where the fast path reads it, serde reads the same.
    #[test]
    fn lines_one_byte_off_are_read_as_serde_reads_them() {
        let mut taken = 0;
        for at in 0..LINE.len() {
            let replaced = b"0-9\"\\ {}[],:aEe.\t".iter().map(|&b| {
                let mut line = LINE.as_bytes().to_vec();
                line[at] = b;
                line
            });
            let dropped = {
                let mut line = LINE.as_bytes().to_vec();
                line.remove(at);
                line
            };
            for line in replaced.chain([dropped]) {
                let Ok(line) = String::from_utf8(line) else { continue };
                if let Some(fast) = parse(&line).map(|record| fields(&record)) {
                    assert_eq!(Ok(fast), general(&line), "{line}");
                    taken += 1;
                }
            }
        }
        assert!(taken > 1000, "the fast path read {taken} of them");
    }
}
