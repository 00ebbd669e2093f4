//! The services as the workloads see them: plain HTTP with pre-formatted JSON bodies, so the load
//! generator spends as little CPU as possible (it shares the machine with what it measures).

use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    pub command: String,
    pub query: String,
}

impl Api {
    /// `token` goes with every request as its bearer credential (an admin's: the workloads
    /// open accounts, post transfers, read and export).
    pub fn new(command: String, query: String, token: &str) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(1_024)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { client, command, query })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// POSTs `body` to command-api; `Ok(body)` when the status is one of `ok`.
    pub async fn post(&self, path: &str, body: String, ok: &[u16]) -> Result<Value, String> {
        let response = self
            .client
            .post(format!("{}{path}", self.command))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if ok.contains(&status) {
            Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)))
        }
    }

    /// GETs from query-api; `Ok` on 200.
    pub async fn get(&self, path: &str) -> Result<(), String> {
        let response = self
            .client
            .get(format!("{}{path}", self.query))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)))
        }
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
