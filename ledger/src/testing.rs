//! A given/when/then harness for the domain: `given(events).when(command).then(events)`.
//!
//! Fixture builders panic on invalid literals: they exist for tests only.
#![expect(
    clippy::expect_used,
    reason = "test fixtures are literals; a bad one is a bug in the test"
)]

use crate::command::{AccountFlags, Command, Metadata, OpenAccount, PostTransfer, Posting, RegisterAsset};
use crate::decide::decide;
use crate::event::Event;
use crate::ids::{AccountId, Amount, AssetCode, Scale, Timestamp, TransferId};
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
    pub fn when(self, command: Command) -> When {
        let result = decide(&self.state, &command, Timestamp(0));
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

pub fn transfer_posted(transfer: &PostTransfer) -> Event {
    Event::TransferPosted(transfer.to_event())
}
