//! Metadata changes: patches on accounts and transfers, recorded on their streams.

use serde_json::json;

use crate::testing::*;
use crate::*;

fn patch(value: serde_json::Value) -> Metadata {
    match value {
        serde_json::Value::Object(map) => map,
        _ => Metadata::new(),
    }
}

fn set(subject: Subject, value: serde_json::Value) -> Command {
    Command::SetMetadata(SetMetadata::new(subject, patch(value)).expect("a key"))
}

#[test]
fn a_patch_sets_and_removes_top_level_keys_and_replaces_nested_values_whole() {
    let mut metadata = patch(json!({"tier": "silver", "address": {"city": "Lyon", "zip": "69001"}, "old": 1}));
    apply_patch(
        &mut metadata,
        &patch(json!({"tier": "gold", "address": {"city": "Paris"}, "old": null, "missing": null})),
    );
    assert_eq!(
        serde_json::Value::Object(metadata),
        json!({"tier": "gold", "address": {"city": "Paris"}})
    );
    assert_eq!(
        SetMetadata::new(Subject::Account(account_id("a")), Metadata::new()),
        Err(EmptyPatch)
    );
}

#[test]
fn an_account_of_any_status_can_be_annotated_without_changing_its_revision() {
    let mut events = funded();
    events.push(account_opened("gone", "EUR", AccountFlags::default()));
    events.push(Event::AccountClosed(AccountLifecycleEvent { id: account_id("gone") }));
    let before = given(events.clone()).state().accounts[&account_id("gone")].clone();
    let state = given(events)
        .when(set(
            Subject::Account(account_id("gone")),
            json!({"closed_because": "merged"}),
        ))
        .then([Event::AccountMetadataSet(MetadataSet {
            id: account_id("gone"),
            metadata: patch(json!({"closed_because": "merged"})),
        })]);
    let after = &state.accounts[&account_id("gone")];
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        after.revision, before.revision,
        "metadata decides nothing a condition guards"
    );
    given(funded())
        .when(set(Subject::Account(account_id("nobody")), json!({"k": 1})))
        .then_rejected("account_not_found");
}

#[test]
fn a_hold_annotated_before_its_resolution_resolves_at_the_next_stream_version() {
    let mut events = funded();
    events.push(transfer_posted(&hold("h", &[("alice", "bob", 30)], None)));
    let state = given(events.clone())
        .when(set(Subject::Transfer(transfer_id("h")), json!({"order": "o-1"})))
        .then_events();
    events.extend(state);
    let stream = StreamId::Transfer(transfer_id("h"));
    assert_eq!(given(events.clone()).state().stream_version(&stream), 2);
    let resolved = given(events.clone()).when(post_hold("h", &[])).then_events();
    events.extend(resolved);
    let state = given(events.clone()).state();
    assert_eq!(state.stream_version(&stream), 3);
    assert_eq!(state.accounts[&account_id("bob")].credits, 30);
    // Resolved holds, and unknown transfers, are told apart as before.
    given(events.clone()).when(post_hold("h", &[])).then([]);
    given(events)
        .when(set(Subject::Transfer(transfer_id("nope")), json!({"k": 1})))
        .then_rejected("transfer_not_found");
}

#[test]
fn metadata_events_read_back_as_written() -> Result<(), Box<dyn std::error::Error>> {
    for event in [
        Event::AccountMetadataSet(MetadataSet {
            id: account_id("a"),
            metadata: patch(json!({"k": "v", "gone": null})),
        }),
        Event::TransferMetadataSet(MetadataSet {
            id: transfer_id("t"),
            metadata: patch(json!({"n": [1, 2]})),
        }),
    ] {
        assert_eq!(event.schema_version(), SCHEMA_VERSION);
        assert_eq!(Event::decode(event.event_type(), SCHEMA_VERSION, &event.data())?, event);
    }
    assert_eq!(
        Event::AccountMetadataSet(MetadataSet {
            id: account_id("a"),
            metadata: patch(json!({"k": null})),
        })
        .data(),
        json!({"id": "a", "metadata": {"k": null}})
    );
    Ok(())
}
