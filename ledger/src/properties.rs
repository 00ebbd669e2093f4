//! Property tests: random command sequences never break the ledger's invariants.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::testing::*;
use crate::*;

const ACCOUNTS: [&str; 6] = ["a0", "a1", "a2", "a3", "a4", "a5"];

fn flags() -> impl Strategy<Value = AccountFlags> {
    prop_oneof![
        Just(AccountFlags::default()),
        Just(no_overdraft()),
        Just(AccountFlags {
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: true
        }),
    ]
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![8 => 1..1_000i64, 1 => Just(i64::MAX / 2), 1 => Just(i64::MAX)]
}

fn command() -> impl Strategy<Value = Command> {
    let account = || prop::sample::select(ACCOUNTS.to_vec());
    let transfer_id = || (0..12u8).prop_map(|n| format!("t{n}"));
    prop_oneof![
        1 => (prop::sample::select(vec!["EUR", "USD"]), 0..3u8)
            .prop_map(|(code, scale)| Command::RegisterAsset(register_asset(code, scale))),
        2 => (account(), prop::sample::select(vec!["EUR", "USD"]), flags())
            .prop_map(|(id, asset, flags)| Command::OpenAccount(open_account(id, asset, flags))),
        1 => (account(), prop::sample::select(vec![AccountLifecycle::Freeze, AccountLifecycle::Unfreeze, AccountLifecycle::Close]))
            .prop_map(|(id, change)| Command::ChangeAccount { account: account_id(id), change }),
        8 => (transfer_id(), prop::collection::vec((account(), account(), amount()), 1..4), prop::option::of(transfer_id()))
            .prop_filter_map("distinct legs", |(id, legs, reverses)| {
                let postings = legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect();
                PostTransfer::new(self::transfer_id(&id), postings, Metadata::new(), reverses.map(|r| self::transfer_id(&r)))
                    .ok()
                    .map(Command::PostTransfer)
            }),
    ]
}

fn check_invariants(state: &State) -> Result<(), TestCaseError> {
    let mut net: HashMap<&AssetCode, i128> = HashMap::new();
    for (id, account) in &state.accounts {
        *net.entry(&account.asset).or_default() += i128::from(account.debits) - i128::from(account.credits);
        if account.flags.debits_must_not_exceed_credits {
            prop_assert!(account.debits <= account.credits, "{id} overdrawn");
        }
        if account.flags.credits_must_not_exceed_debits {
            prop_assert!(account.credits <= account.debits, "{id} over-credited");
        }
        let posted = state.assets.get(&account.asset).map_or(0, |a| a.posted);
        prop_assert!(account.debits <= posted && account.credits <= posted);
    }
    for (asset, sum) in net {
        prop_assert_eq!(sum, 0, "asset {} does not balance", asset);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_books_balanced(commands in prop::collection::vec(command(), 1..60)) {
        let mut state = State::default();
        let mut log = Vec::new();
        for command in &commands {
            if let Ok(events) = decide(&state, command, Timestamp(0)) {
                for event in events {
                    state.apply(&event);
                    log.push(event);
                }
            }
            check_invariants(&state)?;
        }
        let replayed = log.iter().fold(State::default(), evolve);
        prop_assert_eq!(&replayed, &state);
        // Applying the events by value (as a replay does) folds to the same state.
        let mut owned = State::default();
        log.into_iter().for_each(|event| owned.apply_owned(event));
        prop_assert_eq!(&owned, &state);
        // Replaying any accepted command again decides nothing new.
        for command in &commands {
            if let Command::PostTransfer(t) = command
                && state.transfers.contains_key(&t.id)
                && let Ok(events) = decide(&state, command, Timestamp(0))
            {
                prop_assert!(events.is_empty());
            }
        }
    }
}

/// Metadata with the characters canonical encoding escapes, unicode, nesting and numbers.
fn metadata() -> impl Strategy<Value = Metadata> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        "[a-z\"\\\\\n\u{1}é€😀]{0,8}".prop_map(serde_json::Value::from),
        (-1e9f64..1e9).prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-zA-Z_é\"]{0,5}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-zA-Z_é\"]{0,5}", value, 0..4).prop_map(|map| map.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The transfer fingerprint written directly equals the fingerprint of its `Value` tree (what
    /// it was before, and what every other fingerprint still is).
    #[test]
    fn transfer_fingerprints_are_those_of_their_json(
        id in "[a-zA-Z0-9:._-]{1,12}",
        legs in prop::collection::vec(("[a-z0-9:]{1,8}", "[A-Z0-9._]{1,8}", 1..i64::MAX), 1..4),
        metadata in metadata(),
        reverses in prop::option::of("[a-z0-9-]{1,8}"),
    ) {
        let event = TransferPosted {
            id: transfer_id(&id),
            postings: legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect(),
            metadata,
            reverses: reverses.map(|r| transfer_id(&r)),
        };
        let through_value = crate::state::fingerprint(&serde_json::to_value(&event).unwrap());
        prop_assert_eq!(event.fingerprint(), through_value);
    }
}
