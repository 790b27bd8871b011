//! `l2sec-client`: the bundled L2TP/IPsec client.
//!
//! It composes the initiator sides of `ike` (Main Mode + Quick Mode), `l2tp` (LAC) and `ppp`
//! (peer role) into a client engine, driven by a thin driver that owns the sockets, the TUN
//! device, routes and DNS (to come with the server/client issue). Available today: connection
//! [`profile`]s.
#![forbid(unsafe_code)]

pub mod profile;
