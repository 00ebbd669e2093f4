//! Writers under concurrency and faults, through real HTTP.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use partida_e2e::{
    Stack, assert_error, assert_read_model_matches_log, eventually, open_books, start_command_api,
    start_command_api_with, transfer,
};
use partida_testkit::{LOGIN_PASSWORD, ServiceRole};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_command_api_instances_keep_one_dense_log_without_double_spending() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 100)]).await;
    let second = start_command_api(&stack.db).await;
    let client = stack.http.client().clone();
    let mut tasks = Vec::new();
    for i in 0..130 {
        for base in [stack.command.url.clone(), second.url.clone()] {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let body =
                    json!({"id": format!("spend-{i}"), "postings": [{"debit": "alice", "credit": "bob", "amount": 1}]});
                let response = client
                    .post(format!("{base}/v1/transfers"))
                    .json(&body)
                    .send()
                    .await
                    .expect("POST");
                (i, partida_e2e::decode(response).await)
            }));
        }
    }
    let mut answers: HashMap<i32, Vec<serde_json::Value>> = HashMap::new();
    for task in tasks {
        let (i, (status, body)) = task.await.expect("task");
        match status.as_u16() {
            200 | 201 => answers.entry(i).or_default().push(body["position"].clone()),
            422 => assert_eq!(body["error"]["code"], "limit_exceeded", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(answers.len(), 100, "exactly alice's 100 were spent");
    for (i, positions) in &answers {
        assert!(
            positions.windows(2).all(|w| w[0] == w[1]),
            "spend-{i} answered {positions:?}"
        );
    }
    let (_, log) = stack.get("/v1/events?limit=1000").await;
    let head = log["events"].as_array().map_or(0, Vec::len) as i64;
    eventually("projection caught up", Duration::from_secs(30), || async {
        stack.get_at("/v1/projections", head).await.0.is_success()
    })
    .await;
    assert_read_model_matches_log(&stack.db).await;
}

/// What the proxy does when the client sends what commits a batch.
const PASS: u8 = 0;
/// Forward it, then cut the client off before the answer: committed, outcome unknown to the client.
const CUT_AFTER_COMMIT: u8 = 1;
/// Cut the client off without forwarding: rolled back, outcome unknown to the client.
const CUT_BEFORE_COMMIT: u8 = 2;

/// A TCP proxy to PostgreSQL that, once armed, cuts the client off at the next message that
/// commits a batch: the writer's write statement, which outside a transaction commits itself (its
/// Bind carries the events channel's name as a parameter), or a `COMMIT`.
async fn commit_cutting_proxy(upstream: String, mode: Arc<AtomicU8>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, upstream.clone(), mode.clone()));
        }
    });
    addr
}

async fn relay(client: TcpStream, upstream: String, mode: Arc<AtomicU8>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cut = Arc::new(AtomicBool::new(false));
    // Server to client, until cut: then the client's half is closed at the server's next answer,
    // which is read (so a forwarded commit has surely been processed) but never delivered.
    let downstream = tokio::spawn({
        let cut = cut.clone();
        async move {
            let mut client_write = Some(client_write);
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = server_read.read(&mut buffer).await {
                if n == 0 || cut.load(Ordering::SeqCst) {
                    return;
                }
                let Some(writer) = client_write.as_mut() else { return };
                if writer.write_all(&buffer[..n]).await.is_err() {
                    client_write = None;
                }
            }
        }
    });
    // A simple-protocol Query message: 'Q', length 11, "COMMIT\0".
    let commit: &[u8] = b"Q\x00\x00\x00\x0bCOMMIT\x00";
    let channel = partida_eventstore::EVENTS_CHANNEL.as_bytes();
    let commits = |chunk: &[u8]| {
        [commit, channel]
            .iter()
            .any(|m| chunk.windows(m.len()).any(|w| w == *m))
    };
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = client_read.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        let armed = mode.load(Ordering::SeqCst);
        if armed != PASS && commits(chunk) {
            mode.store(PASS, Ordering::SeqCst);
            cut.store(true, Ordering::SeqCst);
            if armed == CUT_AFTER_COMMIT {
                let _ = server_write.write_all(chunk).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), downstream).await;
            } else {
                downstream.abort();
            }
            return;
        }
        if server_write.write_all(chunk).await.is_err() {
            break;
        }
    }
    downstream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_with_an_unknown_outcome_is_503_and_the_retry_writes_once() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let mode = Arc::new(AtomicU8::new(PASS));
    let options: sqlx::postgres::PgConnectOptions = stack.db.url().parse().expect("url");
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let proxy = commit_cutting_proxy(upstream, mode.clone()).await;
    let url = format!(
        "postgres://{}:{LOGIN_PASSWORD}@{proxy}/{}?sslmode=disable",
        ServiceRole::Writer.login(),
        options.get_database().unwrap_or_default()
    );
    let api = start_command_api_with(command_api::Config::for_database(url)).await;
    let post = |id: &'static str| {
        let request = stack
            .http
            .client()
            .post(format!("{}/v1/transfers", api.url))
            .json(&json!({
                "id": id, "postings": [{"debit": "bank", "credit": "alice", "amount": 10}]
            }));
        async move { partida_e2e::decode(request.send().await.expect("POST")).await }
    };
    for (mode_value, id, retry_status) in [
        (CUT_AFTER_COMMIT, "committed", 200),
        (CUT_BEFORE_COMMIT, "rolled-back", 201),
    ] {
        mode.store(mode_value, Ordering::SeqCst);
        let response = post(id).await;
        assert_error(&response, 503, "outcome_unknown");
        let (status, body) = post(id).await;
        assert_eq!(status.as_u16(), retry_status, "{id}: {body}");
        let (status, again) = post(id).await;
        assert_eq!((status.as_u16(), &again), (200, &body), "{id}");
    }
    let (_, log) = stack.get("/v1/events?limit=1000").await;
    let transfers: Vec<&str> = log["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == "TransferPosted")
        .filter_map(|e| e["data"]["id"].as_str())
        .collect();
    assert_eq!(transfers, vec!["committed", "rolled-back"], "each written exactly once");
}
