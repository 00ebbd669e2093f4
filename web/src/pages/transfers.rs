use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{ResolveHolds, TransferRow, load_transfers};
use crate::components::common::{ErrorBox, Pager, Time};
use crate::components::metadata::MetadataFilter;
use crate::pages::{query_param, refresh_on};
use crate::url::href;

const STATUSES: [(&str, &str); 4] = [
    ("posted", "Posted"),
    ("pending", "Holds: pending"),
    ("voided", "Holds: voided"),
    ("expired", "Holds: expired"),
];

#[component]
pub fn TransfersPage() -> impl IntoView {
    let after = query_param("after");
    let status = query_param("status");
    let metadata_key = query_param("metadata_key");
    let metadata_value = query_param("metadata_value");
    let min_position = query_param("min_position");
    let refresh = refresh_on(|event| event.stream_id.starts_with("transfer:"));
    let data = Resource::new(
        move || {
            let number = |text: Option<String>| text.and_then(|t| t.parse::<i64>().ok());
            let metadata = (metadata_key.get(), metadata_value.get());
            (
                number(after.get()),
                status.get(),
                metadata,
                number(min_position.get()),
                refresh.get(),
            )
        },
        |(after, status, (key, value), min_position, _)| load_transfers(after, status, key, value, min_position),
    );
    let resolve = ServerAction::<ResolveHolds>::new();
    // Kept above the list, so a refresh (a live event) keeps what was ticked.
    let selected = RwSignal::new(BTreeSet::new());
    // The list's first page, with its filters.
    let first = move || {
        href(
            "/transfers",
            &[
                ("status", status.get()),
                ("metadata_key", metadata_key.get()),
                ("metadata_value", metadata_value.get()),
            ],
        )
    };
    view! {
        <Title text="Transfers"/>
        <div class="heading">
            <h1>"Transfers"</h1>
            <a class="button" href="/transfers/new">"New transfer"</a>
        </div>
        <form class="filters" method="get" action="/transfers" role="search">
            <label>"Status"
                <select name="status">
                    <option value="">"All"</option>
                    {STATUSES.iter().map(|(value, label)| view! {
                        <option value=*value selected=move || status.get().as_deref() == Some(*value)>{*label}</option>
                    }).collect_view()}
                </select>
            </label>
            <MetadataFilter key=metadata_key value=metadata_value/>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => {
                        let next = page.next.map(|next| {
                            let first = first();
                            let separator = if first.contains('?') { '&' } else { '?' };
                            format!("{first}{separator}after={next}")
                        });
                        let table = if status.get().as_deref() == Some("pending") && !page.items.is_empty() {
                            view! { <ResolveTogether rows=page.items resolve selected/> }.into_any()
                        } else {
                            view! { <TransferTable rows=page.items/> }.into_any()
                        };
                        view! {
                            {table}
                            <Pager first=Some(first()) next next_label="Older transfers"/>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Open holds, each with a box to select it, and two ways to resolve the selected ones as one
/// chain: all of them or none (a hold resolves once, so a double submit is one resolution).
#[component]
fn ResolveTogether(
    rows: Vec<TransferRow>,
    resolve: ServerAction<ResolveHolds>,
    selected: RwSignal<BTreeSet<String>>,
) -> impl IntoView {
    view! {
        <ActionForm action=resolve attr:class="resolve-together">
            {move || resolve.value().get().and_then(Result::err).map(|e| view! {
                <p class="form-error" role="alert" data-code=e.code.clone()>{e.message}</p>
            })}
            <TransferTable rows selected/>
            <p class="actions">
                <button type="submit" name="decision" value="post" disabled=move || resolve.pending().get()>"Post selected together"</button>
                <button type="submit" name="decision" value="void" class="danger" disabled=move || resolve.pending().get()>"Void selected together"</button>
            </p>
        </ActionForm>
    }
}

/// Transfers, newest first: id, what moved where, when; with `selected`, a box per row that names
/// its transfer in `ids`, ticked while the transfer is in `selected`.
#[component]
pub fn TransferTable(
    rows: Vec<TransferRow>,
    #[prop(optional)] selected: Option<RwSignal<BTreeSet<String>>>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No transfers yet."</p> }.into_any();
    }
    view! {
        <table class="transfers">
            <thead><tr>
                {selected.map(|_| view! { <th scope="col"><span class="visually-hidden">"Select"</span></th> })}
                <th scope="col">"Transfer"</th><th scope="col">"From (debit)"</th><th scope="col">"To (credit)"</th>
                <th scope="col" class="num">"Amount"</th><th scope="col">"Recorded"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().enumerate().map(|(index, row)| {
                    let transfer = row.transfer;
                    // A hold that moved nothing (yet) is shown by what it holds.
                    let (shown, amounts) = match &transfer.held {
                        Some(held) if transfer.postings.is_empty() => (held.clone(), row.held_amounts),
                        _ => (transfer.postings.clone(), row.amounts),
                    };
                    let legs = shown.len();
                    let first = shown.first().cloned();
                    let amount = amounts.first().cloned().unwrap_or_default();
                    let hold = transfer.held.as_ref().map(|_| format!("hold: {}", transfer.status));
                    let more = if legs > 1 { format!(" (+{} more)", legs - 1) } else { String::new() };
                    view! {
                        <tr data-transfer=transfer.id.clone()>
                            {selected.map(|selected| {
                                let id = transfer.id.clone();
                                let ticked = id.clone();
                                view! {
                                    <td><input type="checkbox" name=format!("ids[{index}]") value=id.clone()
                                        aria-label=format!("Select {id}")
                                        prop:checked=move || selected.with(|s| s.contains(&ticked))
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            selected.update(|s| if on { s.insert(id.clone()); } else { s.remove(&id); });
                                        }/></td>
                                }
                            })}
                            <td>
                                <a href=format!("/transfers/{}", transfer.id)>{transfer.id.clone()}</a>
                                {transfer.reverses.as_ref().map(|_| view! { " " <span class="tag">"reversal"</span> })}
                                {transfer.reversed_by.as_ref().map(|_| view! { " " <span class="tag">"reversed"</span> })}
                                {hold.map(|status| view! { " " <span class="tag">{status}</span> })}
                            </td>
                            <td>{first.as_ref().map(|p| view! { <a href=format!("/accounts/{}", p.debit)>{p.debit.clone()}</a> })}</td>
                            <td>{first.as_ref().map(|p| view! { <a href=format!("/accounts/{}", p.credit)>{p.credit.clone()}</a> })}</td>
                            <td class="num">{amount}{more}</td>
                            <td><Time at=transfer.recorded_at.clone()/></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
