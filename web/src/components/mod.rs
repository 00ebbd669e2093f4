//! Pieces the pages share.

pub mod chart;
pub mod common;
pub mod live;
pub mod metadata;
