use clap::Parser;
use projector::{Application, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    partida_service::telemetry::init(cli.config.log_json);
    match cli.command {
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
