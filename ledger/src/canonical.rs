//! The canonical JSON encoding that fingerprints and log hashes are computed over.
//!
//! PostgreSQL's `jsonb` reorders keys and rewrites numbers, so the log hashes bytes that can be
//! recomputed from any faithful copy of a value: object keys sorted by code point, no whitespace,
//! strings escaped minimally, integers that fit 64 bits written exactly, every other number written
//! as the shortest round-tripping double in ECMAScript's `Number.prototype.toString` layout (the
//! number rule of RFC 8785). `docs/ARCHITECTURE.md` states the rule for independent verifiers.

use serde_json::{Map, Number, Value};

/// Encodes `value` canonically.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write(value, &mut out);
    out
}

/// Encodes `value` canonically, as text.
pub fn to_string(value: &Value) -> String {
    // The encoding is JSON, written from `str`s and ASCII: always UTF-8, so the lossy path is
    // never taken.
    String::from_utf8(to_vec(value)).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends the canonical encoding of `value` to `out`.
pub fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

/// Appends the canonical encoding of an object.
pub fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    // serde_json's map iterates in key order unless its `preserve_order` feature is on somewhere
    // in the build: sort only when it is not already sorted.
    let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
    out.push(b'{');
    if sorted {
        write_entries(map.iter(), out);
    } else {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_entries(entries.into_iter(), out);
    }
    out.push(b'}');
}

fn write_entries<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write(item, out);
    }
}

/// Appends a string, quoted and minimally escaped.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // Most strings (ids, codes, types) need no escape at all.
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Whether `json` is JSON text that is already its own canonical encoding, so that it can be
/// hashed as it is, without being parsed and written again. Conservative: anything unusual
/// (whitespace, an escape, a fraction, an integer of 19 digits or more, unsorted or repeated
/// keys, nesting deeper than a JSON parser allows) answers `false`, and the caller takes the
/// exact path.
pub fn is_canonical(json: &[u8]) -> bool {
    canonical_prefix(json) == Some(json.len())
}

/// The length of the canonical JSON value that `bytes` starts with, if it starts with one (as
/// [`is_canonical`] judges it): a reader can take a canonical field out of a longer text, its
/// JSON checked on the way. `bytes` must be UTF-8 (a `str`'s bytes).
pub fn canonical_prefix(bytes: &[u8]) -> Option<usize> {
    let mut scanner = Scanner { bytes, at: 0, depth: 0 };
    scanner.value().then_some(scanner.at)
}

/// Walks JSON text, checking that each token is written canonically.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Arrays and objects open: bounded like serde_json's recursion limit, so hostile nesting
    /// is refused rather than overflowing the stack.
    depth: u32,
}

impl<'a> Scanner<'a> {
    const MAX_DEPTH: u32 = 128;

    fn value(&mut self) -> bool {
        match self.bytes.get(self.at) {
            Some(b'{' | b'[') if self.depth >= Self::MAX_DEPTH => false,
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => false,
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.bytes[self.at..].starts_with(word);
        self.at += if found { word.len() } else { 0 };
        found
    }

    fn nested(&mut self, inside: fn(&mut Self) -> bool) -> bool {
        self.depth += 1;
        let valid = inside(self);
        self.depth -= 1;
        valid
    }

    /// A string without escapes or control characters (JSON forbids them raw); its contents.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at + 1;
        let end = start
            + self
                .bytes
                .get(start..)?
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        Some(&self.bytes[start..end])
    }

    /// `-?(0|[1-9][0-9]*)` of at most 18 digits, which always fits an i64 and is written so.
    fn integer(&mut self) -> bool {
        let negative = self.eat(b'-');
        let start = self.at;
        let digits = self.bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        self.at += digits;
        let zero_led = digits > 1 && self.bytes[start] == b'0';
        let negative_zero = negative && digits == 1 && self.bytes[start] == b'0';
        let fraction_or_exponent = matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'));
        (1..=18).contains(&digits) && !zero_led && !negative_zero && !fraction_or_exponent
    }

    fn array(&mut self) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value() {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// Keys strictly ascending by bytes, which for UTF-8 is the code point order of the keys.
    fn object(&mut self) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            if self.bytes.get(self.at) != Some(&b'"') {
                return false;
            }
            let Some(key) = self.string() else {
                return false;
            };
            if previous.is_some_and(|p| p >= key) || !self.eat(b':') || !self.value() {
                return false;
            }
            previous = Some(key);
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }
}

/// Formats straight into `out`, without an intermediate `String`.
pub(crate) fn write_display(value: impl std::fmt::Display, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value}");
}

fn write_number(n: &Number, out: &mut Vec<u8>) {
    if let Some(i) = n.as_i64() {
        write_display(i, out);
    } else if let Some(u) = n.as_u64() {
        write_display(u, out);
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(format_double(f).as_bytes());
    }
}

/// `value` as the log stores it and reads it back: every number that is not a 64-bit integer
/// replaced by the number its canonical text denotes. jsonb rewrites numbers (`9007199254740993e0`
/// comes back as the integer `9007199254740993`, which no double equals), so a record must be
/// hashed over values that survive that rewrite; canonical text does.
pub fn normalize(value: &mut Value) {
    match value {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => {
            if let Some(normal) = n
                .as_f64()
                .and_then(|f| serde_json::from_str::<Number>(&format_double(f)).ok())
            {
                *n = normal;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        Value::Object(map) => map.values_mut().for_each(normalize),
        _ => {}
    }
}

/// Formats a finite double the way ECMAScript's `Number.prototype.toString` does.
pub fn format_double(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0".to_owned();
    }
    let mut buffer = ryu::Buffer::new();
    let shortest = buffer.format_finite(value.abs());
    let (mantissa, exponent) = match shortest.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (shortest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = format!("{int_part}{frac_part}");
    let leading_zeros = all_digits.len() - all_digits.trim_start_matches('0').len();
    let digits = all_digits.trim_start_matches('0').trim_end_matches('0');
    // The value is 0.<digits> * 10^n.
    let n = int_part.len() as i32 + exponent - leading_zeros as i32;
    let k = digits.len() as i32;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{fraction}e{sign}{}", e.abs())
    };
    if value < 0.0 { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalizing_turns_integral_doubles_into_the_integers_jsonb_reads_back() {
        let normal = |text: &str| {
            let mut value: Value = serde_json::from_str(text).unwrap();
            normalize(&mut value);
            value
        };
        // jsonb prints this back as the integer 9007199254740993; the double it parses to is
        // 9007199254740992, which is what is hashed and stored once normalized.
        assert_eq!(normal("9007199254740993e0").as_u64(), Some(9_007_199_254_740_992));
        assert_eq!(
            normal("[1.0, {\"a\": 12345678901234567.5e1}]"),
            json!([1, {"a": 123_456_789_012_345_680_u64}])
        );
        assert_eq!(normal("2.5").as_f64(), Some(2.5));
        assert_eq!(normal("1e21").as_f64(), Some(1e21));
        assert_eq!(normal("-7").as_i64(), Some(-7));
    }

    fn canon(v: Value) -> String {
        String::from_utf8(to_vec(&v)).unwrap_or_default()
    }

    #[test]
    fn objects_are_sorted_and_compact() {
        assert_eq!(
            canon(json!({"b": 1, "a": [true, null, "x"], "ä": {}})),
            r#"{"a":[true,null,"x"],"b":1,"ä":{}}"#
        );
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        assert_eq!(
            canon(json!("q\"b\\\n\t\u{1}é\u{2028}")),
            "\"q\\\"b\\\\\\n\\t\\u0001é\u{2028}\""
        );
    }

    #[test]
    fn integers_are_exact_over_64_bits() {
        assert_eq!(canon(json!(i64::MAX)), "9223372036854775807");
        assert_eq!(canon(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(canon(json!(-5)), "-5");
    }

    #[test]
    fn doubles_follow_ecmascript_layout() {
        let cases = [
            (1.5, "1.5"),
            (100.0, "100"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (-2.5e-8, "-2.5e-8"),
            (-0.0, "0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_double(value), expected, "{value:e}");
        }
    }

    #[test]
    fn canonical_text_is_recognized_and_anything_else_is_not() {
        let canonical = [
            r#"{"a":[true,null,"x"],"b":1,"ä":{}}"#,
            r#"{"amount":123456789012345678,"n":-5,"z":0}"#,
            r#"[]"#,
            r#"{}"#,
            r#""é""#,
            r#"[{"a":{"b":[1,2,{}]}}]"#,
        ];
        for text in canonical {
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(
                String::from_utf8(to_vec(&value)).unwrap_or_default(),
                text,
                "the case itself"
            );
            assert!(is_canonical(text.as_bytes()), "{text}");
        }
        let other = [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{ "a":1}"#,
            r#"[1, 2]"#,
            r#"1.5"#,
            r#"1e2"#,
            r#"-0"#,
            r#"1234567890123456789"#,
            r#""a\nb""#,
            r#""\u00e9""#,
            r#"{"a\u0062":1}"#,
            " 1",
            // Not JSON at all: a raw control character, an unfinished value, two values.
            "\"a\tb\"",
            r#"{"a":1"#,
            r#"[1,]"#,
            "1 2",
        ];
        for text in other {
            assert!(!is_canonical(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn a_canonical_prefix_is_measured_and_nesting_is_bounded() {
        assert_eq!(canonical_prefix(br#"{"a":[1]},"next":2"#), Some(9));
        assert_eq!(canonical_prefix(br#""x"}"#), Some(3));
        assert_eq!(canonical_prefix(b"{ }"), None);
        let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(is_canonical(deep(128).as_bytes()));
        assert!(!is_canonical(deep(129).as_bytes()));
        // Far deeper than any stack would survive by recursion.
        assert_eq!(canonical_prefix("[".repeat(1 << 20).as_bytes()), None);
    }

    proptest::proptest! {
        /// The fast path is only ever taken for text the exact path would write identically.
        #[test]
        fn what_passes_as_canonical_is_its_own_encoding(text in json_text()) {
            if let Ok(value) = serde_json::from_str::<Value>(&text)
                && is_canonical(text.as_bytes())
            {
                proptest::prop_assert_eq!(to_vec(&value), text.as_bytes());
            }
        }
    }

    /// Small JSON texts, canonical or not: few keys and short strings, so that repeats, order
    /// and escapes all come up.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            prop_oneof![Just("-0"), Just("1.0"), Just("1e3"), Just("0.5"), Just("01")].prop_map(str::to_owned),
            proptest::collection::vec(
                prop_oneof![
                    Just("a"),
                    Just("b"),
                    Just("é"),
                    Just("\\n"),
                    Just("\\\""),
                    Just("\\u0062")
                ],
                0..3
            )
            .prop_map(|parts| format!("\"{}\"", parts.concat())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            let key = prop_oneof![Just("a"), Just("b"), Just("ä"), Just("a\\n")];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec((key, inner), 0..4).prop_map(|entries| {
                    let body: Vec<String> = entries.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", body.join(","))
                }),
                Just(" 1 ".to_owned()),
            ]
        })
    }

    #[test]
    fn a_jsonb_style_rewrite_of_a_number_encodes_the_same() {
        let original: Value =
            serde_json::from_str(r#"{"n": 1.50, "m": 1e2, "big": 100000000000000000000000}"#).unwrap_or_default();
        let rewritten: Value =
            serde_json::from_str(r#"{"big": 100000000000000000000000, "m": 100.0, "n": 1.5}"#).unwrap_or_default();
        assert_eq!(to_vec(&original), to_vec(&rewritten));
    }
}
