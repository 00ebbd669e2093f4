//! A given/when/then harness for the domain: `given(events).when(command).then(events)`.
//!
//! Fixture builders panic on invalid literals: they exist for tests only.
#![expect(
    clippy::expect_used,
    reason = "test fixtures are literals; a bad one is a bug in the test"
)]

use crate::command::{
    AccountFlags, Command, HoldAction, Metadata, OpenAccount, PostTransfer, Posting, RegisterAsset, ResolveHold,
};
use crate::decide::decide;
use crate::event::Event;
use crate::ids::{AccountId, Amount, AssetCode, Scale, SubjectId, Timestamp, TransferId};
use crate::rejection::Rejection;
use crate::state::State;

pub struct Given {
    state: State,
}

/// Starts a scenario from the state the `events` produce.
pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let mut state = State::default();
    for event in events {
        state.apply(&event);
    }
    Given { state }
}

impl Given {
    /// The state the given events produce.
    pub fn state(self) -> State {
        self.state
    }

    pub fn when(self, command: Command) -> When {
        self.when_at(command, 0)
    }

    /// [`when`](Self::when), decided at `now_micros`.
    pub fn when_at(self, command: Command, now_micros: i64) -> When {
        let result = decide(&self.state, &command, Timestamp(now_micros));
        When {
            state: self.state,
            result,
        }
    }
}

pub struct When {
    state: State,
    result: Result<Vec<Event>, Rejection>,
}

impl When {
    /// Asserts the decided events and returns the state after them.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = Event>) -> State {
        let expected: Vec<Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected);
                events.iter().fold(self.state, crate::state::evolve)
            }
            Err(rejection) => panic!("expected events {expected:?}, got rejection {rejection:?}"),
        }
    }

    /// Asserts the command was decided (into any events) and returns them.
    #[track_caller]
    pub fn then_events(self) -> Vec<Event> {
        match self.result {
            Ok(events) => events,
            Err(rejection) => panic!("expected events, got rejection {rejection:?}"),
        }
    }

    /// Asserts the command was rejected with `code` and returns the rejection.
    #[track_caller]
    pub fn then_rejected(self, code: &str) -> Rejection {
        match self.result {
            Ok(events) => panic!("expected rejection {code}, got events {events:?}"),
            Err(rejection) => {
                assert_eq!(rejection.code(), code, "{rejection}");
                rejection
            }
        }
    }
}

pub fn account_id(id: &str) -> AccountId {
    AccountId::parse(id).expect("valid account id")
}

pub fn transfer_id(id: &str) -> TransferId {
    TransferId::parse(id).expect("valid transfer id")
}

pub fn subject_id(id: &str) -> SubjectId {
    SubjectId::parse(id).expect("valid subject id")
}

pub fn register_asset(code: &str, scale: u8) -> RegisterAsset {
    RegisterAsset {
        code: AssetCode::parse(code).expect("valid asset"),
        scale: Scale::new(scale).expect("valid scale"),
    }
}

pub fn asset_registered(code: &str, scale: u8) -> Event {
    Event::AssetRegistered(crate::event::AssetRegistered {
        code: AssetCode::parse(code).expect("valid asset"),
        scale: Scale::new(scale).expect("valid scale"),
    })
}

pub fn open_account(id: &str, asset: &str, flags: AccountFlags) -> OpenAccount {
    OpenAccount::new(
        account_id(id),
        AssetCode::parse(asset).expect("valid asset"),
        format!("account {id}"),
        None,
        flags,
        Metadata::new(),
    )
}

pub fn account_opened(id: &str, asset: &str, flags: AccountFlags) -> Event {
    Event::AccountOpened(open_account(id, asset, flags))
}

pub fn no_overdraft() -> AccountFlags {
    AccountFlags {
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: false,
    }
}

pub fn posting(debit: &str, credit: &str, amount: i64) -> Posting {
    Posting {
        debit: account_id(debit),
        credit: account_id(credit),
        amount: Amount::new(amount).expect("positive"),
    }
}

pub fn post_transfer(id: &str, legs: &[(&str, &str, i64)]) -> PostTransfer {
    let postings = legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect();
    PostTransfer::new(transfer_id(id), postings, Metadata::new(), None).expect("valid postings")
}

pub fn reversal(id: &str, of: &str, legs: &[(&str, &str, i64)]) -> PostTransfer {
    let postings = legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect();
    PostTransfer::new(transfer_id(id), postings, Metadata::new(), Some(transfer_id(of))).expect("valid postings")
}

/// The event `transfer` records when decided at time 0 (what [`Given::when`] decides at).
pub fn transfer_posted(transfer: &PostTransfer) -> Event {
    transfer.to_event(0)
}

/// A hold of `legs`, expiring `timeout_secs` after it is recorded (never, when `None`).
pub fn hold(id: &str, legs: &[(&str, &str, i64)], timeout_secs: Option<u32>) -> PostTransfer {
    post_transfer(id, legs).pending(timeout_secs).expect("valid hold")
}

pub fn resolve(id: &str, action: HoldAction) -> Command {
    Command::ResolveHold(ResolveHold {
        id: transfer_id(id),
        action,
    })
}

/// Posts a hold: in full with no legs, otherwise the given amounts.
pub fn post_hold(id: &str, legs: &[(&str, &str, i64)]) -> Command {
    let postings = (!legs.is_empty()).then(|| legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect());
    resolve(id, HoldAction::post(postings).expect("valid legs"))
}

/// EUR with a bank, and alice (no overdraft) holding 100 and bob (no overdraft) nothing.
pub fn funded() -> Vec<Event> {
    vec![
        asset_registered("EUR", 2),
        account_opened("bank", "EUR", AccountFlags::default()),
        account_opened("alice", "EUR", no_overdraft()),
        account_opened("bob", "EUR", no_overdraft()),
        transfer_posted(&post_transfer("fund", &[("bank", "alice", 100)])),
    ]
}
