//! Percent-encoding for what goes into a URL: ids are restricted by the APIs, but what people
//! type is not.

/// `raw` percent-encoded for a path segment or a query value: only unreserved characters (and
/// `:`, common in ids) stay as they are.
pub fn segment(raw: &str) -> String {
    // `.` and `..` alone are dot segments, which a URL parser removes (`/v1/accounts/../close`
    // is `/v1/close`): a segment of dots only is encoded whole.
    let dots = raw.bytes().all(|byte| byte == b'.');
    let mut encoded = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if !dots && (byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte)) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `path` with the given query parameters that have a value, each percent-encoded.
pub fn href(path: &str, params: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name}={}", segment(value))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::{href, segment};

    #[test]
    fn builds_a_link_with_the_parameters_given() {
        assert_eq!(href("/transfers", &[("status", None)]), "/transfers");
        assert_eq!(
            href(
                "/a",
                &[("k", Some("x y".into())), ("n", None), ("after", Some("3".into()))]
            ),
            "/a?k=x%20y&after=3"
        );
    }

    #[test]
    fn encodes_what_a_path_cannot_hold() {
        assert_eq!(segment("users:alice.wallet-1"), "users:alice.wallet-1");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(segment("a&b=c"), "a%26b%3Dc");
        assert_eq!(segment("é"), "%C3%A9");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("a..b"), "a..b");
    }
}
