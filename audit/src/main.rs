//! `partida-audit`: verify Partida's log offline (see `partida-audit verify --help`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};
use partida_audit::books::At;
use partida_audit::progress::Progress;
use partida_audit::source::{Source, SourceError};
use partida_audit::{CheckpointSource, Compare, QueryApi, verify};

#[derive(Parser)]
#[command(
    name = "partida-audit",
    version,
    about = "Verify Partida's log without trusting the services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The API token (or JWT) query-api is read with: an auditor's or an admin's.
    #[arg(long, global = true, env = "PARTIDA_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check the chain, replay every event through the domain, check double entry; compare
    /// with the read tables (--url, --query-url) or the write side (--database-url).
    ///
    /// Exit status: 0 verified, 1 a check failed, 2 the input could not be used.
    Verify(VerifyArgs),
    /// Prove one record's inclusion in a signed checkpoint (--position), or that one signed
    /// checkpoint extends another (--from), from query-api's Merkle proofs.
    ///
    /// Exit status: 0 proven, 1 the proof fails, 2 the proof could not be fetched.
    Proof(ProofArgs),
    /// The trial balance as of a position or a time, replayed from the log (verified on the
    /// way) and compared with query-api's books for the same point (--url or --query-url).
    ///
    /// Exit status: 0 the books agree, 1 a check failed or they differ, 2 unusable input.
    Books(BooksArgs),
}

/// Where the log is read from: exactly one of these.
#[derive(Args)]
#[group(id = "source", required = true, multiple = false)]
struct SourceArgs {
    /// An NDJSON export (`GET /v1/audit/export` of query-api).
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// A running query-api: its export is read and its tables compared.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The database: the events table (and the write-side tables), in one snapshot.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("at").required(true).args(["at_position", "at_time"])))]
struct BooksArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Compare with the books of this query-api (implied by --url).
    #[arg(long, value_name = "URL")]
    query_url: Option<String>,
    /// The books right after the event at this position.
    #[arg(long)]
    at_position: Option<i64>,
    /// The books as of this time (RFC 3339): after the last event recorded at or before it.
    #[arg(long)]
    at_time: Option<String>,
    /// Only the legs taking effect at or before this time (RFC 3339), among those recorded by
    /// the point above.
    #[arg(long)]
    as_of_effective: Option<String>,
    /// Print the books as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["position", "from"])))]
struct ProofArgs {
    /// query-api's base URL.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The record to prove included.
    #[arg(long)]
    position: Option<i64>,
    /// The checkpoint to prove it against (default: the latest).
    #[arg(long, requires = "position")]
    checkpoint: Option<i64>,
    /// The earlier checkpoint of a consistency proof.
    #[arg(long)]
    from: Option<i64>,
    /// The later checkpoint (default: the latest).
    #[arg(long, requires = "from")]
    to: Option<i64>,
    /// Check signatures only with the keys in this file (`keys.json` as published).
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Also compare the read tables of this query-api (implied by --url).
    #[arg(long, value_name = "URL")]
    query_url: Option<String>,
    /// Check signed checkpoints from a publication directory (with --export; --url and
    /// --database-url check the source's own checkpoints).
    #[arg(long, value_name = "DIR")]
    checkpoints: Option<PathBuf>,
    /// Check signatures only with the keys in this file (`keys.json` as published), not the
    /// source's own list: whoever holds the database could add a key.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let token = cli.token.as_deref();
    match cli.command {
        Command::Verify(args) => run_verify(args, token).await,
        Command::Proof(args) => run_proof(args, token).await,
        Command::Books(args) => run_books(args, token).await,
    }
}

/// query-api at `url`, read with the caller's token.
fn query_api(url: &str, token: Option<&str>) -> Result<QueryApi, SourceError> {
    QueryApi::new(url, token).map_err(|e| SourceError::Unreadable(format!("{url}: {e}")))
}

async fn open(source: &SourceArgs, token: Option<&str>) -> Result<Source, SourceError> {
    match (&source.export, &source.url, &source.database_url) {
        (Some(path), _, _) => Source::file(path).await,
        (_, Some(url), _) => Source::query_api(&query_api(url, token)?).await,
        (_, _, Some(url)) => Source::database(url).await,
        _ => Err(SourceError::Unreadable(
            "name what to read: --export, --url or --database-url".into(),
        )),
    }
}

async fn run_books(args: BooksArgs, token: Option<&str>) -> ExitCode {
    let at = match (args.at_position, &args.at_time) {
        (Some(position), _) => At::Position(position),
        (None, Some(text)) => match partida_eventstore::parse_timestamp(text) {
            Some(micros) => At::Time(micros),
            None => {
                eprintln!("partida-audit: --at-time must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z");
                return ExitCode::from(2);
            }
        },
        (None, None) => return ExitCode::from(2),
    };
    let effective = match args.as_of_effective.as_deref().map(partida_eventstore::parse_timestamp) {
        None => None,
        Some(Some(micros)) => Some(micros),
        Some(None) => {
            eprintln!("partida-audit: --as-of-effective must be an RFC 3339 time, e.g. 2026-10-31T23:59:59Z");
            return ExitCode::from(2);
        }
    };
    let replayed = match open(&args.source, token).await {
        Ok(source) => partida_audit::books::replay_to(source, at, effective).await,
        Err(error) => Err(error),
    };
    let books = match replayed {
        Ok(Ok(books)) => books,
        Ok(Err(failure)) => {
            println!("partida-audit books: FAILED {}: {}", failure.check, failure.message);
            return ExitCode::from(1);
        }
        Err(error) => {
            eprintln!("partida-audit: {error}");
            return ExitCode::from(2);
        }
    };
    let mut differences = Vec::new();
    if let Some(url) = args.query_url.as_ref().or(args.source.url.as_ref()) {
        let served = match query_api(url, token) {
            Ok(api) => partida_audit::books::served(&api, &books).await,
            Err(error) => Err(anyhow::anyhow!("{error}")),
        };
        match served {
            Ok(served) => differences = partida_audit::books::differences(&books, &served),
            Err(error) => differences.push(format!("query-api's books could not be read: {error}")),
        }
    }
    let balanced = books.assets.iter().all(|asset| asset.balanced);
    if args.json {
        let report =
            serde_json::json!({"books": books, "differences": differences, "ok": balanced && differences.is_empty()});
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", partida_audit::books::human(&books));
        for difference in &differences {
            println!("DIFFERS: {difference}");
        }
    }
    if balanced && differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn run_proof(args: ProofArgs, token: Option<&str>) -> ExitCode {
    let keys = args.keys.as_deref();
    let verdict = match (QueryApi::new(&args.url, token), args.position, args.from) {
        (Err(error), _, _) => Err(error),
        (Ok(api), Some(position), _) => partida_audit::proof::inclusion(&api, position, args.checkpoint, keys).await,
        (Ok(api), None, Some(from)) => partida_audit::proof::consistency(&api, from, args.to, keys).await,
        (Ok(_), None, None) => Err(anyhow::anyhow!("name --position or --from")),
    };
    match verdict {
        Ok(Ok(sentence)) => {
            println!("proven: {sentence}");
            ExitCode::SUCCESS
        }
        Ok(Err(sentence)) => {
            println!("FAILED: {sentence}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("partida-audit: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_verify(args: VerifyArgs, token: Option<&str>) -> ExitCode {
    let prepared = async {
        let source = open(&args.source, token).await?;
        let checkpoints = match (&args.checkpoints, &args.source.url, &args.source.database_url) {
            (Some(dir), _, _) => CheckpointSource::Dir(dir.clone()),
            (None, Some(url), _) => CheckpointSource::QueryApi(query_api(url, token)?),
            (None, None, Some(_)) => CheckpointSource::Database,
            (None, None, None) => CheckpointSource::None,
        };
        let compare = Compare {
            query_api: args
                .query_url
                .as_ref()
                .or(args.source.url.as_ref())
                .map(|url| query_api(url, token))
                .transpose()?,
            checkpoints,
            trusted_keys: args.keys.clone(),
        };
        Ok::<_, SourceError>((source, compare))
    }
    .await;
    let mut progress = Progress::new(!args.quiet && !args.json, None);
    let report = match prepared {
        Ok((source, compare)) => verify(source, &compare, &mut progress).await,
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
