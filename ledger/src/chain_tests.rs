//! Conditions (a transfer's preconditions on an account) and chains (commands accepted all or
//! none), with the account revision they build on.

use crate::testing::*;
use crate::*;

fn revision(state: &State, id: &str) -> i64 {
    state.accounts[&account_id(id)].revision
}

fn when(account: &str, check: Check) -> Condition {
    Condition {
        account: account_id(account),
        check,
    }
}

fn conditional(id: &str, legs: &[(&str, &str, i64)], conditions: Vec<Condition>) -> PostTransfer {
    post_transfer(id, legs).with_conditions(conditions).unwrap()
}

#[test]
fn a_revision_counts_every_event_that_changed_the_account_once() {
    let state = given(funded()).state();
    assert_eq!(revision(&state, "alice"), 2);
    assert_eq!(revision(&state, "bob"), 1);
    // Two legs on alice in one transfer revise her once.
    let twice = post_transfer("t", &[("alice", "bob", 10), ("alice", "bank", 5)]);
    let state = given(funded())
        .when(Command::PostTransfer(twice.clone()))
        .then([transfer_posted(&twice)]);
    assert_eq!(
        [
            revision(&state, "alice"),
            revision(&state, "bob"),
            revision(&state, "bank")
        ],
        [3, 2, 3]
    );
    // A hold revises its accounts, and so does its resolution; freezing does too.
    let mut events = funded();
    events.push(transfer_posted(&hold("h", &[("alice", "bob", 10)], None)));
    let state = given(events)
        .when(Command::ResolveHold(ResolveHold {
            id: transfer_id("h"),
            action: HoldAction::Void,
        }))
        .then([Event::PendingVoided(PendingReleased { id: transfer_id("h") })]);
    assert_eq!([revision(&state, "alice"), revision(&state, "bob")], [4, 3]);
}

#[test]
fn an_expected_revision_guards_a_read_decide_write() {
    let ok = conditional("t", &[("alice", "bob", 10)], vec![when("alice", Check::Revision(2))]);
    given(funded())
        .when(Command::PostTransfer(ok.clone()))
        .then([transfer_posted(&ok)]);
    let stale = conditional("t", &[("alice", "bob", 10)], vec![when("bob", Check::Revision(2))]);
    let rejection = given(funded())
        .when(Command::PostTransfer(stale))
        .then_rejected("condition_failed");
    assert_eq!(
        rejection.details(),
        serde_json::json!({"condition": 0, "account": "bob", "check": "revision", "expected": 2, "actual": 1})
    );
}

#[test]
fn available_at_least_counts_what_holds_reserve() {
    let mut events = funded();
    events.push(transfer_posted(&hold("h", &[("alice", "bob", 30)], None)));
    let enough = conditional(
        "t",
        &[("bank", "bob", 1)],
        vec![when("alice", Check::AvailableAtLeast(70))],
    );
    given(events.clone())
        .when(Command::PostTransfer(enough.clone()))
        .then([transfer_posted(&enough)]);
    let rejection = given(events)
        .when(Command::PostTransfer(conditional(
            "t",
            &[("bank", "bob", 1)],
            vec![
                when("bob", Check::AvailableAtLeast(0)),
                when("alice", Check::AvailableAtLeast(71)),
            ],
        )))
        .then_rejected("condition_failed");
    assert_eq!(rejection.details()["condition"], 1);
    assert_eq!(rejection.details()["actual"], 70);
}

#[test]
fn a_condition_on_an_unknown_account_names_it() {
    given(funded())
        .when(Command::PostTransfer(conditional(
            "t",
            &[("alice", "bob", 1)],
            vec![when("carol", Check::Revision(1))],
        )))
        .then_rejected("account_not_found");
}

#[test]
fn a_retry_is_recognized_before_its_conditions_are_checked() {
    // The transfer itself moved the revision: its retry must still be answered as a replay.
    let guarded = conditional("t", &[("alice", "bob", 10)], vec![when("alice", Check::Revision(2))]);
    let mut events = funded();
    events.push(transfer_posted(&guarded));
    given(events).when(Command::PostTransfer(guarded)).then([]);
}

#[test]
fn a_chain_is_decided_in_order_against_its_earlier_members() {
    // bob can pay carol only what alice's transfer, earlier in the chain, gives him.
    let first = post_transfer("t1", &[("alice", "bob", 60)]);
    let second = post_transfer("t2", &[("bob", "bank", 60)]);
    let mut state = given(funded()).state();
    let before = state.clone();
    let chain = [
        Command::PostTransfer(first.clone()),
        Command::PostTransfer(second.clone()),
    ];
    let decided = decide_chain(&mut state, &chain, Timestamp(0)).unwrap();
    assert_eq!(
        decided,
        vec![vec![transfer_posted(&first)], vec![transfer_posted(&second)]]
    );
    assert_eq!(state, before, "the state is left for the caller to apply");
}

#[test]
fn a_refused_member_refuses_the_chain_and_leaves_the_state_as_it_was() {
    let mut state = given(funded()).state();
    let before = state.clone();
    let chain = [
        Command::PostTransfer(post_transfer("t1", &[("alice", "bob", 60)])),
        Command::PostTransfer(hold("h", &[("bob", "bank", 30)], None)),
        Command::PostTransfer(post_transfer("t3", &[("alice", "bob", 41)])),
    ];
    let (member, rejection) = decide_chain(&mut state, &chain, Timestamp(0)).unwrap_err();
    assert_eq!((member, rejection.code()), (2, "limit_exceeded"));
    assert_eq!(state, before);
    let linked = linked_failed("pay", member, &chain[member], &rejection);
    assert_eq!(
        linked.details(),
        serde_json::json!({"chain": "pay", "member": 2, "id": "t3", "code": "limit_exceeded"})
    );
}
