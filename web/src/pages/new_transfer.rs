use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::{PostTransfer, UiError, new_id};
use crate::components::common::{ErrorBox, field_error, typed};

/// Legs a form may hold (the API's limit of postings per transfer).
const MAX_LEGS: usize = 64;

/// When a hold may expire, in seconds; blank: only when posted or voided.
const HOLD_TIMEOUTS: [(&str, &str); 5] = [
    ("", "Never: until posted or voided"),
    ("900", "15 minutes"),
    ("3600", "1 hour"),
    ("86400", "1 day"),
    ("604800", "7 days"),
];

/// What a condition can check.
const CHECKS: [(&str, &str); 2] = [
    ("available_at_least", "has available at least"),
    ("revision", "is at revision"),
];

/// Whether an error about `field` shows next to it; any other shows above the form.
fn shown_inline(field: &str) -> bool {
    field.starts_with("legs[") || field.starts_with("conditions[0]") || matches!(field, "effective_at" | "timeout_secs")
}

/// One leg's fields; the values live in signals so that adding or removing a leg, which
/// re-renders the list, keeps what was typed.
#[derive(Clone, Copy)]
struct LegRow {
    debit: RwSignal<String>,
    credit: RwSignal<String>,
    amount: RwSignal<String>,
}

impl LegRow {
    fn new(debit: String, credit: String, amount: String) -> Self {
        Self {
            debit: RwSignal::new(debit),
            credit: RwSignal::new(credit),
            amount: RwSignal::new(amount),
        }
    }
}

/// The legs to show first: what the last failed submit had (JavaScript off), or what an
/// add/remove round trip carried in the query, or one empty leg.
fn initial_legs(error: &Option<UiError>, query: &leptos_router::params::ParamsMap) -> Vec<LegRow> {
    let value = |name: String| typed(error, &name).or_else(|| query.get(&name)).unwrap_or_default();
    let carried = (0..MAX_LEGS)
        .take_while(|i| {
            typed(error, &format!("legs[{i}][debit]"))
                .or_else(|| query.get(&format!("legs[{i}][debit]")))
                .is_some()
        })
        .count();
    let wanted = query
        .get("legs")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(carried)
        .clamp(1, MAX_LEGS);
    let removed = query.get("drop_leg").and_then(|n| n.parse::<usize>().ok());
    (0..wanted.max(carried).min(MAX_LEGS))
        .filter(|i| Some(*i) != removed)
        .map(|i| {
            LegRow::new(
                value(format!("legs[{i}][debit]")),
                value(format!("legs[{i}][credit]")),
                value(format!("legs[{i}][amount]")),
            )
        })
        .collect()
}

#[component]
pub fn NewTransferPage() -> impl IntoView {
    let query = use_query_map();
    let post = ServerAction::<PostTransfer>::new();
    let error = Memo::new(move |_| post.value().get().and_then(Result::err));
    let start = error.get_untracked();
    let legs = RwSignal::new(query.with_untracked(|query| initial_legs(&start, query)));
    if legs.with_untracked(Vec::is_empty) {
        legs.set(vec![LegRow::new(String::new(), String::new(), String::new())]);
    }
    let memo = typed(&start, "memo")
        .or_else(|| query.with_untracked(|q| q.get("memo")))
        .unwrap_or_default();
    let carried = |name: &str| {
        typed(&start, name)
            .or_else(|| query.with_untracked(|q| q.get(name)))
            .unwrap_or_default()
    };
    let effective_at = carried("effective_at");
    let hold = carried("hold") == "on";
    let timeout = carried("timeout_secs");
    let condition = [
        carried("conditions[0][account]"),
        carried("conditions[0][check]"),
        carried("conditions[0][value]"),
    ];
    // The transfer's id is chosen once per form: carried over from an earlier attempt, or new.
    let carried_id = typed(&start, "id").or_else(|| query.with_untracked(|q| q.get("id")));
    let id = Resource::new(
        || (),
        move |_| {
            let carried_id = carried_id.clone();
            async move {
                match carried_id {
                    Some(id) => Ok(id),
                    None => new_id("t".to_owned()).await,
                }
            }
        },
    );
    let message = move |field: String| field_error(&error.get(), &field);
    view! {
        <Title text="New transfer"/>
        <h1>"New transfer"</h1>
        <p class="muted">"Each leg moves an amount from a debit account to a credit account of the same asset; all legs post together or not at all."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                let memo = memo.clone();
                let effective_at = effective_at.clone();
                let timeout = timeout.clone();
                let [condition_account, condition_check, condition_value] = condition.clone();
                Suspend::new(async move {
                    let id = match id.await {
                        Ok(id) => id,
                        Err(error) => return view! { <ErrorBox error/> }.into_any(),
                    };
                    view! {
                        <ActionForm action=post attr:class="form transfer-form" attr:novalidate=true>
                            {move || error.get().filter(|e| !e.field.as_deref().is_some_and(shown_inline)).map(|e| view! {
                                <p class="form-error" role="alert" data-code=e.code.clone()>{e.message}</p>
                            })}
                            <input type="hidden" name="id" value=id.clone()/>
                            <p class="muted">"Transfer id: " <span class="mono">{id}</span></p>
                            <fieldset class="legs">
                                <legend>"Legs"</legend>
                                {move || {
                                    let rows = legs.get();
                                    let single = rows.len() == 1;
                                    rows.into_iter().enumerate().map(|(i, row)| {
                                        let name = move |field: &str| format!("legs[{i}][{field}]");
                                        let invalid = move |field: &'static str| message(name(field)).is_some().to_string();
                                        view! {
                                            <div class="leg" data-leg=i>
                                                <span class="leg-number" aria-hidden="true">{i + 1}</span>
                                                <label>{format!("Leg {} from (debit)", i + 1)}
                                                    <input name=name("debit") value=move || row.debit.get() autocomplete="off" placeholder="account id"
                                                        aria-invalid=move || invalid("debit")
                                                        on:input=move |ev| row.debit.set(event_target_value(&ev))/>
                                                </label>
                                                <label>{format!("Leg {} to (credit)", i + 1)}
                                                    <input name=name("credit") value=move || row.credit.get() autocomplete="off" placeholder="account id"
                                                        aria-invalid=move || invalid("credit")
                                                        on:input=move |ev| row.credit.set(event_target_value(&ev))/>
                                                </label>
                                                <label>{format!("Leg {} amount", i + 1)}
                                                    <input name=name("amount") value=move || row.amount.get() inputmode="decimal" autocomplete="off" placeholder="12.50"
                                                        aria-invalid=move || invalid("amount")
                                                        on:input=move |ev| row.amount.set(event_target_value(&ev))/>
                                                </label>
                                                // Not named `remove`: a form's named controls shadow its DOM
                                                // methods (`form.remove()`), which Leptos calls on unmount.
                                                <button type="submit" class="link remove-leg" formaction="/transfers/new" formmethod="get"
                                                    name="drop_leg" value=i.to_string() hidden=single
                                                    on:click=move |ev| {
                                                        ev.prevent_default();
                                                        legs.update(|legs| { legs.remove(i); });
                                                    }>
                                                    {format!("Remove leg {}", i + 1)}
                                                </button>
                                                <small class="field-error" role="alert">
                                                    {move || ["debit", "credit", "amount"].iter().find_map(|f| message(name(f)))}
                                                </small>
                                            </div>
                                        }
                                    }).collect_view()
                                }}
                                <button type="submit" class="secondary add-leg" formaction="/transfers/new" formmethod="get"
                                    name="legs" value=move || (legs.with(Vec::len) + 1).to_string()
                                    disabled=move || { legs.with(Vec::len) >= MAX_LEGS }
                                    on:click=move |ev| {
                                        ev.prevent_default();
                                        legs.update(|legs| legs.push(LegRow::new(String::new(), String::new(), String::new())));
                                    }>
                                    "Add a leg"
                                </button>
                            </fieldset>
                            <div class="field">
                                <label for="memo">"Memo (optional)"</label>
                                <input id="memo" name="memo" value=memo maxlength="500"/>
                            </div>
                            <div class="field">
                                <label for="effective_at">"Effective at, UTC (optional)"</label>
                                <input id="effective_at" name="effective_at" type="datetime-local" step="1" value=effective_at
                                    aria-describedby="effective_at-help"
                                    aria-invalid=move || message("effective_at".to_owned()).is_some().to_string()/>
                                <small id="effective_at-help" class="muted">"When it counts in the books, if not now: an earlier period, or at most a day ahead."</small>
                                <small class="field-error" role="alert">{move || message("effective_at".to_owned())}</small>
                            </div>
                            <fieldset class="hold">
                                <legend>"Two-phase"</legend>
                                <label class="check">
                                    <input type="checkbox" name="hold" value="on" checked=hold/>
                                    "Hold only: reserve the amounts now, post or void them later"
                                </label>
                                <label>"Hold expires after"
                                    <select name="timeout_secs" aria-invalid=move || message("timeout_secs".to_owned()).is_some().to_string()>
                                        {HOLD_TIMEOUTS.iter().map(|(seconds, label)| view! {
                                            <option value=*seconds selected=timeout == *seconds>{*label}</option>
                                        }).collect_view()}
                                    </select>
                                </label>
                                <small class="field-error" role="alert">{move || message("timeout_secs".to_owned())}</small>
                            </fieldset>
                            <fieldset class="conditions">
                                <legend>"Condition (optional)"</legend>
                                <p class="muted">"Refuse the transfer unless, just before it, an account has enough available or is still at the revision you read."</p>
                                <label>"Condition account"
                                    <input name="conditions[0][account]" value=condition_account autocomplete="off" placeholder="account id"
                                        aria-invalid=move || message("conditions[0][account]".to_owned()).is_some().to_string()/>
                                </label>
                                <label>"Condition check"
                                    <select name="conditions[0][check]">
                                        {CHECKS.iter().map(|(check, label)| view! {
                                            <option value=*check selected=condition_check == *check>{*label}</option>
                                        }).collect_view()}
                                    </select>
                                </label>
                                <label>"Condition value"
                                    <input name="conditions[0][value]" value=condition_value autocomplete="off" placeholder="50.00 or 3"
                                        aria-invalid=move || message("conditions[0][value]".to_owned()).is_some().to_string()/>
                                </label>
                                <small class="field-error" role="alert">
                                    {move || ["account", "check", "value"].iter().find_map(|f| message(format!("conditions[0][{f}]")))}
                                </small>
                            </fieldset>
                            <button type="submit" class="primary" disabled=move || post.pending().get()>
                                {move || if post.pending().get() { "Posting…" } else { "Post transfer" }}
                            </button>
                        </ActionForm>
                    }.into_any()
                })
            }}
        </Suspense>
    }
}
