//! The pure double-entry domain of Partida.
//!
//! Nothing in this crate does I/O or awaits: the write path calls [`decide`] and [`evolve`] under the
//! writer's lock, the projector and the auditors replay the same [`Event`]s, and property tests drive
//! random command sequences through it. Keeping it pure is what lets all three agree.

pub mod canonical;
pub mod checkpoint;
mod command;
mod decide;
mod event;
mod ids;
pub mod log;
pub mod merkle;
mod rejection;
mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use command::{
    AccountFlags, AccountLifecycle, Check, Command, Condition, EmptyPatch, Hold, HoldAction, Metadata, NormalSide,
    OpenAccount, PostTransfer, Posting, PostingsError, RegisterAsset, ResolveHold, SetMetadata, Subject, apply_patch,
};
pub use decide::{decide, decide_chain, linked_failed};
pub use event::{
    AccountLifecycleEvent, AccountOpened, AssetRegistered, DecodeError, Event, MetadataSet, PendingPosted,
    PendingReleased, PersonalDataErased, SCHEMA_VERSION, StreamId, TRANSFER_POSTED_V2, TransferPending, TransferPosted,
};
pub use ids::{AccountId, Amount, AssetCode, IdError, Scale, SubjectId, Timestamp, TransferId};
pub use rejection::{LimitFlag, Rejection};
pub use state::{
    Account, AccountStatus, Asset, Fingerprint, HoldState, Map, Resolution, State, Transfer, Undo, evolve,
    signed_balance,
};

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod effective_tests;
#[cfg(test)]
mod hold_tests;
#[cfg(test)]
mod metadata_tests;
#[cfg(test)]
mod personal_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
