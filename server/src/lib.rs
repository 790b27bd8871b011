//! `l2sec-server`: the L2TP/IPsec LNS for remote users.
//!
//! It will join the sans-IO protocol crates (`ike`, `l2tp`, `ppp`) into an engine per the design
//! (one `ike` endpoint, ESP security associations, one `l2tp` endpoint and a `ppp` session per
//! user, the address pool and the security policy), driven by a thin tokio driver that owns the
//! sockets, the TUN device and the timer (STYLE.md §7). Until that lands it exports nothing.
#![forbid(unsafe_code)]
