//! Pre-shared keys chosen per peer.
//!
//! In Main Mode with pre-shared keys the key enters SKEYID (RFC 2409 §5.4), and SKEYID_e
//! protects message 5, which is the first to carry the initiator's identity. A responder
//! therefore has to pick the key before it knows who is calling: the only selector available
//! is the peer's IP address (strongSwan and Libreswan do the same). Once message 5 decrypted
//! and HASH_I verified, the ID payload is checked against the ID the entry expects, if any.
//!
//! Lookup is by longest prefix: a host entry beats the /24 that contains it, which beats the
//! default key. Behind a NAT every peer shows the NAT's public address, so they all share the
//! entry of that address.

use super::PeerId;
use crate::ikev1::keys::Secret;
use crate::wire::IdType;
use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most entries a [`PskTable`] holds (lookup is a linear scan, once per Main Mode).
pub const MAX_PSK_ENTRIES: usize = 65_536;

/// An IPv4 or IPv6 prefix in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a bare
/// address for one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPrefix {
    /// The network address, host bits cleared.
    addr: IpAddr,
    len: u8,
}

/// Why a prefix, ID or table entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PskTableError {
    /// Not an address or CIDR prefix.
    #[error("{0:?} is not an IP address or CIDR prefix")]
    BadPrefix(String),
    /// The prefix length exceeds the address size.
    #[error("prefix length {0} is too long for the address")]
    PrefixLength(u8),
    /// Two entries for the same prefix: the key could not be chosen.
    #[error("a key for {0} is already configured")]
    DuplicatePrefix(AddressPrefix),
    /// [`MAX_PSK_ENTRIES`] reached.
    #[error("more than {MAX_PSK_ENTRIES} pre-shared keys")]
    TooMany,
    /// An empty pre-shared key.
    #[error("the pre-shared key for {0} is empty")]
    EmptySecret(AddressPrefix),
    /// An ID that cannot be encoded.
    #[error("{0}")]
    BadId(String),
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket) are matched as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl AddressPrefix {
    /// The prefix `addr/len`; host bits of `addr` are cleared.
    ///
    /// # Errors
    /// [`PskTableError::PrefixLength`] when `len` exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PskTableError> {
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(PskTableError::PrefixLength(len));
        }
        Ok(Self {
            addr: mask(addr, len),
            len,
        })
    }

    /// One host.
    #[must_use]
    pub fn host(addr: IpAddr) -> Self {
        let addr = canonical(addr);
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// The network address.
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is `/0` (every address of its family).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` lies inside this prefix.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.len) == self.addr
    }
}

impl fmt::Display for AddressPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for AddressPrefix {
    type Err = PskTableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PskTableError::BadPrefix(s.to_owned());
        match s.trim().split_once('/') {
            None => s.trim().parse().map(Self::host).map_err(|_| bad()),
            Some((addr, len)) => {
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().map_err(|_| bad())?;
                Self::new(addr, len)
            }
        }
    }
}

/// One pre-shared key: the peers it is for, and optionally the ID they must present.
#[derive(Debug, Clone)]
pub struct PskEntry {
    /// The peers' addresses (as we see them: a NAT's public address for peers behind it).
    pub peer: AddressPrefix,
    /// The ID the peer must send in message 5 (or 6, when we initiate); `None` admits any.
    pub id: Option<PeerId>,
    /// The key.
    pub secret: Secret,
}

/// Pre-shared keys by peer address, most specific prefix first, and an optional default for
/// every other address.
#[derive(Debug, Clone, Default)]
pub struct PskTable {
    /// Sorted by descending prefix length, so the first match is the most specific.
    entries: Vec<PskEntry>,
    default: Option<Secret>,
}

impl PskTable {
    /// An empty table: no peer has a key until entries or a default are added.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A table whose default key is `secret`.
    #[must_use]
    pub const fn with_default(secret: Secret) -> Self {
        Self {
            entries: Vec::new(),
            default: Some(secret),
        }
    }

    /// Sets or clears the key for addresses no entry covers.
    pub fn set_default(&mut self, secret: Option<Secret>) {
        self.default = secret;
    }

    /// Adds an entry.
    ///
    /// # Errors
    /// [`PskTableError::DuplicatePrefix`] when the prefix already has a key,
    /// [`PskTableError::EmptySecret`], [`PskTableError::TooMany`].
    pub fn insert(&mut self, entry: PskEntry) -> Result<(), PskTableError> {
        if entry.secret.expose().is_empty() {
            return Err(PskTableError::EmptySecret(entry.peer));
        }
        if self.entries.iter().any(|e| e.peer == entry.peer) {
            return Err(PskTableError::DuplicatePrefix(entry.peer));
        }
        if self.entries.len() >= MAX_PSK_ENTRIES {
            return Err(PskTableError::TooMany);
        }
        let at = self
            .entries
            .partition_point(|e| e.peer.len() >= entry.peer.len());
        self.entries.insert(at, entry);
        Ok(())
    }

    /// The key for a peer at `peer`, and the ID it must present: the entry with the longest
    /// prefix containing the address, else the default key (with no ID requirement).
    #[must_use]
    pub fn lookup(&self, peer: IpAddr) -> Option<(&Secret, Option<&PeerId>)> {
        self.entries
            .iter()
            .find(|e| e.peer.contains(peer))
            .map(|e| (&e.secret, e.id.as_ref()))
            .or_else(|| self.default.as_ref().map(|d| (d, None)))
    }

    /// Number of entries (the default not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has neither entries nor a default.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.default.is_none()
    }
}

impl PeerId {
    /// Whether `presented`, an ID received from a peer, is this configured ID: same type;
    /// names compared without regard to ASCII case (DNS names and e-mail domains are
    /// case-insensitive); addresses byte for byte; DNs byte for byte or, when both parse,
    /// attribute by attribute (so a PrintableString and a UTF8String of the same text match).
    #[must_use]
    pub fn matches(&self, presented: &Self) -> bool {
        if self.id_type != presented.id_type {
            return false;
        }
        match self.id_type {
            IdType::FQDN | IdType::USER_FQDN => self.data.eq_ignore_ascii_case(&presented.data),
            IdType::DER_ASN1_DN => {
                self.data == presented.data || dn_attributes_equal(&self.data, &presented.data)
            }
            _ => self.data == presented.data,
        }
    }

    /// An FQDN ID.
    #[must_use]
    pub fn fqdn(name: &str) -> Self {
        Self {
            id_type: IdType::FQDN,
            data: name.as_bytes().to_vec(),
        }
    }

    /// A USER_FQDN (e-mail address) ID.
    #[must_use]
    pub fn user_fqdn(name: &str) -> Self {
        Self {
            id_type: IdType::USER_FQDN,
            data: name.as_bytes().to_vec(),
        }
    }

    /// An IPv4 or IPv6 address ID.
    #[must_use]
    pub fn address(addr: IpAddr) -> Self {
        match canonical(addr) {
            IpAddr::V4(a) => Self {
                id_type: IdType::IPV4_ADDR,
                data: a.octets().to_vec(),
            },
            IpAddr::V6(a) => Self {
                id_type: IdType::IPV6_ADDR,
                data: a.octets().to_vec(),
            },
        }
    }
}

/// Parses an ID as an operator writes it: `fqdn:NAME`, `user-fqdn:USER@DOMAIN` (or
/// `email:`), `ip:ADDRESS`, `dn:C=CH, O=Example, CN=host`, or without a prefix: an address,
/// a DN when it holds `=`, a USER_FQDN when it holds `@`, an FQDN otherwise.
impl FromStr for PeerId {
    type Err = PskTableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = |why: &str| PskTableError::BadId(format!("ID {s:?}: {why}"));
        let (kind, value) = match s.split_once(':') {
            Some((k @ ("fqdn" | "user-fqdn" | "email" | "ip" | "dn"), v)) => (Some(k), v.trim()),
            _ => (None, s),
        };
        if value.is_empty() {
            return Err(bad("empty"));
        }
        let kind = kind.unwrap_or(if value.parse::<IpAddr>().is_ok() {
            "ip"
        } else if value.contains('=') {
            "dn"
        } else if value.contains('@') {
            "email"
        } else {
            "fqdn"
        });
        match kind {
            "ip" => value
                .parse()
                .map(Self::address)
                .map_err(|_| bad("not an IP address")),
            "dn" => Ok(Self {
                id_type: IdType::DER_ASN1_DN,
                data: encode_dn(value).map_err(|why| bad(&why))?,
            }),
            "email" | "user-fqdn" => Ok(Self::user_fqdn(value)),
            _ => Ok(Self::fqdn(value)),
        }
    }
}

/// Attribute types a DN string may name, with their OIDs (RFC 4519) and whether the value is
/// encoded as PrintableString (country, serial number) or IA5String (e-mail, DC).
const DN_ATTRIBUTES: &[(&str, &[u64], u8)] = &[
    ("C", &[2, 5, 4, 6], PRINTABLE_STRING),
    ("ST", &[2, 5, 4, 8], UTF8_STRING),
    ("L", &[2, 5, 4, 7], UTF8_STRING),
    ("O", &[2, 5, 4, 10], UTF8_STRING),
    ("OU", &[2, 5, 4, 11], UTF8_STRING),
    ("CN", &[2, 5, 4, 3], UTF8_STRING),
    ("SN", &[2, 5, 4, 5], PRINTABLE_STRING),
    ("SERIALNUMBER", &[2, 5, 4, 5], PRINTABLE_STRING),
    ("E", &[1, 2, 840, 113_549, 1, 9, 1], IA5_STRING),
    ("EMAILADDRESS", &[1, 2, 840, 113_549, 1, 9, 1], IA5_STRING),
    ("DC", &[0, 9, 2342, 19_200_300, 100, 1, 25], IA5_STRING),
    ("UID", &[0, 9, 2342, 19_200_300, 100, 1, 1], UTF8_STRING),
];
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;

/// DER-encodes a DN written as `C=CH, O=Example, CN=host` (RDNs in the order written, one
/// attribute each; `\,` escapes a comma in a value).
fn encode_dn(text: &str) -> Result<Vec<u8>, String> {
    let mut rdns = Vec::new();
    let mut part = String::new();
    let mut parts = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => part.extend(chars.next()),
            ',' => parts.push(core::mem::take(&mut part)),
            c => part.push(c),
        }
    }
    parts.push(part);
    for p in parts {
        let (key, value) = p
            .split_once('=')
            .ok_or_else(|| format!("{:?} is not TYPE=value", p.trim()))?;
        let (key, value) = (key.trim(), value.trim());
        let &(_, oid, string) = DN_ATTRIBUTES
            .iter()
            .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
            .ok_or_else(|| format!("unknown attribute type {key:?}"))?;
        if value.is_empty() {
            return Err(format!("{key} is empty"));
        }
        let attribute = der(
            0x30,
            &[der(0x06, &encode_oid(oid)), der(string, value.as_bytes())].concat(),
        );
        rdns.push(der(0x31, &attribute));
    }
    Ok(der(0x30, &rdns.concat()))
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        Ok(byte) => out.extend_from_slice(&[0x81, byte]),
        Err(_) => {
            let [.., hi, lo] = len.to_be_bytes();
            out.extend_from_slice(&[0x82, hi, lo]);
        }
    }
    out.extend_from_slice(content);
    out
}

fn encode_oid(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        _ => return out,
    };
    for arc in core::iter::once(first).chain(rest.iter().copied()) {
        let mut groups = vec![u8::try_from(arc & 0x7f).unwrap_or(0)];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
            v >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    out
}

/// Both DNs parse and hold the same attributes (type and text) in the same order.
fn dn_attributes_equal(a: &[u8], b: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    use x509_parser::x509::X509Name;
    let (Ok((_, a)), Ok((_, b))) = (X509Name::from_der(a), X509Name::from_der(b)) else {
        return false;
    };
    let attributes = |n: &X509Name<'_>| -> Option<Vec<(String, String)>> {
        n.iter_attributes()
            .map(|at| {
                at.as_str()
                    .ok()
                    .map(|v| (at.attr_type().to_id_string(), v.trim().to_owned()))
            })
            .collect()
    };
    matches!((attributes(&a), attributes(&b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes())
    }

    fn entry(peer: &str, id: Option<&str>, key: &str) -> PskEntry {
        PskEntry {
            peer: peer.parse().unwrap(),
            id: id.map(|i| i.parse().unwrap()),
            secret: secret(key),
        }
    }

    fn key(t: &PskTable, ip: &str) -> Option<Vec<u8>> {
        t.lookup(ip.parse().unwrap())
            .map(|(s, _)| s.expose().to_vec())
    }

    #[test]
    fn the_most_specific_prefix_wins_whatever_the_insertion_order() {
        let mut t = PskTable::with_default(secret("default"));
        t.insert(entry("10.0.0.0/8", None, "net8")).unwrap();
        t.insert(entry("10.1.2.3", None, "host")).unwrap();
        t.insert(entry("10.1.0.0/16", None, "net16")).unwrap();
        t.insert(entry("2001:db8::/32", None, "v6")).unwrap();
        assert_eq!(key(&t, "10.1.2.3"), Some(b"host".to_vec()));
        assert_eq!(key(&t, "10.1.9.9"), Some(b"net16".to_vec()));
        assert_eq!(key(&t, "10.9.9.9"), Some(b"net8".to_vec()));
        assert_eq!(key(&t, "192.0.2.1"), Some(b"default".to_vec()));
        assert_eq!(key(&t, "2001:db8::5"), Some(b"v6".to_vec()));
        assert_eq!(
            key(&t, "::ffff:10.1.2.3"),
            Some(b"host".to_vec()),
            "an IPv4-mapped address is its IPv4 address"
        );
        t.set_default(None);
        assert_eq!(key(&t, "192.0.2.1"), None, "no default: no key");
    }

    #[test]
    fn prefixes_parse_mask_host_bits_and_refuse_nonsense() {
        let p: AddressPrefix = "192.0.2.77/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.0/24");
        assert!(p.contains("192.0.2.1".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let all: AddressPrefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.is_empty() && all.contains("203.0.113.9".parse().unwrap()));
        assert_eq!(
            "10.0.0.0/33".parse::<AddressPrefix>(),
            Err(PskTableError::PrefixLength(33))
        );
        for bad in ["", "10.0.0/8", "vpn.example.com", "10.0.0.0/x"] {
            assert!(bad.parse::<AddressPrefix>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_prefixes_and_empty_keys_are_refused() {
        let mut t = PskTable::new();
        t.insert(entry("10.0.0.0/24", None, "a")).unwrap();
        assert!(matches!(
            t.insert(entry("10.0.0.9/24", None, "b")),
            Err(PskTableError::DuplicatePrefix(_))
        ));
        assert!(matches!(
            t.insert(entry("10.0.1.0/24", None, "")),
            Err(PskTableError::EmptySecret(_))
        ));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ids_parse_by_prefix_or_by_shape_and_match_as_the_rfc_compares_them() {
        let id = |s: &str| s.parse::<PeerId>().unwrap();
        assert_eq!(id("vpn.example.com").id_type, IdType::FQDN);
        assert_eq!(id("alice@example.com").id_type, IdType::USER_FQDN);
        assert_eq!(id("email:alice@example.com").id_type, IdType::USER_FQDN);
        assert_eq!(
            id("192.0.2.7"),
            PeerId::address("192.0.2.7".parse().unwrap())
        );
        assert_eq!(id("ip:2001:db8::1").id_type, IdType::IPV6_ADDR);
        assert_eq!(id("fqdn:10.0.0.1").id_type, IdType::FQDN);
        assert!(id("VPN.Example.COM").matches(&PeerId::fqdn("vpn.example.com")));
        assert!(!id("vpn.example.com").matches(&PeerId::user_fqdn("vpn.example.com")));
        assert!(!id("192.0.2.7").matches(&PeerId::address("192.0.2.8".parse().unwrap())));
        assert!("ip:not-an-address".parse::<PeerId>().is_err());
        assert!("".parse::<PeerId>().is_err());
    }

    #[test]
    fn a_dn_string_encodes_to_the_der_a_certificate_subject_carries() {
        // rcgen writes subjects as UTF8String (PrintableString for C): match either way.
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "CH");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "laptop-7");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        let subject = PeerId {
            id_type: IdType::DER_ASN1_DN,
            data: parsed.subject().as_raw().to_vec(),
        };
        let configured: PeerId = r"dn:C=CH, O=Example\, Inc, CN=laptop-7".parse().unwrap();
        assert!(
            configured.matches(&subject),
            "{configured:?} vs {subject:?}"
        );
        let other: PeerId = "C=CH, O=Example\\, Inc, CN=laptop-8".parse().unwrap();
        assert!(!other.matches(&subject));
        assert!("dn:C=CH, XX=1".parse::<PeerId>().is_err());
    }
}
