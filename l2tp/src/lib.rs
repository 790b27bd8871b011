//! L2TPv2 (RFC 2661) for the l2sec LNS and LAC, sans-IO.
//!
//! # Scope
//!
//! This crate will hold everything L2TP: the wire formats, the reliable control channel, the
//! tunnel and session state machines and the endpoint that demultiplexes them. It owns no
//! sockets, clocks or threads (STYLE.md §1): the engine feeds it datagrams and instants and
//! drains what it wants to send.
//!
//! Today it holds the **wire layer** ([`wire`]); the control channel (§5.8), the tunnel and
//! session machines (§7) and the endpoint come next.
//!
//! # RFC 2661 sections implemented
//!
//! | section | what | where |
//! |---|---|---|
//! | §3.1 | header: T/L/S/O/P bits, Ver 2, Length, offset pad; control and data header writers | [`wire::header`] |
//! | §3.2, §4.4 | message type and attribute type registries | [`wire::avp`] |
//! | §4.1 | AVP format, M/H/reserved bits, unrecognised-AVP rules | [`wire::avp`], [`wire::message`] |
//! | §4.3 | hidden AVPs: hide and reveal with secret and Random Vector | [`wire::hidden`] |
//! | §4.4.1–§4.4.6 | every AVP value of RFC 2661 | [`wire::message`] |
//! | §4.4.3, §5.1.1 | tunnel authentication Challenge Response | [`wire::hidden::challenge_response`] |
//! | §5.8 | sequence numbers compared modulo 2^16; ZLB recognised | [`Seq`], [`wire::Packet::is_zlb`] |
//! | §6.1–§6.14 | typed control messages with their mandatory AVPs | [`wire::ControlMessage`] |
//!
//! `COMPLIANCE.md` lists each requirement with the test that covers it.
//!
//! # Example
//!
//! ```
//! use l2sec_l2tp::wire::{Avps, ControlMessage, Packet};
//!
//! // A captured SCCCN (Linux xl2tpd): tunnel 54758, Ns 1, Nr 1, just a Message Type AVP.
//! let datagram = [
//!     0xc8, 0x02, 0x00, 0x14, 0xd5, 0xe6, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
//!     0x80, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
//! ];
//! let packet = Packet::new_checked(&datagram[..]).unwrap();
//! assert_eq!(packet.tunnel_id(), l2sec_l2tp::TunnelId(54758));
//! let message = ControlMessage::parse(Avps::new(packet.payload())).unwrap();
//! assert!(matches!(message, ControlMessage::Scccn(_)));
//! ```
#![forbid(unsafe_code)]

pub mod config;
pub mod endpoint;
pub mod event;
mod ids;
pub mod reliable;
pub mod session;
pub mod tunnel;
pub mod wire;

pub use config::{Config, Limits, Secret};
pub use endpoint::{
    ConnectError, DATA_HEADROOM, DataMessage, DataPath, Endpoint, Received, Transmit,
};
pub use event::{Event, Origin, Proxy, SessionDownReason, SessionUp, TunnelDownReason};
pub use ids::{Seq, SessionId, TunnelId};
pub use session::SessionState;
pub use tunnel::{CallError, Discard, MAX_CONTROL_LEN, Role, Tunnel, TunnelState};

#[cfg(any(test, fuzzing))]
pub mod fuzzing;

#[cfg(test)]
mod testdata;
