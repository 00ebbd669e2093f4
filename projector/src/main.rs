use clap::Parser;
use projector::{Application, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    partida_service::telemetry::init(cli.config.log_json);
    match cli.command {
        Some(Command::Rebuild { projection, .. }) if projection == "write-side" => {
            let pool = sqlx::PgPool::connect(&cli.config.database_url).await?;
            let rebuilt = partida_eventstore::rebuild_write_side(&pool).await?;
            tracing::info!(
                events = rebuilt.events,
                assets = rebuilt.assets,
                accounts = rebuilt.accounts,
                "write side rebuilt from the log"
            );
            Ok(())
        }
        Some(Command::Rebuild { projection, batch }) => {
            let report = projector::rebuild(&cli.config.database_url, &projection, batch).await?;
            tracing::info!(
                generation = report.generation,
                checkpoint = report.checkpoint,
                seconds = report.elapsed.as_secs_f64(),
                "rebuild done: readers now use the new generation"
            );
            Ok(())
        }
        None => {
            let app = Application::build(cli.config).await?;
            tracing::info!(addr = %app.local_addr(), "projector listening");
            app.run_until_stopped(partida_service::shutdown_signal()).await
        }
    }
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
