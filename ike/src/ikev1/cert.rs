//! X.509 certificates for IKEv1 signature authentication (RFC 2409 §5.1, RFC 2408 §3.9–3.10,
//! profile of RFC 4945).
//!
//! [`Certificates`] holds our chain, our RSA key, the CAs we trust and the peer identities we
//! accept. [`Certificates::verify_peer`] checks what the peer sent in its CERT payloads:
//!
//! 1. every certificate parses, and the first one (the end entity) carries an RSA key of
//!    2048–4096 bits whose key usage, if present, allows signatures;
//! 2. each certificate on the path is inside its validity period at the caller's wall clock
//!    (this crate reads no clock) and has no critical extension we do not understand;
//! 3. the path leads, by issuer/subject name and verified signature, through CA certificates
//!    the peer sent to one of our trust anchors, within [`MAX_CHAIN_DEPTH`] links;
//! 4. the peer's ID payload names the end entity: its subject DN byte for byte, or a
//!    subjectAltName of the ID's type (IP address, DNS name, e-mail address), and it is an
//!    identity our [`PeerPolicy`] admits.
//!
//! Each failure is a typed [`Refusal`] that maps to the notify the peer should see.

use super::main_mode::{PeerId, Refusal};
use super::rsa::{RsaError, RsaPrivateKey, RsaPublicKey};
use crate::wire::IdType;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use std::time::{SystemTime, UNIX_EPOCH};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_NIST_EC_P384, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA,
    OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// Most certificates a peer may send (end entity and intermediates); more are refused.
pub const MAX_PEER_CERTIFICATES: usize = 4;
/// Most signature links from the end entity to a trust anchor.
pub const MAX_CHAIN_DEPTH: usize = 4;
/// Most CR payloads we send (one per trusted CA, the first ones).
pub const MAX_CERTIFICATE_REQUESTS: usize = 4;

/// Which authenticated peers we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPolicy {
    /// Any peer whose certificate chains to one of our CAs (its ID must still name its
    /// certificate).
    AnyCertified,
    /// Only a peer with exactly this ID payload (type and data), which its certificate must
    /// also vouch for.
    Only(PeerId),
}

/// Why a certificate configuration was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Our chain is empty.
    #[error("no certificate of our own")]
    NoCertificate,
    /// No trusted CA was given.
    #[error("no trusted CA")]
    NoTrustAnchor,
    /// Certificate `index` of our chain (0 = ours) does not parse as DER X.509.
    #[error("our certificate {0} is not DER X.509")]
    MalformedChain(usize),
    /// Trusted CA `index` does not parse as DER X.509.
    #[error("trusted CA {0} is not DER X.509")]
    MalformedTrustAnchor(usize),
    /// The private key is unusable.
    #[error("private key: {0}")]
    Key(#[from] RsaError),
    /// Our certificate does not carry the public half of our key.
    #[error("our certificate does not match our private key")]
    KeyMismatch,
    /// The configured ID is not named by our certificate.
    #[error("our ID is not named by our certificate")]
    IdNotInCertificate,
    /// More certificates than [`MAX_PEER_CERTIFICATES`] in our chain.
    #[error("chain longer than {MAX_PEER_CERTIFICATES}")]
    ChainTooLong,
}

/// Certificate credentials and trust for phase 1.
pub struct Certificates {
    chain: Vec<Vec<u8>>,
    key: RsaPrivateKey,
    trusted: Vec<Vec<u8>>,
    ca_names: Vec<Vec<u8>>,
    peer: PeerPolicy,
    local_id: PeerId,
}

impl core::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Certificates")
            .field("chain", &self.chain.len())
            .field("key", &self.key)
            .field("trusted", &self.trusted.len())
            .field("peer", &self.peer)
            .field("local_id", &self.local_id)
            .finish()
    }
}

fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

fn rsa_key(cert: &X509Certificate<'_>) -> Option<RsaPublicKey> {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => RsaPublicKey::new(k.modulus, k.exponent).ok(),
        _ => None,
    }
}

impl Certificates {
    /// Our chain (DER, our certificate first, then intermediates we send along), our RSA private
    /// key (PKCS#8 DER), the CA certificates we trust (DER) and the peers we accept. Our ID is
    /// the subject DN of our certificate unless [`Certificates::with_local_id`] says otherwise.
    ///
    /// # Errors
    /// [`CertificateError`] for anything unusable; nothing is checked against a clock here.
    pub fn new(
        chain: Vec<Vec<u8>>,
        key_pkcs8: &[u8],
        trusted: Vec<Vec<u8>>,
        peer: PeerPolicy,
    ) -> Result<Self, CertificateError> {
        if chain.len() > MAX_PEER_CERTIFICATES {
            return Err(CertificateError::ChainTooLong);
        }
        let ours = chain.first().ok_or(CertificateError::NoCertificate)?;
        for (i, der) in chain.iter().enumerate() {
            parse(der).ok_or(CertificateError::MalformedChain(i))?;
        }
        if trusted.is_empty() {
            return Err(CertificateError::NoTrustAnchor);
        }
        let mut ca_names = Vec::with_capacity(trusted.len());
        for (i, der) in trusted.iter().enumerate() {
            let ca = parse(der).ok_or(CertificateError::MalformedTrustAnchor(i))?;
            ca_names.push(ca.subject().as_raw().to_vec());
        }
        let key = RsaPrivateKey::from_pkcs8(key_pkcs8)?;
        let cert = parse(ours).ok_or(CertificateError::MalformedChain(0))?;
        if rsa_key(&cert).as_ref() != Some(key.public_key()) {
            return Err(CertificateError::KeyMismatch);
        }
        let local_id = PeerId {
            id_type: IdType::DER_ASN1_DN,
            data: cert.subject().as_raw().to_vec(),
        };
        Ok(Self {
            chain,
            key,
            trusted,
            ca_names,
            peer,
            local_id,
        })
    }

    /// Sends `id` in our ID payload instead of our subject DN; our certificate must name it
    /// (as a subjectAltName of the same type, or as the DN itself).
    ///
    /// # Errors
    /// [`CertificateError::IdNotInCertificate`].
    pub fn with_local_id(mut self, id: PeerId) -> Result<Self, CertificateError> {
        let cert = self
            .chain
            .first()
            .and_then(|d| parse(d))
            .ok_or(CertificateError::NoCertificate)?;
        if !names(&cert, &id).unwrap_or(false) {
            return Err(CertificateError::IdNotInCertificate);
        }
        self.local_id = id;
        Ok(self)
    }

    /// The ID we send.
    #[must_use]
    pub const fn local_id(&self) -> &PeerId {
        &self.local_id
    }

    /// Our chain, our certificate first.
    #[must_use]
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The subject DNs of our CAs, for CR payloads.
    pub(crate) fn ca_names(&self) -> impl Iterator<Item = &[u8]> {
        self.ca_names
            .iter()
            .take(MAX_CERTIFICATE_REQUESTS)
            .map(Vec::as_slice)
    }

    /// Signs HASH_I or HASH_R (RFC 2409 §5.1).
    pub(crate) fn sign(&self, hash: &[u8]) -> Result<Vec<u8>, Refusal> {
        self.key.sign_raw(hash).map_err(|_| Refusal::Malformed)
    }

    /// Checks the peer's certificates (end entity first) and its ID; returns the key that must
    /// verify its SIG payload.
    ///
    /// # Errors
    /// [`Refusal::CertificateInvalid`], [`Refusal::CertificateExpired`],
    /// [`Refusal::UntrustedCertificate`] or [`Refusal::IdMismatch`].
    pub fn verify_peer(
        &self,
        certificates: &[&[u8]],
        id: &PeerId,
        wall_clock: SystemTime,
    ) -> Result<RsaPublicKey, Refusal> {
        if certificates.len() > MAX_PEER_CERTIFICATES {
            return Err(Refusal::CertificateInvalid);
        }
        let parsed = certificates
            .iter()
            .map(|d| parse(d))
            .collect::<Option<Vec<_>>>()
            .ok_or(Refusal::CertificateInvalid)?;
        let (leaf, others) = parsed.split_first().ok_or(Refusal::CertificateInvalid)?;
        let key = rsa_key(leaf).ok_or(Refusal::CertificateInvalid)?;
        // RFC 4945 §5.1.3.2: a key usage extension, if present, must allow signing.
        match leaf.key_usage() {
            Ok(None) => {}
            Ok(Some(ku)) if ku.value.digital_signature() || ku.value.non_repudiation() => {}
            _ => return Err(Refusal::CertificateInvalid),
        }
        let now = wall_clock
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.chain_to_anchor(leaf, others, now)?;
        // RFC 4945 §3.1: the identity in the ID payload must be one the certificate names.
        if !names(leaf, id)? {
            return Err(Refusal::IdMismatch);
        }
        if let PeerPolicy::Only(expected) = &self.peer
            && expected != id
        {
            return Err(Refusal::IdMismatch);
        }
        Ok(key)
    }

    fn chain_to_anchor(
        &self,
        leaf: &X509Certificate<'_>,
        intermediates: &[X509Certificate<'_>],
        now: i64,
    ) -> Result<(), Refusal> {
        let mut current = leaf;
        for _ in 0..MAX_CHAIN_DEPTH {
            usable_at(current, now)?;
            let issuer = current.issuer().as_raw();
            for anchor in self.trusted.iter().filter_map(|d| parse(d)) {
                if anchor.subject().as_raw() == issuer && signed_by(current, &anchor) {
                    usable_at(&anchor, now)?;
                    return if may_issue(&anchor, true) {
                        Ok(())
                    } else {
                        Err(Refusal::UntrustedCertificate)
                    };
                }
            }
            current = intermediates
                .iter()
                .find(|c| {
                    c.subject().as_raw() == issuer && may_issue(c, false) && signed_by(current, c)
                })
                .ok_or(Refusal::UntrustedCertificate)?;
        }
        Err(Refusal::UntrustedCertificate)
    }
}

/// Inside its validity period and without unknown critical extensions (RFC 5280 §4.1.2.5,
/// §4.2).
fn usable_at(cert: &X509Certificate<'_>, now: i64) -> Result<(), Refusal> {
    let v = cert.validity();
    if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
        return Err(Refusal::CertificateExpired);
    }
    let unknown_critical = cert.extensions().iter().any(|e| {
        e.critical
            && matches!(
                e.parsed_extension(),
                ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
            )
    });
    if unknown_critical {
        return Err(Refusal::CertificateInvalid);
    }
    Ok(())
}

/// May `cert` sign certificates? RFC 5280 §4.2.1.9: basicConstraints cA (required of
/// intermediates, honoured if present in a trust anchor); §4.2.1.3: keyCertSign if key usage
/// is present.
fn may_issue(cert: &X509Certificate<'_>, anchor: bool) -> bool {
    let ca = match cert.basic_constraints() {
        Ok(Some(bc)) => bc.value.ca,
        Ok(None) => anchor,
        Err(_) => false,
    };
    let ku = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    ca && ku
}

/// Verifies `child`'s signature with `issuer`'s key (SHA-2 RSA PKCS#1 or ECDSA P-256/P-384;
/// SHA-1 and MD5 signatures are not accepted).
fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    let spki = issuer.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    let p256 = curve.as_ref() == Some(&OID_EC_P256);
    let p384 = curve.as_ref() == Some(&OID_NIST_EC_P384);
    let oid = &child.signature_algorithm.algorithm;
    let alg: &dyn VerificationAlgorithm = if *oid == OID_PKCS1_SHA256WITHRSA {
        &sig::RSA_PKCS1_2048_8192_SHA256
    } else if *oid == OID_PKCS1_SHA384WITHRSA {
        &sig::RSA_PKCS1_2048_8192_SHA384
    } else if *oid == OID_PKCS1_SHA512WITHRSA {
        &sig::RSA_PKCS1_2048_8192_SHA512
    } else if *oid == OID_SIG_ECDSA_WITH_SHA256 && p256 {
        &sig::ECDSA_P256_SHA256_ASN1
    } else if *oid == OID_SIG_ECDSA_WITH_SHA256 && p384 {
        &sig::ECDSA_P384_SHA256_ASN1
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 && p256 {
        &sig::ECDSA_P256_SHA384_ASN1
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 && p384 {
        &sig::ECDSA_P384_SHA384_ASN1
    } else {
        return false;
    };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
        .is_ok()
}

/// Does `cert` name `id`? A DN must equal the subject byte for byte; addresses, DNS names and
/// e-mail addresses must appear in subjectAltName (names compared without regard to ASCII
/// case).
fn names(cert: &X509Certificate<'_>, id: &PeerId) -> Result<bool, Refusal> {
    if id.id_type == IdType::DER_ASN1_DN {
        return Ok(cert.subject().as_raw() == id.data.as_slice());
    }
    let sans = cert
        .subject_alternative_name()
        .map_err(|_| Refusal::CertificateInvalid)?;
    let Some(sans) = sans else { return Ok(false) };
    let text = |s: &str| s.as_bytes().eq_ignore_ascii_case(&id.data);
    Ok(sans
        .value
        .general_names
        .iter()
        .any(|name| match (id.id_type, name) {
            (IdType::IPV4_ADDR | IdType::IPV6_ADDR, GeneralName::IPAddress(a)) => {
                *a == id.data.as_slice()
            }
            (IdType::FQDN, GeneralName::DNSName(n)) => text(n),
            (IdType::USER_FQDN, GeneralName::RFC822Name(n)) => text(n),
            _ => false,
        }))
}

#[cfg(test)]
mod tests;
