//! The event store against a real PostgreSQL: what the database refuses, and what the group-commit
//! writer guarantees under concurrency and failure.

use std::str::FromStr;

use ledger::testing::*;
use ledger::{AccountFlags, Command, Metadata, PostTransfer};
use partida_eventstore::{Reply, Submission, Writer, WriterConfig, WriterTask, events_after, verify_chain};
use partida_testkit::TestDb;
use sqlx::postgres::PgConnectOptions;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn writer(db: &TestDb) -> Result<(Writer, WriterTask), sqlx::Error> {
    Ok(Writer::spawn(WriterConfig::new(PgConnectOptions::from_str(db.url())?)))
}

async fn submit(writer: &Writer, command: Command) -> Reply {
    writer
        .submit(Submission::new(command))
        .await
        .unwrap_or_else(|e| panic!("append failed: {e}"))
}

/// EUR, a bank account and two customers who may not overdraw.
async fn open_books(writer: &Writer) {
    submit(writer, Command::RegisterAsset(register_asset("EUR", 2))).await;
    for (id, flags) in [
        ("bank", AccountFlags::default()),
        ("alice", no_overdraft()),
        ("bob", no_overdraft()),
    ] {
        let reply = submit(writer, Command::OpenAccount(open_account(id, "EUR", flags))).await;
        assert!(matches!(reply, Reply::Written { .. }), "{reply:?}");
    }
}

fn transfer(id: &str, legs: &[(&str, &str, i64)]) -> Command {
    Command::PostTransfer(post_transfer(id, legs))
}

/// An account's credits less its debits, as the write side holds them.
async fn write_side_balance(db: &TestDb, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT credits - debits FROM write_accounts WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
}

async fn all_events(db: &TestDb) -> Vec<partida_eventstore::StoredEvent> {
    events_after(db.pool(), 0, 1_000_000).await.unwrap_or_default()
}

#[tokio::test]
async fn the_database_refuses_to_change_or_remove_events() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    for statement in [
        "UPDATE events SET event_type = 'X' WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
        "TRUNCATE events CASCADE",
        "DELETE FROM event_head",
        "UPDATE event_head SET position = 1",
    ] {
        let error = sqlx::query(statement).execute(db.pool()).await.expect_err(statement);
        assert!(error.to_string().contains("event"), "{statement}: {error}");
    }
    assert_eq!(all_events(&db).await.len(), 4);
    Ok(())
}

/// Inserts a copy of the last event at `position` with `prev_hash`, as a rogue writer would.
async fn forge(db: &TestDb, position: i64, prev_hash: &str, recorded_at: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, data, \
                             metadata, recorded_at, prev_hash, hash) \
         SELECT $1, gen_random_uuid(), 'account:forged', 1, event_type, schema_version, data, metadata, \
                {recorded_at}, {prev_hash}, hash \
           FROM events ORDER BY position DESC LIMIT 1"
    ))
    .bind(position)
    .execute(db.pool())
    .await
    .map(|_| ())
}

#[tokio::test]
async fn the_database_refuses_gaps_broken_links_and_time_going_back() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    let last = "(SELECT hash FROM events WHERE position = 4)";
    let gap = forge(&db, 6, last, "now()").await.expect_err("a gap");
    assert!(gap.to_string().contains("gap in the log: event 6"), "{gap}");
    let broken = forge(&db, 5, "(SELECT hash FROM events WHERE position = 3)", "now()")
        .await
        .expect_err("a broken link");
    assert!(broken.to_string().contains("broken chain"), "{broken}");
    let past = forge(&db, 5, last, "'2000-01-01'").await.expect_err("time going back");
    assert!(past.to_string().contains("time runs backwards"), "{past}");
    let genesis = sqlx::query("UPDATE event_head SET position = 0")
        .execute(db.pool())
        .await
        .expect_err("head back");
    assert!(genesis.to_string().contains("cannot move back"), "{genesis}");
    // A well-formed link is accepted by the database (the hash itself is the auditor's to check).
    forge(&db, 5, last, "now()").await?;
    Ok(())
}

#[tokio::test]
async fn a_failing_command_is_isolated_and_the_rest_are_written() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    submit(&writer, transfer("fund", &[("bank", "alice", 1_000)])).await;
    // jsonb cannot store U+0000: this passes the domain and fails in the database.
    let mut poison = Metadata::new();
    poison.insert("note".into(), "\u{0}".into());
    let poisoned = PostTransfer::new(transfer_id("poison"), vec![posting("bank", "bob", 1)], poison, None)?;
    let mut batch: Vec<Submission> = (0..7)
        .map(|i| Submission::new(transfer(&format!("t{i}"), &[("alice", "bob", 10)])))
        .collect();
    batch.insert(3, Submission::new(Command::PostTransfer(poisoned)));
    let results = writer.submit_all(batch).await;
    assert_eq!(results.len(), 8);
    assert_eq!(results[3], Err(partida_eventstore::AppendError::Internal));
    for (i, result) in results.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert!(matches!(result, Ok(Reply::Written { .. })), "{i}: {result:?}");
    }
    let events = all_events(&db).await;
    assert_eq!(events.len(), 4 + 1 + 7);
    verify_chain(&events)?;
    Ok(())
}

#[tokio::test]
async fn each_event_keeps_its_own_commands_metadata_in_a_shared_batch() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    submit(&writer, transfer("fund", &[("bank", "alice", 1_000)])).await;
    // One batch: the commands of three requests, the first request's in two runs.
    let sent_as = |request: &str| partida_eventstore::CommandContext {
        request_id: Some(request.to_owned()),
        actor: Some(format!("{request}-actor")),
        ..Default::default()
    };
    let requests = ["r1", "r1", "r2", "r1", "r3"];
    let batch = requests
        .iter()
        .enumerate()
        .map(|(i, request)| Submission {
            context: sent_as(request),
            ..Submission::new(transfer(&format!("m{i}"), &[("alice", "bob", 1)]))
        })
        .collect();
    let results = writer.submit_all(batch).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Reply::Written { .. }))),
        "{results:?}"
    );
    let events = all_events(&db).await;
    let written: Vec<_> = events[events.len() - requests.len()..]
        .iter()
        .map(|e| (e.metadata["request_id"].as_str(), e.metadata["actor"].as_str()))
        .collect();
    let expected: Vec<_> = requests
        .iter()
        .map(|r| (Some(*r), Some(format!("{r}-actor"))))
        .collect();
    assert_eq!(
        written,
        expected.iter().map(|(r, a)| (*r, a.as_deref())).collect::<Vec<_>>()
    );
    verify_chain(&events)?;
    Ok(())
}

#[tokio::test]
async fn replays_answer_the_original_position_and_conflicts_are_refused() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    let first = submit(&writer, transfer("pay", &[("bank", "alice", 5)])).await;
    let Reply::Written { position } = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        submit(&writer, transfer("pay", &[("bank", "alice", 5)])).await,
        Reply::Replayed { position }
    );
    let conflict = submit(&writer, transfer("pay", &[("bank", "alice", 6)])).await;
    assert!(
        matches!(conflict, Reply::Rejected(ref r) if r.code() == "idempotency_conflict"),
        "{conflict:?}"
    );
    // Within one batch, the second copy sees the first.
    let results = writer
        .submit_all(vec![
            Submission::new(transfer("twice", &[("bank", "bob", 1)])),
            Submission::new(transfer("twice", &[("bank", "bob", 1)])),
        ])
        .await;
    let Ok(Reply::Written { position }) = results[0] else {
        panic!("{results:?}")
    };
    assert_eq!(results[1], Ok(Reply::Replayed { position }));
    // A rejected transfer writes nothing and leaves its id free.
    let overdraft = submit(&writer, transfer("free", &[("alice", "bob", 100)])).await;
    assert!(matches!(overdraft, Reply::Rejected(ref r) if r.code() == "limit_exceeded"));
    assert!(matches!(
        submit(&writer, transfer("free", &[("alice", "bob", 5)])).await,
        Reply::Written { .. }
    ));
    Ok(())
}

/// The writer decides a transfer between accounts it knows without loading them, so without
/// seeing the log's transfers. A transfer sent again after its accounts changed, which decided
/// afresh would be refused, still answers as the replay it is, and a different one under the
/// same id as a conflict.
#[tokio::test]
async fn a_replay_that_would_now_be_refused_answers_its_first_position() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    submit(&writer, transfer("fund", &[("bank", "alice", 5)])).await;
    let Reply::Written { position } = submit(&writer, transfer("spend", &[("alice", "bob", 5)])).await else {
        panic!("the spend was not written")
    };
    // alice has nothing left: decided again, this spend would overdraw her.
    assert_eq!(
        submit(&writer, transfer("spend", &[("alice", "bob", 5)])).await,
        Reply::Replayed { position }
    );
    for (other, code) in [
        (("alice", "bob", 4), "idempotency_conflict"),
        (("bank", "bob", 5), "idempotency_conflict"),
    ] {
        let reply = submit(&writer, transfer("spend", &[other])).await;
        assert!(matches!(reply, Reply::Rejected(ref r) if r.code() == code), "{reply:?}");
    }
    // The same in a batch with a new transfer: the new one is written, the replay answered.
    let results = writer
        .submit_all(vec![
            Submission::new(transfer("spend", &[("alice", "bob", 5)])),
            Submission::new(transfer("refund", &[("bob", "alice", 1)])),
        ])
        .await;
    assert_eq!(results[0], Ok(Reply::Replayed { position }));
    assert!(matches!(results[1], Ok(Reply::Written { .. })), "{results:?}");
    let events = all_events(&db).await;
    verify_chain(&events)?;
    assert_eq!(events.iter().filter(|e| e.stream_id == "transfer:spend").count(), 1);
    Ok(())
}

/// Each writer keeps the accounts as its own batches left them. When another writer has written
/// since, what one keeps is stale (here: alice's unit, which the other spent), and its batch must
/// be decided again on the log's state.
#[tokio::test]
async fn a_writer_decides_again_on_what_another_writer_changed() -> TestResult {
    let db = TestDb::new().await;
    let (first, _first_task) = writer(&db)?;
    let (second, _second_task) = writer(&db)?;
    open_books(&first).await;
    submit(&second, transfer("fund", &[("bank", "alice", 1)])).await;
    assert!(matches!(
        submit(&first, transfer("to-bob", &[("alice", "bob", 1)])).await,
        Reply::Written { .. }
    ));
    let late = submit(&second, transfer("to-bank", &[("alice", "bank", 1)])).await;
    assert!(
        matches!(late, Reply::Rejected(ref r) if r.code() == "limit_exceeded"),
        "{late:?}"
    );
    // And the second writer knows the log's state again: alice, funded anew, can spend.
    submit(&first, transfer("fund-again", &[("bank", "alice", 2)])).await;
    assert!(matches!(
        submit(&second, transfer("to-bank-2", &[("alice", "bank", 2)])).await,
        Reply::Written { .. }
    ));
    verify_chain(&all_events(&db).await)?;
    assert_eq!(write_side_balance(&db, "alice").await?, 0);
    Ok(())
}

#[tokio::test]
async fn idempotency_keys_replay_and_conflict() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    let keyed = |hash: u8| Submission {
        idempotency_key: Some(partida_eventstore::IdempotencyKey {
            key: "k-1".into(),
            request_hash: [hash; 32],
        }),
        ..Submission::new(Command::ChangeAccount {
            account: account_id("bob"),
            change: ledger::AccountLifecycle::Freeze,
        })
    };
    let Ok(Reply::Written { position }) = writer.submit(keyed(1)).await else {
        panic!("first freeze")
    };
    assert_eq!(writer.submit(keyed(1)).await, Ok(Reply::Replayed { position }));
    let conflict = writer.submit(keyed(2)).await;
    assert!(
        matches!(conflict, Ok(Reply::Rejected(ref r)) if r.code() == "idempotency_conflict"),
        "{conflict:?}"
    );
    Ok(())
}

#[tokio::test]
async fn two_writers_keep_one_dense_chain_without_double_spending() -> TestResult {
    let db = TestDb::new().await;
    let (first, _first_task) = writer(&db)?;
    let (second, _second_task) = writer(&db)?;
    open_books(&first).await;
    submit(&first, transfer("fund", &[("bank", "alice", 100)])).await;
    // Both writers race to spend alice's 100 in 1-unit transfers, each id submitted to both.
    let mut tasks = Vec::new();
    for i in 0..150 {
        for writer in [first.clone(), second.clone()] {
            tasks.push(tokio::spawn(async move {
                writer
                    .submit(Submission::new(transfer(&format!("spend-{i}"), &[("alice", "bob", 1)])))
                    .await
            }));
        }
    }
    let mut written = 0;
    let mut positions = std::collections::HashMap::new();
    for task in tasks {
        match task.await?? {
            Reply::Written { position } | Reply::Replayed { position } => {
                written += 1;
                positions.entry(position).or_insert(0);
            }
            Reply::Rejected(r) => assert_eq!(r.code(), "limit_exceeded"),
            Reply::Recorded(answer) => panic!("no batch here was keyed: {answer}"),
        }
    }
    let events = all_events(&db).await;
    verify_chain(&events)?;
    let spends = events
        .iter()
        .filter(|e| e.stream_id.starts_with("transfer:spend-"))
        .count();
    assert_eq!(spends, 100, "exactly alice's balance was spent, each id once");
    assert_eq!(positions.len(), 100, "both copies of an id answer the same position");
    assert!(written >= 100);
    assert_eq!(write_side_balance(&db, "alice").await?, 0);
    Ok(())
}

/// Waits until `count` writer sessions wait for a lock.
async fn until_writers_wait(db: &TestDb, count: i64) -> Result<(), sqlx::Error> {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'partida-writer' AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.pool())
        .await?;
        if waiting >= count {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Two writers decide on the same head, both spending alice's last unit; their writes queue on
/// the head's row. The second to get it finds the head moved, writes nothing, and decides again
/// on the state the first left: one spend, one refusal, one dense chain.
#[tokio::test]
async fn a_batch_decided_on_a_head_that_moved_is_decided_again() -> TestResult {
    let db = TestDb::new().await;
    let (first, _first_task) = writer(&db)?;
    let (second, _second_task) = writer(&db)?;
    open_books(&first).await;
    submit(&first, transfer("fund", &[("bank", "alice", 1)])).await;
    // Both writers can load and decide, but not write, while the head is locked here.
    let mut blocker = db.pool().begin().await?;
    sqlx::query("SELECT FROM event_head FOR UPDATE")
        .execute(&mut *blocker)
        .await?;
    let spend = |writer: &Writer, id: &'static str, to: &'static str| {
        let writer = writer.clone();
        tokio::spawn(async move { writer.submit(Submission::new(transfer(id, &[("alice", to, 1)]))).await })
    };
    let to_bob = spend(&first, "to-bob", "bob");
    let to_bank = spend(&second, "to-bank", "bank");
    until_writers_wait(&db, 2).await?;
    blocker.rollback().await?;
    let replies = [to_bob.await??, to_bank.await??];
    let written = replies.iter().filter(|r| matches!(r, Reply::Written { .. })).count();
    let refused: Vec<&str> = replies
        .iter()
        .filter_map(|r| match r {
            Reply::Rejected(rejection) => Some(rejection.code()),
            _ => None,
        })
        .collect();
    assert_eq!((written, refused), (1, vec!["limit_exceeded"]), "{replies:?}");
    let events = all_events(&db).await;
    verify_chain(&events)?;
    assert_eq!(write_side_balance(&db, "alice").await?, 0);
    Ok(())
}

/// A rebuild of the write side gives the head's row a new version without moving it. A batch
/// decided on the state before it (here: alice can still spend her unit) must not be written
/// after it (here: it finds her spent), so it is decided again.
#[tokio::test]
async fn a_batch_decided_before_a_write_side_rebuild_is_decided_again() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    submit(&writer, transfer("fund", &[("bank", "alice", 1)])).await;
    // What `rebuild_write_side` does, with a correction of its own, left uncommitted.
    let mut rebuild = db.pool().begin().await?;
    sqlx::query("UPDATE event_head SET position = position")
        .execute(&mut *rebuild)
        .await?;
    sqlx::query("UPDATE write_accounts SET debits = debits + 1 WHERE id = 'alice'")
        .execute(&mut *rebuild)
        .await?;
    let spend = tokio::spawn({
        let writer = writer.clone();
        async move {
            writer
                .submit(Submission::new(transfer("late", &[("alice", "bob", 1)])))
                .await
        }
    });
    until_writers_wait(&db, 1).await?;
    rebuild.commit().await?;
    match spend.await?? {
        Reply::Rejected(rejection) => assert_eq!(rejection.code(), "limit_exceeded"),
        other => panic!("decided on the state before the rebuild: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn recorded_time_never_decreases_along_positions() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    // Put the head's time an hour ahead, as a writer with a fast clock would have.
    sqlx::query("ALTER TABLE event_head DISABLE TRIGGER event_head_forward")
        .execute(db.pool())
        .await?;
    sqlx::query("UPDATE event_head SET recorded_at = recorded_at + interval '1 hour'")
        .execute(db.pool())
        .await?;
    sqlx::query("ALTER TABLE event_head ENABLE TRIGGER event_head_forward")
        .execute(db.pool())
        .await?;
    for i in 0..5 {
        submit(&writer, transfer(&format!("t{i}"), &[("bank", "bob", 1)])).await;
    }
    let events = all_events(&db).await;
    verify_chain(&events)?;
    assert!(
        events
            .windows(2)
            .all(|w| w[0].recorded_at_micros <= w[1].recorded_at_micros)
    );
    Ok(())
}

#[tokio::test]
async fn floats_in_metadata_survive_jsonb_so_hashes_and_replays_hold() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    // Values whose decimal form, as jsonb prints it, parses back to another double without
    // correct rounding; the largest double, which jsonb prints with 309 digits; and integers in
    // exponent form beyond 2^53, which jsonb prints back as integers no double equals.
    let metadata: Metadata = serde_json::from_str(
        r#"{"a": 9.343324411917e25, "b": 1.7e308, "c": 1.7976931348623157e308, "d": 0.1, "e": -2.5e-8, "f": 100.0,
            "g": 9007199254740993e0, "h": [12345678901234567.5e1, 1e21]}"#,
    )?;
    let command = Command::PostTransfer(PostTransfer::new(
        transfer_id("floats"),
        vec![posting("bank", "alice", 1)],
        metadata,
        None,
    )?);
    let Reply::Written { position } = submit(&writer, command.clone()).await else {
        panic!("not written")
    };
    verify_chain(&all_events(&db).await)?;
    assert_eq!(submit(&writer, command).await, Reply::Replayed { position });
    Ok(())
}

#[tokio::test]
async fn a_database_lock_timeout_does_not_cut_the_writers_queue_short() -> TestResult {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    sqlx::query(&format!("ALTER DATABASE \"{name}\" SET lock_timeout = '1ms'"))
        .execute(db.pool())
        .await?;
    let (writer, _task) = writer(&db)?;
    let mut blocker = db.pool().begin().await?;
    sqlx::query("SELECT 1 FROM event_head FOR UPDATE")
        .execute(&mut *blocker)
        .await?;
    let pending = tokio::spawn({
        let writer = writer.clone();
        async move {
            writer
                .submit(Submission::new(Command::RegisterAsset(register_asset("EUR", 2))))
                .await
        }
    });
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'partida-writer' AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.pool())
        .await?;
        if waiting == 1 || pending.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    blocker.rollback().await?;
    assert!(matches!(pending.await?, Ok(Reply::Written { .. })));
    Ok(())
}

/// The write-side tables as text rows, in a stable order.
async fn write_side(db: &TestDb) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t::text FROM (SELECT 'asset' AS kind, code AS id, w::text AS row FROM write_assets w \
          UNION ALL SELECT 'account', id, w::text FROM write_accounts w) t ORDER BY kind, id",
    )
    .fetch_all(db.pool())
    .await
}

#[tokio::test]
async fn the_write_side_is_rebuilt_from_the_log() -> TestResult {
    let db = TestDb::new().await;
    let (writer, _task) = writer(&db)?;
    open_books(&writer).await;
    submit(&writer, transfer("fund", &[("bank", "alice", 500)])).await;
    submit(&writer, transfer("pay", &[("alice", "bob", 200)])).await;
    let honest = write_side(&db).await?;
    sqlx::query("UPDATE write_accounts SET credits = credits + 1000 WHERE id = 'alice'")
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM write_accounts WHERE id = 'bob'")
        .execute(db.pool())
        .await?;
    assert_ne!(write_side(&db).await?, honest);

    let rebuilt = partida_eventstore::rebuild_write_side(db.pool()).await?;
    assert_eq!(write_side(&db).await?, honest);
    assert_eq!((rebuilt.assets, rebuilt.accounts), (1, 3));
    // The writer decides on the rebuilt state: alice has 300, not 1,300.
    let Reply::Rejected(rejection) = submit(&writer, transfer("too-much", &[("alice", "bob", 301)])).await else {
        panic!("an overdraft was accepted")
    };
    assert_eq!(rejection.code(), "limit_exceeded");
    assert!(matches!(
        submit(&writer, transfer("fits", &[("alice", "bob", 300)])).await,
        Reply::Written { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn the_writers_session_plans_generically_serially_and_never_compiles() -> TestResult {
    use sqlx::{ConnectOptions, Connection};
    let db = TestDb::new().await;
    let config = WriterConfig::new(PgConnectOptions::from_str(db.url())?);
    let mut session = config.connect_options.connect().await?;
    let settings: (String, String, String, String) = sqlx::query_as(
        "SELECT current_setting('plan_cache_mode'), current_setting('max_parallel_workers_per_gather'), \
                current_setting('jit'), current_setting('application_name')",
    )
    .fetch_one(&mut session)
    .await?;
    assert_eq!(
        settings,
        (
            "force_generic_plan".into(),
            "0".into(),
            "off".into(),
            "partida-writer".into()
        )
    );
    session.close().await?;
    Ok(())
}
