//! End-to-end: the real services over real HTTP on a real PostgreSQL.

mod errors;
mod flows;
mod projector;
mod writers;
