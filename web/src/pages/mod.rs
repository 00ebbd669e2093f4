//! One module per page.

pub mod account;
pub mod accounts;
pub mod balances;
pub mod dashboard;
pub mod events;
pub mod login;
pub mod new_account;
pub mod new_transfer;
pub mod system;
pub mod transfer;
pub mod transfers;
pub mod trial_balance;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// A query parameter of the current URL, when present and not blank.
pub(crate) fn query_param(name: &'static str) -> Memo<Option<String>> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get(name).filter(|value| !value.trim().is_empty()))
}

/// How long a page waits after a relevant live event before refetching: a burst of events (a
/// busy ledger) costs one refetch, not one each.
const REFRESH_DELAY: std::time::Duration = std::time::Duration::from_millis(300);

/// A refresh counter that moves after live events that pass `relevant`, coalesced.
pub(crate) fn refresh_on(
    relevant: impl Fn(&crate::api::types::LogEvent) -> bool + Send + Sync + 'static,
) -> RwSignal<u64> {
    let refresh = RwSignal::new(0_u64);
    let scheduled = StoredValue::new(false);
    if let Some(live) = crate::components::live::use_live() {
        Effect::new(move |_| {
            if live.last.with(|last| last.as_ref().is_some_and(&relevant)) && !scheduled.get_value() {
                scheduled.set_value(true);
                set_timeout(
                    move || {
                        scheduled.set_value(false);
                        refresh.update(|n| *n += 1);
                    },
                    REFRESH_DELAY,
                );
            }
        });
    }
    refresh
}
