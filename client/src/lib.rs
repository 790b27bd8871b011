//! `l2sec-client`: the bundled L2TP/IPsec client.
//!
//! It will compose the initiator sides of `ike` (Main Mode + Quick Mode), `l2tp` (LAC) and `ppp`
//! (peer role) into a client engine, driven by a thin driver that owns the sockets, the TUN device,
//! routes and DNS. Until that lands it exports nothing.
#![forbid(unsafe_code)]
