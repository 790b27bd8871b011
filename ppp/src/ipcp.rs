//! IPCP (RFC 1332) with the DNS and NBNS options of RFC 1877.
//!
//! | option | type | server | client |
//! |---|---|---|---|
//! | IP-Addresses | 1 | rejected (deprecated) | rejected |
//! | IP-Compression-Protocol | 2 | rejected (no VJ) | rejected |
//! | IP-Address | 3 | requests its own; Naks the peer's to the assigned one | requests 0.0.0.0 (or a wish), takes the Nak |
//! | Primary/Secondary DNS | 129 / 131 | Naks to the configured servers; rejects when none | requests 0.0.0.0, takes the Nak |
//! | Primary/Secondary NBNS | 130 / 132 | as DNS | not requested |

use crate::fsm::{Negotiator, Reply, Unacceptable, write_be_option};
use crate::wire::{Options, Protocol, RawOption};
use std::net::Ipv4Addr;

/// IPCP option types.
pub mod option {
    /// IP-Addresses (deprecated, RFC 1332 §3.1).
    pub const IP_ADDRESSES: u8 = 1;
    /// IP-Compression-Protocol (RFC 1332 §3.2).
    pub const COMPRESSION: u8 = 2;
    /// IP-Address (RFC 1332 §3.3).
    pub const IP_ADDRESS: u8 = 3;
    /// Primary DNS server address (RFC 1877 §1.1).
    pub const PRIMARY_DNS: u8 = 129;
    /// Primary NBNS server address (RFC 1877 §1.2).
    pub const PRIMARY_NBNS: u8 = 130;
    /// Secondary DNS server address (RFC 1877 §1.3).
    pub const SECONDARY_DNS: u8 = 131;
    /// Secondary NBNS server address (RFC 1877 §1.4).
    pub const SECONDARY_NBNS: u8 = 132;
}

/// What the server hands out to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The server's own address on the link.
    pub local: Ipv4Addr,
    /// The address the peer gets.
    pub peer: Ipv4Addr,
    /// Primary and secondary DNS servers offered (RFC 1877).
    pub dns: [Option<Ipv4Addr>; 2],
    /// Primary and secondary NBNS (WINS) servers offered (RFC 1877).
    pub nbns: [Option<Ipv4Addr>; 2],
}

/// The result of IPCP, both roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Link {
    /// Our address.
    pub local: Ipv4Addr,
    /// The peer's address (unspecified if the peer did not say).
    pub peer: Ipv4Addr,
    /// DNS servers: offered (server) or learned (client).
    pub dns: [Option<Ipv4Addr>; 2],
    /// NBNS servers: offered (server) or learned (client).
    pub nbns: [Option<Ipv4Addr>; 2],
}

fn addr(data: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(data).ok().map(Ipv4Addr::from)
}

/// IPCP judgement, authenticator side.
#[derive(Debug)]
pub(crate) struct ServerIpcp {
    assignment: Assignment,
    send_address: bool,
}

impl ServerIpcp {
    pub(crate) const fn new(assignment: Assignment) -> Self {
        Self {
            assignment,
            send_address: true,
        }
    }

    pub(crate) const fn link(&self) -> Ipv4Link {
        let a = self.assignment;
        Ipv4Link {
            local: a.local,
            peer: a.peer,
            dns: a.dns,
            nbns: a.nbns,
        }
    }

    fn offer(reply: &mut Reply, opt: RawOption<'_>, offered: Option<Ipv4Addr>) {
        match (offered, addr(opt.data)) {
            (Some(ours), Some(theirs)) if ours == theirs => {}
            (Some(ours), Some(_)) => reply.nak(opt.raw, opt.kind, &ours.octets()),
            // RFC 1877 §1: with nothing to offer, the option is rejected.
            (None, _) | (_, None) => reply.reject(opt.raw),
        }
    }
}

impl Negotiator for ServerIpcp {
    const PROTOCOL: Protocol = Protocol::IPCP;

    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        if self.send_address {
            write_be_option(w, option::IP_ADDRESS, self.assignment.local.octets())?;
        }
        Ok(())
    }

    fn review(&mut self, request: Options<'_>, reply: &mut Reply) {
        let mut saw_address = false;
        for opt in request.flatten() {
            match opt.kind {
                option::IP_ADDRESS => {
                    saw_address = true;
                    // RFC 1332 §3.3: 0.0.0.0 (or any other address) asks us to supply one;
                    // the peer gets exactly the address the pool assigned.
                    Self::offer(reply, opt, Some(self.assignment.peer));
                }
                option::PRIMARY_DNS => Self::offer(reply, opt, self.assignment.dns[0]),
                option::SECONDARY_DNS => Self::offer(reply, opt, self.assignment.dns[1]),
                option::PRIMARY_NBNS => Self::offer(reply, opt, self.assignment.nbns[0]),
                option::SECONDARY_NBNS => Self::offer(reply, opt, self.assignment.nbns[1]),
                // No Van Jacobson compression, no deprecated IP-Addresses, nothing unknown.
                _ => reply.reject(opt.raw),
            }
        }
        if !saw_address {
            // RFC 1332 §3.3: we may Nak a missing IP-Address to tell the peer its address.
            reply.nak_missing(option::IP_ADDRESS, &self.assignment.peer.octets());
        }
    }

    fn apply_nak(&mut self, _suggested: Options<'_>) -> Result<(), Unacceptable> {
        // Our own address is not negotiable: the server's side of the link is fixed.
        Ok(())
    }

    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable> {
        if rejected.flatten().any(|o| o.kind == option::IP_ADDRESS) {
            self.send_address = false;
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.send_address = true;
    }
}

/// What the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientWants {
    pub(crate) address: Ipv4Addr,
    pub(crate) dns: bool,
}

/// IPCP judgement, peer side.
#[derive(Debug)]
pub(crate) struct ClientIpcp {
    wants: ClientWants,
    address: Ipv4Addr,
    dns: [Option<Ipv4Addr>; 2],
    ask_dns: [bool; 2],
    peer: Ipv4Addr,
    pending_peer: Ipv4Addr,
}

impl ClientIpcp {
    pub(crate) fn new(wants: ClientWants) -> Self {
        let mut ipcp = Self {
            wants,
            address: Ipv4Addr::UNSPECIFIED,
            dns: [None; 2],
            ask_dns: [false; 2],
            peer: Ipv4Addr::UNSPECIFIED,
            pending_peer: Ipv4Addr::UNSPECIFIED,
        };
        ipcp.reset();
        ipcp
    }

    pub(crate) const fn link(&self) -> Ipv4Link {
        Ipv4Link {
            local: self.address,
            peer: self.peer,
            dns: self.dns,
            nbns: [None; 2],
        }
    }
}

impl Negotiator for ClientIpcp {
    const PROTOCOL: Protocol = Protocol::IPCP;

    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        write_be_option(w, option::IP_ADDRESS, self.address.octets())?;
        for (ask, kind, value) in [
            (self.ask_dns[0], option::PRIMARY_DNS, self.dns[0]),
            (self.ask_dns[1], option::SECONDARY_DNS, self.dns[1]),
        ] {
            if ask {
                write_be_option(w, kind, value.unwrap_or(Ipv4Addr::UNSPECIFIED).octets())?;
            }
        }
        Ok(())
    }

    fn review(&mut self, request: Options<'_>, reply: &mut Reply) {
        self.pending_peer = Ipv4Addr::UNSPECIFIED;
        for opt in request.flatten() {
            match (opt.kind, addr(opt.data)) {
                (option::IP_ADDRESS, Some(a)) => self.pending_peer = a,
                _ => reply.reject(opt.raw),
            }
        }
    }

    fn commit_peer(&mut self) {
        self.peer = self.pending_peer;
    }

    fn apply_nak(&mut self, suggested: Options<'_>) -> Result<(), Unacceptable> {
        for opt in suggested.flatten() {
            match (opt.kind, addr(opt.data)) {
                (option::IP_ADDRESS, Some(a)) if !a.is_unspecified() => self.address = a,
                (option::PRIMARY_DNS, Some(a)) if self.ask_dns[0] => self.dns[0] = Some(a),
                (option::SECONDARY_DNS, Some(a)) if self.ask_dns[1] => self.dns[1] = Some(a),
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable> {
        for opt in rejected.flatten() {
            match opt.kind {
                // A server that will not tell us an address leaves us with nothing to use.
                option::IP_ADDRESS => return Err(Unacceptable),
                option::PRIMARY_DNS => (self.ask_dns[0], self.dns[0]) = (false, None),
                option::SECONDARY_DNS => (self.ask_dns[1], self.dns[1]) = (false, None),
                _ => {}
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.address = self.wants.address;
        self.dns = [None; 2];
        self.ask_dns = [self.wants.dns; 2];
        self.peer = Ipv4Addr::UNSPECIFIED;
    }
}
