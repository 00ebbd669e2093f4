//! partida-audit against a real log: written by the real services on a real PostgreSQL, exported
//! by query-api, then tampered with in the ways an attacker or a bug would.
#![expect(clippy::expect_used, reason = "test helpers: a failed expectation is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Command;

use ledger::log::{GENESIS_HASH, Hash};
use partida_audit::progress::Progress;
use partida_audit::report::Report;
use partida_audit::source::Source;
use partida_audit::{Compare, verify};
use partida_e2e::{Stack, assert_error, open_books, transfer};
use partida_eventstore::StoredEvent;
use partida_testkit::ServiceRole;
use serde_json::Value;

/// A small but complete history: assets, accounts, transfers, a freeze, a reversal, holds posted
/// in part, voided and left open, metadata changes on an account and on transfers, personal
/// data of two subjects and one subject erased.
async fn history(stack: &Stack) -> i64 {
    open_books(stack).await;
    transfer(stack, "fund", &[("bank", "alice", 10_000)]).await;
    transfer(stack, "pay", &[("alice", "bob", 2_500), ("alice", "bank", 100)]).await;
    let (status, body) = stack.post("/v1/accounts/bob/freeze", serde_json::json!({})).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = stack.post("/v1/accounts/bob/unfreeze", serde_json::json!({})).await;
    assert!(status.is_success(), "{body}");
    let reversal = serde_json::json!({"id": "undo", "reverses": "pay", "postings": [
        {"debit": "bob", "credit": "alice", "amount": 2_500},
        {"debit": "bank", "credit": "alice", "amount": 100}]});
    let (status, body) = stack.post("/v1/transfers", reversal).await;
    assert!(status.is_success(), "{body}");
    let hold = |id: &str, amount: i64| {
        serde_json::json!({"id": id, "pending": true, "timeout_secs": 3_600,
            "postings": [{"debit": "alice", "credit": "bob", "amount": amount}]})
    };
    for (path, body) in [
        ("/v1/transfers", hold("hold-part", 1_000)),
        (
            "/v1/transfers/hold-part/post",
            serde_json::json!({"postings": [{"debit": "alice", "credit": "bob", "amount": 400}]}),
        ),
        ("/v1/transfers", hold("hold-void", 300)),
        ("/v1/transfers/hold-void/void", serde_json::json!({})),
        ("/v1/transfers", hold("hold-open", 200)),
    ] {
        let (status, body) = stack.post(path, body).await;
        assert!(status.is_success(), "{path}: {body}");
    }
    for (path, patch) in [
        ("/v1/accounts/bob/metadata", serde_json::json!({"kyc": "done"})),
        (
            "/v1/transfers/pay/metadata",
            serde_json::json!({"invoice": "F-7", "note": null}),
        ),
        ("/v1/transfers/hold-open/metadata", serde_json::json!({"order": 12})),
        (
            "/v1/accounts/alice/metadata",
            serde_json::json!({"personal": {"subject": "customer-1", "data": {"name": "Alice A."}}}),
        ),
        (
            "/v1/transfers/hold-void/metadata",
            serde_json::json!({"personal": {"subject": "customer-2", "data": "Bob B."}}),
        ),
    ] {
        let (status, body) = stack.patch(path, patch).await;
        assert!(status.is_success(), "{path}: {body}");
    }
    let (status, body) = stack.post("/v1/subjects/customer-1/erase", serde_json::json!({})).await;
    assert!(status.is_success(), "{body}");
    body["position"].as_i64().expect("position")
}

async fn export(stack: &Stack) -> Vec<String> {
    let text = stack
        .http
        .client()
        .get(format!("{}/v1/audit/export", stack.query.url))
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("export body");
    text.lines().map(str::to_owned).collect()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write export");
    path
}

/// Verifies an export file, comparing with `stack`'s read tables when given.
async fn verify_file(path: &Path, stack: Option<&Stack>) -> Report {
    let source = Source::file(path).await.expect("open");
    let compare = Compare {
        query_api: stack
            .map(|stack| partida_audit::QueryApi::new(&stack.query.url, Some(&stack.token)).expect("a client")),
        ..Compare::default()
    };
    verify(source, &compare, &mut Progress::new(false, None))
        .await
        .expect("usable input")
}

/// The time of an export's last record: what an appended forgery must not precede.
fn last_recorded(lines: &[String]) -> (i64, String) {
    let last: StoredEvent = serde_json::from_str(lines.last().expect("a record")).expect("record");
    (last.recorded_at_micros, last.recorded_at)
}

fn first_failure(report: &Report) -> String {
    report.failures.first().map(|f| f.message.clone()).unwrap_or_default()
}

/// Parses, edits and re-hashes the whole chain, as someone with write access to the data (but
/// no signing key) would forge a consistent history.
fn forge(lines: &[String], edit: impl Fn(&mut StoredEvent)) -> Vec<String> {
    let mut prev: Hash = GENESIS_HASH;
    lines
        .iter()
        .map(|line| {
            let mut event: StoredEvent = serde_json::from_str(line).expect("record");
            edit(&mut event);
            event.prev_hash = prev;
            event.hash = event.fields().hash();
            prev = event.hash;
            serde_json::to_string(&event).expect("json")
        })
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("partida-audit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_export_verifies_and_matches_the_read_tables() {
    let stack = Stack::start().await;
    let last = history(&stack).await;
    let lines = export(&stack).await;
    assert_eq!(lines.len() as i64, last);
    let dir = temp_dir("honest");
    let report = verify_file(&write(&dir, "log.ndjson", &lines), Some(&stack)).await;
    assert!(report.ok, "{}", report.human());
    assert_eq!(report.events, last);
    let eur = report.assets.iter().find(|a| a.asset == "EUR").expect("EUR");
    assert_eq!((eur.posted, eur.accounts), (10_000 + 2_600 + 2_600 + 400, 3));
    assert_eq!((eur.held, eur.pending_debits, eur.pending_credits), (200, 200, 200));
    assert_eq!(report.compared[0].accounts, 4);
    assert!(report.compared[0].differences.is_empty());
    // The personal data is counted, never read: the erased subject's value is unreadable.
    let personal = &report.personal_data;
    assert_eq!(
        (
            personal.sealed_values,
            personal.subjects,
            personal.erased_subjects,
            personal.erased_values
        ),
        (2, 2, 1, 1),
        "{}",
        report.human()
    );
    assert!(
        lines
            .iter()
            .all(|line| !line.contains("Alice A.") && !line.contains("Bob B."))
    );
    assert!(
        report
            .human()
            .contains("2 sealed values of 2 subjects; 1 subjects erased"),
        "{}",
        report.human()
    );

    // The same records written with whitespace: data and metadata are no longer their canonical
    // text, so they are parsed and encoded rather than hashed as written, to the same hashes.
    let spaced: Vec<String> = lines.iter().map(|line| line.replace("\":", "\": ")).collect();
    assert!(spaced[0].contains("\"data\": {\""), "{}", spaced[0]);
    let again = verify_file(&write(&dir, "spaced.ndjson", &spaced), None).await;
    assert!(again.ok, "{}", again.human());
    assert_eq!((again.events, &again.head_hash), (last, &report.head_hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_exports_fail_naming_the_position() {
    let stack = Stack::start().await;
    history(&stack).await;
    let lines = export(&stack).await;
    let dir = temp_dir("tampered");

    // A flipped byte: one digit of an amount in transfer "fund".
    let index = lines.iter().position(|l| l.contains("\"id\":\"fund\"")).expect("fund");
    let mut flipped = lines.clone();
    flipped[index] = flipped[index].replacen("10000", "10001", 1);
    let report = verify_file(&write(&dir, "flipped.ndjson", &flipped), None).await;
    let position = index as i64 + 1;
    assert!(
        first_failure(&report).starts_with(&format!("position {position}: hash mismatch")),
        "{}",
        report.human()
    );

    // A dropped event.
    let mut dropped = lines.clone();
    dropped.remove(3);
    let report = verify_file(&write(&dir, "dropped.ndjson", &dropped), None).await;
    assert_eq!(
        first_failure(&report),
        "position 4 is missing: position 5 comes in its place"
    );

    // Two events swapped.
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let report = verify_file(&write(&dir, "swapped.ndjson", &swapped), None).await;
    assert_eq!(
        first_failure(&report),
        "position 3 is missing: position 4 comes in its place"
    );

    // A consistent forgery (every hash recomputed): the chain holds, the replay does not.
    let forged = forge(&lines, |event| {
        if event.event_type == "TransferPosted" && event.data["id"] == "pay" {
            event.data["postings"][0]["amount"] = Value::from(20_000);
        }
    });
    let report = verify_file(&write(&dir, "forged.ndjson", &forged), None).await;
    let message = first_failure(&report);
    assert_eq!(report.failures[0].check, "replay", "{}", report.human());
    assert!(
        message.contains("the domain refuses this TransferPosted")
            && message.contains("debits_must_not_exceed_credits limit of account alice"),
        "{message}"
    );

    // A reversal replayed twice, re-hashed: caught as a second reversal.
    let mut doubled: Vec<String> = lines.clone();
    let undo = doubled
        .iter()
        .find(|line| line.contains("\"stream_id\":\"transfer:undo\""))
        .expect("undo")
        .clone();
    let mut again: StoredEvent = serde_json::from_str(&undo).expect("record");
    again.position = lines.len() as i64 + 1;
    (again.recorded_at_micros, again.recorded_at) = last_recorded(&lines);
    again.stream_id = "transfer:undo2".into();
    again.data["id"] = Value::from("undo2");
    doubled.push(serde_json::to_string(&again).expect("json"));
    let doubled = forge(&doubled, |_| {});
    let report = verify_file(&write(&dir, "doubled.ndjson", &doubled), None).await;
    assert!(
        first_failure(&report).contains("was already reversed") || first_failure(&report).contains("reversed"),
        "{}",
        report.human()
    );

    // A metadata change moved to a transfer that never was, re-hashed.
    let ghost = forge(&lines, |event| {
        if event.event_type == "TransferMetadataSet" && event.data["id"] == "pay" {
            event.data["id"] = Value::from("ghost");
            event.stream_id = "transfer:ghost".into();
            event.stream_version = 1;
        }
    });
    let report = verify_file(&write(&dir, "ghost.ndjson", &ghost), None).await;
    assert!(
        first_failure(&report).contains("the domain refuses this TransferMetadataSet: transfer ghost"),
        "{}",
        report.human()
    );

    // Personal data put in the clear, re-hashed: no erasure could reach it.
    let clear = forge(&lines, |event| {
        if event.event_type == "TransferMetadataSet" && event.data["id"] == "hold-void" {
            event.data["metadata"]["personal"] = serde_json::json!({"subject": "customer-2", "data": "Bob B."});
        }
    });
    let report = verify_file(&write(&dir, "clear.ndjson", &clear), None).await;
    assert!(
        first_failure(&report).contains("metadata.personal holds personal data that is not sealed"),
        "{}",
        report.human()
    );

    // A hold resolved a second time (posted by one writer, voided by another), re-hashed.
    let mut twice: Vec<String> = lines.clone();
    let posted = twice
        .iter()
        .find(|line| line.contains("\"event_type\":\"PendingPosted\""))
        .expect("a post")
        .clone();
    let mut voided: StoredEvent = serde_json::from_str(&posted).expect("record");
    voided.position = lines.len() as i64 + 1;
    (voided.recorded_at_micros, voided.recorded_at) = last_recorded(&lines);
    voided.event_type = "PendingVoided".into();
    voided.data = serde_json::json!({"id": "hold-part"});
    twice.push(serde_json::to_string(&voided).expect("json"));
    let report = verify_file(&write(&dir, "twice.ndjson", &forge(&twice, |_| {})), None).await;
    assert_eq!(
        first_failure(&report),
        format!(
            "position {}: stream transfer:hold-part version 2 where the replay expects 3",
            lines.len() + 1
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_read_table_balance_is_listed() {
    let stack = Stack::start().await;
    let last = history(&stack).await;
    assert_eq!(stack.get_at("/v1/accounts/bob", last).await.0, 200);
    sqlx::query("UPDATE ledger_g1.accounts SET credits = credits + 1, balance = balance + 1 WHERE id = 'bob'")
        .execute(stack.db.pool())
        .await
        .expect("edit the read table");
    let dir = temp_dir("read-table");
    let report = verify_file(&write(&dir, "log.ndjson", &export(&stack).await), Some(&stack)).await;
    assert!(!report.ok);
    let fields: Vec<(&str, &str)> = report.compared[0]
        .differences
        .iter()
        .map(|d| (d.account.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(fields, vec![("bob", "credits"), ("bob", "balance")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_verifies_a_database_and_its_write_side() {
    let stack = Stack::start().await;
    history(&stack).await;
    let run = |args: &[&str]| audit_cli(&stack.token, args);
    let url = stack.db.url().to_owned();
    let (code, report) = run(&["verify", "--database-url", &url, "--json"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["compared"][0]["accounts"], 4);

    sqlx::raw_sql(
        "UPDATE write_accounts SET credits = credits + 7 WHERE id = 'alice'; \
         UPDATE write_accounts SET revision = revision + 1, pending_debits = pending_debits + 1 WHERE id = 'bob'",
    )
    .execute(stack.db.pool())
    .await
    .expect("edit the write side");
    let (code, report) = run(&["verify", "--database-url", &url, "--json"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(
        report["failures"][0]["check"],
        "write side (write_accounts, write_assets)"
    );
    assert!(
        report["failures"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("account alice: credits")
    );
    // Pending amounts and revisions are compared too, each difference its own failure.
    let messages: Vec<&str> = report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["message"].as_str())
        .collect();
    for field in ["account bob: pending_debits is 0", "account bob: revision is 10"] {
        assert!(messages.iter().any(|m| m.starts_with(field)), "{field}: {report}");
    }

    let (code, _) = run(&["verify", "--export", "/nonexistent/log.ndjson", "--json"]);
    assert_eq!(code, Some(2));
}

/// The vectors of docs/LOG-FORMAT.md, computed by the Rust implementation.
fn vectors() -> Value {
    let canonical_inputs = [
        r#"{"b":1,"a":[true,null,"x"],"ä":{}}"#,
        r#"{"é":1,"z":2,"A":3,"😀":4,"￿":5,"":6}"#,
        r#""q\"b\\\n\t\r\b\f\u0001\u001f\u007f é\u2028/""#,
        r#"[1.0,1e21,1e-7,0.000001,123456789012345678901234,-0.0,0.1,100,5e-324,1.7976931348623157e308,-2.5e-8]"#,
        r#"[18446744073709551615,-9223372036854775808,9223372036854775807,18446744073709551616,-9223372036854775809]"#,
        r#"{"nested":{"b":[{"d":1,"c":2}],"a":"x"},"empty":[],"obj":{}}"#,
    ];
    let canonical: Vec<Value> = canonical_inputs
        .iter()
        .map(|input| {
            let value: Value = serde_json::from_str(input).expect("vector JSON");
            let text = String::from_utf8(ledger::canonical::to_vec(&value)).expect("UTF-8");
            serde_json::json!({"json": input, "canonical": text})
        })
        .collect();
    let datas = [
        serde_json::json!({"code": "EUR", "scale": 2}),
        serde_json::json!({"id": "customers:alice", "asset": "EUR", "name": "Alice ü 😀", "normal_side": "credit",
            "flags": {"debits_must_not_exceed_credits": true, "credits_must_not_exceed_debits": false},
            "metadata": {"rate": 0.1, "big": 1e21, "tiny": 5e-324}}),
        serde_json::json!({"id": "t-1", "postings": [{"debit": "bank", "credit": "customers:alice", "amount": 10_000}],
            "metadata": {"memo": "line\nbreak \"quoted\""}}),
    ];
    let kinds = [
        ("asset:EUR", "AssetRegistered"),
        ("account:customers:alice", "AccountOpened"),
        ("transfer:t-1", "TransferPosted"),
    ];
    let mut prev = GENESIS_HASH;
    let records: Vec<Value> = datas
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(index, (data, (stream, event_type)))| {
            let position = index as i64 + 1;
            let micros = 1_700_000_000_000_001 + position * 1_234_567;
            let mut event = StoredEvent {
                position,
                event_id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + position as u128),
                stream_id: stream.to_owned(),
                stream_version: 1,
                event_type: event_type.to_owned(),
                schema_version: 1,
                data: data.clone(),
                metadata: serde_json::json!({"request_id": format!("req-{position}"), "actor": "vectors"}),
                recorded_at_micros: micros,
                recorded_at: partida_eventstore::format_timestamp(partida_eventstore::micros_to_datetime(micros)),
                prev_hash: prev,
                hash: [0; 32],
            };
            event.hash = event.fields().hash();
            prev = event.hash;
            let mut encoding = Vec::new();
            event.fields().encode(&mut encoding);
            serde_json::json!({"record": event, "encoding_hex": hex::encode(encoding), "hash": hex::encode(event.hash)})
        })
        .collect();
    let record_hashes: Vec<ledger::log::Hash> = records
        .iter()
        .map(|r| {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(r["hash"].as_str().unwrap_or_default(), &mut hash).expect("hex");
            hash
        })
        .collect();
    let leaves: Vec<_> = record_hashes.iter().map(ledger::merkle::leaf_hash).collect();
    let merkle: Vec<Value> = (0..=leaves.len())
        .map(|size| serde_json::json!({"size": size, "root": hex::encode(ledger::merkle::root(&leaves[..size]))}))
        .collect();
    let seed = [0x5a; 32];
    let checkpoint = ledger::checkpoint::Checkpoint::sign(
        &seed,
        3,
        record_hashes[2],
        ledger::merkle::root(&leaves),
        1_700_000_100_000_000,
    );
    let checkpoints = vec![serde_json::json!({
        "public_key": hex::encode(ledger::checkpoint::public_key(&seed)),
        "statement_hex": hex::encode(checkpoint.statement()),
        "checkpoint": partida_eventstore::checkpoint::StoredCheckpoint::from_checkpoint(&checkpoint),
    })];
    serde_json::json!({"canonical": canonical, "records": records, "merkle": merkle, "checkpoints": checkpoints})
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The committed vectors are what the implementation computes. Regenerate them after a
/// deliberate format change with `PARTIDA_WRITE_VECTORS=1 cargo test -p partida-audit vectors`.
#[test]
fn the_documented_vectors_are_what_the_implementation_computes() {
    let path = repo_file("docs/log-format-vectors.json");
    let text = serde_json::to_string_pretty(&vectors()).expect("json") + "\n";
    if std::env::var_os("PARTIDA_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vectors");
    }
    let committed = std::fs::read_to_string(&path).expect("docs/log-format-vectors.json");
    assert!(
        committed == text,
        "docs/log-format-vectors.json is stale; regenerate it (see this test)"
    );
}

fn python_verifier(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new("python3")
        .arg(repo_file("audit/verify_log.py"))
        .args(args)
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_independent_python_verifier_agrees_on_vectors_and_a_real_export() {
    let vectors = repo_file("docs/log-format-vectors.json");
    let (code, text) = python_verifier(&["--vectors", &vectors.display().to_string()]);
    assert_eq!(code, Some(0), "{text}");

    let stack = Stack::start().await;
    let last = history(&stack).await;
    // A float that jsonb rewrites, and an integer in exponent form beyond 2^53.
    let odd = serde_json::json!({"id": "odd", "postings": [{"debit": "bank", "credit": "alice", "amount": 1}],
        "metadata": {"a": 9.343324411917e25, "g": 9_007_199_254_740_993_f64}});
    assert!(stack.post("/v1/transfers", odd).await.0.is_success());
    let lines = export(&stack).await;
    let dir = temp_dir("python");
    let path = write(&dir, "log.ndjson", &lines);
    let (code, text) = python_verifier(&["--export", &path.display().to_string(), "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let summary: Value = serde_json::from_str(&text).expect("JSON summary");
    assert_eq!(summary["events"], last + 1);
    let rust = verify_file(&path, None).await;
    assert_eq!(summary["head_hash"], rust.head_hash);

    let mut flipped = lines.clone();
    flipped[4] = flipped[4].replacen("\"stream_version\":1", "\"stream_version\":2", 1);
    let path = write(&dir, "flipped.ndjson", &flipped);
    let (code, text) = python_verifier(&["--export", &path.display().to_string()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("position 5: hash mismatch"), "{text}");
}

/// Runs `partida-audit` with `args`; its exit code and its JSON output (or stderr as a string).
/// Runs `partida-audit` with `token` in `PARTIDA_TOKEN`.
fn audit_cli(token: &str, args: &[&str]) -> (Option<i32>, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_partida-audit"))
        .env("PARTIDA_TOKEN", token)
        .args(args)
        .output()
        .expect("run partida-audit");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&output.stderr).into_owned()));
    (output.status.code(), report)
}

/// A command-api configuration that signs with the seed `[seed; 32]` (on demand only).
fn signing_config(db_url: &str, dir: &Path, seed: u8) -> command_api::Config {
    let key = dir.join(format!("signing-{seed}.key"));
    std::fs::write(&key, hex::encode([seed; 32])).expect("key file");
    let mut config = command_api::Config::for_database(db_url);
    config.signing_key_file = Some(key);
    config.checkpoint_interval_secs = 3_600;
    config
}

/// A webhook receiver: answers 200 to each POST and passes its JSON body on.
async fn webhook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (bodies, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let read = socket.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..read]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        let body = serde_json::from_slice(&request[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                        let _ = bodies.send(body);
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

/// A stack whose command-api signs checkpoints (on demand here) and publishes them into `dir`
/// and to `webhook`.
async fn signing_stack_with(dir: &Path, webhook: Option<String>) -> Stack {
    let db = partida_testkit::TestDb::new().await;
    let mut config = signing_config(&db.url_as(ServiceRole::Writer), dir, 42);
    config.checkpoint_dir = Some(dir.join("published"));
    config.checkpoint_webhook = webhook;
    let command = partida_e2e::start_command_api_with(config).await;
    let query = partida_e2e::start_query_api(&db).await;
    let projector = Some(partida_e2e::start_projector(&db).await.0);
    Stack::assemble(db, command, query, projector).await
}

async fn signing_stack(dir: &Path) -> Stack {
    signing_stack_with(dir, None).await
}

async fn sign(stack: &Stack) -> (u16, Value) {
    let (status, body) = stack.post("/v1/audit/checkpoints", serde_json::json!({})).await;
    (status.as_u16(), body)
}

async fn verify_with(path: &Path, dir: &Path, trusted_keys: Option<PathBuf>) -> Report {
    let source = Source::file(path).await.expect("open");
    let compare = Compare {
        query_api: None,
        checkpoints: partida_audit::CheckpointSource::Dir(dir.to_owned()),
        trusted_keys,
    };
    verify(source, &compare, &mut Progress::new(false, None))
        .await
        .expect("usable input")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_checkpoints_catch_a_rewritten_history_that_is_otherwise_consistent() {
    let dir = temp_dir("checkpoints");
    let (hook, mut posted) = webhook().await;
    let stack = signing_stack_with(&dir, Some(hook)).await;
    assert_eq!(sign(&stack).await.0, 409, "nothing to sign in an empty log");
    let first = history(&stack).await;
    let (status, checkpoint) = sign(&stack).await;
    assert_eq!(
        (status, checkpoint["position"].as_i64()),
        (201, Some(first)),
        "{checkpoint}"
    );
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), posted.recv())
        .await
        .expect("the webhook got the checkpoint")
        .expect("a body");
    assert_eq!(delivered["checkpoint"], checkpoint);
    assert_eq!(delivered["key"]["key_id"], checkpoint["key_id"]);
    assert_eq!(
        sign(&stack).await,
        (200, checkpoint.clone()),
        "nothing new: the latest again"
    );
    let second = transfer(&stack, "later", &[("bank", "bob", 1)]).await;
    assert_eq!(sign(&stack).await.1["position"], second);
    let published = dir.join("published");
    assert!(published.join(format!("checkpoint-{first:020}.json")).is_file());
    let trusted = published.join("keys.json");

    let lines = export(&stack).await;
    let honest = write(&dir, "log.ndjson", &lines);
    let report = verify_with(&honest, &published, Some(trusted.clone())).await;
    assert!(report.ok, "{}", report.human());
    assert_eq!(report.checkpoints_verified, 2);
    let (code, text) = python_verifier(&[
        "--export",
        &honest.display().to_string(),
        "--checkpoints",
        &published.display().to_string(),
        "--json",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let python: Value = serde_json::from_str(&text).expect("JSON summary");
    assert_eq!(python["checkpoints_verified"], 2);
    assert_eq!(python["merkle_root"], report.merkle_root);

    // Someone with the database but not the key rewrites the first funding and re-hashes the
    // whole chain: every hash and link holds, the replay accepts it, the checkpoint does not.
    let forged = forge(&lines, |event| {
        if event.data["id"] == "fund" {
            event.data["postings"][0]["amount"] = Value::from(20_000);
        }
    });
    let forged_path = write(&dir, "forged.ndjson", &forged);
    let report = verify_with(&forged_path, &published, Some(trusted.clone())).await;
    let (code, text) = python_verifier(&[
        "--export",
        &forged_path.display().to_string(),
        "--checkpoints",
        &published.display().to_string(),
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "position {first}: the log no longer matches the checkpoint signed there"
        )),
        "{text}"
    );
    assert_eq!(report.failures[0].check, "checkpoint", "{}", report.human());
    assert!(
        report.failures[0].message.starts_with(&format!(
            "position {first}: the log no longer matches the checkpoint signed there"
        )),
        "{}",
        report.human()
    );

    // ... and signs new checkpoints with a key of their own: not among the trusted keys.
    let forger = partida_eventstore::checkpoint::Signer::new([7u8; 32], 0);
    let forged_dir = dir.join("forged-published");
    std::fs::create_dir_all(&forged_dir).expect("dir");
    let mut prev = GENESIS_HASH;
    let mut tree = ledger::merkle::Frontier::default();
    for line in &forged {
        let event: StoredEvent = serde_json::from_str(line).expect("record");
        tree.push(ledger::merkle::leaf_hash(&event.hash));
        prev = event.hash;
    }
    let fake = ledger::checkpoint::Checkpoint::sign(&[7u8; 32], second, prev, tree.root(), 1_800_000_000_000_000);
    let fake = partida_eventstore::checkpoint::StoredCheckpoint::from_checkpoint(&fake);
    std::fs::write(
        forged_dir.join(format!("checkpoint-{second:020}.json")),
        serde_json::to_vec(&fake).expect("json"),
    )
    .expect("write");
    let report = verify_with(&write(&dir, "forged2.ndjson", &forged), &forged_dir, Some(trusted)).await;
    assert!(
        report.failures[0].message.contains(&format!(
            "signed by key {}, which is not among the keys",
            forger.key_id()
        )),
        "{}",
        report.human()
    );

    // The database source checks the database's own checkpoints, in the snapshot it reads the log in.
    let (code, report) = audit_cli(&stack.token, &["verify", "--database-url", stack.db.url(), "--json"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["checkpoints_verified"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merkle_proofs_prove_inclusion_and_consistency() {
    let dir = temp_dir("proofs");
    let stack = signing_stack(&dir).await;
    let first = history(&stack).await;
    assert_eq!(sign(&stack).await.0, 201);
    for n in 0..5 {
        transfer(&stack, &format!("more-{n}"), &[("bank", "bob", 1)]).await;
    }
    let (_, latest) = sign(&stack).await;
    let last = latest["position"].as_i64().expect("position");
    let binary = env!("CARGO_BIN_EXE_partida-audit");
    let prove = |args: Vec<String>| {
        let output = Command::new(binary)
            .env("PARTIDA_TOKEN", &stack.token)
            .arg("proof")
            .args(args)
            .output()
            .expect("run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let url = stack.query.url.clone();
    for position in [1, 3, first, last] {
        let (code, text) = prove(vec![
            "--url".into(),
            url.clone(),
            "--position".into(),
            position.to_string(),
        ]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.starts_with(&format!("proven: position {position} ")), "{text}");
    }
    let (code, text) = prove(vec![
        "--url".into(),
        url.clone(),
        "--position".into(),
        "2".into(),
        "--checkpoint".into(),
        first.to_string(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = prove(vec!["--url".into(), url.clone(), "--from".into(), first.to_string()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "signed at position {first} is a prefix of the log signed at position {last}"
        )),
        "{text}"
    );

    assert_error(
        &stack
            .get(&format!("/v1/audit/proof/inclusion?position={}", last + 1))
            .await,
        400,
        "validation_failed",
    );
    assert_error(
        &stack.get("/v1/audit/proof/inclusion?position=1&checkpoint=2").await,
        404,
        "checkpoint_not_found",
    );
    assert_error(
        &stack
            .get(&format!("/v1/audit/proof/consistency?from={last}&to={first}"))
            .await,
        400,
        "validation_failed",
    );
    let (_, keys) = stack.get("/v1/audit/keys").await;
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_as_of_a_position_or_a_time_agree_with_query_api() {
    let stack = Stack::start().await;
    let last = history(&stack).await;
    let (_, pay) = stack.get_at("/v1/transfers/pay", last).await;
    let at = pay["position"].as_i64().expect("position");
    let books = |args: &[&str]| audit_cli(&stack.token, &[&["books"], args].concat());
    let url = stack.query.url.clone();
    let alice = |report: &Value| {
        report["books"]["assets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["asset"] == "EUR")
            .flat_map(|a| a["accounts"].as_array().cloned().unwrap_or_default())
            .find(|l| l["id"] == "alice")
            .map(|l| l["balance"].clone())
    };

    let (code, report) = books(&["--url", &url, "--at-position", &at.to_string(), "--json"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(alice(&report), Some(Value::from(10_000 - 2_600)));
    assert_eq!(report["books"]["at_position"], at);

    // A time: the books after the last event recorded at or before it, on both sides.
    let (_, events) = stack.get("/v1/events?limit=1000").await;
    let events = events["events"].as_array().cloned().unwrap_or_default();
    let time = events[(at - 1) as usize]["recorded_at"]
        .as_str()
        .expect("time")
        .to_owned();
    let expected = events
        .iter()
        .filter(|e| e["recorded_at"].as_str().is_some_and(|t| t <= time.as_str()))
        .filter_map(|e| e["position"].as_i64())
        .max();
    let (code, report) = books(&["--url", &url, "--at-time", &time, "--json"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["books"]["at_position"].as_i64(), expected);
    let (status, served) = stack.get(&format!("/v1/trial-balance?at_time={time}")).await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served["at_position"].as_i64(), expected);
    let (_, by_time) = stack.get(&format!("/v1/accounts/alice/balance?at_time={time}")).await;
    let (_, by_position) = stack
        .get(&format!(
            "/v1/accounts/alice/balance?at_position={}",
            expected.unwrap_or(0)
        ))
        .await;
    assert_eq!(by_time, by_position);
    assert_eq!(by_time["at_position"].as_i64(), expected);
    let (_, before_anything) = stack.get("/v1/trial-balance?at_time=2000-01-01T00:00:00Z").await;
    assert_eq!(before_anything, serde_json::json!({"at_position": 0, "assets": []}));

    // An edited running balance in the read tables: the books differ.
    sqlx::query(
        "UPDATE ledger_g1.entries SET credits = credits + 1, balance = balance + 1 \
          WHERE account_id = 'alice' AND position = (SELECT max(position) FROM ledger_g1.entries \
                                                      WHERE account_id = 'alice' AND position <= $1)",
    )
    .bind(at)
    .execute(stack.db.pool())
    .await
    .expect("edit an entry");
    let (code, report) = books(&["--url", &url, "--at-position", &at.to_string(), "--json"]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report["differences"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("account alice:"),
        "{report}"
    );

    assert_error(
        &stack.get("/v1/trial-balance?at_time=noon").await,
        400,
        "validation_failed",
    );
    assert_error(
        &stack
            .get("/v1/trial-balance?at_time=2026-01-01T00:00:00Z&at_position=1")
            .await,
        400,
        "validation_failed",
    );
}

/// Transfers dated before they are recorded (version 2 events): the log still verifies, and the
/// books by effective time, replayed from the log, agree with query-api's until a read-table
/// entry's effective time is edited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_by_effective_time_agree_with_query_api() {
    let stack = Stack::start().await;
    history(&stack).await;
    let dated = |id: &str, amount: i64, at: &str| {
        serde_json::json!({"id": id, "effective_at": at,
            "postings": [{"debit": "alice", "credit": "bank", "amount": amount}]})
    };
    let mut last = 0;
    for body in [
        dated("fee-2024", 70, "2024-12-31T23:00:00Z"),
        dated("fee-2025", 30, "2025-06-30T00:00:00Z"),
    ] {
        let (status, body) = stack.post("/v1/transfers", body).await;
        assert_eq!(status.as_u16(), 201, "{body}");
        last = body["position"].as_i64().expect("position");
    }
    stack.get_at("/v1/accounts/alice", last).await;
    let (code, report) = audit_cli(&stack.token, &["verify", "--url", &stack.query.url, "--json"]);
    assert_eq!(code, Some(0), "{report}");

    let url = stack.query.url.clone();
    let books = |effective: &str| {
        audit_cli(
            &stack.token,
            &[
                "books",
                "--url",
                &url,
                "--at-position",
                &last.to_string(),
                "--as-of-effective",
                effective,
                "--json",
            ],
        )
    };
    let alice = |report: &Value| {
        report["books"]["assets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["accounts"].as_array().cloned().unwrap_or_default())
            .find(|l| l["id"] == "alice")
            .map(|l| (l["debits"].clone(), l["credits"].clone()))
    };
    // By the end of 2024 only the first fee had taken effect; by mid-2025 both.
    let (code, report) = books("2025-01-01T00:00:00Z");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(alice(&report), Some((Value::from(70), Value::from(0))), "{report}");
    assert_eq!(report["books"]["as_of_effective"], "2025-01-01T00:00:00.000000Z");
    let (code, report) = books("2025-07-01T00:00:00Z");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(alice(&report), Some((Value::from(100), Value::from(0))), "{report}");

    // A read-table entry moved to another effective time: the books differ.
    sqlx::query("UPDATE ledger_g1.entries SET effective_at = '2025-03-01T00:00:00Z' WHERE transfer_id = 'fee-2024'")
        .execute(stack.db.pool())
        .await
        .expect("edit an entry");
    let (code, report) = books("2025-01-01T00:00:00Z");
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report["differences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d.as_str().is_some_and(|d| d.starts_with("account alice:"))),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_earlier_checkpoints_verifiable() {
    let dir = temp_dir("rotation");
    let stack = signing_stack(&dir).await;
    history(&stack).await;
    let (_, first) = sign(&stack).await;
    // A second command-api with a new key: the rotation.
    let rotated =
        partida_e2e::start_command_api_with(signing_config(&stack.db.url_as(ServiceRole::Writer), &dir, 43)).await;
    transfer(&stack, "after-rotation", &[("bank", "bob", 5)]).await;
    let (status, second) = stack
        .http
        .post(&format!("{}/v1/audit/checkpoints", rotated.url), serde_json::json!({}))
        .await;
    assert_eq!(status.as_u16(), 201, "{second}");
    assert_ne!(first["key_id"], second["key_id"]);
    let (_, keys) = stack.get("/v1/audit/keys").await;
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(2), "{keys}");

    let (code, report) = audit_cli(&stack.token, &["verify", "--url", &stack.query.url, "--json"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["checkpoints_verified"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_signed_before_the_configured_standbys_replayed_it() {
    let dir = temp_dir("standbys");
    let db = partida_testkit::TestDb::new().await;
    let mut config = signing_config(&db.url_as(ServiceRole::Writer), &dir, 44);
    // No standby replicates from this test cluster.
    config.checkpoint_min_standbys = 1;
    config.checkpoint_replication_wait_ms = 200;
    let command = partida_e2e::start_command_api_with(config).await;
    let token = partida_e2e::issue_token(&db, partida_e2e::Role::Admin, "auditor").await;
    let http = partida_e2e::Http::with_token(&token);
    let (status, _) = http
        .post(
            &format!("{}/v1/assets", command.url),
            serde_json::json!({"code": "EUR", "scale": 2}),
        )
        .await;
    assert_eq!(status.as_u16(), 201);
    let response = http
        .post(&format!("{}/v1/audit/checkpoints", command.url), serde_json::json!({}))
        .await;
    assert_error(&response, 503, "not_replicated");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(stored, 0);
}
