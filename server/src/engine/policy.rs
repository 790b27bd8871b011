//! Security policy on decapsulated traffic.
//!
//! The reference scenario's zones: traffic from the address pool may reach only the networks a
//! rule allows, and the answers from those networks may come back; everything else is dropped
//! and counted by reason. Rules are stateless and evaluated in order; the first match decides.
//!
//! ```text
//! allow pool -> intranet            (any protocol)
//! allow pool -> lns  proto icmp     (ping the LNS's PPP address)
//! ```
//!
//! A rule `allow A -> B` admits packets with source in A and destination in B (the client's
//! outbound traffic) and, for the return path, packets with source in B and destination in A.
//! Port and protocol filters apply to the outbound direction as written and mirrored (source
//! port) on the way back.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// IP protocol numbers a rule can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Every protocol.
    Any,
    /// ICMP (1).
    Icmp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
}

impl Proto {
    fn matches(self, protocol: u8) -> bool {
        match self {
            Self::Any => true,
            Self::Icmp => protocol == 1,
            Self::Tcp => protocol == 6,
            Self::Udp => protocol == 17,
        }
    }
}

/// One `allow from -> to` rule, with its networks resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Source networks of the outbound direction (usually the pool).
    pub from: Vec<Ipv4Net>,
    /// Destination networks of the outbound direction.
    pub to: Vec<Ipv4Net>,
    /// Protocol filter.
    pub proto: Proto,
    /// Destination port range of the outbound direction (TCP/UDP only), inclusive.
    pub ports: Option<(u16, u16)>,
}

/// The fields of an IPv4 packet the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source and destination ports (first fragment of TCP/UDP only).
    pub ports: Option<(u16, u16)>,
}

impl Flow {
    /// Reads the flow of an IPv4 packet; `None` if it is not a well-formed IPv4 header.
    #[must_use]
    pub fn parse(packet: &[u8]) -> Option<Self> {
        let &[vihl, _, _, _, _, _, frag0, frag1, _, protocol, ..] = packet else {
            return None;
        };
        if vihl >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(vihl & 0x0f) * 4;
        if ihl < 20 || packet.len() < ihl {
            return None;
        }
        let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let first_fragment = u16::from_be_bytes([frag0, frag1]) & 0x1fff == 0;
        let ports = match (protocol, first_fragment, packet.get(ihl..ihl + 4)) {
            (6 | 17, true, Some(&[a, b, c, d])) => {
                Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])))
            }
            _ => None,
        };
        Some(Self {
            src,
            dst,
            protocol,
            ports,
        })
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// No rule allows it.
    NoRule,
    /// Not a parseable IPv4 packet.
    Malformed,
}

/// Ordered rules; the first rule that matches a packet allows it, and no match drops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// A policy made of `rules`, in order.
    #[must_use]
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Judges a packet a client sent into the tunnel (after decapsulation).
    pub fn check_outbound(&self, packet: &[u8]) -> Result<Flow, Drop> {
        let flow = Flow::parse(packet).ok_or(Drop::Malformed)?;
        let allowed = self.rules.iter().any(|r| {
            r.proto.matches(flow.protocol)
                && contains(&r.from, flow.src)
                && contains(&r.to, flow.dst)
                && port_ok(r.ports, flow.ports.map(|(_, dst)| dst), flow.protocol)
        });
        if allowed { Ok(flow) } else { Err(Drop::NoRule) }
    }

    /// Judges a packet from the host's side that is about to enter a client's tunnel.
    pub fn check_inbound(&self, packet: &[u8]) -> Result<Flow, Drop> {
        let flow = Flow::parse(packet).ok_or(Drop::Malformed)?;
        if self.allows_inbound(&flow) {
            Ok(flow)
        } else {
            Err(Drop::NoRule)
        }
    }

    /// Whether a flow already parsed may enter a client's tunnel.
    #[must_use]
    pub fn allows_inbound(&self, flow: &Flow) -> bool {
        self.rules.iter().any(|r| {
            r.proto.matches(flow.protocol)
                && contains(&r.to, flow.src)
                && contains(&r.from, flow.dst)
                && port_ok(r.ports, flow.ports.map(|(src, _)| src), flow.protocol)
        })
    }
}

fn contains(nets: &[Ipv4Net], addr: Ipv4Addr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

fn port_ok(range: Option<(u16, u16)>, port: Option<u16>, protocol: u8) -> bool {
    match range {
        None => true,
        // A port filter admits only TCP/UDP first fragments whose port is in range.
        Some((lo, hi)) => {
            matches!(protocol, 6 | 17) && port.is_some_and(|p| (lo..=hi).contains(&p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn packet(src: [u8; 4], dst: [u8; 4], protocol: u8, ports: (u16, u16)) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0, 8, 0, 0]);
        p
    }

    fn reference() -> Policy {
        Policy::new(vec![
            Rule {
                from: vec![net("172.16.1.0/24")],
                to: vec![net("192.168.1.0/24")],
                proto: Proto::Any,
                ports: None,
            },
            Rule {
                from: vec![net("172.16.1.0/24")],
                to: vec![net("172.16.1.1/32")],
                proto: Proto::Icmp,
                ports: None,
            },
            Rule {
                from: vec![net("172.16.1.0/24")],
                to: vec![net("10.9.0.0/16")],
                proto: Proto::Tcp,
                ports: Some((443, 443)),
            },
        ])
    }

    #[test]
    fn the_pool_reaches_the_intranet_and_the_intranet_answers() {
        let p = reference();
        assert!(
            p.check_outbound(&packet([172, 16, 1, 51], [192, 168, 1, 1], 6, (40000, 80)))
                .is_ok()
        );
        assert!(
            p.check_inbound(&packet([192, 168, 1, 1], [172, 16, 1, 51], 6, (80, 40000)))
                .is_ok()
        );
    }

    #[test]
    fn the_dmz_and_the_lns_services_are_unreachable() {
        let p = reference();
        let dmz = packet([172, 16, 1, 51], [192, 168, 2, 10], 6, (40000, 80));
        assert_eq!(p.check_outbound(&dmz), Err(Drop::NoRule));
        let ssh_to_lns = packet([172, 16, 1, 51], [172, 16, 1, 1], 6, (40000, 22));
        assert_eq!(p.check_outbound(&ssh_to_lns), Err(Drop::NoRule));
        let ping_lns = packet([172, 16, 1, 51], [172, 16, 1, 1], 1, (0x0800, 0));
        assert!(p.check_outbound(&ping_lns).is_ok());
        let from_dmz = packet([192, 168, 2, 10], [172, 16, 1, 51], 6, (80, 40000));
        assert_eq!(p.check_inbound(&from_dmz), Err(Drop::NoRule));
    }

    #[test]
    fn port_rules_apply_to_the_destination_out_and_the_source_back() {
        let p = reference();
        assert!(
            p.check_outbound(&packet([172, 16, 1, 9], [10, 9, 0, 1], 6, (5000, 443)))
                .is_ok()
        );
        assert_eq!(
            p.check_outbound(&packet([172, 16, 1, 9], [10, 9, 0, 1], 6, (5000, 80))),
            Err(Drop::NoRule)
        );
        assert_eq!(
            p.check_outbound(&packet([172, 16, 1, 9], [10, 9, 0, 1], 17, (5000, 443))),
            Err(Drop::NoRule)
        );
        assert!(
            p.check_inbound(&packet([10, 9, 0, 1], [172, 16, 1, 9], 6, (443, 5000)))
                .is_ok()
        );
        assert_eq!(
            p.check_inbound(&packet([10, 9, 0, 1], [172, 16, 1, 9], 6, (22, 5000))),
            Err(Drop::NoRule)
        );
    }

    #[test]
    fn malformed_packets_are_dropped_as_such() {
        let p = reference();
        assert_eq!(p.check_outbound(&[0x45, 0, 0]), Err(Drop::Malformed));
        let mut v6 = packet([172, 16, 1, 51], [192, 168, 1, 1], 6, (1, 2));
        v6[0] = 0x65;
        assert_eq!(p.check_outbound(&v6), Err(Drop::Malformed));
        let mut bad_ihl = packet([172, 16, 1, 51], [192, 168, 1, 1], 6, (1, 2));
        bad_ihl[0] = 0x4f;
        assert_eq!(p.check_outbound(&bad_ihl), Err(Drop::Malformed));
        for len in 0..20 {
            assert_eq!(
                Flow::parse(&packet([1, 1, 1, 1], [2, 2, 2, 2], 6, (1, 2))[..len]),
                None
            );
        }
    }

    #[test]
    fn an_empty_policy_drops_everything() {
        let p = Policy::default();
        assert_eq!(
            p.check_outbound(&packet([172, 16, 1, 51], [192, 168, 1, 1], 1, (0, 0))),
            Err(Drop::NoRule)
        );
    }
}
