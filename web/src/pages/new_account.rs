use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{OpenAccount, load_assets};
use crate::components::common::{ErrorBox, field_error, typed};

#[component]
pub fn NewAccountPage() -> impl IntoView {
    let assets = Resource::new(|| (), |_| load_assets());
    let open = ServerAction::<OpenAccount>::new();
    let error = Memo::new(move |_| open.value().get().and_then(Result::err));
    let message = move |field: &'static str| field_error(&error.get(), field);
    let value = move |field: &'static str| typed(&error.get(), field).unwrap_or_default();
    view! {
        <Title text="Open an account"/>
        <h1>"Open an account"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let assets = match assets.await {
                    Ok(assets) => assets,
                    Err(error) => return view! { <ErrorBox error/> }.into_any(),
                };
                if assets.is_empty() {
                    return view! {
                        <p>"No asset is registered yet: register one with "<code>"POST /v1/assets"</code>" first."</p>
                    }.into_any();
                }
                view! {
                    <ActionForm action=open attr:class="form" attr:novalidate=true>
                        {move || error.get().filter(|e| e.field.is_none()).map(|e| view! {
                            <p class="form-error" role="alert">{e.message}</p>
                        })}
                        <Field label="Account id" name="id" hint="Letters, digits and : . _ -, e.g. customers:alice" message=Signal::derive(move || message("id"))>
                            <input id="id" name="id" required maxlength="128" autocomplete="off"
                                value=move || value("id") aria-invalid=move || message("id").is_some().to_string()
                                aria-describedby="id-hint id-error"/>
                        </Field>
                        <Field label="Name" name="name" hint="What people call it" message=Signal::derive(move || message("name"))>
                            <input id="name" name="name" required maxlength="200"
                                value=move || value("name") aria-invalid=move || message("name").is_some().to_string()
                                aria-describedby="name-hint name-error"/>
                        </Field>
                        <Field label="Asset" name="asset" hint="Fixed for the account's life" message=Signal::derive(move || message("asset"))>
                            <select id="asset" name="asset" aria-describedby="asset-hint asset-error">
                                {assets.iter().map(|a| {
                                    let code = a.code.clone();
                                    let selected = move || value("asset") == code;
                                    view! { <option value=a.code.clone() selected=selected>{format!("{} (scale {})", a.code, a.scale)}</option> }
                                }).collect_view()}
                            </select>
                        </Field>
                        <fieldset>
                            <legend>"Balance limit"</legend>
                            <label class="choice"><input type="radio" name="limit" value="no_overdraft" checked=move || value("limit") != "none" && value("limit") != "no_overcredit"/>
                                " No overdraft: it can only pay out what it received (customer wallets)"</label>
                            <label class="choice"><input type="radio" name="limit" value="no_overcredit" checked=move || value("limit") == "no_overcredit"/>
                                " No overcredit: it can only receive what it paid out"</label>
                            <label class="choice"><input type="radio" name="limit" value="none" checked=move || value("limit") == "none"/>
                                " No limit (funding, equity and settlement accounts)"</label>
                        </fieldset>
                        <button type="submit" disabled=move || open.pending().get()>"Open account"</button>
                    </ActionForm>
                }.into_any()
            })}
        </Suspense>
    }
}

/// A labelled form field with its hint and, after a failed submit, its error.
#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    hint: &'static str,
    message: Signal<Option<String>>,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="field" class:invalid=move || message.get().is_some()>
            <label for=name>{label}</label>
            {children()}
            <small id=format!("{name}-hint") class="hint">{hint}</small>
            <small id=format!("{name}-error") class="field-error" role="alert">{move || message.get()}</small>
        </div>
    }
}
