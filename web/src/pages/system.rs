use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::load_system;
use crate::components::common::{ErrorBox, Time};
use crate::pages::dashboard::ServiceCards;
use crate::pages::refresh_on;

#[component]
pub fn SystemPage() -> impl IntoView {
    let refresh = refresh_on(|_| true);
    let data = Resource::new(move || refresh.get(), |_| load_system());
    view! {
        <Title text="System"/>
        <h1>"System"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(system) => view! {
                        <section aria-labelledby="services-title">
                            <h2 id="services-title">"Services"</h2>
                            <ServiceCards services=system.services.clone()/>
                            <table class="health">
                                <thead><tr><th scope="col">"Service"</th><th scope="col">"Answer to /readyz"</th></tr></thead>
                                <tbody>
                                    {system.services.iter().map(|s| view! {
                                        <tr><th scope="row">{s.name.clone()}</th><td><code>{s.detail.clone()}</code></td></tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                        <section aria-labelledby="checkpoint-title">
                            <h2 id="checkpoint-title">"Signed checkpoint"</h2>
                            {match system.checkpoint.clone() {
                                Some(checkpoint) => view! {
                                    <dl class="facts" data-checkpoint=checkpoint.position>
                                        <dt>"Position"</dt><dd>{checkpoint.position}</dd>
                                        <dt>"Signed"</dt><dd><Time at=checkpoint.signed_at.clone()/></dd>
                                        <dt>"Key"</dt><dd class="mono">{checkpoint.key_id.clone()}</dd>
                                        <dt>"Chain hash"</dt><dd class="mono hash">{checkpoint.chain_hash.clone()}</dd>
                                        <dt>"Merkle root"</dt><dd class="mono hash">{checkpoint.merkle_root.clone()}</dd>
                                    </dl>
                                    <p class="muted">"Verify it offline with " <code>"partida-audit verify"</code> " (docs/AUDITING.md)."</p>
                                }.into_any(),
                                None => view! { <p class="muted">"No checkpoint has been signed yet."</p> }.into_any(),
                            }}
                        </section>
                        <section aria-labelledby="projections-title">
                            <h2 id="projections-title">"Projections"</h2>
                            <p>"Log head: position " <strong>{system.head}</strong></p>
                            <table class="projections">
                                <thead><tr>
                                    <th scope="col">"Projection"</th><th scope="col" class="num">"Generation"</th>
                                    <th scope="col" class="num">"Checkpoint"</th><th scope="col" class="num">"Head"</th>
                                    <th scope="col" class="num">"Lag"</th><th scope="col">"Updated"</th>
                                </tr></thead>
                                <tbody>
                                    {system.projections.iter().map(|p| view! {
                                        <tr data-projection=p.name.clone()>
                                            <th scope="row">{p.name.clone()}</th>
                                            <td class="num">{p.generation}</td>
                                            <td class="num">{p.checkpoint}</td>
                                            <td class="num">{p.head}</td>
                                            <td class="num">{p.lag}</td>
                                            <td><Time at=p.updated_at.clone()/></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }.into_any(),
                    Err(error) => view! { <ErrorBox error/> }.into_any(),
                }
            })}
        </Transition>
    }
}
