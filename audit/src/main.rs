//! `partida-audit`: verify Partida's log offline (see `partida-audit verify --help`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};
use partida_audit::progress::Progress;
use partida_audit::source::{Source, SourceError};
use partida_audit::{Compare, verify};

#[derive(Parser)]
#[command(
    name = "partida-audit",
    version,
    about = "Verify Partida's log without trusting the services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the chain, replay every event through the domain, check double entry; compare
    /// with the read tables (--url, --query-url) or the write side (--database-url).
    ///
    /// Exit status: 0 verified, 1 a check failed, 2 the input could not be used.
    Verify(VerifyArgs),
}

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["export", "url", "database_url"])))]
struct VerifyArgs {
    /// An NDJSON export (`GET /v1/audit/export` of query-api).
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// A running query-api: its export is verified and its read tables compared.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The database: the events table and the write-side tables, in one snapshot.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Also compare the read tables of this query-api (implied by --url).
    #[arg(long, value_name = "URL")]
    query_url: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command: Command::Verify(args),
    } = Cli::parse();
    let source = match (&args.export, &args.url, &args.database_url) {
        (Some(path), _, _) => Source::file(path).await,
        (_, Some(url), _) => Source::query_api(url).await,
        (_, _, Some(url)) => Source::database(url).await,
        _ => Err(SourceError::Unreadable(
            "name what to verify: --export, --url or --database-url".into(),
        )),
    };
    let compare = Compare {
        query_url: args.query_url.clone().or_else(|| args.url.clone()),
    };
    let mut progress = Progress::new(!args.quiet && !args.json, None);
    let report = match source {
        Ok(source) => verify(source, &compare, &mut progress).await,
        Err(error) => Err(error),
    };
    match report {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", report.human());
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            if args.json {
                println!("{}", serde_json::json!({"ok": false, "error": error.to_string()}));
            }
            eprintln!("partida-audit: {error}");
            ExitCode::from(2)
        }
    }
}
