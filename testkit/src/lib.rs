//! One fresh, migrated PostgreSQL database per test.
//!
//! Tests talk to a real PostgreSQL (never a mock), and each test gets a database of its own, so
//! tests run in parallel without seeing each other's rows. `cargo xtask test` starts a
//! throw-away cluster and passes its admin URL in `DATABASE_URL`.
//!
//! Running the migrations for every test would dominate the suite's time, so they run once per
//! set of migrations into a template database (`partida_tpl_<hash of the migrations>`); each test
//! database is then a `CREATE DATABASE ... TEMPLATE` copy, a few milliseconds.
//!
//! ```no_run
//! # async fn example() {
//! let db = partida_testkit::TestDb::new().await;
//! let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(db.pool()).await.unwrap();
//! # }
//! ```

use partida_eventstore::MIGRATOR;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};
use tokio::sync::OnceCell;

/// Connections per test database: enough for concurrent tests of a component, small enough that
/// hundreds of tests fit in one cluster's `max_connections`.
const POOL_SIZE: u32 = 5;

/// Serializes template creation across the threads of a test binary and across test processes
/// running at the same time (the lock is held by the cluster, not by us). The value is arbitrary
/// and only has to be the same in every process: "partida" in ASCII.
const TEMPLATE_LOCK_KEY: i64 = 0x0070_6172_7469_6461;

/// The least-privilege roles of the services (migrations 0010 and 0016), as tests log in with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRole {
    /// command-api's: a member of `partida_writer`.
    Writer,
    /// query-api's: a member of `partida_reader`.
    Reader,
    /// The following projector's: a member of `partida_projector` (migration 0016).
    Projector,
}

impl ServiceRole {
    /// The login role, created once per cluster.
    pub fn login(self) -> &'static str {
        match self {
            Self::Writer => "partida_test_writer",
            Self::Reader => "partida_test_reader",
            Self::Projector => "partida_test_projector",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Self::Writer => "partida_writer",
            Self::Reader => "partida_reader",
            Self::Projector => "partida_projector",
        }
    }
}

/// The password of every login the tests create (the service roles', a test's own): a test
/// cluster's, but set, so that the tests also run against a `DATABASE_URL` whose cluster asks
/// for passwords.
pub const LOGIN_PASSWORD: &str = "partida-test";

/// The template of this process's migrations, once known to exist. Holds only the name: a
/// connection or pool must not outlive the Tokio runtime (one per `#[tokio::test]`) it was
/// made on.
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// A database of its own for one test, with every migration applied.
///
/// It is not dropped at the end of the test: `cargo xtask test` throws the whole cluster away
/// after the run, and a leftover database helps to debug a failed test. Call
/// [`TestDb::drop_database`] to remove it earlier.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
}

impl TestDb {
    /// Creates the database from the migrated template and connects a small pool to it.
    ///
    /// # Panics
    ///
    /// When `DATABASE_URL` is not set or PostgreSQL cannot be reached or refuses: a test cannot
    /// do anything useful then, and the message says why.
    pub async fn new() -> Self {
        let Ok(admin_url) = std::env::var("DATABASE_URL") else {
            panic!("DATABASE_URL is not set: run the tests with `cargo xtask test`");
        };
        match Self::create(admin_url).await {
            Ok(db) => db,
            Err(message) => panic!("partida_testkit::TestDb::new: {message}"),
        }
    }

    async fn create(admin_url: String) -> Result<Self, String> {
        let template = TEMPLATE.get_or_try_init(|| ensure_template(&admin_url)).await?;
        let name = format!("partida_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect(&admin_url).await?;
        admin
            .execute(format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#).as_str())
            .await
            .map_err(|err| format!("creating database {name} from {template}: {err}"))?;
        let _ = admin.close().await;

        let url = url_with_database(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect(&url)
            .await
            .map_err(|err| format!("connecting to {url}: {err}"))?;
        Ok(Self {
            name,
            url,
            admin_url,
            pool,
        })
    }

    /// The database's name (`partida_test_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for this database, for code under test that connects by itself (a
    /// service started in the test, a second pool).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection URL for this database logging in as `role` instead of the admin.
    pub fn url_as(&self, role: ServiceRole) -> String {
        self.url_for_user(role.login())
    }

    /// A connection URL for this database logging in as `user` with [`LOGIN_PASSWORD`].
    pub fn url_for_user(&self, user: &str) -> String {
        url_with_user(&self.url, user, Some(LOGIN_PASSWORD))
    }

    /// A pool of at most five connections to this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The admin URL the database was created through (`DATABASE_URL`).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Closes the pool and drops the database, for tests that create many.
    ///
    /// # Panics
    ///
    /// When the admin connection or the `DROP DATABASE` fails.
    pub async fn drop_database(self) {
        self.pool.close().await;
        let result = async {
            let mut admin = connect(&self.admin_url).await?;
            admin
                .execute(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name).as_str())
                .await
                .map_err(|err| format!("dropping database {}: {err}", self.name))?;
            let _ = admin.close().await;
            Ok::<_, String>(())
        }
        .await;
        if let Err(message) = result {
            panic!("partida_testkit::TestDb::drop_database: {message}");
        }
    }
}

/// Makes sure the template of the current migrations exists and returns its name.
async fn ensure_template(admin_url: &str) -> Result<String, String> {
    let name = template_name();
    let mut admin = connect(admin_url).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await
        .map_err(|err| format!("taking the template lock: {err}"))?;
    let mut result = build_template_if_missing(&mut admin, admin_url, &name).await;
    if result.is_ok() {
        result = create_service_logins(&mut admin).await;
    }
    // Closing the session releases the lock even if the unlock fails.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    result.map(|()| name)
}

/// Under the template lock. The template is marked `IS_TEMPLATE` only once fully migrated, so a
/// database of that name without the mark is the remains of an interrupted build: rebuilt.
async fn build_template_if_missing(admin: &mut PgConnection, admin_url: &str, name: &str) -> Result<(), String> {
    let is_template: Option<bool> = sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut *admin)
        .await
        .map_err(|err| format!("looking for template {name}: {err}"))?;
    match is_template {
        Some(true) => return Ok(()),
        Some(false) => {
            admin
                .execute(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str())
                .await
                .map_err(|err| format!("dropping the incomplete template {name}: {err}"))?;
        }
        None => {}
    }
    admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .map_err(|err| format!("creating template {name}: {err}"))?;

    let template_url = url_with_database(admin_url, name);
    let mut conn = connect(&template_url).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|err| format!("migrating template {name}: {err}"))?;
    conn.close()
        .await
        .map_err(|err| format!("closing the connection to {name}: {err}"))?;

    // No connections afterwards: `CREATE DATABASE ... TEMPLATE` fails while anyone is connected.
    admin
        .execute(format!(r#"ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"#).as_str())
        .await
        .map_err(|err| format!("marking {name} as a template: {err}"))?;
    Ok(())
}

/// Under the template lock, after the migrations have created the group roles.
async fn create_service_logins(admin: &mut PgConnection) -> Result<(), String> {
    for role in [ServiceRole::Writer, ServiceRole::Reader, ServiceRole::Projector] {
        let (login, group) = (role.login(), role.group());
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(login)
            .fetch_one(&mut *admin)
            .await
            .map_err(|err| format!("looking for role {login}: {err}"))?;
        let verb = if exists { "ALTER" } else { "CREATE" };
        admin
            .execute(format!("{verb} ROLE {login} LOGIN PASSWORD '{}'", LOGIN_PASSWORD).as_str())
            .await
            .map_err(|err| format!("{verb} ROLE {login}: {err}"))?;
        // Again when it existed: a no-op, unless something left the login outside its group.
        admin
            .execute(format!("GRANT {group} TO {login}").as_str())
            .await
            .map_err(|err| format!("granting {group} to {login}: {err}"))?;
    }
    Ok(())
}

/// `partida_tpl_` and 12 hex digits of a hash over every migration's version and checksum:
/// a changed or added migration gets a new template, never a stale one.
fn template_name() -> String {
    let mut hasher = Sha256::new();
    for migration in MIGRATOR.iter() {
        hasher.update(migration.version.to_le_bytes());
        hasher.update(&*migration.checksum);
    }
    let digest = hasher.finalize();
    format!("partida_tpl_{}", hex::encode(&digest[..6]))
}

async fn connect(url: &str) -> Result<PgConnection, String> {
    PgConnection::connect(url)
        .await
        .map_err(|err| format!("connecting to {url}: {err}"))
}

/// A URL's parts: everything before the path (scheme and authority), the path, the query.
struct UrlParts<'a> {
    scheme_and_authority: &'a str,
    authority_start: usize,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    fn of(url: &'a str) -> Self {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let authority_start = base.find("://").map_or(0, |index| index + 3);
        let path_start = base[authority_start..]
            .find('/')
            .map_or(base.len(), |index| authority_start + index);
        Self {
            scheme_and_authority: &base[..path_start],
            authority_start,
            path: &base[path_start..],
            query,
        }
    }

    /// `base` followed by the query without the parameters named in `dropped`.
    fn with_query(&self, mut base: String, dropped: &[&str]) -> String {
        let params: Vec<&str> = self
            .query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .filter(|param| {
                let name = param.split('=').next().unwrap_or_default();
                !param.is_empty() && !dropped.contains(&name)
            })
            .collect();
        if !params.is_empty() {
            base.push('?');
            base.push_str(&params.join("&"));
        }
        base
    }
}

/// The same URL naming another database: the path is replaced and a `dbname` query parameter
/// (which would override the path) is removed; host, port, user and options are kept.
fn url_with_database(url: &str, database: &str) -> String {
    let parts = UrlParts::of(url);
    parts.with_query(format!("{}/{database}", parts.scheme_and_authority), &["dbname"])
}

/// The same URL logging in as `user` with `password` (URL-safe text): the user info is replaced
/// and the `user` and `password` query parameters removed.
fn url_with_user(url: &str, user: &str, password: Option<&str>) -> String {
    let parts = UrlParts::of(url);
    let (scheme, authority) = parts.scheme_and_authority.split_at(parts.authority_start);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.is_empty() {
        // A Unix-socket URL (`postgres:///db?host=/run/postgresql`) names its user in the query.
        let base = parts.with_query(format!("{scheme}{}", parts.path), &["user", "password"]);
        let separator = if base.contains('?') { '&' } else { '?' };
        let password = password.map(|p| format!("&password={p}")).unwrap_or_default();
        return format!("{base}{separator}user={user}{password}");
    }
    let credentials = password.map_or_else(|| user.to_owned(), |p| format!("{user}:{p}"));
    parts.with_query(
        format!("{scheme}{credentials}@{host}{}", parts.path),
        &["user", "password"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_user_of_a_url() {
        assert_eq!(
            url_with_user("postgres://postgres@127.0.0.1:5432/t1", "w", None),
            "postgres://w@127.0.0.1:5432/t1"
        );
        assert_eq!(url_with_user("postgres://u:p@db/t1", "w", None), "postgres://w@db/t1");
        assert_eq!(
            url_with_user("postgresql:///t1?host=/run/pg&user=u", "w", None),
            "postgresql:///t1?host=/run/pg&user=w"
        );
        assert_eq!(
            url_with_user("postgres://db:5432/t1?user=u&sslmode=disable", "w", None),
            "postgres://w@db:5432/t1?sslmode=disable"
        );
        assert_eq!(
            url_with_user("postgres://u:p@db/t1", "w", Some("pw")),
            "postgres://w:pw@db/t1"
        );
        assert_eq!(
            url_with_user("postgresql:///t1?host=/run/pg&user=u&password=p", "w", Some("pw")),
            "postgresql:///t1?host=/run/pg&user=w&password=pw"
        );
    }

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            url_with_database("postgres://u:p@db:5432", "t1"),
            "postgres://u:p@db:5432/t1"
        );
        assert_eq!(
            url_with_database("postgres://u@db/app?sslmode=disable&dbname=x", "t1"),
            "postgres://u@db/t1?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgresql:///postgres?host=/run/pg", "t1"),
            "postgresql:///t1?host=/run/pg"
        );
    }

    #[test]
    fn names_the_template_after_the_migrations() {
        let name = template_name();
        assert_eq!(name.len(), "partida_tpl_".len() + 12);
        assert_eq!(name, template_name());
    }
}
