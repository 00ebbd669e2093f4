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
        8 => (transfer_id(), prop::collection::vec((account(), account(), amount()), 1..4), prop::option::of(transfer_id()), hold_terms(), conditions(), effective())
            .prop_filter_map("distinct legs", |(id, legs, reverses, hold, conditions, effective)| {
                let postings = legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect();
                let transfer = PostTransfer::new(self::transfer_id(&id), postings, Metadata::new(), reverses.map(|r| self::transfer_id(&r)))
                    .ok()?
                    .with_conditions(conditions)
                    .ok()?;
                match (hold, effective) {
                    (Some(timeout), _) => transfer.pending(timeout).ok(),
                    (None, Some(at)) => transfer.effective_at(at).ok(),
                    (None, None) => Some(transfer),
                }
                .map(Command::PostTransfer)
            }),
        3 => (transfer_id(), hold_action())
            .prop_map(|(id, action)| Command::ResolveHold(ResolveHold { id: self::transfer_id(&id), action })),
        1 => (prop_oneof![
                account().prop_map(|id| Subject::Account(account_id(id))),
                transfer_id().prop_map(|id| Subject::Transfer(self::transfer_id(&id))),
            ], metadata())
            .prop_filter_map("a patch names a key", |(subject, patch)| SetMetadata::new(subject, patch).ok())
            .prop_map(Command::SetMetadata),
        1 => prop::sample::select(vec!["s1", "s2"])
            .prop_map(|id| Command::ErasePersonalData(subject_id(id))),
    ]
}

/// A few transfers set conditions, small enough to hold now and then.
fn conditions() -> impl Strategy<Value = Vec<Condition>> {
    let check = prop_oneof![
        (-50..500i64).prop_map(Check::AvailableAtLeast),
        (0..8i64).prop_map(Check::Revision)
    ];
    let condition = (prop::sample::select(ACCOUNTS.to_vec()), check).prop_map(|(id, check)| Condition {
        account: account_id(id),
        check,
    });
    prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(condition, 1..3)]
}

/// Some transfers take effect at another time: days before the history starts, or up to two
/// days after (more than a day ahead of their recorded time is refused).
fn effective() -> impl Strategy<Value = Option<Timestamp>> {
    const HOUR: i64 = 3_600_000_000;
    prop_oneof![3 => Just(None), 1 => (-72..48i64).prop_map(|hours| Some(Timestamp(hours * HOUR)))]
}

/// Half the transfers are holds, some with a timeout of 1 to 3 seconds.
fn hold_terms() -> impl Strategy<Value = Option<Option<u32>>> {
    prop_oneof![Just(None), prop::option::of(1..4u32).prop_map(Some)]
}

fn hold_action() -> impl Strategy<Value = HoldAction> {
    let account = || prop::sample::select(ACCOUNTS.to_vec());
    prop_oneof![
        2 => Just(HoldAction::Post { postings: None }),
        2 => prop::collection::vec((account(), account(), 1..600i64), 1..3)
            .prop_filter_map("distinct legs", |legs| {
                HoldAction::post(Some(legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect())).ok()
            }),
        1 => Just(HoldAction::Void),
        1 => Just(HoldAction::Expire),
    ]
}

fn check_invariants(state: &State) -> Result<(), TestCaseError> {
    // Per asset: debits and credits each sum to what was posted, and the pending ones to what
    // open holds reserve.
    let mut sums: HashMap<&AssetCode, [i128; 4]> = HashMap::new();
    for (id, account) in &state.accounts {
        let sum = sums.entry(&account.asset).or_default();
        sum[0] += i128::from(account.debits);
        sum[1] += i128::from(account.credits);
        sum[2] += i128::from(account.pending_debits);
        sum[3] += i128::from(account.pending_credits);
        prop_assert!(account.pending_debits >= 0 && account.pending_credits >= 0);
        // The limits hold with what is reserved counted as posted.
        if account.flags.debits_must_not_exceed_credits {
            prop_assert!(
                account.debits + account.pending_debits <= account.credits,
                "{id} overdrawn"
            );
        }
        if account.flags.credits_must_not_exceed_debits {
            prop_assert!(
                account.credits + account.pending_credits <= account.debits,
                "{id} over-credited"
            );
        }
    }
    for (asset, sum) in sums {
        let totals = &state.assets[asset];
        prop_assert_eq!(sum[0], i128::from(totals.posted), "asset {} debits", asset);
        prop_assert_eq!(sum[1], i128::from(totals.posted), "asset {} credits", asset);
        prop_assert_eq!(sum[2], i128::from(totals.held), "asset {} pending debits", asset);
        prop_assert_eq!(sum[3], i128::from(totals.held), "asset {} pending credits", asset);
        prop_assert!(totals.posted.checked_add(totals.held).is_some());
    }
    // What open holds reserve is exactly what their legs name.
    let open: i128 = state
        .transfers
        .values()
        .filter(|t| t.hold.as_ref().is_some_and(|h| h.resolution.is_none()))
        .flat_map(|t| &t.postings)
        .map(|p| i128::from(p.amount.get()))
        .sum();
    prop_assert_eq!(open, state.assets.values().map(|a| i128::from(a.held)).sum::<i128>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_books_balanced(commands in prop::collection::vec(command(), 1..60)) {
        let mut state = State::default();
        let mut log = Vec::new();
        // Each command a second later: holds with a timeout expire along the way.
        for (now, command) in (0..).map(|s| Timestamp(s * 1_000_000)).zip(&commands) {
            if let Ok(events) = decide(&state, command, now) {
                for event in events {
                    if let Event::TransferPosted(TransferPosted { effective_at_micros: Some(at), .. }) = &event {
                        prop_assert!(*at <= now.0 + PostTransfer::MAX_EFFECTIVE_AHEAD_MICROS);
                    }
                    // Every event reads back as written, at the version it is written with.
                    let back = Event::decode(event.event_type(), event.schema_version(), &event.data()).ok();
                    prop_assert_eq!(back.as_ref(), Some(&event));
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
        log.iter().cloned().for_each(|event| owned.apply_owned(event));
        prop_assert_eq!(&owned, &state);
        // Replaying any accepted command again decides nothing new, whenever it comes.
        for command in &commands {
            if let Command::PostTransfer(t) = command
                && state.transfers.contains_key(&t.id)
                && let Ok(events) = decide(&state, command, Timestamp(i64::MAX / 2))
            {
                prop_assert!(events.is_empty());
            }
        }
        // An account's revision counts the events that changed it, each once.
        let mut revisions: HashMap<&AccountId, i64> = HashMap::new();
        for event in &log {
            let legs: &[Posting] = match event {
                Event::AccountOpened(e) => {
                    *revisions.entry(&e.id).or_default() += 1;
                    &[]
                }
                Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => {
                    *revisions.entry(&e.id).or_default() += 1;
                    &[]
                }
                Event::TransferPosted(e) => &e.postings,
                Event::TransferPending(e) => &e.postings,
                Event::PendingPosted(PendingPosted { id, .. })
                | Event::PendingVoided(PendingReleased { id })
                | Event::PendingExpired(PendingReleased { id }) => &state.transfers[id].postings,
                Event::AssetRegistered(_)
                | Event::AccountMetadataSet(_)
                | Event::TransferMetadataSet(_)
                | Event::PersonalDataErased(_) => &[],
            };
            let touched: std::collections::BTreeSet<&AccountId> = legs.iter().flat_map(|p| [&p.debit, &p.credit]).collect();
            for id in touched {
                *revisions.entry(id).or_default() += 1;
            }
        }
        for (id, account) in &state.accounts {
            prop_assert_eq!(account.revision, revisions[id], "revision of {}", id);
        }
        // Every event sits at the version its stream had reached.
        let mut versions: HashMap<StreamId, i64> = HashMap::new();
        let mut folded = State::default();
        for event in &log {
            let stream = event.stream_id();
            let version = versions.entry(stream.clone()).or_default();
            *version += 1;
            folded.apply(event);
            prop_assert_eq!(folded.stream_version(&stream), *version);
        }
    }
}

/// The state a random history leaves, a second per command.
fn history(commands: &[Command]) -> State {
    let mut state = State::default();
    for (now, command) in (0..).map(|s| Timestamp(s * 1_000_000)).zip(commands) {
        if let Ok(events) = decide(&state, command, now) {
            events.iter().for_each(|event| state.apply(event));
        }
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A chain decides what its commands would decide one after another, or refuses at the
    /// member that would fail first; either way it leaves the state exactly as it found it.
    #[test]
    fn chains_are_all_or_nothing(
        past in prop::collection::vec(command(), 0..30),
        chain in prop::collection::vec(command(), 1..6),
    ) {
        // Opened and funded accounts first, so that chains often get past their first member.
        let setup = [
            Command::RegisterAsset(register_asset("EUR", 2)),
            Command::OpenAccount(open_account("a0", "EUR", AccountFlags::default())),
            Command::OpenAccount(open_account("a1", "EUR", no_overdraft())),
            Command::OpenAccount(open_account("a2", "EUR", no_overdraft())),
            Command::OpenAccount(open_account("a3", "EUR", AccountFlags::default())),
            Command::PostTransfer(post_transfer("f1", &[("a0", "a1", 900)])),
            Command::PostTransfer(post_transfer("f2", &[("a0", "a2", 900)])),
        ];
        let state = history(&[&setup[..], &past].concat());
        let now = Timestamp(past.len() as i64 * 1_000_000);
        let mut chained = state.clone();
        let result = decide_chain(&mut chained, &chain, now);
        prop_assert_eq!(&chained, &state);
        let mut sequential = state.clone();
        let mut expected = Vec::new();
        for (member, command) in chain.iter().enumerate() {
            match decide(&sequential, command, now) {
                Ok(events) => {
                    events.iter().for_each(|event| sequential.apply(event));
                    expected.push(events);
                }
                Err(rejection) => {
                    prop_assert_eq!(result, Err((member, rejection)));
                    return Ok(());
                }
            }
        }
        prop_assert_eq!(result, Ok(expected));
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
        effective_at_micros in prop::option::of(any::<i64>()),
    ) {
        let event = TransferPosted {
            id: transfer_id(&id),
            postings: legs.iter().map(|(d, c, a)| posting(d, c, *a)).collect(),
            metadata,
            reverses: reverses.map(|r| transfer_id(&r)),
            effective_at_micros,
        };
        let through_value = crate::state::fingerprint(&serde_json::to_value(&event).unwrap());
        prop_assert_eq!(event.fingerprint(), through_value);
    }
}
