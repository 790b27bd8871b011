//! `l2sec-server`: the L2TP/IPsec LNS for remote users.
//!
//! The [`engine`] joins the sans-IO protocol crates (`ike`, `l2tp`, `ppp`) per remote user and
//! applies the address pool and the security policy; the thin tokio [`driver`] owns the sockets,
//! the TUN device and the timer (STYLE.md §7); [`setup`] builds the engine from the
//! configuration and [`state`] keeps generated secrets.
#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod driver;
pub mod drop_warnings;
pub mod engine;
pub mod keylog;
pub mod logging;
pub mod metrics;
pub mod parallel;
pub mod privileges;
pub mod setup;
pub mod state;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod users;
pub mod users_cli;
