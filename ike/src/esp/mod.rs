//! ESP (RFC 4303) in transport mode, sealed and opened in place, with anti-replay, UDP
//! encapsulation for NAT traversal (RFC 3948) and an SA database.
//!
//! - [`sa`]: one direction of an SA; [`Sa::seal`] and [`Sa::open`] work on the caller's buffer
//!   without allocating or moving the payload (STYLE.md §6). Each splits into a stateful step
//!   taken in packet order ([`Sa::frame`], [`Sa::accept`]) and a pure `&self` crypto step
//!   ([`Sa::encrypt`], [`Sa::verify`]) that several threads may run at once for one batch.
//! - [`replay`]: the 1024-packet anti-replay window (RFC 4303 §3.4.3).
//! - [`encap`]: telling NAT keepalives, IKE and ESP apart on UDP port 4500 (RFC 3948 §2).
//! - [`sadb`]: inbound SAs by SPI, SPI allocation, a bound on the number of SAs.
//!
//! Not implemented: extended sequence numbers (RFC 4303 §2.2.1), tunnel mode, TFC padding.

pub mod encap;
pub mod replay;
pub mod sa;
pub mod sadb;

#[cfg(test)]
mod tests;

pub use encap::{Udp4500, classify_udp4500, write_non_esp_marker};
pub use replay::{ReplayError, ReplayWindow};
pub use sa::{
    Direction, Discard, Framed, Opened, Overhead, Sa, SaError, SaKeys, SaStats, SealError,
    Transform, TransformError, Verified,
};
pub use sadb::{SaDb, SaDbError};

/// Security Parameters Index: names an SA at the receiver (RFC 4303 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Spi(pub u32);

codec::wire_enum! {
    /// IP protocol numbers carried in the ESP Next Header field (IANA "Assigned Internet
    /// Protocol Numbers").
    pub struct IpProtocol(u8) {
        /// ICMP (RFC 792).
        ICMP = 1,
        /// IPv4 in IPv4, tunnel mode (RFC 2003).
        IPV4 = 4,
        /// TCP (RFC 9293).
        TCP = 6,
        /// UDP (RFC 768): the L2TP carrier in transport mode.
        UDP = 17,
        /// IPv6 in IP (RFC 2473).
        IPV6 = 41,
        /// No next header: ESP dummy packets (RFC 4303 §2.6).
        NO_NEXT_HEADER = 59,
    }
}
