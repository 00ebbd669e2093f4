//! Signing in: an operator pastes their API token (or their provider's sign-in token); the
//! console checks it with the APIs and keeps it in an HttpOnly session cookie.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::Login;
use crate::pages::query_param;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let error = Memo::new(move |_| login.value().get().and_then(Result::err));
    let next = query_param("next");
    view! {
        <Title text="Sign in"/>
        <h1>"Sign in"</h1>
        <ActionForm action=login attr:class="form" attr:novalidate=true>
            {move || error.get().map(|e| view! {
                <p class="form-error" role="alert" id="token-error">{e.message}</p>
            })}
            <div class="field" class:invalid=move || error.get().is_some()>
                <label for="token">"Token"</label>
                <input id="token" name="token" type="password" required autocomplete="off"
                    aria-describedby="token-hint token-error"
                    aria-invalid=move || error.get().is_some().to_string()/>
                <p class="hint" id="token-hint">
                    "Your API token (ptk_…) from an administrator, or a sign-in token from your identity provider. "
                    "What you do here is recorded under its name."
                </p>
            </div>
            <input type="hidden" name="next" value=move || next.get().unwrap_or_default()/>
            <button type="submit" disabled=move || login.pending().get()>"Sign in"</button>
        </ActionForm>
    }
}
