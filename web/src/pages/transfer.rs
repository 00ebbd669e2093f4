use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::{
    MetadataOf, PostHoldPart, ResolveHold, ReverseTransfer, SetMetadata, TransferDetail, load_transfer, new_id,
};
use crate::components::common::{ErrorBox, Time};
use crate::components::metadata::MetadataEditor;
use crate::pages::query_param;

#[component]
pub fn TransferPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let min_position = query_param("min_position");
    let confirm = query_param("confirm");
    let data = Resource::new(
        move || (id.get(), min_position.get().and_then(|p| p.parse::<i64>().ok())),
        |(id, min_position)| load_transfer(id, min_position),
    );
    let annotate = ServerAction::<SetMetadata>::new();
    view! {
        <Title text=move || format!("Transfer {}", id.get())/>
        <h1>"Transfer " <span class="mono">{move || id.get()}</span></h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(detail) => {
                        let transfer = &detail.row.transfer;
                        let confirming = confirm.get().as_deref() == Some("reverse") && transfer.reversed_by.is_none();
                        let id = transfer.id.clone();
                        view! {
                            <TransferView detail annotate/>
                            {confirming.then(|| view! { <ConfirmReverse id/> })}
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TransferView(detail: TransferDetail, annotate: ServerAction<SetMetadata>) -> impl IntoView {
    let TransferDetail { row, form_key } = detail;
    let transfer = row.transfer;
    let pending = transfer.status == "pending";
    let moved = !transfer.postings.is_empty();
    view! {
        <dl class="facts">
            <dt>"Status"</dt><dd data-field="status">{transfer.status.clone()}</dd>
            <dt>"Position"</dt><dd>{transfer.position}</dd>
            <dt>"Recorded"</dt><dd><Time at=transfer.recorded_at.clone()/></dd>
            // Shown for a dated transfer only: a posted hold's effective time is its post's.
            {transfer.effective_at.clone().filter(|at| transfer.held.is_none() && *at != transfer.recorded_at).map(|at| view! {
                <dt>"Effective"</dt><dd data-field="effective_at"><Time at/></dd>
            })}
            {transfer.expires_at.clone().map(|at| view! {
                <dt>"Expires"</dt><dd><Time at/></dd>
            })}
            {transfer.reverses.clone().map(|original| view! {
                <dt>"Reverses"</dt><dd><a href=format!("/transfers/{original}")>{original.clone()}</a></dd>
            })}
            {transfer.reversed_by.clone().map(|reversal| view! {
                <dt>"Reversed by"</dt><dd><a href=format!("/transfers/{reversal}") data-reversed-by=reversal.clone()>{reversal.clone()}</a></dd>
            })}
        </dl>
        {transfer.held.clone().map(|held| view! {
            <Legs class="postings held" caption="Held" amount_header="Reserved" legs=held amounts=row.held_amounts.clone()/>
        })}
        {pending.then(|| view! {
            <ResolveForm id=transfer.id.clone()/>
            <PostPartForm id=transfer.id.clone() held=row.held_amounts.clone()/>
        })}
        <Legs
            class="postings"
            caption=if transfer.held.is_some() { "Posted" } else { "Postings" }
            amount_header="Amount"
            legs=transfer.postings.clone()
            amounts=row.amounts
        />
        <MetadataEditor
            of=MetadataOf::Transfer
            id=transfer.id.clone()
            metadata=transfer.metadata.clone()
            key=format!("{}:metadata:{form_key}", transfer.id)
            annotate
        />
        {(moved && transfer.reversed_by.is_none() && transfer.reverses.is_none()).then(|| view! {
            <p><a class="button danger" href=format!("/transfers/{}?confirm=reverse", transfer.id)>"Reverse this transfer…"</a></p>
        })}
    }
}

/// A transfer's legs (what moved, or what a hold reserved), with their amounts as shown.
#[component]
fn Legs(
    class: &'static str,
    caption: &'static str,
    amount_header: &'static str,
    legs: Vec<crate::api::types::Posting>,
    amounts: Vec<String>,
) -> impl IntoView {
    view! {
        <table class=class>
            <caption>{caption}</caption>
            <thead><tr>
                <th scope="col">"Debit (from)"</th><th scope="col">"Credit (to)"</th><th scope="col" class="num">{amount_header}</th>
            </tr></thead>
            <tbody>
                {legs.into_iter().zip(amounts).map(|(leg, amount)| view! {
                    <tr>
                        <td><a href=format!("/accounts/{}", leg.debit)>{leg.debit.clone()}</a></td>
                        <td><a href=format!("/accounts/{}", leg.credit)>{leg.credit.clone()}</a></td>
                        <td class="num">{amount}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Posts an open hold in full, or voids it: plain forms, so they work without JavaScript too.
/// A hold resolves once, so a double click is answered with the first resolution.
#[component]
fn ResolveForm(id: String) -> impl IntoView {
    let resolve = ServerAction::<ResolveHold>::new();
    let post_id = id.clone();
    view! {
        <section class="resolve" aria-label="Resolve this hold">
            {move || resolve.value().get().and_then(Result::err).map(|e| view! { <p class="form-error" role="alert">{e.message}</p> })}
            <ActionForm action=resolve attr:class="inline">
                <input type="hidden" name="id" value=post_id/>
                <input type="hidden" name="action" value="post"/>
                <button type="submit" disabled=move || resolve.pending().get()>"Post in full"</button>
            </ActionForm>
            " "
            <ActionForm action=resolve attr:class="inline">
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="action" value="void"/>
                <button type="submit" class="danger" disabled=move || resolve.pending().get()>"Void"</button>
            </ActionForm>
        </section>
    }
}

/// Posts part of a hold: an amount per held leg (blank posts nothing of it), the rest released.
/// A hold resolves once, so a double click is answered with the first resolution.
#[component]
fn PostPartForm(id: String, held: Vec<String>) -> impl IntoView {
    let post = ServerAction::<PostHoldPart>::new();
    let error = move || post.value().get().and_then(Result::err);
    view! {
        <details class="post-part" open=move || error().is_some()>
            <summary>"Post part of it…"</summary>
            <ActionForm action=post attr:class="inline" attr:novalidate=true>
                {move || error().map(|e| view! { <p class="form-error" role="alert" data-code=e.code.clone()>{e.message}</p> })}
                <input type="hidden" name="id" value=id/>
                {held.into_iter().enumerate().map(|(index, amount)| view! {
                    <label>{format!("Leg {} amount to post (of {amount})", index + 1)}
                        <input name=format!("amounts[{index}]") inputmode="decimal" autocomplete="off"/>
                    </label>
                }).collect_view()}
                <button type="submit" disabled=move || post.pending().get()>"Post these amounts"</button>
            </ActionForm>
        </details>
    }
}

/// The second step of a reversal: a plain form, so it works without JavaScript too. The
/// reversal's id is chosen once, when this is shown.
#[component]
fn ConfirmReverse(id: String) -> impl IntoView {
    let reverse = ServerAction::<ReverseTransfer>::new();
    let reversal_id = Resource::new(|| (), |_| new_id("rev".to_owned()));
    let cancel = format!("/transfers/{id}");
    view! {
        <section class="confirm" role="alertdialog" aria-labelledby="confirm-title">
            <h2 id="confirm-title">"Reverse transfer " {id.clone()} "?"</h2>
            <p>"A new transfer will post the same amounts back, debit and credit swapped. A transfer is reversed once."</p>
            {move || reverse.value().get().and_then(Result::err).map(|e| view! { <p class="form-error" role="alert">{e.message}</p> })}
            <Suspense fallback=|| ()>
                {
                    let id = id.clone();
                    let cancel = cancel.clone();
                    move || {
                        let id = id.clone();
                        let cancel = cancel.clone();
                        Suspend::new(async move {
                            match reversal_id.await {
                                Ok(reversal_id) => view! {
                                    <ActionForm action=reverse attr:class="inline">
                                        <input type="hidden" name="id" value=id/>
                                        <input type="hidden" name="reversal_id" value=reversal_id/>
                                        <button type="submit" class="danger" disabled=move || reverse.pending().get()>"Reverse it"</button>
                                        " " <a href=cancel>"Cancel"</a>
                                    </ActionForm>
                                }.into_any(),
                                Err(error) => view! { <ErrorBox error/> }.into_any(),
                            }
                        })
                    }
                }
            </Suspense>
        </section>
    }
}
