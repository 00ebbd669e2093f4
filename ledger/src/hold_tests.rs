//! Two-phase transfers: a hold reserves, is resolved exactly once, and counts against limits.

use crate::testing::*;
use crate::*;

const SECOND: i64 = 1_000_000;

fn held(legs: &[(&str, &str, i64)]) -> Vec<Event> {
    let mut events = funded();
    events.push(transfer_posted(&hold("h", legs, Some(10))));
    events
}

fn pending(state: &State, id: &str) -> (i64, i64, i64, i64) {
    let a = &state.accounts[&account_id(id)];
    (a.debits, a.credits, a.pending_debits, a.pending_credits)
}

#[test]
fn a_hold_reserves_without_moving_and_expires_from_its_recorded_time() {
    let command = hold("h", &[("alice", "bob", 70)], Some(10));
    let state = given(funded())
        .when_at(Command::PostTransfer(command.clone()), 5 * SECOND)
        .then([Event::TransferPending(TransferPending {
            id: transfer_id("h"),
            postings: vec![posting("alice", "bob", 70)],
            metadata: Metadata::new(),
            timeout_secs: Some(10),
            expires_at_micros: Some(15 * SECOND),
        })]);
    assert_eq!(pending(&state, "alice"), (0, 100, 70, 0));
    assert_eq!(pending(&state, "bob"), (0, 0, 0, 70));
    assert_eq!(state.assets[&AssetCode::parse("EUR").unwrap()].held, 70);
    assert_eq!(state.stream_version(&StreamId::Transfer(transfer_id("h"))), 1);
}

#[test]
fn holds_count_against_the_limits_so_two_cannot_overspend() {
    let events = held(&[("alice", "bob", 70)]);
    let rejection = given(events.clone())
        .when(Command::PostTransfer(hold("h2", &[("alice", "bob", 40)], None)))
        .then_rejected("limit_exceeded");
    assert_eq!(rejection.details()["pending_debits"], 110);
    given(events.clone())
        .when(Command::PostTransfer(post_transfer("t", &[("alice", "bob", 31)])))
        .then_rejected("limit_exceeded");
    given(events)
        .when(Command::PostTransfer(post_transfer("t", &[("alice", "bob", 30)])))
        .then([transfer_posted(&post_transfer("t", &[("alice", "bob", 30)]))]);
}

#[test]
fn a_retried_hold_is_the_same_hold_whenever_it_comes() {
    given(held(&[("alice", "bob", 70)]))
        .when_at(
            Command::PostTransfer(hold("h", &[("alice", "bob", 70)], Some(10))),
            99 * SECOND,
        )
        .then([]);
    given(held(&[("alice", "bob", 70)]))
        .when(Command::PostTransfer(hold("h", &[("alice", "bob", 70)], Some(11))))
        .then_rejected("idempotency_conflict");
    given(held(&[("alice", "bob", 70)]))
        .when(Command::PostTransfer(post_transfer("h", &[("alice", "bob", 70)])))
        .then_rejected("idempotency_conflict");
}

#[test]
fn posting_in_full_moves_what_was_held_and_releases_it() {
    let state = given(held(&[("alice", "bob", 70)]))
        .when(post_hold("h", &[]))
        .then([Event::PendingPosted(PendingPosted {
            id: transfer_id("h"),
            postings: vec![posting("alice", "bob", 70)],
        })]);
    assert_eq!(pending(&state, "alice"), (70, 100, 0, 0));
    assert_eq!(pending(&state, "bob"), (0, 70, 0, 0));
    let eur = &state.assets[&AssetCode::parse("EUR").unwrap()];
    assert_eq!((eur.posted, eur.held), (170, 0));
    assert_eq!(state.stream_version(&StreamId::Transfer(transfer_id("h"))), 2);
}

#[test]
fn a_partial_post_moves_the_given_amounts_in_the_hold_order_and_releases_the_rest() {
    let legs = [("alice", "bob", 50), ("alice", "bank", 20), ("alice", "bob", 10)];
    let state = given(held(&legs))
        .when(post_hold("h", &[("alice", "bob", 10), ("alice", "bob", 45)]))
        .then([Event::PendingPosted(PendingPosted {
            id: transfer_id("h"),
            postings: vec![posting("alice", "bob", 45), posting("alice", "bob", 10)],
        })]);
    assert_eq!(pending(&state, "alice"), (55, 100, 0, 0));
    let rejection = given(held(&legs))
        .when(post_hold("h", &[("alice", "bob", 51)]))
        .then_rejected("pending_amount_exceeded");
    assert_eq!(rejection.details()["posting"], 0);
    given(held(&legs))
        .when(post_hold("h", &[("alice", "bank", 5), ("bob", "alice", 5)]))
        .then_rejected("pending_amount_exceeded");
}

#[test]
fn a_hold_resolves_exactly_once() {
    let posted = given(held(&[("alice", "bob", 70)]))
        .when(post_hold("h", &[]))
        .then_events();
    let mut after_post = held(&[("alice", "bob", 70)]);
    after_post.extend(posted);
    given(after_post.clone()).when(post_hold("h", &[])).then([]);
    given(after_post.clone())
        .when(post_hold("h", &[("alice", "bob", 7)]))
        .then_rejected("pending_resolved");
    let rejection = given(after_post.clone())
        .when(resolve("h", HoldAction::Void))
        .then_rejected("pending_resolved");
    assert_eq!(rejection.details()["resolution"], "posted");
    // The sweeper's late expiry finds nothing left to do.
    given(after_post)
        .when_at(resolve("h", HoldAction::Expire), 60 * SECOND)
        .then([]);

    let mut after_void = held(&[("alice", "bob", 70)]);
    after_void.push(Event::PendingVoided(PendingReleased { id: transfer_id("h") }));
    given(after_void.clone()).when(resolve("h", HoldAction::Void)).then([]);
    given(after_void)
        .when(post_hold("h", &[]))
        .then_rejected("pending_resolved");
}

#[test]
fn voiding_releases_everything() {
    let state = given(held(&[("alice", "bob", 70)]))
        .when(resolve("h", HoldAction::Void))
        .then([Event::PendingVoided(PendingReleased { id: transfer_id("h") })]);
    assert_eq!(pending(&state, "alice"), (0, 100, 0, 0));
    assert_eq!(pending(&state, "bob"), (0, 0, 0, 0));
}

#[test]
fn a_hold_expires_at_its_timeout_and_cannot_be_posted_after() {
    let events = held(&[("alice", "bob", 70)]);
    given(events.clone())
        .when_at(resolve("h", HoldAction::Expire), 10 * SECOND - 1)
        .then_rejected("pending_not_expired");
    let state = given(events.clone())
        .when_at(resolve("h", HoldAction::Expire), 10 * SECOND)
        .then([Event::PendingExpired(PendingReleased { id: transfer_id("h") })]);
    assert_eq!(pending(&state, "alice"), (0, 100, 0, 0));
    given(events.clone())
        .when_at(post_hold("h", &[]), 10 * SECOND - 1)
        .then_events();
    let rejection = given(events.clone())
        .when_at(post_hold("h", &[]), 10 * SECOND)
        .then_rejected("pending_expired");
    assert_eq!(rejection.details()["expires_at_micros"], 10 * SECOND);
    // A void is allowed until the hold is resolved, expired or not.
    given(events)
        .when_at(resolve("h", HoldAction::Void), 11 * SECOND)
        .then([Event::PendingVoided(PendingReleased { id: transfer_id("h") })]);
}

#[test]
fn only_holds_resolve() {
    given(funded())
        .when(post_hold("fund", &[]))
        .then_rejected("transfer_not_pending");
    given(funded())
        .when(resolve("nope", HoldAction::Void))
        .then_rejected("transfer_not_found");
}

#[test]
fn a_hold_is_reversed_by_what_it_posted_and_only_once_posted() {
    let events = held(&[("alice", "bob", 70)]);
    given(events.clone())
        .when(Command::PostTransfer(reversal("r", "h", &[("bob", "alice", 70)])))
        .then_rejected("transfer_not_posted");
    let mut posted = events;
    posted.push(Event::PendingPosted(PendingPosted {
        id: transfer_id("h"),
        postings: vec![posting("alice", "bob", 30)],
    }));
    given(posted.clone())
        .when(Command::PostTransfer(reversal("r", "h", &[("bob", "alice", 70)])))
        .then_rejected("reversal_mismatch");
    given(posted)
        .when(Command::PostTransfer(reversal("r", "h", &[("bob", "alice", 30)])))
        .then([transfer_posted(&reversal("r", "h", &[("bob", "alice", 30)]))]);
}

#[test]
fn an_account_with_open_holds_cannot_close() {
    let mut events = held(&[("bank", "bob", 5)]);
    events.push(Event::AccountFrozen(AccountLifecycleEvent { id: account_id("bob") }));
    let rejection = given(events)
        .when(Command::ChangeAccount {
            account: account_id("bob"),
            change: AccountLifecycle::Close,
        })
        .then_rejected("account_has_pending");
    assert_eq!(rejection.details()["pending_credits"], 5);
}

#[test]
fn holds_are_built_valid() {
    assert_eq!(
        reversal("r", "h", &[("a", "b", 1)]).pending(None),
        Err(PostingsError::PendingReversal)
    );
    assert!(post_transfer("t", &[("a", "b", 1)]).pending(Some(0)).is_err());
    assert!(
        post_transfer("t", &[("a", "b", 1)])
            .pending(Some(PostTransfer::MAX_TIMEOUT_SECS + 1))
            .is_err()
    );
    assert!(HoldAction::post(Some(vec![])).is_err());
    assert!(HoldAction::post(Some(vec![posting("a", "a", 1)])).is_err());
}

#[test]
fn hold_events_round_trip_through_their_stored_form() -> Result<(), Box<dyn std::error::Error>> {
    let events = [
        transfer_posted(&hold("h", &[("a", "b", 5)], Some(3))),
        transfer_posted(&hold("h", &[("a", "b", 5)], None)),
        Event::PendingPosted(PendingPosted {
            id: transfer_id("h"),
            postings: vec![posting("a", "b", 4)],
        }),
        Event::PendingVoided(PendingReleased { id: transfer_id("h") }),
        Event::PendingExpired(PendingReleased { id: transfer_id("h") }),
    ];
    for event in events {
        let back = Event::decode(event.event_type(), SCHEMA_VERSION, &event.data())?;
        assert_eq!(back, event);
        assert!(event.stream_id().is("transfer:h"));
    }
    Ok(())
}
