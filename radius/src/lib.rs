//! RADIUS client for the l2sec LNS, sans-IO.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod verify;
pub mod wire;
