//! A query-api as an auditor reaches it: its base URL and the auditor's credential.

/// Cheap to clone; one connection pool for every request of a run.
#[derive(Debug, Clone)]
pub struct QueryApi {
    base: String,
    http: reqwest::Client,
}

impl QueryApi {
    /// `token` is sent as `Authorization: Bearer`; an auditor's (or an admin's) token reads
    /// everything verification needs.
    pub fn new(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| anyhow::anyhow!("the token holds characters a header cannot"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().default_headers(headers).build()?,
        })
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}
