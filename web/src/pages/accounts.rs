use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_accounts;
use crate::components::common::{Amount, ErrorBox, Pager, Status};
use crate::components::metadata::MetadataFilter;
use crate::pages::query_param;
use crate::url::href;

const STATUSES: [&str; 3] = ["open", "frozen", "closed"];

#[component]
pub fn AccountsPage() -> impl IntoView {
    let prefix = query_param("prefix");
    let asset = query_param("asset");
    let status = query_param("status");
    let metadata_key = query_param("metadata_key");
    let metadata_value = query_param("metadata_value");
    let after = query_param("after");
    let data = Resource::new(
        move || {
            (
                prefix.get(),
                asset.get(),
                status.get(),
                (metadata_key.get(), metadata_value.get()),
                after.get(),
            )
        },
        |(prefix, asset, status, (key, value), after)| load_accounts(prefix, asset, status, key, value, after),
    );
    view! {
        <Title text="Accounts"/>
        <div class="heading">
            <h1>"Accounts"</h1>
            <a class="button" href="/accounts/new">"Open an account"</a>
        </div>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(list) => {
                        let scale_of = {
                            let assets = list.assets.clone();
                            move |code: &str| assets.iter().find(|a| a.code == code).map_or(0, |a| a.scale)
                        };
                        let next = list.accounts.next.clone().map(|next| {
                            href("/accounts", &[
                                ("after", Some(next)),
                                ("prefix", prefix.get()),
                                ("asset", asset.get()),
                                ("status", status.get()),
                                ("metadata_key", metadata_key.get()),
                                ("metadata_value", metadata_value.get()),
                            ])
                        });
                        view! {
                            <form class="filters" method="get" action="/accounts" role="search">
                                <label>"Id starts with"
                                    <input type="search" name="prefix" value=prefix.get().unwrap_or_default() placeholder="customers:"/>
                                </label>
                                <label>"Asset"
                                    <select name="asset">
                                        <option value="">"All"</option>
                                        {list.assets.iter().map(|a| {
                                            let selected = asset.get().as_deref() == Some(a.code.as_str());
                                            view! { <option value=a.code.clone() selected=selected>{a.code.clone()}</option> }
                                        }).collect_view()}
                                    </select>
                                </label>
                                <label>"Status"
                                    <select name="status">
                                        <option value="">"All"</option>
                                        {STATUSES.iter().map(|s| {
                                            let selected = status.get().as_deref() == Some(*s);
                                            view! { <option value=*s selected=selected>{*s}</option> }
                                        }).collect_view()}
                                    </select>
                                </label>
                                <MetadataFilter key=metadata_key value=metadata_value/>
                                <button type="submit">"Search"</button>
                            </form>
                            {if list.accounts.items.is_empty() {
                                view! { <p class="muted">"No account matches."</p> }.into_any()
                            } else {
                                view! {
                                    <table class="accounts">
                                        <thead><tr>
                                            <th scope="col">"Account"</th><th scope="col">"Name"</th><th scope="col">"Status"</th>
                                            <th scope="col" class="num">"Balance"</th>
                                        </tr></thead>
                                        <tbody>
                                            {list.accounts.items.iter().map(|account| view! {
                                                <tr data-account=account.id.clone()>
                                                    <td><a href=format!("/accounts/{}", account.id)>{account.id.clone()}</a></td>
                                                    <td>{account.name.clone()}</td>
                                                    <td><Status status=account.status.clone()/></td>
                                                    <td class="num"><Amount minor=account.balance scale=scale_of(&account.asset) asset=account.asset.clone()/></td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }}
                            <Pager first=None next next_label="Next page"/>
                        }.into_any()
                    }
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}
