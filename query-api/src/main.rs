use clap::Parser;
use query_api::{Application, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    partida_service::telemetry::init(cli.config.log_json);
    let app = Application::build(cli.config).await?;
    tracing::info!(addr = %app.local_addr(), "query-api listening");
    app.run_until_stopped(partida_service::shutdown_signal()).await?;
    Ok(())
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
