//! A small PKI for tests: a CA, a server and a client certificate (RSA-2048), built with
//! `rcgen` at test time around a fixed wall-clock instant.
//!
//! rcgen's `ring` backend cannot generate RSA keys, so the four RSA-2048 keys are fixtures in
//! `testdata/` (PKCS#8, made once offline); everything else, certificates included, is made
//! here.

use super::cert::{Certificates, PeerPolicy};
use super::main_mode::PeerId;
use crate::wire::IdType;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256, SanType, date_time_ymd,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock of every certificate test: 2025-06-15T00:00:00Z.
pub(crate) fn wall_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_749_945_600)
}

/// The RSA-2048 fixture keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Ca,
    Server,
    Client,
    Rogue,
}

impl Key {
    fn pem(self) -> &'static str {
        match self {
            Self::Ca => include_str!("testdata/ca.key.pem"),
            Self::Server => include_str!("testdata/server.key.pem"),
            Self::Client => include_str!("testdata/client.key.pem"),
            Self::Rogue => include_str!("testdata/rogue.key.pem"),
        }
    }

    pub(crate) fn pair(self) -> KeyPair {
        KeyPair::from_pkcs8_pem_and_sign_algo(self.pem(), &PKCS_RSA_SHA256).unwrap()
    }

    /// PKCS#8 DER.
    pub(crate) fn der(self) -> Vec<u8> {
        self.pair().serialized_der().to_vec()
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "l2sec test");
    dn.push(DnType::CommonName, cn);
    dn
}

/// A self-signed CA certificate named `cn` with `key`.
pub(crate) fn ca(cn: &str, key: Key) -> (Vec<u8>, CertificateParams) {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2035, 1, 1);
    let cert = p.self_signed(&key.pair()).unwrap();
    (cert.der().to_vec(), p)
}

/// What an end-entity certificate looks like.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub(crate) cn: &'static str,
    pub(crate) key: Key,
    pub(crate) dns: Vec<&'static str>,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) emails: Vec<&'static str>,
    pub(crate) not_after: (i32, u8, u8),
    pub(crate) key_usages: Vec<KeyUsagePurpose>,
}

impl Leaf {
    pub(crate) fn server() -> Self {
        Self {
            cn: "vpn.example.com",
            key: Key::Server,
            dns: vec!["vpn.example.com"],
            ips: vec!["2.2.2.2".parse().unwrap()],
            emails: vec![],
            not_after: (2026, 1, 1),
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
        }
    }

    pub(crate) fn client() -> Self {
        Self {
            cn: "client1",
            key: Key::Client,
            dns: vec![],
            ips: vec![],
            emails: vec!["client1@example.com"],
            not_after: (2026, 1, 1),
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
        }
    }

    /// Issues this certificate from the CA `(params, key)`.
    pub(crate) fn issue(&self, ca: &CertificateParams, ca_key: Key) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(self.cn);
        p.subject_alt_names = self
            .dns
            .iter()
            .map(|d| SanType::DnsName((*d).try_into().unwrap()))
            .chain(self.ips.iter().map(|ip| SanType::IpAddress(*ip)))
            .chain(
                self.emails
                    .iter()
                    .map(|e| SanType::Rfc822Name((*e).try_into().unwrap())),
            )
            .collect();
        p.key_usages = self.key_usages.clone();
        p.not_before = date_time_ymd(2025, 1, 1);
        let (y, m, d) = self.not_after;
        p.not_after = date_time_ymd(y, m, d);
        let issuer = Issuer::from_params(ca, ca_key.pair());
        p.signed_by(&self.key.pair(), &issuer)
            .unwrap()
            .der()
            .to_vec()
    }
}

/// The DER subject of `cert`.
pub(crate) fn subject(cert: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(cert).unwrap();
    c.subject().as_raw().to_vec()
}

/// The standard test PKI.
pub(crate) struct Pki {
    pub(crate) ca: Vec<u8>,
    pub(crate) ca_params: CertificateParams,
    pub(crate) server: Vec<u8>,
    pub(crate) client: Vec<u8>,
}

impl Pki {
    pub(crate) fn new() -> Self {
        let (ca, ca_params) = ca("l2sec test CA", Key::Ca);
        let server = Leaf::server().issue(&ca_params, Key::Ca);
        let client = Leaf::client().issue(&ca_params, Key::Ca);
        Self {
            ca,
            ca_params,
            server,
            client,
        }
    }

    /// Server credentials accepting any client the CA certified.
    pub(crate) fn server_credentials(&self) -> Arc<Certificates> {
        Arc::new(
            Certificates::new(
                vec![self.server.clone()],
                &Key::Server.der(),
                vec![self.ca.clone()],
                PeerPolicy::AnyCertified,
            )
            .unwrap(),
        )
    }

    /// Client credentials that accept only the server named `vpn.example.com`.
    pub(crate) fn client_credentials(&self) -> Arc<Certificates> {
        Arc::new(
            Certificates::new(
                vec![self.client.clone()],
                &Key::Client.der(),
                vec![self.ca.clone()],
                PeerPolicy::Only(PeerId {
                    id_type: IdType::DER_ASN1_DN,
                    data: subject(&self.server),
                }),
            )
            .unwrap(),
        )
    }
}
