use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::types::Account;
use crate::api::{AccountDetail, ChangeAccount, EraseSubject, MetadataOf, SetMetadata, load_account};
use crate::components::chart::BalanceChart;
use crate::components::common::{Amount, ErrorBox, Pager, Status, Time};
use crate::components::metadata::MetadataEditor;
use crate::pages::{query_param, refresh_on};

#[component]
pub fn AccountPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let min_position = query_param("min_position");
    let after = query_param("after");
    let refresh = refresh_on(move |event| event.touches_account(&id.get_untracked()));
    let data = Resource::new(
        move || {
            (
                id.get(),
                min_position.get().and_then(|p| p.parse::<i64>().ok()),
                after.get(),
                refresh.get(),
            )
        },
        |(id, min_position, after, _)| load_account(id, min_position, after),
    );
    let change = ServerAction::<ChangeAccount>::new();
    let annotate = ServerAction::<SetMetadata>::new();
    let erase = ServerAction::<EraseSubject>::new();
    view! {
        <Title text=move || format!("Account {}", id.get())/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(detail) => view! { <AccountView detail change annotate erase/> }.into_any(),
                    Err(error) => view! { <h1>"Account " {id.get_untracked()}</h1><ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AccountView(
    detail: AccountDetail,
    change: ServerAction<ChangeAccount>,
    annotate: ServerAction<SetMetadata>,
    erase: ServerAction<EraseSubject>,
) -> impl IntoView {
    let AccountDetail {
        account,
        scale,
        entries,
        history,
    } = detail;
    let asset = account.asset.clone();
    let limit = if account.flags.debits_must_not_exceed_credits {
        "No overdraft"
    } else if account.flags.credits_must_not_exceed_debits {
        "No overcredit"
    } else {
        "No limit"
    };
    let next = entries
        .next
        .clone()
        .map(|cursor| format!("/accounts/{}?after={cursor}", account.id));
    view! {
        <div class="heading">
            <h1>{account.name.clone()} " " <small class="muted">{account.id.clone()}</small></h1>
            <Status status=account.status.clone()/>
        </div>
        <dl class="balances" data-account=account.id.clone()>
            <div class="card"><dt>"Balance"</dt><dd data-field="balance"><Amount minor=account.balance scale asset=asset.clone()/></dd></div>
            <div class="card"><dt>"Debits"</dt><dd><Amount minor=account.debits scale asset=asset.clone()/></dd></div>
            <div class="card"><dt>"Credits"</dt><dd><Amount minor=account.credits scale asset=asset.clone()/></dd></div>
            <div class="card"><dt>"Held"</dt><dd data-field="held"><Amount minor=account.balance - account.available scale asset=asset.clone()/></dd></div>
            <div class="card"><dt>"Available"</dt><dd data-field="available"><Amount minor=account.available scale asset=asset.clone()/></dd></div>
            <div class="card"><dt>"Limit"</dt><dd>{limit}</dd></div>
            <div class="card"><dt>"Revision"</dt><dd data-field="revision">{account.revision}</dd></div>
        </dl>
        <BalanceChart points=history scale asset=asset.clone()/>
        <Actions account=account.clone() change/>
        <MetadataEditor
            of=MetadataOf::Account
            id=account.id.clone()
            metadata=account.metadata.clone()
            key=format!("{}:metadata:{}", account.id, account.last_position)
            annotate
        />
        <PersonalData account=account.clone() erase/>
        <section aria-labelledby="entries-title">
            <h2 id="entries-title">"Entries"</h2>
            {if entries.items.is_empty() {
                view! { <p class="muted">"No entries yet."</p> }.into_any()
            } else {
                view! {
                    <table class="entries">
                        <thead><tr>
                            <th scope="col">"Position"</th><th scope="col">"Transfer"</th><th scope="col">"Side"</th>
                            <th scope="col" class="num">"Amount"</th><th scope="col" class="num">"Balance after"</th><th scope="col">"Recorded"</th>
                        </tr></thead>
                        <tbody>
                            {entries.items.into_iter().map(|entry| {
                                let asset = asset.clone();
                                view! {
                                    <tr data-transfer=entry.transfer_id.clone()>
                                        <td>{entry.position}</td>
                                        <td><a href=format!("/transfers/{}", entry.transfer_id)>{entry.transfer_id.clone()}</a></td>
                                        <td>{entry.side.clone()}</td>
                                        <td class="num"><Amount minor=entry.amount scale asset=asset.clone()/></td>
                                        <td class="num"><Amount minor=entry.balance scale asset/></td>
                                        <td><Time at=entry.recorded_at.clone()/></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            <Pager first=Some(format!("/accounts/{}", account.id)) next next_label="Older entries"/>
        </section>
    }
}

/// The account's personal data, when its metadata has any (`personal`): whose it is, and a form
/// that erases it. Erasing destroys the subject's key, so it reaches every account and transfer
/// of the subject, for good.
#[component]
fn PersonalData(account: Account, erase: ServerAction<EraseSubject>) -> impl IntoView {
    let personal = account.metadata.get("personal").cloned().unwrap_or_default();
    let Some(subject) = personal.get("subject").and_then(|s| s.as_str()).map(str::to_owned) else {
        return ().into_any();
    };
    let erased = personal.get("erased").and_then(|e| e.as_bool()) == Some(true);
    let error = move || erase.value().get().and_then(Result::err);
    let state = if erased {
        view! { <p data-field="personal">"The personal data of " <strong>{subject.clone()}</strong> " is erased."</p> }
            .into_any()
    } else {
        let label = format!("Erase personal data of {subject}");
        view! {
            <p data-field="personal">
                "Sealed under the key of data subject " <strong>{subject.clone()}</strong>
                ". Erasing destroys the key: the subject's personal data on every account and transfer becomes unreadable for good."
            </p>
            <ActionForm action=erase attr:class="inline">
                <input type="hidden" name="id" value=account.id.clone()/>
                <input type="hidden" name="subject" value=subject.clone()/>
                <button type="submit" class="danger">{label}</button>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <section aria-labelledby="personal-title" class="personal">
            <h2 id="personal-title">"Personal data"</h2>
            {move || error().map(|e| view! { <p class="form-error" role="alert">{e.message}</p> })}
            {state}
        </section>
    }
    .into_any()
}

/// Freeze, unfreeze and close, each a form that works without JavaScript. The idempotency key
/// names the account's state, so a double submit is one change. (No control is named `action`
/// or `remove`: a form's named controls shadow its DOM properties.)
#[component]
fn Actions(account: Account, change: ServerAction<ChangeAccount>) -> impl IntoView {
    let actions: Vec<(&str, &str)> = match account.status.as_str() {
        "open" => vec![("freeze", "Freeze"), ("close", "Close")],
        "frozen" => vec![("unfreeze", "Unfreeze")],
        _ => Vec::new(),
    };
    let error = move || change.value().get().and_then(Result::err);
    view! {
        <section class="actions" aria-label="Account actions">
            {move || error().map(|e| view! { <p class="form-error" role="alert">{e.message}</p> })}
            {actions.into_iter().map(|(action, label)| {
                let key = format!("{}:{action}:{}", account.id, account.last_position);
                let id = account.id.clone();
                view! {
                    <ActionForm action=change attr:class="inline">
                        <input type="hidden" name="id" value=id/>
                        <input type="hidden" name="change" value=action/>
                        <input type="hidden" name="key" value=key/>
                        <button type="submit" class=format!("action-{action}")>{label}</button>
                    </ActionForm>
                }
            }).collect_view()}
        </section>
    }
}
