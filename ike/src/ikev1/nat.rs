//! NAT traversal in IKE (RFC 3947): vendor IDs and NAT-D hashes.

use crate::crypto::{Hash, HashAlgorithm};
use crate::wire::Cookie;
use std::net::SocketAddr;

/// Vendor ID of RFC 3947.
pub const VID_RFC3947: [u8; 16] = [
    0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
];
/// Vendor ID of draft-ietf-ipsec-nat-t-ike-02 (with the trailing newline, as clients send it).
pub const VID_DRAFT_02N: [u8; 16] = [
    0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81, 0xb5, 0xec, 0x42, 0x7b, 0x1f,
];
/// Vendor ID of draft-ietf-ipsec-nat-t-ike-02.
pub const VID_DRAFT_02: [u8; 16] = [
    0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6, 0xa4, 0x48,
];
/// Vendor ID of draft-ietf-ipsec-nat-t-ike-03.
pub const VID_DRAFT_03: [u8; 16] = [
    0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f, 0x2c, 0x17, 0x9d, 0x92, 0x15, 0x52, 0x9d, 0x56,
];
/// Vendor ID of Dead Peer Detection (RFC 3706 §7), version 1.0.
pub const VID_DPD: [u8; 16] = [
    0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00,
];

/// Which NAT-T variant a peer speaks, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NatTVersion {
    /// draft-02 (payload numbers 130/131, encapsulation modes 61443/61444).
    Draft02,
    /// draft-03 (same numbers as draft-02).
    Draft03,
    /// RFC 3947 (payload numbers 20/21, modes 3/4).
    Rfc3947,
}

impl NatTVersion {
    /// Recognises a NAT-T vendor ID.
    #[must_use]
    pub fn from_vendor_id(vid: &[u8]) -> Option<Self> {
        match vid {
            v if v == VID_RFC3947 => Some(Self::Rfc3947),
            v if v == VID_DRAFT_03 => Some(Self::Draft03),
            v if v == VID_DRAFT_02 || v == VID_DRAFT_02N => Some(Self::Draft02),
            _ => None,
        }
    }

    /// The vendor ID we answer with.
    #[must_use]
    pub const fn vendor_id(self) -> [u8; 16] {
        match self {
            Self::Rfc3947 => VID_RFC3947,
            Self::Draft03 => VID_DRAFT_03,
            Self::Draft02 => VID_DRAFT_02N,
        }
    }

    /// Whether NAT-D/NAT-OA use the draft payload numbers 130/131.
    #[must_use]
    pub const fn uses_draft_numbers(self) -> bool {
        !matches!(self, Self::Rfc3947)
    }
}

/// `HASH(CKY-I | CKY-R | IP | Port)` with the negotiated hash (RFC 3947 §3.2).
#[must_use]
pub fn nat_d(hash: HashAlgorithm, cky_i: Cookie, cky_r: Cookie, addr: SocketAddr) -> Vec<u8> {
    let mut h = Hash::new(hash);
    h.update(&cky_i.0);
    h.update(&cky_r.0);
    match addr {
        SocketAddr::V4(a) => h.update(&a.ip().octets()),
        SocketAddr::V6(a) => h.update(&a.ip().octets()),
    }
    h.update(&addr.port().to_be_bytes());
    let mut out = [0u8; 64];
    let n = h.finish(&mut out).unwrap_or(0);
    out[..n].to_vec()
}
