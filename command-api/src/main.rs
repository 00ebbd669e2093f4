use clap::Parser;
use command_api::{Application, Cli, Subcommand};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    partida_service::telemetry::init(cli.config.log_json);
    match cli.command {
        Some(Subcommand::Migrate) => command_api::migrate(&cli.config.database_url).await,
        Some(Subcommand::Tokens { command }) => partida_auth::cli::run(&cli.config.database_url, command).await,
        None => {
            let app = Application::build(cli.config).await?;
            tracing::info!(addr = %app.local_addr(), "command-api listening");
            app.run_until_stopped(partida_service::shutdown_signal()).await?;
            Ok(())
        }
    }
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
