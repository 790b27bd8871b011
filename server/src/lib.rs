//! `l2sec-server`: the L2TP/IPsec LNS for remote users.
//!
//! The [`engine`] joins the sans-IO protocol crates (`ike`, `l2tp`, `ppp`) per remote user and
//! applies the address pool and the security policy; a thin tokio driver (to come with the
//! server issue) owns the sockets, the TUN device and the timer (STYLE.md §7). Available today:
//! the address pool and the policy on decapsulated traffic.
#![forbid(unsafe_code)]

pub mod config;
pub mod engine;
pub mod logging;
pub mod users;
