//! `cargo xtask cluster`: the deployment topology of compose.yaml and k8s/ with real processes
//! on loopback, since containers cannot run here.
//!
//! - PostgreSQL: a primary (WAL archived, synchronous replication) and a hot standby
//!   (pg_basebackup -R), see [`pg::Replicated`];
//! - command-api x2 and projector x2 (one leads, one waits) on the primary;
//! - query-api x3 reading the standby, behind nginx, which also balances the two command-apis;
//! - web, talking to both balancers.
//!
//! `--drills` runs the fault drills of [`drills`] against it instead of waiting for Ctrl-C; the
//! `cluster` step of `cargo xtask test` does the same.

mod drills;
mod load;
mod nginx;
pub mod soak;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::services::{ServiceSpec, Supervisor};
use crate::{bench, http, pg, shutdown, up, web, workspace};

pub const COMMAND_APIS: usize = 2;
pub const PROJECTORS: usize = 2;
pub const QUERY_APIS: usize = 3;
const DATABASE: &str = "partida";
/// The logins command-api, query-api and the projector use (the names compose and k8s give them).
const COMMAND_LOGIN: &str = "partida_command";
const QUERY_LOGIN: &str = "partida_query";
const PROJECTION_LOGIN: &str = "partida_projection";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args)]
pub struct ClusterArgs {
    /// Build and run the release binaries.
    #[arg(long)]
    release: bool,
    /// Run the fault drills (what `cargo xtask test` runs), then stop.
    #[arg(long)]
    drills: bool,
}

pub fn run(args: &ClusterArgs) -> Result<()> {
    shutdown::install()?;
    let ports = if args.drills { Ports::free()? } else { Ports::fixed()? };
    let mut topology = Topology::start(args.release, ports)?;
    if args.drills {
        return drills::run(topology);
    }
    topology.print();
    let outcome = topology.supervisor.watch();
    topology.supervisor.stop_all();
    outcome
}

/// The drills alone, on free ports: the `cluster` step of `cargo xtask test`.
pub fn test() -> Result<()> {
    drills::run(Topology::start(false, Ports::free()?)?)
}

/// Where the entry points listen: nginx for both APIs, and the console.
struct Ports {
    command: SocketAddr,
    query: SocketAddr,
    web: SocketAddr,
}

impl Ports {
    /// The addresses `cargo xtask up` uses, so that tools and habits carry over.
    fn fixed() -> Result<Self> {
        Ok(Self {
            command: "127.0.0.1:8081".parse()?,
            query: "127.0.0.1:8082".parse()?,
            web: "127.0.0.1:3000".parse()?,
        })
    }

    fn free() -> Result<Self> {
        Ok(Self {
            command: bench::free_addr()?,
            query: bench::free_addr()?,
            web: bench::free_addr()?,
        })
    }
}

/// The running topology. Field order matters: the services stop before the databases.
pub struct Topology {
    supervisor: Supervisor,
    db: pg::Replicated,
    /// nginx in front of the command-apis and of the query-apis.
    command_lb: SocketAddr,
    query_lb: SocketAddr,
    web: SocketAddr,
    command_apis: Vec<SocketAddr>,
    projectors: Vec<SocketAddr>,
    query_apis: Vec<SocketAddr>,
    bin_dir: PathBuf,
    /// The `partida-audit` binary.
    audit: PathBuf,
    /// Where command-api publishes checkpoints (`keys.json` among them).
    published: PathBuf,
    /// An admin's API token, for the drills, the load and `partida-audit`.
    token: String,
}

impl Topology {
    fn start(release: bool, ports: Ports) -> Result<Self> {
        let target = workspace::target_dir()?;
        let bin_dir = up::build(release, &up::STACK)?;
        let audit = bin_dir.join("partida-audit");
        let site = web::build_site(release)?;
        let db = pg::Replicated::start_fresh(&target, "cluster-pg", DATABASE)?;
        let primary = db.primary_url(DATABASE);
        up::migrate(&bin_dir, &primary)?;
        // The services log in as compose and k8s run them: least-privilege members of the groups
        // of migrations 0010 and 0016 (the writer's signing rounds read pg_stat_replication).
        db.primary_sql(
            DATABASE,
            &format!(
                "CREATE ROLE {COMMAND_LOGIN} LOGIN IN ROLE partida_writer, pg_read_all_stats; \
                 CREATE ROLE {QUERY_LOGIN} LOGIN IN ROLE partida_reader; \
                 CREATE ROLE {PROJECTION_LOGIN} LOGIN IN ROLE partida_projector"
            ),
        )?;
        let token = up::issue_token(&bin_dir, &primary, "cluster-admin", "admin")?;

        let free = |count: usize| (0..count).map(|_| bench::free_addr()).collect::<Result<Vec<_>>>();
        let mut topology = Self {
            supervisor: Supervisor::default(),
            db,
            command_lb: ports.command,
            query_lb: ports.query,
            web: ports.web,
            command_apis: free(COMMAND_APIS)?,
            projectors: free(PROJECTORS)?,
            query_apis: free(QUERY_APIS)?,
            bin_dir,
            audit,
            published: target.join("partida").join("cluster-checkpoints"),
            token,
        };
        let _ = std::fs::remove_dir_all(&topology.published);
        let signing_key = up::dev_signing_key(&target)?;
        let quiet = ("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
        let mut specs = Vec::new();
        for (i, addr) in topology.command_apis.iter().enumerate() {
            specs.push(topology.service(
                format!("command-api-{}", i + 1),
                "command-api",
                *addr,
                vec![
                    ("COMMAND_API_ADDR", addr.to_string()),
                    ("DATABASE_URL", topology.db.primary_url_as(DATABASE, COMMAND_LOGIN)),
                    ("PARTIDA_SIGNING_KEY_FILE", signing_key.display().to_string()),
                    ("PARTIDA_CHECKPOINT_DIR", topology.published.display().to_string()),
                    ("PARTIDA_CHECKPOINT_INTERVAL_SECS", "30".into()),
                    // Sign only what the standby has replayed.
                    ("PARTIDA_CHECKPOINT_MIN_STANDBYS", "1".into()),
                    quiet.clone(),
                ],
            ));
        }
        for (i, addr) in topology.projectors.iter().enumerate() {
            specs.push(topology.service(
                format!("projector-{}", i + 1),
                "projector",
                *addr,
                vec![
                    ("PROJECTOR_ADDR", addr.to_string()),
                    ("DATABASE_URL", topology.db.primary_url_as(DATABASE, PROJECTION_LOGIN)),
                    quiet.clone(),
                ],
            ));
        }
        for (i, addr) in topology.query_apis.iter().enumerate() {
            specs.push(topology.service(
                format!("query-api-{}", i + 1),
                "query-api",
                *addr,
                vec![
                    ("QUERY_API_ADDR", addr.to_string()),
                    ("READ_DATABASE_URL", topology.db.standby_url_as(DATABASE, QUERY_LOGIN)),
                    quiet.clone(),
                ],
            ));
        }
        specs.push(nginx::spec(
            &target.join("partida").join("cluster-lb"),
            nginx::Balanced {
                listen: topology.query_lb,
                upstreams: topology.query_apis.clone(),
            },
            nginx::Balanced {
                listen: topology.command_lb,
                upstreams: topology.command_apis.clone(),
            },
        )?);
        specs.push(topology.service(
            "web".into(),
            "web",
            topology.web,
            vec![
                ("WEB_ADDR", topology.web.to_string()),
                ("COMMAND_API_URL", format!("http://{}", topology.command_lb)),
                ("QUERY_API_URL", format!("http://{}", topology.query_lb)),
                // The console shows one projector's status: the first's.
                ("PROJECTOR_URL", format!("http://{}", topology.projectors[0])),
                ("WEB_SITE_ROOT", site.display().to_string()),
                quiet,
            ],
        ));
        for spec in specs {
            topology.supervisor.spawn(spec)?;
        }
        topology.supervisor.wait_until_healthy(READY_TIMEOUT)?;
        Ok(topology)
    }

    fn service(
        &self,
        name: String,
        binary: &str,
        health_addr: SocketAddr,
        env: Vec<(&'static str, String)>,
    ) -> ServiceSpec {
        ServiceSpec {
            name,
            program: self.bin_dir.join(binary),
            args: Vec::new(),
            env,
            health_addr,
        }
    }

    fn print(&self) {
        println!();
        println!("Partida's multi-instance topology is running:");
        println!("  console (web)            http://{}", self.web);
        println!("  command-api x{COMMAND_APIS} (nginx)   http://{}", self.command_lb);
        println!("  query-api x{QUERY_APIS} (nginx)     http://{}", self.query_lb);
        for (i, addr) in self.projectors.iter().enumerate() {
            println!("  projector-{}              http://{addr}/readyz", i + 1);
        }
        println!("  primary                  {}", self.db.primary_url(DATABASE));
        println!("  hot standby              {}", self.db.standby_url(DATABASE));
        println!("  checkpoints              published in {}", self.published.display());
        println!("  admin token              {}", self.token);
        println!("Press Ctrl-C to stop.");
        println!();
    }

    /// GET through the query-api balancer.
    fn read(&self, path: &str) -> Result<http::Response> {
        http::get(self.query_lb, path, Some(&self.token), Duration::from_secs(10))
            .with_context(|| format!("GET {path}"))
    }
}
