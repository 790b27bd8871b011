//! IPV6CP (RFC 5072): interface-identifier negotiation, the same for both roles.
//!
//! Each side proposes a random non-zero 64-bit identifier; a zero identifier or one equal to
//! ours is Nak'd with a fresh suggestion (RFC 5072 §4.1). Compression is rejected.

use crate::fsm::{Negotiator, Reply, Unacceptable};
use crate::wire::{Options, Protocol, write_option};

/// IPV6CP option types.
pub mod option {
    /// Interface-Identifier (RFC 5072 §4.1).
    pub const INTERFACE_IDENTIFIER: u8 = 1;
    /// IPv6-Compression-Protocol (RFC 5072 §4.2).
    pub const COMPRESSION: u8 = 2;
}

/// The result of IPV6CP: the interface identifiers of both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Link {
    /// Our interface identifier (the low 64 bits of our link-local address).
    pub local_id: [u8; 8],
    /// The peer's interface identifier.
    pub peer_id: [u8; 8],
}

/// IPV6CP judgement.
#[derive(Debug)]
pub(crate) struct Ipv6cp {
    ours: [u8; 8],
    peer: [u8; 8],
    pending_peer: [u8; 8],
    /// Generator for identifiers: they only need to differ between the two ends
    /// (RFC 5072 §4.1), so a seeded mixer suffices.
    state: u64,
}

impl Ipv6cp {
    pub(crate) fn new(seed: u64) -> Self {
        let mut n = Self {
            ours: [0; 8],
            peer: [0; 8],
            pending_peer: [0; 8],
            state: seed,
        };
        n.ours = n.fresh(&[0; 8]);
        n
    }

    fn fresh(&mut self, avoid: &[u8; 8]) -> [u8; 8] {
        loop {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let id = (z ^ (z >> 31)).to_be_bytes();
            if id != [0; 8] && &id != avoid && id != self.ours {
                return id;
            }
        }
    }

    pub(crate) const fn link(&self) -> Ipv6Link {
        Ipv6Link {
            local_id: self.ours,
            peer_id: self.peer,
        }
    }
}

impl Negotiator for Ipv6cp {
    const PROTOCOL: Protocol = Protocol::IPV6CP;

    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        write_option(w, option::INTERFACE_IDENTIFIER, &self.ours)
    }

    fn review(&mut self, request: Options<'_>, reply: &mut Reply) {
        self.pending_peer = [0; 8];
        for opt in request.flatten() {
            match (opt.kind, <[u8; 8]>::try_from(opt.data)) {
                (option::INTERFACE_IDENTIFIER, Ok(id)) if id != [0; 8] && id != self.ours => {
                    self.pending_peer = id
                }
                (option::INTERFACE_IDENTIFIER, Ok(id)) => {
                    // RFC 5072 §4.1: suggest a different, non-zero identifier.
                    let suggestion = self.fresh(&id);
                    reply.nak(opt.raw, option::INTERFACE_IDENTIFIER, &suggestion);
                }
                _ => reply.reject(opt.raw),
            }
        }
    }

    fn commit_peer(&mut self) {
        self.peer = self.pending_peer;
    }

    fn apply_nak(&mut self, suggested: Options<'_>) -> Result<(), Unacceptable> {
        for opt in suggested.flatten() {
            if opt.kind == option::INTERFACE_IDENTIFIER {
                self.ours = match <[u8; 8]>::try_from(opt.data) {
                    Ok(id) if id != [0; 8] && id != self.peer => id,
                    _ => self.fresh(&self.peer.clone()),
                };
            }
        }
        Ok(())
    }

    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable> {
        // Without identifiers neither side can form a link-local address that is known unique.
        if rejected
            .flatten()
            .any(|o| o.kind == option::INTERFACE_IDENTIFIER)
        {
            Err(Unacceptable)
        } else {
            Ok(())
        }
    }

    fn reset(&mut self) {
        // `pending_peer` belongs to the request under review (see `Lcp::reset`).
        self.peer = [0; 8];
    }
}
