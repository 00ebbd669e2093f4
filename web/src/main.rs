//! `web`: the console's server (see `web --help`).

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    web::server::main().await
}

#[cfg(not(feature = "ssr"))]
fn main() {}
