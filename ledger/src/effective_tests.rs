//! Effective dates: a transfer may take effect for the books at another time than it is recorded.

use crate::testing::*;
use crate::*;

const HOUR: i64 = 3_600_000_000;

fn dated(id: &str, legs: &[(&str, &str, i64)], at: i64) -> PostTransfer {
    post_transfer(id, legs).effective_at(Timestamp(at)).expect("not a hold")
}

#[test]
fn a_back_dated_transfer_records_its_effective_time_in_version_2() {
    let command = dated("t", &[("alice", "bob", 30)], -48 * HOUR);
    let events = given(funded())
        .when_at(Command::PostTransfer(command), 10 * HOUR)
        .then_events();
    let [Event::TransferPosted(posted)] = events.as_slice() else {
        panic!("expected one TransferPosted, got {events:?}");
    };
    assert_eq!(posted.effective_at_micros, Some(-48 * HOUR));
    assert_eq!(posted.effective_at(10 * HOUR), -48 * HOUR);
    assert_eq!(events[0].schema_version(), TRANSFER_POSTED_V2);
}

#[test]
fn an_undated_transfer_stays_version_1_and_takes_effect_when_recorded() {
    let events = given(funded())
        .when_at(
            Command::PostTransfer(post_transfer("t", &[("alice", "bob", 30)])),
            10 * HOUR,
        )
        .then_events();
    let [Event::TransferPosted(posted)] = events.as_slice() else {
        panic!("expected one TransferPosted, got {events:?}");
    };
    assert_eq!(posted.effective_at(10 * HOUR), 10 * HOUR);
    assert_eq!(events[0].schema_version(), SCHEMA_VERSION);
}

#[test]
fn a_transfer_may_take_effect_at_most_a_day_after_it_is_recorded() {
    let now = 10 * HOUR;
    let latest = now + PostTransfer::MAX_EFFECTIVE_AHEAD_MICROS;
    given(funded())
        .when_at(Command::PostTransfer(dated("t", &[("alice", "bob", 1)], latest)), now)
        .then_events();
    let rejection = given(funded())
        .when_at(
            Command::PostTransfer(dated("t", &[("alice", "bob", 1)], latest + 1)),
            now,
        )
        .then_rejected("effective_too_late");
    assert_eq!(
        rejection,
        Rejection::EffectiveTooLate {
            transfer: transfer_id("t"),
            effective_at_micros: latest + 1,
            latest_micros: latest,
        }
    );
}

/// The effective time is part of what a retry must repeat: the same time is the same transfer
/// whenever it comes, another time or none is a conflict.
#[test]
fn a_retry_repeats_the_effective_time_or_conflicts() {
    let command = dated("t", &[("alice", "bob", 30)], -HOUR);
    let mut events = funded();
    events.push(command.to_event(0));
    given(events.clone())
        .when_at(Command::PostTransfer(command), 400 * HOUR)
        .then([]);
    given(events.clone())
        .when(Command::PostTransfer(dated("t", &[("alice", "bob", 30)], -2 * HOUR)))
        .then_rejected("idempotency_conflict");
    given(events)
        .when(Command::PostTransfer(post_transfer("t", &[("alice", "bob", 30)])))
        .then_rejected("idempotency_conflict");
}

#[test]
fn a_hold_cannot_have_an_effective_time() {
    assert_eq!(
        dated("h", &[("alice", "bob", 1)], 0).pending(None),
        Err(PostingsError::PendingEffective)
    );
    assert_eq!(
        hold("h", &[("alice", "bob", 1)], None)
            .effective_at(Timestamp(0))
            .map(|_| ()),
        Err(PostingsError::PendingEffective)
    );
}

/// Effective times are for the books only: limits are checked on the balance as recorded.
#[test]
fn limits_apply_to_the_recorded_balance_whatever_the_effective_time() {
    let rejection = given(funded())
        .when(Command::PostTransfer(dated("t", &[("alice", "bob", 101)], -HOUR)))
        .then_rejected("limit_exceeded");
    assert!(matches!(rejection, Rejection::LimitExceeded { .. }));
}
