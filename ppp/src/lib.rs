//! PPP as carried in L2TP (RFC 1661 and its companions), as a sans-IO state machine.
#![forbid(unsafe_code)]

pub mod auth;
pub mod fsm;
mod outbox;
pub mod wire;
