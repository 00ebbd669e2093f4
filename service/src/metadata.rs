//! Bounds on the free-form metadata clients attach to accounts and transfers. The log keeps it
//! forever and every reader returns it, so one request must not be able to make it huge or
//! deeply nested.

use serde::Deserialize;
use serde::de::{Deserializer, Error};
use serde_json::{Map, Value};

/// The most bytes metadata may take as compact JSON.
pub const MAX_BYTES: usize = 8 * 1024;

/// The deepest nesting allowed: the metadata object itself is level 1.
pub const MAX_DEPTH: usize = 8;

/// Checks `metadata` against [`MAX_BYTES`] and [`MAX_DEPTH`], saying which it breaks.
pub fn check(metadata: &Map<String, Value>) -> Result<(), String> {
    let depth = 1 + metadata.values().map(depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(format!("nests {depth} levels deep; at most {MAX_DEPTH}"));
    }
    let mut bytes = ByteCount(0);
    let bytes = serde_json::to_writer(&mut bytes, metadata).map_or(usize::MAX, |()| bytes.0);
    if bytes > MAX_BYTES {
        return Err(format!("is {bytes} bytes as JSON; at most {MAX_BYTES}"));
    }
    Ok(())
}

/// For `#[serde(deserialize_with = ...)]`: metadata within the bounds, or an error that the
/// extractors report as a validation error naming the field.
pub fn bounded<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    let metadata = Map::deserialize(deserializer)?;
    check(&metadata).map_err(D::Error::custom)?;
    Ok(metadata)
}

/// Counts what is written to it, so the encoding is measured without being kept.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How deep `value` nests: a scalar is 0, an empty array or object 1.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// An object nested `levels` deep, counting itself.
    fn nested(levels: usize) -> Map<String, Value> {
        let mut value = json!("leaf");
        for _ in 1..levels {
            value = json!({ "n": value });
        }
        object(json!({ "n": value }))
    }

    #[test]
    fn depth_counts_the_object_itself_and_every_container() {
        assert_eq!(check(&nested(MAX_DEPTH)), Ok(()));
        let too_deep = check(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(too_deep.contains("9 levels deep"), "{too_deep}");
        // The object and seven arrays are eight levels; an eighth array is one too many.
        assert!(check(&object(json!({"a": [[[[[[[1]]]]]]]}))).is_ok());
        assert!(check(&object(json!({"a": [[[[[[[[1]]]]]]]]}))).is_err());
    }

    #[test]
    fn size_is_measured_as_compact_json() {
        // {"k":"…"} is 8 bytes around the string.
        assert_eq!(check(&object(json!({ "k": "x".repeat(MAX_BYTES - 8) }))), Ok(()));
        let too_big = check(&object(json!({ "k": "x".repeat(MAX_BYTES - 7) }))).unwrap_err();
        assert!(too_big.contains("8193 bytes"), "{too_big}");
    }
}
