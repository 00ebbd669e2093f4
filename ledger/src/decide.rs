//! `decide`: the ledger's rules. Given the state and a command, either the events that record it or
//! the reason it is refused. An identical replay of an earlier command decides no events.

use crate::command::{
    AccountLifecycle, Check, Command, HoldAction, OpenAccount, PostTransfer, Posting, RegisterAsset, ResolveHold,
    SetMetadata, Subject,
};
use crate::event::{AccountLifecycleEvent, AssetRegistered, Event, PendingPosted, PendingReleased, PersonalDataErased};
use crate::ids::{AccountId, Amount, AssetCode, SubjectId, Timestamp, TransferId};
use crate::rejection::{LimitFlag, Rejection};
use crate::state::{Account, AccountStatus, Resolution, State, Transfer, Undo};

/// Decides `command` against `state`.
///
/// `Ok(vec![])` means the command is an identical replay of one already recorded: the caller answers
/// with the original result. `now` is the batch's recorded time: a hold's expiry is counted from
/// it, and a hold cannot be posted at or after its expiry.
pub fn decide(state: &State, command: &Command, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    match command {
        Command::RegisterAsset(c) => register_asset(state, c),
        Command::OpenAccount(c) => open_account(state, c),
        Command::ChangeAccount { account, change } => change_account(state, account, *change),
        Command::PostTransfer(c) => post_transfer(state, c, now),
        Command::ResolveHold(c) => resolve_hold(state, c, now),
        Command::SetMetadata(c) => set_metadata(state, c),
        Command::ErasePersonalData(subject) => Ok(erase_personal_data(state, subject)),
    }
}

/// Decides a chain: its commands in order, each against the state including the earlier
/// members' events, accepted all or none. The events of each member, or the first refusal as
/// `(member, rejection)`. `state` is left as it was either way.
pub fn decide_chain<'c>(
    state: &mut State,
    commands: impl IntoIterator<Item = &'c Command>,
    now: Timestamp,
) -> Result<Vec<Vec<Event>>, (usize, Rejection)> {
    let mut undo = Undo::default();
    let mut decided = Vec::new();
    let mut refused = None;
    for (member, command) in commands.into_iter().enumerate() {
        match decide(state, command, now) {
            Ok(events) => {
                for event in &events {
                    state.apply_undoable(event, &mut undo);
                }
                decided.push(events);
            }
            Err(rejection) => {
                refused = Some((member, rejection));
                break;
            }
        }
    }
    state.undo(undo);
    refused.map_or(Ok(decided), Err)
}

/// What every other member of a chain answers when `rejection` refused its member `member`.
pub fn linked_failed(chain: &str, member: usize, command: &Command, rejection: &Rejection) -> Rejection {
    let id = match command {
        Command::RegisterAsset(c) => c.code.to_string(),
        Command::OpenAccount(c) => c.id.to_string(),
        Command::ChangeAccount { account, .. } => account.to_string(),
        Command::PostTransfer(c) => c.id.to_string(),
        Command::ResolveHold(c) => c.id.to_string(),
        Command::SetMetadata(SetMetadata {
            subject: Subject::Account(id),
            ..
        }) => id.to_string(),
        Command::SetMetadata(SetMetadata {
            subject: Subject::Transfer(id),
            ..
        }) => id.to_string(),
        Command::ErasePersonalData(subject) => subject.to_string(),
    };
    Rejection::LinkedFailed {
        chain: chain.to_owned(),
        member,
        id,
        code: rejection.code(),
    }
}

/// Erasing is idempotent by the subject: an erased subject stays erased, and erasing it again is
/// an identical replay answered with the first erasure. A subject never written is erased too, so
/// nothing can be sealed for it later.
fn erase_personal_data(state: &State, subject: &SubjectId) -> Vec<Event> {
    if state.erased.contains(subject) {
        return vec![];
    }
    vec![Event::PersonalDataErased(PersonalDataErased {
        subject: subject.clone(),
    })]
}

fn register_asset(state: &State, c: &RegisterAsset) -> Result<Vec<Event>, Rejection> {
    match state.assets.get(&c.code) {
        Some(asset) if asset.scale == c.scale => Ok(vec![]),
        Some(_) => Err(Rejection::IdempotencyConflict {
            kind: "asset",
            id: c.code.to_string(),
        }),
        None => Ok(vec![Event::AssetRegistered(AssetRegistered {
            code: c.code.clone(),
            scale: c.scale,
        })]),
    }
}

fn open_account(state: &State, c: &OpenAccount) -> Result<Vec<Event>, Rejection> {
    if let Some(existing) = state.accounts.get(&c.id) {
        return if existing.fingerprint == c.fingerprint() {
            Ok(vec![])
        } else {
            Err(Rejection::IdempotencyConflict {
                kind: "account",
                id: c.id.to_string(),
            })
        };
    }
    if !state.assets.contains_key(&c.asset) {
        return Err(Rejection::AssetNotFound { asset: c.asset.clone() });
    }
    Ok(vec![Event::AccountOpened(c.clone())])
}

fn change_account(state: &State, id: &AccountId, change: AccountLifecycle) -> Result<Vec<Event>, Rejection> {
    let account = find_account(state, id)?;
    let event = AccountLifecycleEvent { id: id.clone() };
    let closed = || Rejection::AccountClosed { account: id.clone() };
    match (change, account.status) {
        (_, AccountStatus::Closed) => Err(closed()),
        (AccountLifecycle::Freeze, AccountStatus::Frozen) => Err(Rejection::AccountFrozen { account: id.clone() }),
        (AccountLifecycle::Freeze, AccountStatus::Open) => Ok(vec![Event::AccountFrozen(event)]),
        (AccountLifecycle::Unfreeze, AccountStatus::Open) => Err(Rejection::AccountNotFrozen { account: id.clone() }),
        (AccountLifecycle::Unfreeze, AccountStatus::Frozen) => Ok(vec![Event::AccountUnfrozen(event)]),
        (AccountLifecycle::Close, _) if account.debits != account.credits => Err(Rejection::AccountNotEmpty {
            account: id.clone(),
            balance: account.balance(),
        }),
        (AccountLifecycle::Close, _) if account.has_pending() => Err(Rejection::AccountHasPending {
            account: id.clone(),
            pending_debits: account.pending_debits,
            pending_credits: account.pending_credits,
        }),
        (AccountLifecycle::Close, _) => Ok(vec![Event::AccountClosed(event)]),
    }
}

/// Any account or transfer, whatever its status, may be annotated: a closed account or a voided
/// hold is still a record someone may need to label.
fn set_metadata(state: &State, c: &SetMetadata) -> Result<Vec<Event>, Rejection> {
    match &c.subject {
        Subject::Account(id) => {
            find_account(state, id)?;
        }
        Subject::Transfer(id) if !state.transfers.contains_key(id) => {
            return Err(Rejection::TransferNotFound { transfer: id.clone() });
        }
        Subject::Transfer(_) => {}
    }
    Ok(vec![c.to_event()])
}

fn find_account<'s>(state: &'s State, id: &AccountId) -> Result<&'s Account, Rejection> {
    state
        .accounts
        .get(id)
        .ok_or_else(|| Rejection::AccountNotFound { account: id.clone() })
}

fn postable<'s>(state: &'s State, id: &AccountId) -> Result<&'s Account, Rejection> {
    let account = find_account(state, id)?;
    match account.status {
        AccountStatus::Open => Ok(account),
        AccountStatus::Frozen => Err(Rejection::AccountFrozen { account: id.clone() }),
        AccountStatus::Closed => Err(Rejection::AccountClosed { account: id.clone() }),
    }
}

/// An account's totals as they would be after the transfer.
struct Projected<'s> {
    id: &'s AccountId,
    account: &'s Account,
    debits: i64,
    credits: i64,
    pending_debits: i64,
    pending_credits: i64,
}

/// Whether a transfer's legs move amounts or reserve them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    Post,
    Reserve,
}

fn post_transfer(state: &State, c: &PostTransfer, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    if let Some(existing) = state.transfers.get(&c.id) {
        return if existing.fingerprint == c.fingerprint() {
            Ok(vec![])
        } else {
            Err(Rejection::IdempotencyConflict {
                kind: "transfer",
                id: c.id.to_string(),
            })
        };
    }
    if let Some(at) = c.effective() {
        let latest = now.0.saturating_add(PostTransfer::MAX_EFFECTIVE_AHEAD_MICROS);
        if at.0 > latest {
            return Err(Rejection::EffectiveTooLate {
                transfer: c.id.clone(),
                effective_at_micros: at.0,
                latest_micros: latest,
            });
        }
    }
    check_postable(state, c.postings())?;
    check_conditions(state, c)?;
    if let Some(original_id) = &c.reverses {
        check_reversal(state, original_id, c.postings())?;
    }
    check_asset_totals(state, c.postings())?;
    let effect = if c.hold.is_some() {
        Effect::Reserve
    } else {
        Effect::Post
    };
    let projected = project_accounts(state, &[], (effect, c.postings()))?;
    for p in &projected {
        check_limits(p)?;
    }
    Ok(vec![c.to_event(now.0)])
}

/// Every leg's accounts exist, are open and hold the same asset.
fn check_postable(state: &State, postings: &[Posting]) -> Result<(), Rejection> {
    for posting in postings {
        let debit = postable(state, &posting.debit)?;
        let credit = postable(state, &posting.credit)?;
        if debit.asset != credit.asset {
            return Err(Rejection::AssetMismatch {
                debit: posting.debit.clone(),
                debit_asset: debit.asset.clone(),
                credit: posting.credit.clone(),
                credit_asset: credit.asset.clone(),
            });
        }
    }
    Ok(())
}

fn check_conditions(state: &State, c: &PostTransfer) -> Result<(), Rejection> {
    for (index, condition) in c.conditions().iter().enumerate() {
        let account = find_account(state, &condition.account)?;
        let actual = match condition.check {
            Check::AvailableAtLeast(_) => account.available(),
            Check::Revision(_) => account.revision,
        };
        if !condition.check.holds(actual) {
            return Err(Rejection::ConditionFailed {
                index,
                account: condition.account.clone(),
                check: condition.check,
                actual,
            });
        }
    }
    Ok(())
}

fn resolve_hold(state: &State, c: &ResolveHold, now: Timestamp) -> Result<Vec<Event>, Rejection> {
    let transfer = state
        .transfers
        .get(&c.id)
        .ok_or_else(|| Rejection::TransferNotFound { transfer: c.id.clone() })?;
    let Some(hold) = transfer.hold.as_deref() else {
        return Err(Rejection::TransferNotPending { transfer: c.id.clone() });
    };
    if let Some(done) = &hold.resolution {
        let same = match (&c.action, done) {
            // Nothing is left to expire, whoever resolved it: the sweeper's late retry is a no-op.
            (HoldAction::Expire, _) | (HoldAction::Void, Resolution::Voided) => true,
            (HoldAction::Post { postings }, Resolution::Posted(posted)) => {
                posted_legs(c, transfer, postings.as_deref()).is_ok_and(|legs| &legs == posted)
            }
            _ => false,
        };
        return if same {
            Ok(vec![])
        } else {
            Err(Rejection::PendingResolved {
                transfer: c.id.clone(),
                resolution: done.as_str(),
            })
        };
    }
    let released = PendingReleased { id: c.id.clone() };
    match &c.action {
        HoldAction::Void => Ok(vec![Event::PendingVoided(released)]),
        HoldAction::Expire if hold.expired_at(now.0) => Ok(vec![Event::PendingExpired(released)]),
        HoldAction::Expire => Err(Rejection::PendingNotExpired { transfer: c.id.clone() }),
        HoldAction::Post { postings } => {
            if let Some(expires_at_micros) = hold.expires_at_micros.filter(|&at| now.0 >= at) {
                return Err(Rejection::PendingExpired {
                    transfer: c.id.clone(),
                    expires_at_micros,
                });
            }
            let legs = posted_legs(c, transfer, postings.as_deref())?;
            check_postable(state, &legs)?;
            // Cannot break a limit (what is posted was reserved), but the rule is checked anyway.
            let projected = project_accounts(state, &transfer.postings, (Effect::Post, &legs))?;
            for p in &projected {
                check_limits(p)?;
            }
            Ok(vec![Event::PendingPosted(PendingPosted {
                id: c.id.clone(),
                postings: legs,
            })])
        }
    }
}

/// The legs a post of `transfer`'s hold moves, in the hold's order: all of them when `given` is
/// absent, otherwise each given leg matched to a held leg between the same accounts that
/// reserved at least as much (the largest given first, into the largest held), the rest left out.
fn posted_legs(c: &ResolveHold, transfer: &Transfer, given: Option<&[Posting]>) -> Result<Vec<Posting>, Rejection> {
    let Some(given) = given else {
        return Ok(transfer.postings.clone());
    };
    let held = &transfer.postings;
    let mut amounts: Vec<Option<Amount>> = vec![None; held.len()];
    let mut order: Vec<usize> = (0..given.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(given[i].amount));
    for index in order {
        let leg = &given[index];
        let slot = (0..held.len())
            .filter(|&h| amounts[h].is_none())
            .filter(|&h| held[h].debit == leg.debit && held[h].credit == leg.credit && held[h].amount >= leg.amount)
            .max_by_key(|&h| (held[h].amount, std::cmp::Reverse(h)))
            .ok_or_else(|| Rejection::PendingAmountExceeded {
                transfer: c.id.clone(),
                index,
            })?;
        amounts[slot] = Some(leg.amount);
    }
    Ok(held
        .iter()
        .zip(amounts)
        .filter_map(|(leg, amount)| {
            amount.map(|amount| Posting {
                debit: leg.debit.clone(),
                credit: leg.credit.clone(),
                amount,
            })
        })
        .collect())
}

fn check_reversal(state: &State, original_id: &TransferId, postings: &[Posting]) -> Result<(), Rejection> {
    let original = state
        .transfers
        .get(original_id)
        .ok_or_else(|| Rejection::TransferNotFound {
            transfer: original_id.clone(),
        })?;
    if let Some(reversed_by) = &original.reversed_by {
        return Err(Rejection::AlreadyReversed {
            transfer: original_id.clone(),
            reversed_by: reversed_by.clone(),
        });
    }
    let moved = original.moved().ok_or_else(|| Rejection::TransferNotPosted {
        transfer: original_id.clone(),
    })?;
    let mut expected: Vec<Posting> = moved
        .iter()
        .map(|p| Posting {
            debit: p.credit.clone(),
            credit: p.debit.clone(),
            amount: p.amount,
        })
        .collect();
    let mut given = postings.to_vec();
    expected.sort_unstable();
    given.sort_unstable();
    if expected != given {
        return Err(Rejection::ReversalMismatch {
            transfer: original_id.clone(),
        });
    }
    Ok(())
}

/// Every account counter is bounded by its asset's posted and held volume, so this one check
/// keeps all of them inside i64.
fn check_asset_totals(state: &State, postings: &[Posting]) -> Result<(), Rejection> {
    let mut totals: Vec<(&AssetCode, i64)> = Vec::new();
    for posting in postings {
        let account = find_account(state, &posting.debit)?;
        let code = &account.asset;
        let index = match totals.iter().position(|(c, _)| *c == code) {
            Some(index) => index,
            None => {
                let asset = state
                    .assets
                    .get(code)
                    .ok_or_else(|| Rejection::AssetNotFound { asset: code.clone() })?;
                totals.push((code, asset.posted.saturating_add(asset.held)));
                totals.len() - 1
            }
        };
        let total = &mut totals[index].1;
        *total = total
            .checked_add(posting.amount.get())
            .ok_or_else(|| Rejection::Overflow { asset: code.clone() })?;
    }
    Ok(())
}

/// The accounts' totals after releasing `released` (a hold's reservation) and applying `legs`.
fn project_accounts<'s>(
    state: &'s State,
    released: &'s [Posting],
    (effect, legs): (Effect, &'s [Posting]),
) -> Result<Vec<Projected<'s>>, Rejection> {
    let mut projected: Vec<Projected<'s>> = Vec::with_capacity(legs.len() * 2);
    let mut entry = |id: &'s AccountId| -> Result<usize, Rejection> {
        if let Some(index) = projected.iter().position(|p| p.id == id) {
            return Ok(index);
        }
        let account = find_account(state, id)?;
        projected.push(Projected {
            id,
            account,
            debits: account.debits,
            credits: account.credits,
            pending_debits: account.pending_debits,
            pending_credits: account.pending_credits,
        });
        Ok(projected.len() - 1)
    };
    let mut moves = Vec::with_capacity(released.len() + legs.len());
    for posting in released {
        moves.push((
            entry(&posting.debit)?,
            entry(&posting.credit)?,
            -posting.amount.get(),
            Effect::Reserve,
        ));
    }
    for posting in legs {
        moves.push((
            entry(&posting.debit)?,
            entry(&posting.credit)?,
            posting.amount.get(),
            effect,
        ));
    }
    for (debit, credit, amount, effect) in moves {
        let account: &Account = projected[debit].account;
        let overflow = || Rejection::Overflow {
            asset: account.asset.clone(),
        };
        let side = &mut projected[debit];
        let debits = match effect {
            Effect::Post => &mut side.debits,
            Effect::Reserve => &mut side.pending_debits,
        };
        *debits = debits.checked_add(amount).ok_or_else(overflow)?;
        let side = &mut projected[credit];
        let credits = match effect {
            Effect::Post => &mut side.credits,
            Effect::Reserve => &mut side.pending_credits,
        };
        *credits = credits.checked_add(amount).ok_or_else(overflow)?;
    }
    Ok(projected)
}

/// The limits count what open holds reserve as if it were posted: two holds cannot overspend.
fn check_limits(p: &Projected<'_>) -> Result<(), Rejection> {
    let flags = p.account.flags;
    // Both sums are bounded by the asset's posted and held volume, checked to fit in i64.
    let debits = p.debits.saturating_add(p.pending_debits);
    let credits = p.credits.saturating_add(p.pending_credits);
    let broken = if flags.debits_must_not_exceed_credits && debits > p.credits {
        Some(LimitFlag::DebitsMustNotExceedCredits)
    } else if flags.credits_must_not_exceed_debits && credits > p.debits {
        Some(LimitFlag::CreditsMustNotExceedDebits)
    } else {
        None
    };
    match broken {
        Some(flag) => Err(Rejection::LimitExceeded {
            account: p.id.clone(),
            flag,
            debits: p.debits,
            credits: p.credits,
            pending_debits: p.pending_debits,
            pending_credits: p.pending_credits,
        }),
        None => Ok(()),
    }
}
