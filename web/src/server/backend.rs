//! The console's server talking to the APIs: base URLs, one HTTP client, errors mapped to
//! [`UiError`]. Only the server holds these; the browser talks to the console alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::url::segment;

use crate::api::UiError;
use crate::api::types::{Asset, ServiceHealth, Written};

/// An account's asset and the asset's scale: both fixed for life, so cached without expiry.
#[derive(Debug, Clone)]
pub struct AssetOf {
    pub code: String,
    pub scale: u8,
}

/// Beyond this many cached accounts the cache starts over (it only saves lookups).
const ASSET_CACHE_LIMIT: usize = 50_000;

#[derive(Clone)]
pub struct Backend {
    http: reqwest::Client,
    /// Without an overall timeout: for the live stream, which lasts.
    streaming: reqwest::Client,
    pub command_url: Arc<str>,
    pub query_url: Arc<str>,
    pub projector_url: Arc<str>,
    assets_of: Arc<Mutex<HashMap<String, AssetOf>>>,
    /// The signed-in operator's credential, sent with every API call made for them.
    credential: Option<Arc<str>>,
}

impl Backend {
    pub fn new(command_url: &str, query_url: &str, projector_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // query-api waits up to 5 s for a min_position; leave room for it.
            .timeout(Duration::from_secs(10))
            .build()?;
        let streaming = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        let trim = |url: &str| Arc::from(url.trim_end_matches('/'));
        Ok(Self {
            http,
            streaming,
            command_url: trim(command_url),
            query_url: trim(query_url),
            projector_url: trim(projector_url),
            assets_of: Arc::default(),
            credential: None,
        })
    }

    /// The same backend, calling the APIs as the holder of `credential`.
    pub fn acting_as(&self, credential: Option<String>) -> Self {
        Self {
            credential: credential.map(Arc::from),
            ..self.clone()
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credential {
            Some(credential) => request.bearer_auth(credential),
            None => request,
        }
    }

    /// Who the APIs take the credential for (`GET /v1/whoami` of query-api).
    pub async fn whoami(&self) -> Result<crate::api::types::Operator, UiError> {
        self.read("/v1/whoami", &[]).await
    }

    /// `GET` from query-api, e.g. `read("/v1/accounts", &[("after", "a")])`.
    pub async fn read<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, UiError> {
        let url = format!("{}{path}", self.query_url);
        let response = self
            .authorized(self.http.get(&url))
            .query(query)
            .send()
            .await
            .map_err(|e| unreachable("query-api", &e))?;
        decode(response, "query-api").await
    }

    /// `POST` a command to command-api; `Idempotency-Key` when given.
    pub async fn write(&self, path: &str, body: &Value, idempotency_key: Option<&str>) -> Result<Written, UiError> {
        self.send(reqwest::Method::POST, path, body, idempotency_key).await
    }

    /// [`write`](Self::write) with `PATCH`.
    pub async fn patch(&self, path: &str, body: &Value, idempotency_key: Option<&str>) -> Result<Written, UiError> {
        self.send(reqwest::Method::PATCH, path, body, idempotency_key).await
    }

    /// `POST /v1/transfers/batch`: each item's answer, in order.
    pub async fn batch(&self, items: Vec<Value>) -> Result<Vec<Value>, UiError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            results: Vec<Value>,
        }
        let body = serde_json::json!({ "transfers": items });
        let answer: Answer = self
            .send(reqwest::Method::POST, "/v1/transfers/batch", &body, None)
            .await?;
        Ok(answer.results)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<T, UiError> {
        let mut request = self.authorized(self.http.request(method, format!("{}{path}", self.command_url)));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request
            .json(body)
            .send()
            .await
            .map_err(|e| unreachable("command-api", &e))?;
        decode(response, "command-api").await
    }

    /// The live stream of query-api, for the console's `/live` to pass on.
    pub async fn live(&self, last_event_id: Option<&str>) -> Result<reqwest::Response, UiError> {
        let mut request = self.authorized(self.streaming.get(format!("{}/v1/live", self.query_url)));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.map_err(|e| unreachable("query-api", &e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(decode::<Value>(response, "query-api")
                .await
                .err()
                .unwrap_or_else(|| UiError::new("unexpected_answer", "query-api refused the live stream")))
        }
    }

    /// The asset (and its scale) of each account named; unknown accounts are left out.
    pub async fn assets_of(&self, accounts: &[&str]) -> HashMap<String, AssetOf> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.assets_of.lock().unwrap_or_else(PoisonError::into_inner);
            for account in accounts {
                match cache.get(*account) {
                    Some(asset) => {
                        found.insert((*account).to_owned(), asset.clone());
                    }
                    None if !missing.contains(account) => missing.push(*account),
                    None => {}
                }
            }
        }
        if missing.is_empty() {
            return found;
        }
        let Ok(scales) = self.scales().await else {
            return found;
        };
        let lookups = missing.iter().map(|account| async move {
            let path = format!("/v1/accounts/{}", segment(account));
            let answer: Result<Value, UiError> = self.read(&path, &[]).await;
            (*account, answer)
        });
        let answers = futures_util::future::join_all(lookups).await;
        let mut cache = self.assets_of.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() > ASSET_CACHE_LIMIT {
            cache.clear();
        }
        for (account, answer) in answers {
            let Ok(body) = answer else { continue };
            let Some(code) = body.get("asset").and_then(Value::as_str) else {
                continue;
            };
            let Some(scale) = scales.get(code) else { continue };
            let asset = AssetOf {
                code: code.to_owned(),
                scale: *scale,
            };
            cache.insert(account.to_owned(), asset.clone());
            found.insert(account.to_owned(), asset);
        }
        found
    }

    /// Every asset's scale by code.
    pub async fn scales(&self) -> Result<HashMap<String, u8>, UiError> {
        Ok(self
            .assets()
            .await?
            .into_iter()
            .map(|asset| (asset.code, asset.scale))
            .collect())
    }

    pub async fn assets(&self) -> Result<Vec<Asset>, UiError> {
        #[derive(serde::Deserialize)]
        struct Assets {
            assets: Vec<Asset>,
        }
        Ok(self.read::<Assets>("/v1/assets", &[]).await?.assets)
    }

    /// Each service's readiness, asked at the same time.
    pub async fn health(&self) -> Vec<ServiceHealth> {
        let services = [
            ("command-api", &self.command_url),
            ("query-api", &self.query_url),
            ("projector", &self.projector_url),
        ];
        let checks = services.iter().map(|(name, base)| async move {
            let url = format!("{base}/readyz");
            let (ready, detail) = match self.http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    (status.is_success(), format!("{} {}", status.as_u16(), body.trim()))
                }
                Err(error) => (false, format!("cannot be reached: {error}")),
            };
            ServiceHealth {
                name: (*name).to_owned(),
                url: base.to_string(),
                ready,
                detail,
            }
        });
        futures_util::future::join_all(checks).await
    }
}

/// A success body as `T`; an error body in plain words.
async fn decode<T: DeserializeOwned>(response: reqwest::Response, service: &str) -> Result<T, UiError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| UiError::new("unreachable", format!("{service} broke off its answer: {e}")))?;
    if status.is_success() {
        serde_json::from_slice(&bytes).map_err(|e| {
            UiError::new(
                "unexpected_answer",
                format!("{service} answered something unexpected: {e}"),
            )
        })
    } else {
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut error = UiError::from_api(&body);
        error.status = Some(status.as_u16());
        if body.is_null() {
            error.message = format!("{service} answered {status}");
        }
        Err(error)
    }
}

fn unreachable(service: &str, error: &reqwest::Error) -> UiError {
    tracing::warn!(%error, service, "an API call failed");
    UiError::new(
        "unreachable",
        format!("{service} cannot be reached right now; try again in a moment."),
    )
}
