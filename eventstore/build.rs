//! `sqlx::migrate!` embeds the migrations at build time but does not notice a new file in the
//! directory: without this, a build can silently ship without its newest migration.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
