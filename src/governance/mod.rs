//! Version governance use-cases: promotion through stages, rollback, release
//! and tag history, and the audit log's queries and verification.
//!
//! Layering: called by `api` (and the CLI); calls `db` and `storage`, never
//! `api`. Pure rules live in `gates` and `audit` so they can be unit-tested.

pub mod audit;
pub mod gates;
pub mod policy;
pub mod promotion;
pub mod protection;
pub mod retention;

pub use policy::Policy;
