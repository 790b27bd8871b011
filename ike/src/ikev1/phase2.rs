//! Phase-2 (ESP) proposals: decoding offered transforms (RFC 2407 §4.4.4, §4.5) and choosing
//! one by an ordered local policy.

use super::main_mode::AddressPrefix;
use super::nat::NatTVersion;
use crate::crypto::{CipherAlgorithm, DhGroup, IntegrityAlgorithm};
use crate::esp::Transform;
use crate::wire::{
    AttributeValue, AttributeWriter, EncapsulationMode, EspAuth, EspTransform, LifeType,
    Phase2Attribute, Proposal, ProtocolId, SecurityAssociation,
};
use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

/// How ESP packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// Transport mode, ESP directly over IP (protocol 50).
    Transport,
    /// Transport mode inside UDP 4500 (RFC 3948), with the wire value the peer used.
    UdpTransport(EncapsulationMode),
}

/// Perfect forward secrecy in Quick Mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pfs {
    /// Accept proposals with or without a KE (responder); offer none (initiator).
    Optional,
    /// Offer (initiator) or require (responder) this group.
    Group(DhGroup),
}

/// Which ESP transforms we accept, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase2Policy {
    /// Accepted transforms.
    pub transforms: Vec<Transform>,
    /// PFS policy.
    pub pfs: Pfs,
    /// Our SA lifetime; a shorter proposal wins.
    pub lifetime: Duration,
    /// Our SA lifetime in kilobytes, if any.
    pub lifetime_kb: Option<u32>,
    /// Interop (older Android, Linux < 2.6.33): treat HMAC-SHA2-256 as 96-bit truncated.
    pub sha256_96: bool,
    /// The same, only for the peers at these addresses or prefixes (as we see them: a NAT's
    /// public address for peers behind it).
    pub sha256_96_peers: Vec<AddressPrefix>,
}

impl Phase2Policy {
    /// The policy for one peer: with the truncated HMAC-SHA2-256 for it (globally or by
    /// [`Phase2Policy::sha256_96_peers`]), every HMAC-SHA2-256-128 transform becomes the 96-bit
    /// variant; otherwise this policy as it is.
    #[must_use]
    pub fn for_peer(&self, peer: IpAddr) -> Cow<'_, Self> {
        if !self.sha256_96 && !self.sha256_96_peers.iter().any(|p| p.contains(peer)) {
            return Cow::Borrowed(self);
        }
        let mut policy = self.clone();
        policy.sha256_96 = true;
        for t in &mut policy.transforms {
            if t.integrity() == Some(IntegrityAlgorithm::HmacSha256_128)
                && let Ok(truncated) =
                    Transform::new(t.cipher(), Some(IntegrityAlgorithm::HmacSha256_96))
            {
                *t = truncated;
            }
        }
        policy.transforms.dedup();
        Cow::Owned(policy)
    }
}

impl Default for Phase2Policy {
    /// AES-CBC 256/128 and 3DES with SHA-1, SHA-256/384/512, and AES-GCM-16 128/256: what the
    /// built-in clients of Windows, macOS/iOS, Android and Linux offer.
    fn default() -> Self {
        let mut transforms = Vec::new();
        for cipher in [CipherAlgorithm::AesGcm16_256, CipherAlgorithm::AesGcm16_128] {
            transforms.extend(Transform::new(cipher, None));
        }
        for cipher in [
            CipherAlgorithm::AesCbc256,
            CipherAlgorithm::AesCbc128,
            CipherAlgorithm::AesCbc192,
            CipherAlgorithm::TripleDesCbc,
        ] {
            for integrity in [
                IntegrityAlgorithm::HmacSha256_128,
                IntegrityAlgorithm::HmacSha384_192,
                IntegrityAlgorithm::HmacSha512_256,
                IntegrityAlgorithm::HmacSha1_96,
            ] {
                transforms.extend(Transform::new(cipher, Some(integrity)));
            }
        }
        Self {
            transforms,
            pfs: Pfs::Optional,
            lifetime: Duration::from_secs(3600),
            lifetime_kb: None,
            sha256_96: false,
            sha256_96_peers: Vec::new(),
        }
    }
}

/// One offered ESP transform, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspOffer {
    /// The transform, if we implement every part of it.
    pub transform: Option<Transform>,
    /// Encapsulation mode as offered.
    pub mode: EncapsulationMode,
    /// PFS group, if any.
    pub group: Option<u16>,
    /// Lifetime in seconds, if proposed.
    pub lifetime: Option<Duration>,
    /// Lifetime in kilobytes, if proposed.
    pub lifetime_kb: Option<u32>,
}

/// Decodes an ESP transform.
#[must_use]
pub fn decode(transform: &crate::wire::Transform<'_>, sha256_96: bool) -> EspOffer {
    let (mut auth, mut key_bits, mut mode, mut group) = (None, None, EncapsulationMode(0), None);
    let (mut life_type, mut lifetime, mut lifetime_kb) = (LifeType::SECONDS, None, None);
    let mut unknown = false;
    for a in transform.attributes().flatten() {
        match (Phase2Attribute(a.kind), a.value) {
            (Phase2Attribute::AUTH_ALGORITHM, AttributeValue::Short(v)) => auth = Some(EspAuth(v)),
            (Phase2Attribute::KEY_LENGTH, AttributeValue::Short(v)) => key_bits = Some(v),
            (Phase2Attribute::ENCAPSULATION_MODE, AttributeValue::Short(v)) => {
                mode = EncapsulationMode(v)
            }
            (Phase2Attribute::GROUP, AttributeValue::Short(v)) => group = Some(v),
            (Phase2Attribute::LIFE_TYPE, AttributeValue::Short(v)) => life_type = LifeType(v),
            (Phase2Attribute::LIFE_DURATION, value) => {
                let v = value.as_u32().filter(|v| *v > 0);
                match life_type {
                    LifeType::SECONDS => lifetime = v.map(|s| Duration::from_secs(u64::from(s))),
                    LifeType::KILOBYTES => lifetime_kb = v,
                    _ => unknown = true,
                }
            }
            _ => unknown = true,
        }
    }
    let cipher = match (EspTransform(transform.id), key_bits) {
        (EspTransform::TRIPLE_DES, None) => Some(CipherAlgorithm::TripleDesCbc),
        (EspTransform::AES_CBC, None | Some(128)) => Some(CipherAlgorithm::AesCbc128),
        (EspTransform::AES_CBC, Some(192)) => Some(CipherAlgorithm::AesCbc192),
        (EspTransform::AES_CBC, Some(256)) => Some(CipherAlgorithm::AesCbc256),
        (EspTransform::AES_GCM_16, None | Some(128)) => Some(CipherAlgorithm::AesGcm16_128),
        (EspTransform::AES_GCM_16, Some(256)) => Some(CipherAlgorithm::AesGcm16_256),
        _ => None,
    };
    let integrity = match auth {
        None => None,
        Some(EspAuth::HMAC_SHA1) => Some(Some(IntegrityAlgorithm::HmacSha1_96)),
        Some(EspAuth::HMAC_SHA2_256) if sha256_96 => Some(Some(IntegrityAlgorithm::HmacSha256_96)),
        Some(EspAuth::HMAC_SHA2_256) => Some(Some(IntegrityAlgorithm::HmacSha256_128)),
        Some(EspAuth::HMAC_SHA2_384) => Some(Some(IntegrityAlgorithm::HmacSha384_192)),
        Some(EspAuth::HMAC_SHA2_512) => Some(Some(IntegrityAlgorithm::HmacSha512_256)),
        Some(_) => {
            unknown = true;
            None
        }
    };
    let transform = match (cipher, unknown) {
        (Some(c), false) => Transform::new(c, integrity.flatten()).ok(),
        _ => None,
    };
    EspOffer {
        transform,
        mode,
        group,
        lifetime,
        lifetime_kb,
    }
}

/// The accepted proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspChoice<'a> {
    /// The proposal as offered (its number and the peer's SPI).
    pub proposal: Proposal<'a>,
    /// The transform's number and attributes, echoed verbatim.
    pub transform_number: u8,
    /// Transform ID.
    pub transform_id: u8,
    /// Attributes.
    pub attributes: &'a [u8],
    /// Decoded transform.
    pub transform: Transform,
    /// Encapsulation.
    pub encapsulation: Encapsulation,
    /// PFS group (a KE payload must then be present).
    pub group: Option<DhGroup>,
    /// Effective lifetime.
    pub lifetime: Duration,
    /// Effective lifetime in kilobytes.
    pub lifetime_kb: Option<u32>,
    /// Whether our policy shortened what the initiator proposed (or, when it proposed none,
    /// the 8-hour default of RFC 2407 §4.5): RESPONDER-LIFETIME must tell it.
    pub shortened: bool,
}

/// RFC 2407 §4.5: the lifetime an IPsec SA has when none is proposed.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(28_800);

/// Reads the attributes of a RESPONDER-LIFETIME notification (RFC 2407 §4.6.3.1): the
/// lifetime in seconds and in kilobytes it sets, if any.
#[must_use]
pub fn responder_lifetime(data: &[u8]) -> (Option<Duration>, Option<u32>) {
    let (mut life_type, mut seconds, mut kilobytes) = (LifeType::SECONDS, None, None);
    for a in crate::wire::Attributes::new(data).map_while(Result::ok) {
        match (Phase2Attribute(a.kind), a.value) {
            (Phase2Attribute::LIFE_TYPE, AttributeValue::Short(v)) => life_type = LifeType(v),
            (Phase2Attribute::LIFE_DURATION, value) => {
                let v = value.as_u32().filter(|v| *v > 0);
                match life_type {
                    LifeType::SECONDS => seconds = v.map(|s| Duration::from_secs(u64::from(s))),
                    LifeType::KILOBYTES => kilobytes = v,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    (seconds, kilobytes)
}

/// Writes the attributes of a RESPONDER-LIFETIME notification.
///
/// # Errors
/// [`codec::NoSpace`].
pub fn write_responder_lifetime(
    w: &mut codec::Writer<'_>,
    lifetime: Duration,
    lifetime_kb: Option<u32>,
) -> Result<(), codec::NoSpace> {
    let duration = |w: &mut codec::Writer<'_>, kind: LifeType, value: u32| {
        AttributeWriter::short(w, Phase2Attribute::LIFE_TYPE.0, kind.0)?;
        match u16::try_from(value) {
            Ok(v) => AttributeWriter::short(w, Phase2Attribute::LIFE_DURATION.0, v),
            Err(_) => {
                AttributeWriter::long(w, Phase2Attribute::LIFE_DURATION.0, &value.to_be_bytes())
            }
        }
    };
    let seconds = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
    duration(w, LifeType::SECONDS, seconds)?;
    if let Some(kb) = lifetime_kb {
        duration(w, LifeType::KILOBYTES, kb)?;
    }
    Ok(())
}

/// Whether `mode` is the encapsulation the NAT state requires (RFC 3947 §5.1: UDP modes only
/// when a NAT was detected, with the values of the negotiated NAT-T version).
fn encapsulation(mode: EncapsulationMode, nat: Option<NatTVersion>) -> Option<Encapsulation> {
    match (mode, nat) {
        (EncapsulationMode::TRANSPORT, None) => Some(Encapsulation::Transport),
        (EncapsulationMode::UDP_TRANSPORT, Some(NatTVersion::Rfc3947))
        | (
            EncapsulationMode::UDP_TRANSPORT_DRAFT,
            Some(NatTVersion::Draft02 | NatTVersion::Draft03),
        ) => Some(Encapsulation::UdpTransport(mode)),
        // Interop (some Windows builds): draft value after negotiating RFC 3947.
        (EncapsulationMode::UDP_TRANSPORT_DRAFT, Some(NatTVersion::Rfc3947)) => {
            Some(Encapsulation::UdpTransport(mode))
        }
        _ => None,
    }
}

/// Picks the first offered ESP proposal with exactly one protocol (ESP) whose transform our
/// policy accepts. `nat` is the NAT-T version when a NAT was detected.
#[must_use]
pub fn choose<'a>(
    policy: &Phase2Policy,
    sa: &SecurityAssociation<'a>,
    nat: Option<NatTVersion>,
) -> Option<EspChoice<'a>> {
    for proposal in sa.proposals() {
        // An AND-ed bundle (ESP + IPComp or AH) shares its number with the next proposal.
        let bundled = sa
            .proposals()
            .filter(|p| p.number == proposal.number)
            .count()
            > 1;
        if proposal.protocol != ProtocolId::ESP || proposal.spi.len() != 4 || bundled {
            continue;
        }
        for t in proposal.transforms() {
            let offer = decode(&t, policy.sha256_96);
            let Some(transform) = offer.transform.filter(|tr| policy.transforms.contains(tr))
            else {
                continue;
            };
            let Some(encapsulation) = encapsulation(offer.mode, nat) else {
                continue;
            };
            let group = match (offer.group, policy.pfs) {
                (None, Pfs::Optional) => None,
                (Some(g), Pfs::Optional) => match DhGroup::from_id(g) {
                    Some(g) => Some(g),
                    None => continue,
                },
                (Some(g), Pfs::Group(want)) if g == want.id() => Some(want),
                _ => continue,
            };
            let lifetime = offer
                .lifetime
                .map_or(policy.lifetime, |l| l.min(policy.lifetime));
            let lifetime_kb = match (offer.lifetime_kb, policy.lifetime_kb) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let shortened = lifetime < offer.lifetime.unwrap_or(DEFAULT_LIFETIME)
                || lifetime_kb != offer.lifetime_kb;
            return Some(EspChoice {
                proposal,
                transform_number: t.number,
                transform_id: t.id,
                attributes: t.attribute_bytes(),
                transform,
                encapsulation,
                group,
                lifetime,
                lifetime_kb,
                shortened,
            });
        }
    }
    None
}

/// Writes `transform` as ESP transform attributes (initiator offers).
///
/// # Errors
/// [`codec::NoSpace`].
pub fn write_offer(
    w: &mut codec::Writer<'_>,
    number: u8,
    transform: Transform,
    mode: EncapsulationMode,
    policy: &Phase2Policy,
) -> Result<(), codec::NoSpace> {
    let (id, bits) = match transform.cipher() {
        CipherAlgorithm::TripleDesCbc => (EspTransform::TRIPLE_DES, None),
        CipherAlgorithm::AesCbc128 => (EspTransform::AES_CBC, Some(128)),
        CipherAlgorithm::AesCbc192 => (EspTransform::AES_CBC, Some(192)),
        CipherAlgorithm::AesCbc256 => (EspTransform::AES_CBC, Some(256)),
        CipherAlgorithm::AesGcm16_128 => (EspTransform::AES_GCM_16, Some(128)),
        CipherAlgorithm::AesGcm16_256 => (EspTransform::AES_GCM_16, Some(256)),
    };
    w.put_slice(&[number, id.0, 0, 0])?;
    AttributeWriter::short(w, Phase2Attribute::LIFE_TYPE.0, LifeType::SECONDS.0)?;
    AttributeWriter::number(
        w,
        Phase2Attribute::LIFE_DURATION.0,
        u32::try_from(policy.lifetime.as_secs()).unwrap_or(u32::MAX),
    )?;
    if let Pfs::Group(g) = policy.pfs {
        AttributeWriter::short(w, Phase2Attribute::GROUP.0, g.id())?;
    }
    AttributeWriter::short(w, Phase2Attribute::ENCAPSULATION_MODE.0, mode.0)?;
    if let Some(integrity) = transform.integrity() {
        let auth = match integrity {
            IntegrityAlgorithm::HmacSha1_96 => EspAuth::HMAC_SHA1,
            IntegrityAlgorithm::HmacSha256_128 | IntegrityAlgorithm::HmacSha256_96 => {
                EspAuth::HMAC_SHA2_256
            }
            IntegrityAlgorithm::HmacSha384_192 => EspAuth::HMAC_SHA2_384,
            IntegrityAlgorithm::HmacSha512_256 => EspAuth::HMAC_SHA2_512,
        };
        AttributeWriter::short(w, Phase2Attribute::AUTH_ALGORITHM.0, auth.0)?;
    }
    if let Some(bits) = bits {
        AttributeWriter::short(w, Phase2Attribute::KEY_LENGTH.0, bits)?;
    }
    Ok(())
}
