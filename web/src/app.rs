//! The document, the layout every page shares, and the routes.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::api::{Logout, whoami};
use crate::components::live::{LiveStatus, provide_live};
use crate::pages::{
    account::AccountPage, accounts::AccountsPage, balances::BalancesPage, dashboard::DashboardPage, events::EventsPage,
    login::LoginPage, new_account::NewAccountPage, new_transfer::NewTransferPage, system::SystemPage,
    transfer::TransferPage, transfers::TransfersPage, trial_balance::TrialBalancePage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_live();
    // Effects run only in the browser: the marker says the page is interactive (tests wait on it).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/web.css"/>
        <Title formatter=|page: String| format!("{page} · Partida")/>
        <Router>
            <div class="app" data-hydrated=move || hydrated.get().to_string()>
                <a class="skip" href="#main">"Skip to content"</a>
                <header class="top">
                    <a class="brand" href="/">"Partida"</a>
                    <nav aria-label="Main">
                        <A href="/" exact=true>"Dashboard"</A>
                        <A href="/accounts">"Accounts"</A>
                        <A href="/transfers" exact=true>"Transfers"</A>
                        <A href="/transfers/new">"New transfer"</A>
                        <A href="/balances">"Balances"</A>
                        <A href="/trial-balance">"Trial balance"</A>
                        <A href="/log">"Event log"</A>
                        <A href="/system">"System"</A>
                    </nav>
                    <LiveStatus/>
                    <SignedIn/>
                </header>
                // Every route renders completely on the server before it is sent (no streaming),
                // so pages read and forms post with JavaScript off too.
                <main id="main" tabindex="-1">
                    <Routes fallback=|| view! { <NotFound/> }>
                        <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                        <Route path=path!("/") view=DashboardPage ssr=SsrMode::Async/>
                        <Route path=path!("/accounts") view=AccountsPage ssr=SsrMode::Async/>
                        <Route path=path!("/accounts/new") view=NewAccountPage ssr=SsrMode::Async/>
                        <Route path=path!("/accounts/:id") view=AccountPage ssr=SsrMode::Async/>
                        <Route path=path!("/transfers") view=TransfersPage ssr=SsrMode::Async/>
                        <Route path=path!("/transfers/new") view=NewTransferPage ssr=SsrMode::Async/>
                        <Route path=path!("/transfers/:id") view=TransferPage ssr=SsrMode::Async/>
                        <Route path=path!("/balances") view=BalancesPage ssr=SsrMode::Async/>
                        <Route path=path!("/trial-balance") view=TrialBalancePage ssr=SsrMode::Async/>
                        <Route path=path!("/log") view=EventsPage ssr=SsrMode::Async/>
                        <Route path=path!("/system") view=SystemPage ssr=SsrMode::Async/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

/// Who is signed in, and the way out. Asked again whenever the sign-in page is left.
#[component]
fn SignedIn() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let on_login = Memo::new(move |_| location.pathname.get() == "/login");
    let operator = Resource::new(move || on_login.get(), |_| whoami());
    let logout = ServerAction::<Logout>::new();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                operator.await.ok().map(|operator| view! {
                    <div class="operator">
                        <span data-operator=operator.subject.clone()>
                            {operator.subject.clone()}" · "{operator.role.clone()}
                        </span>
                        <ActionForm action=logout attr:class="inline">
                            <button type="submit" class="link">"Sign out"</button>
                        </ActionForm>
                    </div>
                })
            })}
        </Suspense>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <h1>"Not found"</h1>
        <p>"There is no page here. " <a href="/">"Go to the dashboard"</a>"."</p>
    }
}
