//! `l2sec-client`: the bundled L2TP/IPsec client.
//!
//! It composes the initiator sides of `ike` (Main Mode + Quick Mode), `l2tp` (LAC) and `ppp`
//! (peer role) into a client engine, driven by a thin driver that owns the sockets, the TUN
//! device, routes and DNS: connection [`profile`]s, the sans-IO [`engine`] for one connection,
//! the tokio [`driver`], [`dns`] changes that survive a crash, and the [`status`] file and
//! progress display.
#![forbid(unsafe_code)]

pub mod dns;
pub mod driver;
pub mod engine;
pub mod profile;
pub mod status;
