//! Governance policy, pure: stages and gate evaluation, protection, the
//! retention planner and audit-chain verification. Values in, decisions out.
//!
//! Layering: called by the use-cases (`registry`, `auth`) and the edges; calls
//! only `domain` and `config`. The use-cases that apply these rules (promote,
//! rollback, retention runs, audit queries) live in `registry`.

pub mod audit;
pub mod gates;
pub mod policy;
pub mod protection;
pub mod retention;
pub mod signatures;

pub use policy::Policy;
