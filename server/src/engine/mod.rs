//! The sans-IO LNS engine: per-user protocol state, the address pool and the security policy.
//!
//! No sockets, no clock, no `.await` here (STYLE.md §7); the driver feeds it.

pub mod ipsec;
pub mod lns;
pub mod policy;
pub mod pool;
pub mod radius;
pub mod stats;
