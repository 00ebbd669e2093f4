//! The services as the workloads see them: plain HTTP with pre-formatted JSON bodies, so the load
//! generator spends as little CPU as possible (it shares the machine with what it measures).
//!
//! A closed-loop client sends its requests on a keep-alive HTTP/1.1 connection of its own (its
//! lane), as pgbench's clients each keep their session: no pool to search, no URL to parse, no
//! body parsed unless the workload reads it. Through reqwest's pooled client the load generator
//! took about 30 µs of CPU per GET (a fifth of the machine under W5), a tenth of it parsing URLs.
//! The open loop (W3) takes an idle connection for each request; one-off requests (opening the
//! books, W6's export) go through reqwest.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::Mutex;

/// Lanes per service: one per closed-loop client, up to W1's largest client count.
pub const LANES: usize = 256;

#[derive(Clone)]
pub struct Api(Arc<Inner>);

struct Inner {
    client: reqwest::Client,
    bearer: HeaderValue,
    command: Service,
    query: Service,
}

struct Service {
    /// `http://host:port`
    base: String,
    /// `host:port`: where lanes connect, and their `Host` header.
    authority: HeaderValue,
    lanes: Vec<Mutex<Option<SendRequest<Full<Bytes>>>>>,
    /// Idle connections for the open loop, whose requests are not tied to a client.
    spare: std::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Service {
    fn new(base: String) -> anyhow::Result<Self> {
        let authority = base.trim_start_matches("http://").trim_end_matches('/');
        Ok(Self {
            authority: HeaderValue::from_str(authority)?,
            base,
            lanes: (0..LANES).map(|_| Mutex::new(None)).collect(),
            spare: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` on lane `lane`, opening its connection if it has none (or lost it).
    async fn send(&self, lane: usize, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let slot = self
            .lanes
            .get(lane)
            .ok_or_else(|| format!("no lane {lane} (at most {LANES})"))?;
        let mut connection = slot.lock().await;
        let sender = match connection.as_mut() {
            Some(sender) if !sender.is_closed() => sender,
            _ => connection.insert(self.connect().await?),
        };
        let answered = exchange(sender, request).await;
        if answered.is_err() {
            *connection = None;
        }
        answered.map_err(|e| e.to_string())
    }

    /// Sends `request` on closed-loop client `lane`'s connection, or on an idle one (the open
    /// loop) when `lane` is `None`.
    async fn send_on(&self, lane: Option<usize>, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        match lane {
            Some(lane) => self.send(lane, request).await,
            None => self.send_spare(request).await,
        }
    }

    /// Sends `request` on an idle connection, or a new one when none is idle; keeps it for the
    /// next request unless it failed.
    async fn send_spare(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let idle = self.spare.lock().map_or(None, |mut spare| spare.pop());
        let mut sender = match idle {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        let answered = exchange(&mut sender, request).await.map_err(|e| e.to_string())?;
        if let Ok(mut spare) = self.spare.lock() {
            spare.push(sender);
        }
        Ok(answered)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let address = self.authority.to_str().map_err(|e| e.to_string())?;
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("connecting to {address}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        // Drives the connection until its sender is dropped or the server closes it.
        tokio::spawn(connection);
        Ok(sender)
    }
}

impl Api {
    /// `token` goes with every request as its bearer credential (an admin's: the workloads
    /// open accounts, post transfers, read and export).
    pub fn new(command: String, query: String, token: &str) -> anyhow::Result<Self> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))?;
        bearer.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(AUTHORIZATION, bearer.clone());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(1_024)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self(Arc::new(Inner {
            client,
            bearer,
            command: Service::new(command)?,
            query: Service::new(query)?,
        })))
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.0.client
    }

    /// query-api's base URL.
    pub fn query_url(&self) -> &str {
        &self.0.query.base
    }

    /// POSTs `body` to command-api; `Ok(body)` when the status is one of `ok`.
    pub async fn post(&self, path: &str, body: String, ok: &[u16]) -> Result<Value, String> {
        let response = self
            .0
            .client
            .post(format!("{}{path}", self.0.command.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        answer(status, bytes, ok).map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// [`Api::post`] on closed-loop client `lane`'s own connection, or on an idle one (the open
    /// loop) when `lane` is `None`; the body is left unparsed.
    pub async fn post_on(&self, lane: Option<usize>, path: &str, body: String, ok: &[u16]) -> Result<Bytes, String> {
        let request = self
            .request(Method::POST, &self.0.command, path)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let (status, bytes) = self.0.command.send_on(lane, request).await?;
        answer(status, bytes, ok)
    }

    /// GETs from query-api, `Ok` on 200, sent as [`Api::post_on`] sends.
    pub async fn get_on(&self, lane: Option<usize>, path: &str) -> Result<(), String> {
        let request = self
            .request(Method::GET, &self.0.query, path)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let (status, bytes) = self.0.query.send_on(lane, request).await?;
        answer(status, bytes, &[200]).map(|_| ())
    }

    fn request(&self, method: Method, service: &Service, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, service.authority.clone())
            .header(AUTHORIZATION, self.0.bearer.clone())
    }
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The body when `status` is one of `ok`, else the status and body as the error.
fn answer(status: u16, bytes: Bytes, ok: &[u16]) -> Result<Bytes, String> {
    if ok.contains(&status) {
        Ok(bytes)
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)))
    }
}

pub fn account(n: u64) -> String {
    format!("acc-{n:05}")
}

/// What a W1 transfer carries beyond its one leg of 100 between two accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Plain,
    /// A second leg pays 1 to the hot `fees` account.
    Fee,
    /// Metadata, an effective time and a condition: what the ledger-depth features cost.
    Rich,
    /// A hold (`pending`), posted by a second request.
    Hold,
}

/// One transfer's JSON in the given shape.
pub fn transfer_json(id: &str, debit: u64, credit: u64, shape: Shape) -> String {
    let (debit, credit) = (account(debit), account(credit));
    let leg = format!(r#"{{"debit":"{debit}","credit":"{credit}","amount":100}}"#);
    match shape {
        Shape::Plain => format!(r#"{{"id":"{id}","postings":[{leg}]}}"#),
        Shape::Fee => format!(r#"{{"id":"{id}","postings":[{leg},{{"debit":"{debit}","credit":"fees","amount":1}}]}}"#),
        // The condition always holds (no account here has a limit): it is checked, never refused.
        Shape::Rich => format!(
            r#"{{"id":"{id}","postings":[{leg}],"metadata":{{"order":"{id}","channel":"web"}},"effective_at":"2026-01-01T00:00:00Z","conditions":[{{"account":"{debit}","available_at_least":-1000000000000000}}]}}"#
        ),
        Shape::Hold => format!(r#"{{"id":"{id}","postings":[{leg}],"pending":true}}"#),
    }
}
