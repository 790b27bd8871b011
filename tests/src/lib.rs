//! Test support for l2sec: simulated links with seeded loss, duplication and reordering, in-memory
//! client ↔ server pairs in simulated time, and the end-to-end and interop runners.
//!
//! Filled as the engines land; the protocol crates carry their own unit and pair tests.
#![forbid(unsafe_code)]

pub mod freeradius;
pub mod netns;
pub mod scenario;
pub mod sim;
