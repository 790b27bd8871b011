//! NAT detection as the initiator sees it, so that IKE floats to UDP 4500 before Main Mode
//! message 5 (RFC 3947 §4).
//!
//! `ike::endpoint::Endpoint` keeps the path an exchange started on and leaves the float to its
//! driver, but does not expose the NAT detection of a pending exchange. The engine therefore
//! reads the two clear Main Mode replies itself: message 2 names the chosen suite (its hash
//! algorithm keys NAT-D), message 4 carries the responder's NAT-D payloads (RFC 3947 §3.2: the
//! first hashes our address as the responder saw it, the others the responder's own).

use ike::ikev1::main_mode::NatState;
use ike::ikev1::nat::nat_d;
use ike::ikev1::proposal::{Phase1Suite, decode};
use ike::wire::{Cookie, ExchangeType, Header, PayloadType, Payloads, SecurityAssociation};
use std::net::SocketAddr;

/// NAT-D payloads compared per message; RFC 3947 §3.2 allows several for multihomed peers.
const MAX_NAT_D: usize = 4;

/// What the clear Main Mode replies told us.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NatObserver {
    /// The suite the responder chose (message 2).
    suite: Option<Phase1Suite>,
    /// NAT detection from message 4, once seen.
    detected: Option<NatState>,
    /// Message 4 (the responder's KE) arrived: our message 5 is the next step.
    key_exchanged: bool,
}

impl NatObserver {
    /// The chosen suite, once message 2 was seen.
    pub(super) const fn suite(&self) -> Option<Phase1Suite> {
        self.suite
    }

    /// Whether the server's key exchange (message 4) arrived.
    pub(super) const fn key_exchanged(&self) -> bool {
        self.key_exchanged
    }

    /// Whether a NAT sits on the path: IKE must float to port 4500 (RFC 3947 §4).
    pub(super) fn must_float(&self) -> bool {
        self.detected.is_some_and(|n| n.encapsulate())
    }

    /// Looks at one Main Mode message from the server (already known to carry our initiator
    /// cookie). Encrypted messages and anything that does not parse are ignored: the IKE
    /// endpoint decides what is valid, this only watches.
    pub(super) fn observe(&mut self, message: &[u8], local: SocketAddr, server: SocketAddr) {
        let Ok(h) = Header::new_checked(message) else {
            return;
        };
        if h.is_encrypted() || h.exchange_type() != ExchangeType::MAIN_MODE {
            return;
        }
        let mut nat_ds: [&[u8]; MAX_NAT_D] = [&[]; MAX_NAT_D];
        let mut count = 0;
        for payload in Payloads::new(h.next_payload(), h.body()).map_while(Result::ok) {
            match payload.kind {
                PayloadType::SA if self.suite.is_none() => {
                    self.suite = SecurityAssociation::parse(payload.body)
                        .ok()
                        .and_then(|sa| sa.proposals().next())
                        .and_then(|p| p.transforms().next())
                        .and_then(|t| decode(t.attributes()).suite);
                }
                PayloadType::KE if self.suite.is_some() => self.key_exchanged = true,
                PayloadType::NAT_D | PayloadType::NAT_D_DRAFT => {
                    if let Some(slot) = nat_ds.get_mut(count) {
                        *slot = payload.body;
                        count += 1;
                    }
                }
                _ => {}
            }
        }
        let (Some(suite), [first, others @ ..]) = (self.suite, &nat_ds[..count]) else {
            return;
        };
        let (cky_i, cky_r) = (h.initiator_cookie(), h.responder_cookie());
        let ours = nat_d(suite.hash, cky_i, cky_r, local);
        let theirs = nat_d(suite.hash, cky_i, cky_r, server);
        self.detected = Some(NatState {
            // The version only matters as "NAT-T is spoken": NAT-D payloads say so.
            version: Some(ike::ikev1::nat::NatTVersion::Rfc3947),
            local_behind_nat: *first != ours.as_slice(),
            peer_behind_nat: !others.contains(&theirs.as_slice()),
        });
    }
}

/// The initiator cookie of an ISAKMP message, if it parses.
pub(super) fn cookies(message: &[u8]) -> Option<(Cookie, Cookie)> {
    let h = Header::new_checked(message).ok()?;
    Some((h.initiator_cookie(), h.responder_cookie()))
}

/// The Notify type of a clear Informational answering our message 1 (responder cookie zero,
/// RFC 2408 §5.2), such as NO-PROPOSAL-CHOSEN.
pub(super) fn clear_notify(message: &[u8]) -> Option<ike::wire::NotifyType> {
    let h = Header::new_checked(message).ok()?;
    if h.is_encrypted() || h.exchange_type() != ExchangeType::INFORMATIONAL {
        return None;
    }
    Payloads::new(h.next_payload(), h.body())
        .map_while(Result::ok)
        .find(|p| p.kind == PayloadType::NOTIFY)
        .and_then(|p| ike::wire::Notification::parse(p.body).ok())
        .map(|n| n.kind)
}
