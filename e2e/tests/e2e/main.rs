//! End-to-end: the real services over real HTTP on a real PostgreSQL.
#![expect(
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed expectation is a failed test"
)]

mod auth;
mod chains;
mod cors;
mod effective;
mod errors;
mod flows;
mod holds;
mod limits;
mod live;
mod metadata;
mod openapi;
mod personal;
mod projector;
mod roles;
mod writers;
