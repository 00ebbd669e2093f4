//! query-api's live stream (`/v1/live`, server-sent events), the log's filters and its export.

use std::time::Duration;

use partida_e2e::{Stack, assert_error, open_books, transfer};
use reqwest::StatusCode;
use serde_json::Value;

/// One server-sent event: its name, id and data.
#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// Reads a live stream's events as they arrive.
struct Reader {
    response: reqwest::Response,
    buffer: String,
}

impl Reader {
    async fn open(stack: &Stack, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = stack.http.client().get(format!("{}/v1/live{query}", stack.query.url));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("GET /v1/live");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().ok(),
            Some("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); `None` when the stream ends. Bounded so a
    /// broken stream fails the test instead of hanging it.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        sse.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        sse.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                sse.data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(sse);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("the live stream went silent")
                .expect("reading the live stream")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `log` event, skipping progress reports.
    async fn next_log(&mut self) -> Sse {
        loop {
            let sse = self.next().await.expect("the stream ended");
            if sse.event == "log" {
                return sse;
            }
            assert_eq!(sse.event, "progress", "{sse:?}");
            assert!(sse.data["checkpoint"].as_i64().is_some(), "{sse:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_sends_each_projected_event_once_in_order_and_resumes() {
    let stack = Stack::start().await;
    let before = open_books(&stack).await;
    // Wait until the books are projected, so the stream starts after them.
    assert_eq!(stack.get_at("/v1/assets", before).await.0, StatusCode::OK);
    let mut live = Reader::open(&stack, "", None).await;

    let first = transfer(&stack, "live-1", &[("bank", "alice", 500)]).await;
    let second = transfer(&stack, "live-2", &[("alice", "bob", 200)]).await;
    let one = live.next_log().await;
    assert_eq!(one.id.as_deref(), Some(first.to_string().as_str()));
    assert_eq!(one.data["event_type"], "TransferPosted");
    assert_eq!(one.data["data"]["id"], "live-1");
    assert_eq!(one.data["hash"].as_str().map(str::len), Some(64));
    let two = live.next_log().await;
    assert_eq!(two.data["position"], second);
    // Sent only once applied: the account reads already include it, without min_position.
    let (_, bob) = stack.get("/v1/accounts/bob").await;
    assert_eq!(bob["balance"], 200, "{bob}");

    // A reconnecting client resumes after the last id it saw, from the start of the log too.
    let mut resumed = Reader::open(&stack, "", Some(&first.to_string())).await;
    assert_eq!(resumed.next_log().await.data["position"], second);
    let mut from_start = Reader::open(&stack, "?after=0", None).await;
    assert_eq!(from_start.next_log().await.data["position"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_open_live_streams() {
    let stack = Stack::start().await;
    let mut live = Reader::open(&stack, "", None).await;
    // The first progress report says the stream is up.
    assert_eq!(live.next().await.map(|sse| sse.event).as_deref(), Some("progress"));
    let Stack { query, .. } = stack;
    tokio::time::timeout(Duration::from_secs(10), query.stop())
        .await
        .expect("query-api's graceful shutdown waited on an open live stream");
    assert!(live.next().await.is_none(), "the stream ends with the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_live_and_log_parameters_are_4xx() {
    let stack = Stack::without_projector().await;
    assert_error(&stack.get("/v1/live?after=-1").await, 400, "validation_failed");
    let response = stack
        .http
        .client()
        .get(format!("{}/v1/live", stack.query.url))
        .header("last-event-id", "x")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let long = "T".repeat(65);
    assert_error(
        &stack.get(&format!("/v1/events?type={long}")).await,
        400,
        "validation_failed",
    );
    assert_error(&stack.get("/v1/events?order=sideways").await, 400, "validation_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reads_newest_first_and_by_type() {
    let stack = Stack::without_projector().await;
    let last = open_books(&stack).await;
    let (_, newest) = stack.get("/v1/events?order=desc&limit=2").await;
    let positions: Vec<i64> = newest["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["position"].as_i64())
        .collect();
    assert_eq!(positions, vec![last, last - 1]);
    let (_, older) = stack
        .get(&format!("/v1/events?order=desc&limit=2&after={}", last - 1))
        .await;
    assert_eq!(older["events"][0]["position"], last - 2);
    let (_, assets) = stack.get("/v1/events?type=AssetRegistered").await;
    let types: Vec<&str> = assets["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types, vec!["AssetRegistered", "AssetRegistered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_streams_the_asked_range_as_ndjson() {
    let stack = Stack::without_projector().await;
    let last = open_books(&stack).await;
    let get = |query: &'static str| {
        let url = format!("{}/v1/audit/export{query}", stack.query.url);
        let client = stack.http.client().clone();
        async move { client.get(url).send().await.expect("GET export") }
    };
    let response = get("?from=2&to=3").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(response.headers()["x-partida-export-range"], "2-3");
    let text = response.text().await.expect("body");
    let positions: Vec<i64> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("a JSON line")["position"]
                .as_i64()
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(positions, vec![2, 3]);
    let everything = get("").await.text().await.expect("body");
    assert_eq!(everything.lines().count() as i64, last);
    assert_error(&stack.get("/v1/audit/export?from=0").await, 400, "validation_failed");
    assert_error(
        &stack.get("/v1/audit/export?from=3&to=2").await,
        400,
        "validation_failed",
    );
}
