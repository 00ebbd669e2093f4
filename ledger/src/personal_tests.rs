//! Erasing a data subject's personal data: recorded once on the subject's own stream.

use crate::testing::*;
use crate::*;

fn erased(id: &str) -> Event {
    Event::PersonalDataErased(PersonalDataErased {
        subject: subject_id(id),
    })
}

#[test]
fn a_subject_is_erased_once_and_erasing_it_again_is_a_replay() {
    let state = given([])
        .when(Command::ErasePersonalData(subject_id("customer-42")))
        .then([erased("customer-42")]);
    assert!(state.erased.contains(&subject_id("customer-42")));
    assert_eq!(state.stream_version(&StreamId::Subject(subject_id("customer-42"))), 1);
    given([erased("customer-42")])
        .when(Command::ErasePersonalData(subject_id("customer-42")))
        .then([]);
    // Another subject is untouched.
    given([erased("customer-42")])
        .when(Command::ErasePersonalData(subject_id("customer-7")))
        .then([erased("customer-7")]);
}

#[test]
fn an_erasure_round_trips_through_its_stored_form_on_the_subject_stream() -> Result<(), Box<dyn std::error::Error>> {
    let event = erased("customer-42");
    assert_eq!(event.stream_id().to_string(), "subject:customer-42");
    assert_eq!(StreamId::parse("subject:customer-42")?, event.stream_id());
    assert_eq!(event.data(), serde_json::json!({"subject": "customer-42"}));
    assert_eq!(
        Event::decode("PersonalDataErased", SCHEMA_VERSION, &event.data())?,
        event
    );
    Ok(())
}

#[test]
fn a_refused_chain_member_puts_an_erasure_back() {
    let mut state = given(funded()).state();
    let before = state.clone();
    let chain = [
        Command::ErasePersonalData(subject_id("customer-42")),
        Command::PostTransfer(post_transfer("t-1", &[("nobody", "alice", 1)])),
    ];
    let refused = decide_chain(&mut state, &chain, Timestamp(0));
    assert!(matches!(refused, Err((1, _))), "{refused:?}");
    assert_eq!(state, before);
}
