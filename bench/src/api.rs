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

/// One transfer's JSON; with a fee, a second leg pays 1 to the hot `fees` account.
pub fn transfer_json(id: &str, debit: u64, credit: u64, fee: bool) -> String {
    let (debit, credit) = (account(debit), account(credit));
    if fee {
        format!(
            r#"{{"id":"{id}","postings":[{{"debit":"{debit}","credit":"{credit}","amount":100}},{{"debit":"{debit}","credit":"fees","amount":1}}]}}"#
        )
    } else {
        format!(r#"{{"id":"{id}","postings":[{{"debit":"{debit}","credit":"{credit}","amount":100}}]}}"#)
    }
}
