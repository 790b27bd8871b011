//! IKEv1 Main Mode with pre-shared keys (RFC 2409 §5.4) or RSA signatures and X.509
//! certificates (RFC 2409 §5.1), both roles, one type per state.
//!
//! | # | direction | payloads | state after (responder / initiator) |
//! |---|-----------|----------|--------------------------------------|
//! | 1 | I → R | SA, VID… | `AwaitKe` / `InitSent` |
//! | 2 | R → I | SA (one transform), VID… | |
//! | 3 | I → R | KE, Ni [, CR…], NAT-D… | `AwaitAuth` / `KeSent` |
//! | 4 | R → I | KE, Nr [, CR…], NAT-D… | |
//! | 5 | I → R | *IDii, HASH_I \| CERT…, SIG_I [, N(INITIAL-CONTACT)]* | `Phase1Sa` / `AuthSent` |
//! | 6 | R → I | *IDir, HASH_R \| CERT…, SIG_R* | — / `Phase1Sa` |
//!
//! With certificates, CR payloads name our trusted CAs, and messages 5 and 6 carry our ID (the
//! subject DN of our certificate unless configured otherwise), our chain in CERT payloads and
//! SIG = the RSA signature of HASH_I / HASH_R (see [`super::rsa`]); the peer's chain, ID and
//! signature are checked by [`super::cert::Certificates::verify_peer`] at a wall-clock time the
//! caller passes in.
//!
//! Transitions borrow the current state and return the next one, so a malformed or forged
//! message leaves the exchange exactly as it was. A [`Phase1Sa`] holds an [`Authenticated`]
//! proof that only the HASH or SIG check can construct: no SA exists without verification.

use super::cert::{Certificates, MAX_PEER_CERTIFICATES};
use super::keys::{
    Phase1Auth, Phase1HashInputs, Phase1Inputs, Phase1Keys, Secret, exchange_iv, phase1_iv,
};
use super::nat::{NatTVersion, VID_DPD, nat_d};
use super::proposal::{Phase1Policy, Phase1Suite, choose_for, decode};
use super::vendor::PeerVendors;
use crate::crypto::{Agreement, Cipher, DhKeyPair, SharedSecret, check_public};
use crate::wire::{
    AuthMethod, Chain, Cookie, DOI_IPSEC, ExchangeType, FLAG_ENCRYPTION, HEADER_LEN, Header,
    IdType, Identification, KEY_IKE, MessageId, MessageWriter, Notification, NotifyType,
    PayloadType, Payloads, ProtocolId, SIT_IDENTITY_ONLY, SecurityAssociation,
};
use rand_core::CryptoRng;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

pub mod psk;
pub use psk::{AddressPrefix, PskEntry, PskTable, PskTableError};

/// How phase 1 authenticates: one method per configuration.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// One pre-shared key for every peer (RFC 2409 §5.4); only PSK transforms are offered and
    /// accepted.
    PreSharedKey(Secret),
    /// Pre-shared keys chosen by the peer's address, each optionally bound to the ID the peer
    /// must present (see [`psk`]); only PSK transforms are offered and accepted.
    PreSharedKeys(Arc<PskTable>),
    /// RSA signatures with X.509 certificates (RFC 2409 §5.1); only RSA-signature transforms
    /// are offered and accepted.
    Certificates(Arc<Certificates>),
}

impl Authentication {
    /// The Authentication Method attribute this choice offers and accepts (RFC 2409 App. A).
    #[must_use]
    pub const fn method(&self) -> AuthMethod {
        match self {
            Self::PreSharedKey(_) | Self::PreSharedKeys(_) => AuthMethod::PSK,
            Self::Certificates(_) => AuthMethod::RSA_SIGNATURES,
        }
    }

    /// The credential of an exchange with a peer at `peer`: with a key table, the key of the
    /// most specific entry covering the address (Main Mode must choose it before the peer's
    /// ID can be decrypted).
    fn credential(&self, peer: IpAddr) -> Result<Credential, Refusal> {
        match self {
            Self::PreSharedKey(secret) => Ok(Credential::PreSharedKey {
                secret: secret.clone(),
                expected_id: None,
            }),
            Self::PreSharedKeys(table) => table
                .lookup(peer)
                .map(|(secret, id)| Credential::PreSharedKey {
                    secret: secret.clone(),
                    expected_id: id.cloned(),
                })
                .ok_or(Refusal::NoPreSharedKey),
            Self::Certificates(c) => Ok(Credential::Certificates(Arc::clone(c))),
        }
    }
}

/// What one exchange authenticates with, chosen from [`Authentication`] for its peer.
#[derive(Debug, Clone)]
enum Credential {
    PreSharedKey {
        secret: Secret,
        /// The ID the peer must present, if its table entry names one.
        expected_id: Option<PeerId>,
    },
    Certificates(Arc<Certificates>),
}

impl Credential {
    const fn method(&self) -> AuthMethod {
        match self {
            Self::PreSharedKey { .. } => AuthMethod::PSK,
            Self::Certificates(_) => AuthMethod::RSA_SIGNATURES,
        }
    }

    fn key_schedule(&self) -> Phase1Auth<'_> {
        match self {
            Self::PreSharedKey { secret, .. } => Phase1Auth::PreSharedKey(secret.expose()),
            Self::Certificates(_) => Phase1Auth::Signature,
        }
    }

    /// Our ID payload body: our address with a PSK, the configured ID with certificates
    /// (RFC 2407 §4.6.2; protocol and port 0 in phase 1).
    fn id_body(&self, local: SocketAddr) -> Vec<u8> {
        match self {
            Self::PreSharedKey { .. } => id_body(local),
            Self::Certificates(c) => {
                let id = c.local_id();
                [&[id.id_type.0, 0, 0, 0][..], &id.data].concat()
            }
        }
    }
}

/// Settings of one side of phase 1.
#[derive(Debug, Clone)]
pub struct Phase1Config {
    /// Accepted (responder) or offered (initiator) suites.
    pub policy: Phase1Policy,
    /// Pre-shared key or certificates.
    pub auth: Authentication,
}

/// Certificate encoding "X.509 Certificate - Signature" (RFC 2408 §3.9).
const CERT_X509_SIGNATURE: u8 = 4;

/// The transport addresses of an exchange, as the driver sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// Why a message was not accepted; the notify type the peer should see, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Malformed or unexpected payloads (dropped without a reply before keys exist).
    #[error("malformed message")]
    Malformed,
    /// No offered transform is acceptable.
    #[error("no proposal chosen")]
    NoProposalChosen,
    /// A KE or nonce of the wrong size or value.
    #[error("invalid key information")]
    InvalidKeyInformation,
    /// HASH_I or HASH_R did not verify: wrong pre-shared key (or a forgery).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// An ID payload we cannot use.
    #[error("invalid ID information")]
    InvalidIdInformation,
    /// The message does not belong to this exchange (cookies, exchange type, flags).
    #[error("not for this exchange")]
    Unexpected,
    /// A peer certificate that does not parse, lacks a usable RSA key, is not allowed to sign,
    /// carries an unknown critical extension, or is missing.
    #[error("invalid certificate")]
    CertificateInvalid,
    /// A certificate on the peer's path is outside its validity period.
    #[error("certificate expired or not yet valid")]
    CertificateExpired,
    /// The peer's certificate does not chain to a CA we trust.
    #[error("untrusted certificate")]
    UntrustedCertificate,
    /// The peer's ID is not named by its certificate, or not one our policy admits.
    #[error("ID does not match the certificate or policy")]
    IdMismatch,
    /// A CERT payload in an encoding other than X.509 signature.
    #[error("certificate type unsupported")]
    CertTypeUnsupported,
    /// No pre-shared key is configured for the peer's address (and no default): message 1
    /// is dropped without an answer.
    #[error("no pre-shared key for this peer")]
    NoPreSharedKey,
}

impl Refusal {
    /// The Notify type to send, once it can be protected (RFC 2408 §3.14.1).
    #[must_use]
    pub const fn notify(self) -> Option<NotifyType> {
        match self {
            Self::NoProposalChosen => Some(NotifyType::NO_PROPOSAL_CHOSEN),
            Self::InvalidKeyInformation => Some(NotifyType::INVALID_KEY_INFORMATION),
            Self::AuthenticationFailed => Some(NotifyType::AUTHENTICATION_FAILED),
            Self::InvalidIdInformation => Some(NotifyType::INVALID_ID_INFORMATION),
            Self::Malformed => Some(NotifyType::PAYLOAD_MALFORMED),
            Self::Unexpected => None,
            Self::CertificateInvalid | Self::CertificateExpired | Self::UntrustedCertificate => {
                Some(NotifyType::INVALID_CERTIFICATE)
            }
            Self::IdMismatch => Some(NotifyType::INVALID_ID_INFORMATION),
            Self::CertTypeUnsupported => Some(NotifyType::CERT_TYPE_UNSUPPORTED),
            Self::NoPreSharedKey => None,
        }
    }
}

impl Refusal {
    /// The refusal a peer's error notify reports (the inverse of [`Refusal::notify`]; an
    /// INVALID-ID-INFORMATION after our ID was decrypted means our ID is not one the peer
    /// admits). `None` for notify types that are not refusals.
    #[must_use]
    pub const fn from_notify(kind: NotifyType) -> Option<Self> {
        Some(match kind {
            NotifyType::NO_PROPOSAL_CHOSEN => Self::NoProposalChosen,
            NotifyType::INVALID_KEY_INFORMATION => Self::InvalidKeyInformation,
            NotifyType::AUTHENTICATION_FAILED => Self::AuthenticationFailed,
            NotifyType::INVALID_ID_INFORMATION => Self::IdMismatch,
            NotifyType::INVALID_CERTIFICATE => Self::CertificateInvalid,
            NotifyType::CERT_TYPE_UNSUPPORTED => Self::CertTypeUnsupported,
            _ => return None,
        })
    }
}

/// Proof that the peer's HASH verified. Only this module can make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated(());

/// The peer's phase-1 identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerId {
    /// ID type.
    pub id_type: IdType,
    /// ID data (an address, a name, a DN).
    pub data: Vec<u8>,
}

/// NAT detection result (RFC 3947 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatState {
    /// The NAT-T variant both sides support, if any.
    pub version: Option<NatTVersion>,
    /// We are behind a NAT.
    pub local_behind_nat: bool,
    /// The peer is behind a NAT.
    pub peer_behind_nat: bool,
}

impl NatState {
    /// Whether ESP must be UDP-encapsulated and IKE moves to port 4500.
    #[must_use]
    pub const fn encapsulate(&self) -> bool {
        self.version.is_some() && (self.local_behind_nat || self.peer_behind_nat)
    }
}

/// An established ISAKMP SA.
#[derive(Debug, Clone)]
pub struct Phase1Sa {
    /// Initiator cookie.
    pub cky_i: Cookie,
    /// Responder cookie.
    pub cky_r: Cookie,
    /// Negotiated suite.
    pub suite: Phase1Suite,
    /// Lifetime.
    pub lifetime: Duration,
    /// Keys.
    pub keys: Phase1Keys,
    /// The last CBC block of phase 1: base of every later exchange's IV (RFC 2409 Appendix B).
    pub last_block: Vec<u8>,
    /// The peer's identity.
    pub peer_id: PeerId,
    /// NAT traversal.
    pub nat: NatState,
    /// The peer announced DPD support (RFC 3706).
    pub peer_dpd: bool,
    /// The Vendor IDs the peer sent that we know (for logs).
    pub peer_vendors: PeerVendors,
    /// The initiator sent INITIAL-CONTACT: older SAs of this identity are stale.
    pub initial_contact: bool,
    /// Whether we initiated.
    pub we_initiated: bool,
    /// The proof that makes this SA exist.
    pub authenticated: Authenticated,
}

impl Phase1Sa {
    /// An SA rebuilt from logged keys, for known-answer tests against real exchanges.
    #[cfg(test)]
    pub(crate) fn from_known_keys(
        cky_i: Cookie,
        cky_r: Cookie,
        suite: Phase1Suite,
        keys: Phase1Keys,
        last_block: Vec<u8>,
    ) -> Self {
        Self {
            cky_i,
            cky_r,
            suite,
            lifetime: Duration::from_secs(28_800),
            keys,
            last_block,
            peer_id: PeerId {
                id_type: IdType::IPV4_ADDR,
                data: vec![0; 4],
            },
            nat: NatState::default(),
            peer_dpd: false,
            peer_vendors: PeerVendors::default(),
            initial_contact: false,
            we_initiated: false,
            authenticated: Authenticated(()),
        }
    }

    /// The first IV of a Quick Mode or Informational exchange with `message_id`.
    #[must_use]
    pub fn exchange_iv(&self, message_id: MessageId) -> Vec<u8> {
        exchange_iv(
            self.suite.hash,
            &self.last_block,
            message_id.0,
            self.suite.cipher.block_len(),
        )
    }

    /// The cipher of this SA.
    ///
    /// # Errors
    /// Only if the derived key has the wrong length, which the key schedule prevents.
    pub fn cipher(&self) -> Result<Cipher, Refusal> {
        Cipher::new(self.suite.cipher, self.keys.encryption_key().expose())
            .map_err(|_| Refusal::InvalidKeyInformation)
    }
}

/// What message 1 carried besides the SA.
#[derive(Debug, Clone, Copy, Default)]
struct Vendors {
    nat_t: Option<NatTVersion>,
    dpd: bool,
    known: PeerVendors,
}

fn vendors<'a>(payloads: impl Iterator<Item = crate::wire::Payload<'a>>) -> Vendors {
    let mut v = Vendors::default();
    for p in payloads.filter(|p| p.kind == PayloadType::VID) {
        if let Some(n) = NatTVersion::from_vendor_id(p.body) {
            v.nat_t = v.nat_t.max(Some(n));
        }
        v.dpd |= p.body == VID_DPD;
        v.known.add(p.body);
    }
    v
}

/// Parses a message of this exchange: Main Mode, message ID 0, the expected cookies.
fn header(
    message: &[u8],
    cky_i: Option<Cookie>,
    cky_r: Option<Cookie>,
) -> Result<Header<&[u8]>, Refusal> {
    let h = Header::new_checked(message).map_err(|_| Refusal::Malformed)?;
    if h.exchange_type() != ExchangeType::MAIN_MODE || h.message_id() != MessageId(0) {
        return Err(Refusal::Unexpected);
    }
    if cky_i.is_some_and(|c| c != h.initiator_cookie())
        || cky_r.is_some_and(|c| c != h.responder_cookie())
    {
        return Err(Refusal::Unexpected);
    }
    Ok(h)
}

fn collect<'m>(
    first: PayloadType,
    body: &'m [u8],
) -> Result<Vec<crate::wire::Payload<'m>>, Refusal> {
    Payloads::validate(first, body)
        .map_err(|_| Refusal::Malformed)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Refusal::Malformed)
}

fn only<'m>(payloads: &[crate::wire::Payload<'m>], kind: PayloadType) -> Result<&'m [u8], Refusal> {
    let mut found = payloads.iter().filter(|p| p.kind == kind);
    let first = found.next().ok_or(Refusal::Malformed)?.body;
    if found.next().is_some() {
        return Err(Refusal::Malformed);
    }
    Ok(first)
}

fn nat_d_kind(version: Option<NatTVersion>) -> PayloadType {
    match version {
        Some(v) if v.uses_draft_numbers() => PayloadType::NAT_D_DRAFT,
        _ => PayloadType::NAT_D,
    }
}

/// Nonces shorter than 8 or longer than 256 bytes are refused (RFC 2409 §5: 8 to 256).
fn nonce(payloads: &[crate::wire::Payload<'_>]) -> Result<Vec<u8>, Refusal> {
    let n = only(payloads, PayloadType::NONCE)?;
    if !(8..=256).contains(&n.len()) {
        return Err(Refusal::InvalidKeyInformation);
    }
    Ok(n.to_vec())
}

/// Our ID payload body: our address (RFC 2407 §4.6.2; protocol and port 0 in phase 1).
fn id_body(local: SocketAddr) -> Vec<u8> {
    match local.ip() {
        IpAddr::V4(a) => [&[IdType::IPV4_ADDR.0, 0, 0, 0][..], &a.octets()].concat(),
        IpAddr::V6(a) => [&[IdType::IPV6_ADDR.0, 0, 0, 0][..], &a.octets()].concat(),
    }
}

fn check_peer_id(body: &[u8]) -> Result<PeerId, Refusal> {
    let id = Identification::parse(body).map_err(|_| Refusal::Malformed)?;
    let ok = match id.id_type {
        IdType::IPV4_ADDR => id.data.len() == 4,
        IdType::IPV6_ADDR => id.data.len() == 16,
        IdType::FQDN | IdType::USER_FQDN | IdType::DER_ASN1_DN | IdType::KEY_ID => {
            !id.data.is_empty()
        }
        _ => false,
    };
    if !ok {
        return Err(Refusal::InvalidIdInformation);
    }
    Ok(PeerId {
        id_type: id.id_type,
        data: id.data.to_vec(),
    })
}

/// Writes an encrypted Main Mode message: payloads, zero padding to the block size, CBC with
/// `iv`. Returns its length and the next IV (its last ciphertext block).
fn write_encrypted(
    out: &mut [u8],
    cookies: (Cookie, Cookie),
    sa: (&Phase1Suite, &Cipher),
    iv: &[u8],
    payloads: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), codec::NoSpace>,
) -> Result<(usize, Vec<u8>), Refusal> {
    let block = sa.0.cipher.block_len();
    let mut m = MessageWriter::new(
        out,
        cookies.0,
        cookies.1,
        ExchangeType::MAIN_MODE,
        FLAG_ENCRYPTION,
        MessageId(0),
    )
    .map_err(|_| Refusal::Malformed)?;
    payloads(&mut m).map_err(|_| Refusal::Malformed)?;
    let body_len = m.written().len() - HEADER_LEN;
    let pad = (block - body_len % block) % block;
    m.put_raw(&[0u8; 16][..pad])
        .map_err(|_| Refusal::Malformed)?;
    sa.1.encrypt_cbc(iv, m.body_mut())
        .map_err(|_| Refusal::Malformed)?;
    let message = m.finish().map_err(|_| Refusal::Malformed)?;
    let next_iv = message[message.len() - block..].to_vec();
    Ok((message.len(), next_iv))
}

/// Decrypts the body of an encrypted message. Returns the plaintext and the next IV.
fn decrypt(
    message: &Header<&[u8]>,
    cipher: &Cipher,
    block: usize,
    iv: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    if !message.is_encrypted() {
        return Err(Refusal::Unexpected);
    }
    let mut body = message.body().to_vec();
    if body.is_empty() || !body.len().is_multiple_of(block) {
        return Err(Refusal::Malformed);
    }
    let next_iv = body[body.len() - block..].to_vec();
    cipher
        .decrypt_cbc(iv, &mut body)
        .map_err(|_| Refusal::Malformed)?;
    Ok((body, next_iv))
}

/// Writes `HDR*, HASH(1), N(kind)` as an Informational of the exchange `cookies` (RFC 2409
/// §5.7: HASH(1) = prf(SKEYID_a, M-ID | N)), CBC-encrypted from `iv`.
fn write_phase1_notify(
    out: &mut [u8],
    cookies: (Cookie, Cookie),
    sa: (&Phase1Suite, &Cipher, &Phase1Keys),
    mid: MessageId,
    iv: &[u8],
    kind: NotifyType,
) -> Result<usize, Refusal> {
    let (suite, cipher, keys) = sa;
    let hash_len = suite.prf().output_len();
    let block = suite.cipher.block_len();
    let mut m = MessageWriter::new(
        out,
        cookies.0,
        cookies.1,
        ExchangeType::INFORMATIONAL,
        FLAG_ENCRYPTION,
        mid,
    )
    .map_err(|_| Refusal::Malformed)?;
    let written = (|| {
        m.payload(PayloadType::HASH, |w| w.put_fill(0, hash_len))?;
        m.payload(PayloadType::NOTIFY, |w| {
            w.put_u32(DOI_IPSEC)?;
            w.put_slice(&[ProtocolId::ISAKMP.0, 16])?;
            w.put_u16(kind.0)?;
            w.put_slice(&cookies.0.0)?;
            w.put_slice(&cookies.1.0)
        })
    })();
    written.map_err(|_| Refusal::Malformed)?;
    let after = HEADER_LEN + 4 + hash_len;
    let end = m.written().len();
    let hash = keys.hash_a(&[&mid.0.to_be_bytes(), &m.written()[after..end]]);
    m.body_mut()[4..4 + hash_len].copy_from_slice(hash.expose());
    let pad = (block - (end - HEADER_LEN) % block) % block;
    m.put_raw(&[0u8; 16][..pad])
        .map_err(|_| Refusal::Malformed)?;
    cipher
        .encrypt_cbc(iv, m.body_mut())
        .map_err(|_| Refusal::Malformed)?;
    Ok(m.finish().map_err(|_| Refusal::Malformed)?.len())
}

/// Reads an error notify the responder sent instead of message 6 (see
/// [`AwaitAuth::refusal_notify`]): the refusal it reports, if the message is a protected
/// Informational of this exchange whose HASH(1) verifies.
fn read_phase1_notify(
    message: &[u8],
    cookies: (Cookie, Cookie),
    sa: (&Phase1Suite, &Cipher, &Phase1Keys),
    last_block: &[u8],
) -> Option<Refusal> {
    let (suite, cipher, keys) = sa;
    let h = Header::new_checked(message).ok()?;
    if h.exchange_type() != ExchangeType::INFORMATIONAL
        || !h.is_encrypted()
        || h.initiator_cookie() != cookies.0
        || h.responder_cookie() != cookies.1
    {
        return None;
    }
    let block = suite.cipher.block_len();
    let mid = h.message_id();
    let iv = exchange_iv(suite.hash, last_block, mid.0, block);
    let mut plain = h.body().to_vec();
    if plain.is_empty() || !plain.len().is_multiple_of(block) {
        return None;
    }
    cipher.decrypt_cbc(&iv, &mut plain).ok()?;
    let payloads = collect(h.next_payload(), &plain).ok()?;
    let (hash, rest) = payloads.split_first()?;
    if hash.kind != PayloadType::HASH {
        return None;
    }
    let after = 4 + hash.body.len();
    let end: usize = payloads.iter().map(|p| 4 + p.body.len()).sum();
    let expected = keys.hash_a(&[&mid.0.to_be_bytes(), plain.get(after..end)?]);
    if !bool::from(expected.expose().ct_eq(hash.body)) {
        return None;
    }
    rest.iter()
        .filter(|p| p.kind == PayloadType::NOTIFY)
        .filter_map(|p| Notification::parse(p.body).ok())
        .find_map(|n| Refusal::from_notify(n.kind))
}

/// CR payloads naming our trusted CAs (RFC 2408 §3.10), with certificates only.
fn write_certificate_requests(
    m: &mut MessageWriter<'_>,
    auth: &Credential,
) -> Result<(), codec::NoSpace> {
    if let Credential::Certificates(c) = auth {
        for dn in c.ca_names() {
            m.payload(PayloadType::CR, |w| {
                w.put_slice(&[CERT_X509_SIGNATURE])?;
                w.put_slice(dn)
            })?;
        }
    }
    Ok(())
}

/// What vouches for our identity in message 5 or 6.
enum Proof {
    /// HASH_I or HASH_R itself (RFC 2409 §5.4).
    Hash(Secret),
    /// The RSA signature of HASH_I or HASH_R (RFC 2409 §5.1).
    Signature(Vec<u8>),
}

fn our_proof(auth: &Credential, hash: Secret) -> Result<Proof, Refusal> {
    match auth {
        Credential::PreSharedKey { .. } => Ok(Proof::Hash(hash)),
        Credential::Certificates(c) => c.sign(hash.expose()).map(Proof::Signature),
    }
}

/// Writes ID and HASH, or ID, CERT… (our chain) and SIG.
fn write_identity(
    m: &mut MessageWriter<'_>,
    auth: &Credential,
    id_b: &[u8],
    proof: &Proof,
) -> Result<(), codec::NoSpace> {
    m.payload(PayloadType::ID, |w| w.put_slice(id_b))?;
    match proof {
        Proof::Hash(hash) => m.payload(PayloadType::HASH, |w| w.put_slice(hash.expose())),
        Proof::Signature(sig) => {
            if let Credential::Certificates(c) = auth {
                for der in c.chain() {
                    m.payload(PayloadType::CERT, |w| {
                        w.put_slice(&[CERT_X509_SIGNATURE])?;
                        w.put_slice(der)
                    })?;
                }
            }
            m.payload(PayloadType::SIG, |w| w.put_slice(sig))
        }
    }
}

/// Checks the peer's ID and its HASH or SIG: the only place an [`Authenticated`] is made.
/// `expected_hash` computes HASH_I or HASH_R over the peer's ID payload body.
fn authenticate(
    auth: &Credential,
    payloads: &[crate::wire::Payload<'_>],
    expected_hash: impl FnOnce(&[u8]) -> Secret,
    wall_clock: SystemTime,
) -> Result<(Authenticated, PeerId), Refusal> {
    let id_b = only(payloads, PayloadType::ID)?;
    match auth {
        Credential::PreSharedKey { expected_id, .. } => {
            let hash = only(payloads, PayloadType::HASH)?;
            // RFC 2409 §5.4: the peer's HASH must equal the one we compute.
            if !bool::from(expected_hash(id_b).expose().ct_eq(hash)) {
                return Err(Refusal::AuthenticationFailed);
            }
            let peer_id = check_peer_id(id_b)?;
            // The key was chosen by address; the entry may also say who must hold it.
            if expected_id
                .as_ref()
                .is_some_and(|want| !want.matches(&peer_id))
            {
                return Err(Refusal::IdMismatch);
            }
            let authenticated = Authenticated(());
            Ok((authenticated, peer_id))
        }
        Credential::Certificates(c) => {
            let signature = only(payloads, PayloadType::SIG)?;
            let peer_id = check_peer_id(id_b)?;
            let mut chain = Vec::new();
            for p in payloads.iter().filter(|p| p.kind == PayloadType::CERT) {
                let (&encoding, der) = p.body.split_first().ok_or(Refusal::Malformed)?;
                // RFC 2408 §3.9: we take X.509 signature certificates and nothing else.
                if encoding != CERT_X509_SIGNATURE {
                    return Err(Refusal::CertTypeUnsupported);
                }
                if chain.len() == MAX_PEER_CERTIFICATES {
                    return Err(Refusal::CertificateInvalid);
                }
                chain.push(der);
            }
            let key = c.verify_peer(&chain, &peer_id, wall_clock)?;
            // RFC 2409 §5.1: SIG is the peer's signature over HASH_I or HASH_R, made with the
            // key its certificate binds to its identity.
            if !key.verify_raw(expected_hash(id_b).expose(), signature) {
                return Err(Refusal::AuthenticationFailed);
            }
            let authenticated = Authenticated(());
            Ok((authenticated, peer_id))
        }
    }
}

fn random_cookie<R: CryptoRng + ?Sized>(rng: &mut R) -> Cookie {
    loop {
        let mut c = [0u8; 8];
        rng.fill_bytes(&mut c);
        if c != [0; 8] {
            return Cookie(c);
        }
    }
}

fn random_nonce<R: CryptoRng + ?Sized>(rng: &mut R) -> Vec<u8> {
    let mut n = vec![0u8; 32];
    rng.fill_bytes(&mut n);
    n
}

fn write_sa_with_one_transform(
    w: &mut codec::Writer<'_>,
    number: u8,
    attributes: &[u8],
) -> Result<(), codec::NoSpace> {
    w.put_u32(DOI_IPSEC)?;
    w.put_u32(SIT_IDENTITY_ONLY)?;
    Chain::nested().put(w, PayloadType::PROPOSAL, |w| {
        w.put_slice(&[1, ProtocolId::ISAKMP.0, 0, 1])?;
        Chain::nested().put(w, PayloadType::TRANSFORM, |w| {
            w.put_slice(&[number, KEY_IKE, 0, 0])?;
            w.put_slice(attributes)
        })
    })
}

/// Responder after message 2: waiting for the initiator's KE.
#[derive(Debug)]
pub struct AwaitKe {
    path: Path,
    auth: Credential,
    cky_i: Cookie,
    cky_r: Cookie,
    suite: Phase1Suite,
    lifetime: Duration,
    sai_b: Vec<u8>,
    vendors: Vendors,
}

/// Answers message 1. The responder state is small (cookies, the chosen suite, the initiator's
/// SA body) and no DH work happens before the initiator commits its own KE.
///
/// # Errors
/// [`Refusal::NoProposalChosen`] (answer with that notify in the clear), others: drop.
pub fn respond<R: CryptoRng + ?Sized>(
    config: &Phase1Config,
    path: Path,
    message: &[u8],
    rng: &mut R,
    out: &mut [u8],
) -> Result<(AwaitKe, usize), Refusal> {
    let h = header(message, None, Some(Cookie::default()))?;
    if h.is_encrypted() {
        return Err(Refusal::Unexpected);
    }
    let payloads = collect(h.next_payload(), h.body())?;
    let sa_body = only(&payloads, PayloadType::SA)?;
    let sa = SecurityAssociation::parse(sa_body).map_err(|_| Refusal::Malformed)?;
    if sa.doi != DOI_IPSEC || sa.situation != SIT_IDENTITY_ONLY {
        return Err(Refusal::NoProposalChosen);
    }
    let choice =
        choose_for(&config.policy, config.auth.method(), &sa).ok_or(Refusal::NoProposalChosen)?;
    // The key must be known by message 4; an address without one is not answered at all.
    let auth = config.auth.credential(path.remote.ip())?;
    let vendors = vendors(payloads.iter().copied());
    let cky_i = h.initiator_cookie();
    let cky_r = random_cookie(rng);
    let mut m = MessageWriter::new(out, cky_i, cky_r, ExchangeType::MAIN_MODE, 0, MessageId(0))
        .map_err(|_| Refusal::Malformed)?;
    let written = (|| {
        m.payload(PayloadType::SA, |w| {
            write_sa_with_one_transform(w, choice.transform_number, choice.attributes)
        })?;
        if let Some(v) = vendors.nat_t {
            m.payload(PayloadType::VID, |w| w.put_slice(&v.vendor_id()))?;
        }
        m.payload(PayloadType::VID, |w| w.put_slice(&VID_DPD))
    })();
    written.map_err(|_| Refusal::Malformed)?;
    let len = m.finish().map_err(|_| Refusal::Malformed)?.len();
    let state = AwaitKe {
        path,
        auth,
        cky_i,
        cky_r,
        suite: choice.suite,
        lifetime: choice.lifetime,
        sai_b: sa_body.to_vec(),
        vendors,
    };
    Ok((state, len))
}

/// Checks the peer's NAT-D payloads against what we see (RFC 3947 §3.2): the first hashes our
/// address as the peer sent to it, the others the peer's own addresses.
fn detect_nat(
    payloads: &[crate::wire::Payload<'_>],
    version: Option<NatTVersion>,
    suite: &Phase1Suite,
    cookies: (Cookie, Cookie),
    path: Path,
) -> NatState {
    let Some(version) = version else {
        return NatState::default();
    };
    let kind = nat_d_kind(Some(version));
    let hashes: Vec<&[u8]> = payloads
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| p.body)
        .collect();
    let Some((first, others)) = hashes.split_first() else {
        return NatState::default();
    };
    let ours = nat_d(suite.hash, cookies.0, cookies.1, path.local);
    let theirs = nat_d(suite.hash, cookies.0, cookies.1, path.remote);
    NatState {
        version: Some(version),
        local_behind_nat: *first != ours.as_slice(),
        peer_behind_nat: !others.contains(&theirs.as_slice()),
    }
}

fn write_nat_d(
    m: &mut MessageWriter<'_>,
    version: Option<NatTVersion>,
    suite: &Phase1Suite,
    cookies: (Cookie, Cookie),
    path: Path,
) -> Result<(), codec::NoSpace> {
    if version.is_none() {
        return Ok(());
    }
    let kind = nat_d_kind(version);
    m.payload(kind, |w| {
        w.put_slice(&nat_d(suite.hash, cookies.0, cookies.1, path.remote))
    })?;
    m.payload(kind, |w| {
        w.put_slice(&nat_d(suite.hash, cookies.0, cookies.1, path.local))
    })
}

/// Responder after message 4: waiting for the initiator's encrypted ID and HASH_I.
#[derive(Debug)]
pub struct AwaitAuth {
    path: Path,
    auth: Credential,
    cky_i: Cookie,
    cky_r: Cookie,
    suite: Phase1Suite,
    lifetime: Duration,
    sai_b: Vec<u8>,
    keys: Phase1Keys,
    gxi: Vec<u8>,
    gxr: Vec<u8>,
    iv: Vec<u8>,
    nat: NatState,
    peer_dpd: bool,
    peer_vendors: PeerVendors,
}

impl AwaitKe {
    /// The cookies of this exchange.
    #[must_use]
    pub const fn cookies(&self) -> (Cookie, Cookie) {
        (self.cky_i, self.cky_r)
    }

    /// The negotiated suite.
    #[must_use]
    pub const fn suite(&self) -> Phase1Suite {
        self.suite
    }

    /// Answers message 3 with message 4, computing the Diffie-Hellman agreement in line.
    ///
    /// # Errors
    /// [`Refusal::InvalidKeyInformation`] for a bad KE or nonce; [`Refusal::Malformed`] /
    /// [`Refusal::Unexpected`] for anything that is not message 3 of this exchange.
    pub fn on_key_exchange<R: CryptoRng + ?Sized>(
        &self,
        message: &[u8],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(AwaitAuth, usize), Refusal> {
        let pair = DhKeyPair::generate(self.suite.group, rng)
            .map_err(|_| Refusal::InvalidKeyInformation)?;
        let (waiting, agreement, len) = self.answer_key_exchange(message, pair, rng, out)?;
        let shared = agreement
            .run()
            .map_err(|_| Refusal::InvalidKeyInformation)?;
        Ok((waiting.agreed(&shared), len))
    }

    /// Answers message 3 with message 4 using `pair` (generated ahead of time, possibly on
    /// another thread) and hands back the [`Agreement`] to compute wherever the caller likes:
    /// message 4 needs only our public value, the keys are needed from message 5 on.
    ///
    /// # Errors
    /// As [`AwaitKe::on_key_exchange`]; also [`Refusal::InvalidKeyInformation`] when `pair` is
    /// of another group. A MODP value out of range is refused here; an ECP point off the curve
    /// only when the agreement runs.
    pub fn answer_key_exchange<R: CryptoRng + ?Sized>(
        &self,
        message: &[u8],
        pair: DhKeyPair,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(AwaitAgreement, Agreement, usize), Refusal> {
        let h = header(message, Some(self.cky_i), Some(self.cky_r))?;
        if h.is_encrypted() {
            return Err(Refusal::Unexpected);
        }
        let payloads = collect(h.next_payload(), h.body())?;
        let gxi = only(&payloads, PayloadType::KE)?.to_vec();
        let ni = nonce(&payloads)?;
        if pair.group() != self.suite.group {
            return Err(Refusal::InvalidKeyInformation);
        }
        check_public(self.suite.group, &gxi).map_err(|_| Refusal::InvalidKeyInformation)?;
        let gxr = pair.public_value().to_vec();
        let nr = random_nonce(rng);
        let cookies = (self.cky_i, self.cky_r);
        let nat = detect_nat(
            &payloads,
            self.vendors.nat_t,
            &self.suite,
            cookies,
            self.path,
        );
        let mut m = MessageWriter::new(
            out,
            self.cky_i,
            self.cky_r,
            ExchangeType::MAIN_MODE,
            0,
            MessageId(0),
        )
        .map_err(|_| Refusal::Malformed)?;
        let written = (|| {
            m.payload(PayloadType::KE, |w| w.put_slice(&gxr))?;
            m.payload(PayloadType::NONCE, |w| w.put_slice(&nr))?;
            write_certificate_requests(&mut m, &self.auth)?;
            write_nat_d(&mut m, self.vendors.nat_t, &self.suite, cookies, self.path)
        })();
        written.map_err(|_| Refusal::Malformed)?;
        let len = m.finish().map_err(|_| Refusal::Malformed)?.len();
        let iv = phase1_iv(self.suite.hash, &gxi, &gxr, self.suite.cipher.block_len());
        let agreement = Agreement::new(pair, gxi.clone());
        let state = AwaitAgreement {
            path: self.path,
            auth: self.auth.clone(),
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            suite: self.suite,
            lifetime: self.lifetime,
            sai_b: self.sai_b.clone(),
            ni,
            nr,
            gxi,
            gxr,
            iv,
            nat,
            peer_dpd: self.vendors.dpd,
            peer_vendors: self.vendors.known,
        };
        Ok((state, agreement, len))
    }
}

/// Responder after message 4 while its [`Agreement`] runs: everything [`AwaitAuth`] holds
/// but the keys, which [`AwaitAgreement::agreed`] derives.
#[derive(Debug)]
pub struct AwaitAgreement {
    path: Path,
    auth: Credential,
    cky_i: Cookie,
    cky_r: Cookie,
    suite: Phase1Suite,
    lifetime: Duration,
    sai_b: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    gxi: Vec<u8>,
    gxr: Vec<u8>,
    iv: Vec<u8>,
    nat: NatState,
    peer_dpd: bool,
    peer_vendors: PeerVendors,
}

impl AwaitAgreement {
    /// NAT detection so far.
    #[must_use]
    pub const fn nat(&self) -> NatState {
        self.nat
    }

    /// Derives the phase-1 keys from the agreement's result (RFC 2409 §5) and waits for
    /// message 5.
    #[must_use]
    pub fn agreed(self, shared: &SharedSecret) -> AwaitAuth {
        let keys = Phase1Keys::derive(&Phase1Inputs {
            prf: self.suite.prf(),
            auth: self.auth.key_schedule(),
            ni: &self.ni,
            nr: &self.nr,
            gxy: shared.as_bytes(),
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            cipher_key_len: self.suite.cipher.key_len(),
        });
        AwaitAuth {
            path: self.path,
            auth: self.auth,
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            suite: self.suite,
            lifetime: self.lifetime,
            sai_b: self.sai_b,
            keys,
            gxi: self.gxi,
            gxr: self.gxr,
            iv: self.iv,
            nat: self.nat,
            peer_dpd: self.peer_dpd,
            peer_vendors: self.peer_vendors,
        }
    }
}

impl AwaitAuth {
    /// NAT detection so far (the driver floats to port 4500 when it says so).
    #[must_use]
    pub const fn nat(&self) -> NatState {
        self.nat
    }

    /// After [`AwaitAuth::on_auth`] refused `message` (our message 5 of this exchange), writes
    /// the error notify the initiator reads in place of message 6: an Informational protected
    /// by the phase-1 keys (HASH(1), RFC 2409 §5.7), its IV derived from the last ciphertext
    /// block of message 5 (Appendix B), which both sides hold. Useful when message 5 decrypted,
    /// i.e. the keys agree: an ID the entry does not admit, a certificate refused. `None` for
    /// refusals with no notify and for a message that is not this exchange's message 5.
    pub fn refusal_notify<R: CryptoRng + ?Sized>(
        &self,
        message: &[u8],
        refusal: Refusal,
        rng: &mut R,
        out: &mut [u8],
    ) -> Option<usize> {
        let kind = refusal
            .notify()
            .filter(|_| !matches!(refusal, Refusal::Malformed | Refusal::Unexpected))?;
        let h = header(message, Some(self.cky_i), Some(self.cky_r)).ok()?;
        let block = self.suite.cipher.block_len();
        let body = h.body();
        if !h.is_encrypted() || body.is_empty() || !body.len().is_multiple_of(block) {
            return None;
        }
        let last_block = body.get(body.len() - block..)?;
        let cipher = Cipher::new(self.suite.cipher, self.keys.encryption_key().expose()).ok()?;
        let mid = loop {
            let m = rng.next_u32();
            if m != 0 {
                break MessageId(m);
            }
        };
        let iv = exchange_iv(self.suite.hash, last_block, mid.0, block);
        write_phase1_notify(
            out,
            (self.cky_i, self.cky_r),
            (&self.suite, &cipher, &self.keys),
            mid,
            &iv,
            kind,
        )
        .ok()
    }

    /// Verifies message 5 and answers with message 6. `wall_clock` is the current time of day,
    /// against which certificate validity is checked (unused with a pre-shared key).
    ///
    /// # Errors
    /// [`Refusal::AuthenticationFailed`] when HASH_I or SIG_I does not verify (a wrong pre-shared
    /// key usually shows as a message that does not decrypt to a payload chain: also reported as
    /// authentication failure); [`Refusal::IdMismatch`] when the key's table entry names an ID
    /// and the initiator presented another; with certificates, the certificate refusals of
    /// [`Certificates::verify_peer`] and [`Refusal::CertTypeUnsupported`]. The initiator can be
    /// told why with [`AwaitAuth::refusal_notify`].
    pub fn on_auth(
        &self,
        message: &[u8],
        out: &mut [u8],
        wall_clock: SystemTime,
    ) -> Result<(Phase1Sa, usize), Refusal> {
        let checked = self.check_auth(message, wall_clock)?;
        let proof = match self.signing(&checked) {
            Some(signing) => Proof::Signature(signing.run()?),
            None => our_proof(&self.auth, checked.hash_r.clone())?,
        };
        self.answer_auth(checked, &proof, out)
    }

    /// First half of [`AwaitAuth::on_auth`]: decrypts and authenticates message 5 and computes
    /// our HASH_R. With certificates, [`AwaitAuth::signing`] then gives the RSA signature to
    /// compute wherever the caller likes, and [`AwaitAuth::answer_signed`] writes message 6.
    ///
    /// # Errors
    /// As [`AwaitAuth::on_auth`].
    pub fn check_auth(
        &self,
        message: &[u8],
        wall_clock: SystemTime,
    ) -> Result<AuthChecked, Refusal> {
        let h = header(message, Some(self.cky_i), Some(self.cky_r))?;
        let cipher = Cipher::new(self.suite.cipher, self.keys.encryption_key().expose())
            .map_err(|_| Refusal::Malformed)?;
        let block = self.suite.cipher.block_len();
        let (plain, iv6) = decrypt(&h, &cipher, block, &self.iv)?;
        // Garbage after decryption almost always means the keys differ: the PSK is wrong.
        let payloads =
            collect(h.next_payload(), &plain).map_err(|_| Refusal::AuthenticationFailed)?;
        let (authenticated, peer_id) = authenticate(
            &self.auth,
            &payloads,
            |idii| {
                self.keys.phase1_hash(&Phase1HashInputs {
                    initiator: true,
                    gxi: &self.gxi,
                    gxr: &self.gxr,
                    cky_i: self.cky_i,
                    cky_r: self.cky_r,
                    sai_b: &self.sai_b,
                    id_b: idii,
                })
            },
            wall_clock,
        )?;
        let initial_contact = payloads
            .iter()
            .filter(|p| p.kind == PayloadType::NOTIFY)
            .filter_map(|p| Notification::parse(p.body).ok())
            .any(|n| n.kind == NotifyType::INITIAL_CONTACT);
        let idir = self.auth.id_body(self.path.local);
        let hash_r = self.keys.phase1_hash(&Phase1HashInputs {
            initiator: false,
            gxi: &self.gxi,
            gxr: &self.gxr,
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            sai_b: &self.sai_b,
            id_b: &idir,
        });
        Ok(AuthChecked {
            iv6,
            authenticated,
            peer_id,
            initial_contact,
            idir,
            hash_r,
        })
    }

    /// Whether message 6 carries our RSA signature (we authenticate with certificates).
    #[must_use]
    pub const fn signs(&self) -> bool {
        matches!(self.auth, Credential::Certificates(_))
    }

    /// The RSA signature message 6 needs, when we authenticate with certificates.
    #[must_use]
    pub fn signing(&self, checked: &AuthChecked) -> Option<Signing> {
        match &self.auth {
            Credential::Certificates(c) => Some(Signing {
                certificates: Arc::clone(c),
                hash: checked.hash_r.clone(),
            }),
            Credential::PreSharedKey { .. } => None,
        }
    }

    /// Writes message 6 with the signature [`AwaitAuth::signing`] asked for.
    ///
    /// # Errors
    /// [`Refusal::Malformed`] when message 6 cannot be written.
    pub fn answer_signed(
        &self,
        checked: AuthChecked,
        signature: Vec<u8>,
        out: &mut [u8],
    ) -> Result<(Phase1Sa, usize), Refusal> {
        self.answer_auth(checked, &Proof::Signature(signature), out)
    }

    fn answer_auth(
        &self,
        checked: AuthChecked,
        proof: &Proof,
        out: &mut [u8],
    ) -> Result<(Phase1Sa, usize), Refusal> {
        let cipher = Cipher::new(self.suite.cipher, self.keys.encryption_key().expose())
            .map_err(|_| Refusal::Malformed)?;
        let (len, last_block) = write_encrypted(
            out,
            (self.cky_i, self.cky_r),
            (&self.suite, &cipher),
            &checked.iv6,
            |m| write_identity(m, &self.auth, &checked.idir, proof),
        )?;
        let sa = Phase1Sa {
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            suite: self.suite,
            lifetime: self.lifetime,
            keys: self.keys.clone(),
            last_block,
            peer_id: checked.peer_id,
            nat: self.nat,
            peer_dpd: self.peer_dpd,
            peer_vendors: self.peer_vendors,
            initial_contact: checked.initial_contact,
            we_initiated: false,
            authenticated: checked.authenticated,
        };
        Ok((sa, len))
    }
}

/// Message 5 read and the initiator authenticated: what message 6 needs besides our proof.
#[derive(Debug)]
pub struct AuthChecked {
    iv6: Vec<u8>,
    authenticated: Authenticated,
    peer_id: PeerId,
    initial_contact: bool,
    idir: Vec<u8>,
    hash_r: Secret,
}

/// The RSA signature of our HASH_R (RFC 2409 §5.1): the private-key operation, about a
/// millisecond, owning what it needs so it can run on any thread.
#[derive(Debug)]
pub struct Signing {
    certificates: Arc<Certificates>,
    hash: Secret,
}

impl Signing {
    /// Signs.
    ///
    /// # Errors
    /// [`Refusal::Malformed`] when the key cannot sign.
    pub fn run(&self) -> Result<Vec<u8>, Refusal> {
        self.certificates.sign(self.hash.expose())
    }
}

/// Initiator after message 1.
#[derive(Debug)]
pub struct InitSent {
    path: Path,
    auth: Credential,
    policy: Phase1Policy,
    cky_i: Cookie,
    sai_b: Vec<u8>,
    initial_contact: bool,
}

/// Most transforms we offer in message 1 (the policy's first ones).
pub const MAX_OFFERED: usize = 32;

/// Sends message 1: every policy suite (up to [`MAX_OFFERED`]) as one transform each.
///
/// # Errors
/// [`Refusal::Malformed`] when `out` is too small.
pub fn initiate<R: CryptoRng + ?Sized>(
    config: &Phase1Config,
    path: Path,
    rng: &mut R,
    out: &mut [u8],
) -> Result<(InitSent, usize), Refusal> {
    // The key for the responder's address (and the ID it must show in message 6).
    let auth = config.auth.credential(path.remote.ip())?;
    let cky_i = random_cookie(rng);
    let suites: Vec<Phase1Suite> = config
        .policy
        .suites
        .iter()
        .take(MAX_OFFERED)
        .copied()
        .collect();
    let count = u8::try_from(suites.len()).map_err(|_| Refusal::Malformed)?;
    let lifetime = config.policy.lifetime;
    let method = config.auth.method();
    let mut m = MessageWriter::new(
        out,
        cky_i,
        Cookie::default(),
        ExchangeType::MAIN_MODE,
        0,
        MessageId(0),
    )
    .map_err(|_| Refusal::Malformed)?;
    let written = (|| {
        m.payload(PayloadType::SA, |w| {
            w.put_u32(DOI_IPSEC)?;
            w.put_u32(SIT_IDENTITY_ONLY)?;
            Chain::nested().put(w, PayloadType::PROPOSAL, |w| {
                w.put_slice(&[1, ProtocolId::ISAKMP.0, 0, count])?;
                let mut transforms = Chain::nested();
                for (i, suite) in suites.iter().enumerate() {
                    let number = u8::try_from(i + 1).unwrap_or(u8::MAX);
                    transforms.put(w, PayloadType::TRANSFORM, |w| {
                        w.put_slice(&[number, KEY_IKE, 0, 0])?;
                        suite.write_attributes_for(w, lifetime, method)
                    })?;
                }
                Ok(())
            })
        })?;
        for vid in [
            NatTVersion::Rfc3947.vendor_id(),
            NatTVersion::Draft02.vendor_id(),
            VID_DPD,
        ] {
            m.payload(PayloadType::VID, |w| w.put_slice(&vid))?;
        }
        Ok::<(), codec::NoSpace>(())
    })();
    written.map_err(|_| Refusal::Malformed)?;
    let message = m.finish().map_err(|_| Refusal::Malformed)?;
    let h = Header::new_checked(&message[..]).map_err(|_| Refusal::Malformed)?;
    let sai_b = Payloads::new(h.next_payload(), h.body())
        .flatten()
        .find(|p| p.kind == PayloadType::SA)
        .map(|p| p.body.to_vec())
        .ok_or(Refusal::Malformed)?;
    let len = message.len();
    Ok((
        InitSent {
            path,
            auth,
            policy: config.policy.clone(),
            cky_i,
            sai_b,
            initial_contact: true,
        },
        len,
    ))
}

/// Initiator after message 3.
#[derive(Debug)]
pub struct KeSent {
    path: Path,
    auth: Credential,
    cky_i: Cookie,
    cky_r: Cookie,
    suite: Phase1Suite,
    lifetime: Duration,
    sai_b: Vec<u8>,
    /// Taken when message 4 arrives (the private key is single-use).
    pair: Option<DhKeyPair>,
    ni: Vec<u8>,
    vendors: Vendors,
    initial_contact: bool,
}

impl InitSent {
    /// The initiator cookie.
    #[must_use]
    pub const fn cookie(&self) -> Cookie {
        self.cky_i
    }

    /// Whether message 5 carries INITIAL-CONTACT (RFC 2407 §4.6.3.3): yes for a first contact,
    /// no for a rekey, or the peer would delete the SAs still carrying our traffic.
    pub const fn set_initial_contact(&mut self, initial_contact: bool) {
        self.initial_contact = initial_contact;
    }

    /// Takes message 2 (the responder's choice) and sends message 3.
    ///
    /// # Errors
    /// [`Refusal::NoProposalChosen`] when the responder chose something we did not offer.
    pub fn on_choice<R: CryptoRng + ?Sized>(
        &self,
        message: &[u8],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(KeSent, usize), Refusal> {
        let (cky_r, suite, lifetime, vendors) = self.choice(message)?;
        let pair =
            DhKeyPair::generate(suite.group, rng).map_err(|_| Refusal::InvalidKeyInformation)?;
        let ni = random_nonce(rng);
        let cookies = (self.cky_i, cky_r);
        let mut m = MessageWriter::new(
            out,
            self.cky_i,
            cky_r,
            ExchangeType::MAIN_MODE,
            0,
            MessageId(0),
        )
        .map_err(|_| Refusal::Malformed)?;
        let written = (|| {
            m.payload(PayloadType::KE, |w| w.put_slice(pair.public_value()))?;
            m.payload(PayloadType::NONCE, |w| w.put_slice(&ni))?;
            write_certificate_requests(&mut m, &self.auth)?;
            write_nat_d(&mut m, vendors.nat_t, &suite, cookies, self.path)
        })();
        written.map_err(|_| Refusal::Malformed)?;
        let len = m.finish().map_err(|_| Refusal::Malformed)?.len();
        let state = KeSent {
            path: self.path,
            auth: self.auth.clone(),
            cky_i: self.cky_i,
            cky_r,
            suite,
            lifetime,
            sai_b: self.sai_b.clone(),
            pair: Some(pair),
            ni,
            vendors,
            initial_contact: self.initial_contact,
        };
        Ok((state, len))
    }

    fn choice(&self, message: &[u8]) -> Result<(Cookie, Phase1Suite, Duration, Vendors), Refusal> {
        let h = header(message, Some(self.cky_i), None)?;
        if h.is_encrypted() || h.responder_cookie().is_zero() {
            return Err(Refusal::Unexpected);
        }
        let payloads = collect(h.next_payload(), h.body())?;
        let refused = payloads
            .iter()
            .filter(|p| p.kind == PayloadType::NOTIFY)
            .filter_map(|p| Notification::parse(p.body).ok())
            .any(|n| n.kind == NotifyType::NO_PROPOSAL_CHOSEN);
        if refused {
            return Err(Refusal::NoProposalChosen);
        }
        let sa = SecurityAssociation::parse(only(&payloads, PayloadType::SA)?)
            .map_err(|_| Refusal::Malformed)?;
        // RFC 2409 §5: exactly one proposal with exactly one transform, one we offered.
        let mut proposals = sa.proposals();
        let proposal = proposals.next().ok_or(Refusal::NoProposalChosen)?;
        let mut transforms = proposal.transforms();
        let transform = transforms.next().ok_or(Refusal::NoProposalChosen)?;
        if proposals.next().is_some() || transforms.next().is_some() {
            return Err(Refusal::NoProposalChosen);
        }
        let offer = decode(transform.attributes());
        if offer.auth != self.auth.method() {
            return Err(Refusal::NoProposalChosen);
        }
        let suite = offer
            .suite
            .filter(|s| self.policy.suites.contains(s))
            .ok_or(Refusal::NoProposalChosen)?;
        let lifetime = offer.lifetime.unwrap_or(self.policy.lifetime);
        Ok((
            h.responder_cookie(),
            suite,
            lifetime,
            vendors(payloads.iter().copied()),
        ))
    }
}

/// Initiator after message 5.
#[derive(Debug)]
pub struct AuthSent {
    auth: Credential,
    cky_i: Cookie,
    cky_r: Cookie,
    suite: Phase1Suite,
    lifetime: Duration,
    keys: Phase1Keys,
    nat: NatState,
    peer_dpd: bool,
    peer_vendors: PeerVendors,
    gxi: Vec<u8>,
    gxr: Vec<u8>,
    sai_b: Vec<u8>,
    iv: Vec<u8>,
}

impl KeSent {
    /// Takes message 4 and sends message 5 (IDii, HASH_I or CERT… and SIG_I, INITIAL-CONTACT).
    ///
    /// # Errors
    /// [`Refusal::InvalidKeyInformation`] for a bad KE or nonce (the exchange cannot go on:
    /// our private key is spent); other errors leave the state as it was.
    pub fn on_key_exchange(
        &mut self,
        message: &[u8],
        out: &mut [u8],
    ) -> Result<(AuthSent, usize), Refusal> {
        let h = header(message, Some(self.cky_i), Some(self.cky_r))?;
        if h.is_encrypted() {
            return Err(Refusal::Unexpected);
        }
        let payloads = collect(h.next_payload(), h.body())?;
        let gxr = only(&payloads, PayloadType::KE)?.to_vec();
        let nr = nonce(&payloads)?;
        if gxr.len() != self.suite.group.public_len() {
            return Err(Refusal::InvalidKeyInformation);
        }
        let pair = self.pair.take().ok_or(Refusal::Unexpected)?;
        let gxi = pair.public_value().to_vec();
        let shared = pair
            .agree(&gxr)
            .map_err(|_| Refusal::InvalidKeyInformation)?;
        let cookies = (self.cky_i, self.cky_r);
        let nat = detect_nat(
            &payloads,
            self.vendors.nat_t,
            &self.suite,
            cookies,
            self.path,
        );
        let keys = Phase1Keys::derive(&Phase1Inputs {
            prf: self.suite.prf(),
            auth: self.auth.key_schedule(),
            ni: &self.ni,
            nr: &nr,
            gxy: shared.as_bytes(),
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            cipher_key_len: self.suite.cipher.key_len(),
        });
        let cipher = Cipher::new(self.suite.cipher, keys.encryption_key().expose())
            .map_err(|_| Refusal::Malformed)?;
        let iv = phase1_iv(self.suite.hash, &gxi, &gxr, self.suite.cipher.block_len());
        let idii = self.auth.id_body(self.path.local);
        let hash_i = keys.phase1_hash(&Phase1HashInputs {
            initiator: true,
            gxi: &gxi,
            gxr: &gxr,
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            sai_b: &self.sai_b,
            id_b: &idii,
        });
        let proof = our_proof(&self.auth, hash_i)?;
        let (len, iv6) = write_encrypted(out, cookies, (&self.suite, &cipher), &iv, |m| {
            write_identity(m, &self.auth, &idii, &proof)?;
            if !self.initial_contact {
                return Ok(());
            }
            m.payload(PayloadType::NOTIFY, |w| {
                w.put_u32(DOI_IPSEC)?;
                w.put_slice(&[ProtocolId::ISAKMP.0, 16])?;
                w.put_u16(NotifyType::INITIAL_CONTACT.0)?;
                w.put_slice(&self.cky_i.0)?;
                w.put_slice(&self.cky_r.0)
            })
        })?;
        let state = AuthSent {
            auth: self.auth.clone(),
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            suite: self.suite,
            lifetime: self.lifetime,
            keys,
            nat,
            peer_dpd: self.vendors.dpd,
            peer_vendors: self.vendors.known,
            gxi,
            gxr,
            sai_b: self.sai_b.clone(),
            iv: iv6,
        };
        Ok((state, len))
    }
}

impl AuthSent {
    /// NAT detection (the initiator moves to port 4500 before sending message 5 when a NAT is
    /// seen; the driver decides from this).
    #[must_use]
    pub const fn nat(&self) -> NatState {
        self.nat
    }

    /// Verifies message 6: the SA is established. `wall_clock` is the current time of day,
    /// against which certificate validity is checked (unused with a pre-shared key).
    ///
    /// # Errors
    /// [`Refusal::AuthenticationFailed`] when HASH_R or SIG_R does not verify;
    /// [`Refusal::IdMismatch`] when the responder's ID is not the one the key's entry expects;
    /// with certificates, the certificate refusals of [`Certificates::verify_peer`]. A
    /// protected error notify from the responder (see [`AwaitAuth::refusal_notify`]) ends the
    /// exchange with the refusal it reports.
    pub fn on_auth(&self, message: &[u8], wall_clock: SystemTime) -> Result<Phase1Sa, Refusal> {
        let cipher = Cipher::new(self.suite.cipher, self.keys.encryption_key().expose())
            .map_err(|_| Refusal::Malformed)?;
        // The responder may answer message 5 with a protected error notify instead.
        if let Some(refusal) = read_phase1_notify(
            message,
            (self.cky_i, self.cky_r),
            (&self.suite, &cipher, &self.keys),
            &self.iv,
        ) {
            return Err(refusal);
        }
        let h = header(message, Some(self.cky_i), Some(self.cky_r))?;
        let (plain, last_block) = decrypt(&h, &cipher, self.suite.cipher.block_len(), &self.iv)?;
        let payloads =
            collect(h.next_payload(), &plain).map_err(|_| Refusal::AuthenticationFailed)?;
        let (authenticated, peer_id) = authenticate(
            &self.auth,
            &payloads,
            |idir| {
                self.keys.phase1_hash(&Phase1HashInputs {
                    initiator: false,
                    gxi: &self.gxi,
                    gxr: &self.gxr,
                    cky_i: self.cky_i,
                    cky_r: self.cky_r,
                    sai_b: &self.sai_b,
                    id_b: idir,
                })
            },
            wall_clock,
        )?;
        Ok(Phase1Sa {
            cky_i: self.cky_i,
            cky_r: self.cky_r,
            suite: self.suite,
            lifetime: self.lifetime,
            keys: self.keys.clone(),
            last_block,
            peer_id,
            nat: self.nat,
            peer_dpd: self.peer_dpd,
            peer_vendors: self.peer_vendors,
            initial_contact: true,
            we_initiated: true,
            authenticated,
        })
    }
}

#[cfg(test)]
mod tests;
