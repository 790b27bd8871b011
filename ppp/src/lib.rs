//! PPP as carried in L2TP (RFC 1661 and its companions), as a sans-IO state machine.
#![forbid(unsafe_code)]

pub mod auth;
pub mod fsm;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
mod outbox;
pub mod session;
pub mod wire;

pub use session::{
    ClientConfig, DownReason, Event, LinkConfig, Phase, Received, ServerConfig, Session,
};
