//! Sessions whose statements only probe keys: the writer's, and the projector's follower.
//!
//! Their statements run many times a second, so they are planned once (generically), not per
//! execution: planning the writer's state query had been a quarter of its backend's work. A
//! generic plan is made with the tables' statistics of the moment, and PostgreSQL keeps it until
//! those statistics change; one made while a table was small (a scan of it) would be kept as the
//! table grows faster than autovacuum analyses it. So such a session drops its prepared
//! statements every [`PLAN_LIFETIME`], and the planner, which sizes a table by its current pages,
//! plans them for the tables as they are now.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

/// How long a key-probing session keeps its plans.
pub const PLAN_LIFETIME: Duration = Duration::from_secs(1);

/// `options` for a session whose statements only probe keys: generic plans, never a parallel
/// one (here a misestimate: the writer's state query was seen with parallel workers, which take
/// the cores every other session needs), and no JIT compilation. PostgreSQL compiles a plan whose
/// estimated cost passes `jit_above_cost` at every execution, and the estimates of these
/// statements pass it once the log has grown to about a million events: the writer's backend
/// then spent half its time in LLVM, for statements that run in a millisecond.
pub fn probing_keys(options: PgConnectOptions) -> PgConnectOptions {
    options.options([
        ("plan_cache_mode", "force_generic_plan"),
        ("max_parallel_workers_per_gather", "0"),
        ("jit", "off"),
    ])
}
