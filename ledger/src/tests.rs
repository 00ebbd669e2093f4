//! The ledger's rules, one scenario each.

use crate::testing::*;
use crate::*;

fn eur_ledger() -> Vec<Event> {
    vec![
        asset_registered("EUR", 2),
        asset_registered("USD", 2),
        account_opened("bank", "EUR", AccountFlags::default()),
        account_opened("alice", "EUR", no_overdraft()),
        account_opened("bob", "EUR", no_overdraft()),
        account_opened("usd", "USD", AccountFlags::default()),
    ]
}

fn funded() -> Vec<Event> {
    let mut events = eur_ledger();
    events.push(transfer_posted(&post_transfer("fund", &[("bank", "alice", 100)])));
    events
}

#[test]
fn assets_register_once_and_replay_identically() {
    let command = Command::RegisterAsset(register_asset("EUR", 2));
    given([]).when(command.clone()).then([asset_registered("EUR", 2)]);
    given([asset_registered("EUR", 2)]).when(command).then([]);
    given([asset_registered("EUR", 2)])
        .when(Command::RegisterAsset(register_asset("EUR", 3)))
        .then_rejected("idempotency_conflict");
}

#[test]
fn an_account_needs_a_registered_asset() {
    given([])
        .when(Command::OpenAccount(open_account("a", "EUR", AccountFlags::default())))
        .then_rejected("asset_not_found");
}

#[test]
fn the_normal_side_defaults_from_the_overdraft_flag() {
    assert_eq!(open_account("a", "EUR", no_overdraft()).normal_side, NormalSide::Credit);
    assert_eq!(
        open_account("a", "EUR", AccountFlags::default()).normal_side,
        NormalSide::Debit
    );
}

#[test]
fn reopening_an_account_replays_or_conflicts() {
    let open = open_account("alice", "EUR", no_overdraft());
    given(eur_ledger()).when(Command::OpenAccount(open.clone())).then([]);
    let mut renamed = open;
    renamed.name = "someone else".into();
    given(eur_ledger())
        .when(Command::OpenAccount(renamed))
        .then_rejected("idempotency_conflict");
}

#[test]
fn a_transfer_moves_balances_on_both_sides() {
    let transfer = post_transfer("t1", &[("bank", "alice", 100)]);
    let state = given(eur_ledger())
        .when(Command::PostTransfer(transfer.clone()))
        .then([transfer_posted(&transfer)]);
    let bank = &state.accounts[&account_id("bank")];
    let alice = &state.accounts[&account_id("alice")];
    assert_eq!((bank.debits, bank.credits, bank.balance()), (100, 0, 100));
    assert_eq!((alice.debits, alice.credits, alice.balance()), (0, 100, 100));
    assert_eq!(
        state.assets[&AssetCode::parse("EUR").unwrap_or_else(|_| unreachable!())].posted,
        100
    );
}

#[test]
fn overdrafts_are_refused_with_the_account_and_flag() {
    let rejection = given(funded())
        .when(Command::PostTransfer(post_transfer("t2", &[("alice", "bob", 101)])))
        .then_rejected("limit_exceeded");
    assert_eq!(
        rejection.details(),
        serde_json::json!({
            "account": "alice", "flag": "debits_must_not_exceed_credits", "debits": 101, "credits": 100,
            "pending_debits": 0, "pending_credits": 0
        })
    );
    given(funded())
        .when(Command::PostTransfer(post_transfer("t2", &[("alice", "bob", 100)])))
        .then([transfer_posted(&post_transfer("t2", &[("alice", "bob", 100)]))]);
}

#[test]
fn limits_apply_to_the_transfer_as_a_whole() {
    // Alice pays 150 to bob while receiving 100 in the same transfer: net -50 from 100 is fine.
    let transfer = post_transfer("t2", &[("alice", "bob", 150), ("bank", "alice", 100)]);
    given(funded())
        .when(Command::PostTransfer(transfer.clone()))
        .then([transfer_posted(&transfer)]);
}

#[test]
fn a_rejected_leg_rejects_the_whole_transfer() {
    let transfer = post_transfer("t2", &[("bank", "bob", 10), ("alice", "nobody", 5)]);
    given(funded())
        .when(Command::PostTransfer(transfer))
        .then_rejected("account_not_found");
}

#[test]
fn both_sides_must_hold_the_same_asset() {
    given(eur_ledger())
        .when(Command::PostTransfer(post_transfer("t", &[("usd", "bank", 1)])))
        .then_rejected("asset_mismatch");
}

#[test]
fn transfer_ids_are_idempotency_keys() {
    let transfer = post_transfer("fund", &[("bank", "alice", 100)]);
    given(funded()).when(Command::PostTransfer(transfer)).then([]);
    given(funded())
        .when(Command::PostTransfer(post_transfer("fund", &[("bank", "alice", 101)])))
        .then_rejected("idempotency_conflict");
}

#[test]
fn frozen_and_closed_accounts_refuse_postings() {
    let freeze = Command::ChangeAccount {
        account: account_id("alice"),
        change: AccountLifecycle::Freeze,
    };
    let state = given(funded())
        .when(freeze.clone())
        .then([Event::AccountFrozen(AccountLifecycleEvent {
            id: account_id("alice"),
        })]);
    assert_eq!(state.accounts[&account_id("alice")].version, 2);
    let mut events = funded();
    events.push(Event::AccountFrozen(AccountLifecycleEvent {
        id: account_id("alice"),
    }));
    given(events.clone())
        .when(Command::PostTransfer(post_transfer("t", &[("bank", "alice", 1)])))
        .then_rejected("account_frozen");
    given(events.clone()).when(freeze).then_rejected("account_frozen");
    let unfreeze = Command::ChangeAccount {
        account: account_id("alice"),
        change: AccountLifecycle::Unfreeze,
    };
    given(events)
        .when(unfreeze.clone())
        .then([Event::AccountUnfrozen(AccountLifecycleEvent {
            id: account_id("alice"),
        })]);
    given(funded()).when(unfreeze).then_rejected("account_not_frozen");

    let mut closed = eur_ledger();
    closed.push(Event::AccountClosed(AccountLifecycleEvent { id: account_id("bob") }));
    given(closed.clone())
        .when(Command::PostTransfer(post_transfer("t", &[("bank", "bob", 1)])))
        .then_rejected("account_closed");
    given(closed)
        .when(Command::ChangeAccount {
            account: account_id("bob"),
            change: AccountLifecycle::Unfreeze,
        })
        .then_rejected("account_closed");
}

#[test]
fn only_empty_accounts_close() {
    let close = Command::ChangeAccount {
        account: account_id("alice"),
        change: AccountLifecycle::Close,
    };
    let rejection = given(funded()).when(close.clone()).then_rejected("account_not_empty");
    assert_eq!(rejection.details()["balance"], 100);
    given(eur_ledger())
        .when(close)
        .then([Event::AccountClosed(AccountLifecycleEvent {
            id: account_id("alice"),
        })]);
    given([])
        .when(Command::ChangeAccount {
            account: account_id("x"),
            change: AccountLifecycle::Close,
        })
        .then_rejected("account_not_found");
}

#[test]
fn a_reversal_posts_the_mirror_image_once() {
    let mut events = funded();
    let original = post_transfer("pay", &[("alice", "bob", 30), ("alice", "bank", 1)]);
    events.push(transfer_posted(&original));
    let reverse = reversal("undo", "pay", &[("bank", "alice", 1), ("bob", "alice", 30)]);
    let state = given(events.clone())
        .when(Command::PostTransfer(reverse.clone()))
        .then([transfer_posted(&reverse)]);
    assert_eq!(
        state.transfers[&transfer_id("pay")].reversed_by,
        Some(transfer_id("undo"))
    );
    assert_eq!(state.accounts[&account_id("alice")].balance(), 100);

    events.push(transfer_posted(&reverse));
    given(events.clone())
        .when(Command::PostTransfer(reversal(
            "again",
            "pay",
            &[("bank", "alice", 1), ("bob", "alice", 30)],
        )))
        .then_rejected("already_reversed");
    given(funded())
        .when(Command::PostTransfer(reversal("bad", "fund", &[("alice", "bank", 99)])))
        .then_rejected("reversal_mismatch");
    given(funded())
        .when(Command::PostTransfer(reversal("bad", "nope", &[("alice", "bank", 99)])))
        .then_rejected("transfer_not_found");
}

#[test]
fn totals_beyond_i64_are_refused() {
    let big = post_transfer("big", &[("bank", "bob", i64::MAX)]);
    let mut events = eur_ledger();
    events.push(transfer_posted(&big));
    given(events)
        .when(Command::PostTransfer(post_transfer("one", &[("bank", "bob", 1)])))
        .then_rejected("overflow");
    given(eur_ledger())
        .when(Command::PostTransfer(post_transfer(
            "two",
            &[("bank", "bob", i64::MAX), ("bank", "bob", 1)],
        )))
        .then_rejected("overflow");
}

#[test]
fn postings_are_validated_on_construction() {
    let none = PostTransfer::new(transfer_id("t"), vec![], Metadata::new(), None);
    assert!(matches!(none, Err(PostingsError::Count { .. })));
    let same = PostTransfer::new(transfer_id("t"), vec![posting("a", "a", 1)], Metadata::new(), None);
    assert_eq!(same, Err(PostingsError::SameAccount { index: 0 }));
    let many = PostTransfer::new(transfer_id("t"), vec![posting("a", "b", 1); 65], Metadata::new(), None);
    assert!(matches!(many, Err(PostingsError::Count { .. })));
}
