//! Phase-1 transforms: reading the attributes of an offered transform (RFC 2409 Appendix A) and
//! choosing one by an ordered local policy.

use crate::crypto::{CipherAlgorithm, DhGroup, HashAlgorithm, PrfAlgorithm};
use crate::wire::{
    AttributeValue, AttributeWriter, AuthMethod, EncryptionAlgorithm, HashAlgorithm as WireHash,
    KEY_IKE, LifeType, Phase1Attribute, ProtocolId, SecurityAssociation,
};
use std::time::Duration;

/// A complete phase-1 suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Phase1Suite {
    /// CBC cipher protecting ISAKMP messages.
    pub cipher: CipherAlgorithm,
    /// Hash (the PRF is HMAC over it, RFC 2409 §5).
    pub hash: HashAlgorithm,
    /// Diffie-Hellman group.
    pub group: DhGroup,
}

impl Phase1Suite {
    /// The PRF: HMAC over the negotiated hash.
    #[must_use]
    pub const fn prf(&self) -> PrfAlgorithm {
        match self.hash {
            HashAlgorithm::Md5 => PrfAlgorithm::HmacMd5,
            HashAlgorithm::Sha1 => PrfAlgorithm::HmacSha1,
            HashAlgorithm::Sha256 => PrfAlgorithm::HmacSha256,
            HashAlgorithm::Sha384 => PrfAlgorithm::HmacSha384,
            HashAlgorithm::Sha512 => PrfAlgorithm::HmacSha512,
        }
    }

    /// Writes this suite as transform attributes with pre-shared-key authentication.
    ///
    /// # Errors
    /// [`codec::NoSpace`].
    pub fn write_attributes(
        &self,
        w: &mut codec::Writer<'_>,
        lifetime: Duration,
    ) -> Result<(), codec::NoSpace> {
        self.write_attributes_for(w, lifetime, AuthMethod::PSK)
    }

    /// Writes this suite as transform attributes (initiator offers) with authentication `auth`.
    ///
    /// # Errors
    /// [`codec::NoSpace`].
    pub fn write_attributes_for(
        &self,
        w: &mut codec::Writer<'_>,
        lifetime: Duration,
        auth: AuthMethod,
    ) -> Result<(), codec::NoSpace> {
        let (enc, key_bits) = match self.cipher {
            CipherAlgorithm::TripleDesCbc => (EncryptionAlgorithm::TRIPLE_DES_CBC, None),
            CipherAlgorithm::AesCbc128 => (EncryptionAlgorithm::AES_CBC, Some(128)),
            CipherAlgorithm::AesCbc192 => (EncryptionAlgorithm::AES_CBC, Some(192)),
            _ => (EncryptionAlgorithm::AES_CBC, Some(256)),
        };
        AttributeWriter::short(w, Phase1Attribute::ENCRYPTION.0, enc.0)?;
        if let Some(bits) = key_bits {
            AttributeWriter::short(w, Phase1Attribute::KEY_LENGTH.0, bits)?;
        }
        let hash = match self.hash {
            HashAlgorithm::Md5 => WireHash::MD5,
            HashAlgorithm::Sha1 => WireHash::SHA1,
            HashAlgorithm::Sha256 => WireHash::SHA2_256,
            HashAlgorithm::Sha384 => WireHash::SHA2_384,
            HashAlgorithm::Sha512 => WireHash::SHA2_512,
        };
        AttributeWriter::short(w, Phase1Attribute::HASH.0, hash.0)?;
        AttributeWriter::short(w, Phase1Attribute::AUTH_METHOD.0, auth.0)?;
        AttributeWriter::short(w, Phase1Attribute::GROUP.0, self.group.id())?;
        AttributeWriter::short(w, Phase1Attribute::LIFE_TYPE.0, LifeType::SECONDS.0)?;
        AttributeWriter::number(
            w,
            Phase1Attribute::LIFE_DURATION.0,
            u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX),
        )
    }
}

/// One offered transform, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The suite, if every algorithm is one we implement.
    pub suite: Option<Phase1Suite>,
    /// Authentication method.
    pub auth: AuthMethod,
    /// Lifetime in seconds, if proposed (0 means none proposed).
    pub lifetime: Option<Duration>,
}

/// Decodes the attributes of a phase-1 transform.
#[must_use]
pub fn decode(attributes: crate::wire::Attributes<'_>) -> Offer {
    let (mut enc, mut key_bits, mut hash, mut group, mut auth) =
        (None, None, None, None, AuthMethod(0));
    let (mut life_type, mut lifetime) = (LifeType::SECONDS, None);
    let mut unknown = false;
    for a in attributes.flatten() {
        let value = a.value.as_u32();
        match (Phase1Attribute(a.kind), a.value) {
            (Phase1Attribute::ENCRYPTION, AttributeValue::Short(v)) => {
                enc = Some(EncryptionAlgorithm(v))
            }
            (Phase1Attribute::KEY_LENGTH, AttributeValue::Short(v)) => key_bits = Some(v),
            (Phase1Attribute::HASH, AttributeValue::Short(v)) => hash = Some(WireHash(v)),
            (Phase1Attribute::GROUP, AttributeValue::Short(v)) => {
                group = DhGroup::from_id(v).or_else(|| {
                    unknown = true;
                    None
                })
            }
            (Phase1Attribute::AUTH_METHOD, AttributeValue::Short(v)) => auth = AuthMethod(v),
            (Phase1Attribute::LIFE_TYPE, AttributeValue::Short(v)) => life_type = LifeType(v),
            (Phase1Attribute::LIFE_DURATION, _) => {
                // RFC 2409 Appendix A: a duration follows its type; only seconds bound us here.
                if life_type == LifeType::SECONDS {
                    lifetime = value
                        .filter(|s| *s > 0)
                        .map(|s| Duration::from_secs(u64::from(s)));
                }
            }
            // Custom groups (type, prime, generators) and anything else: not supported.
            _ => unknown = true,
        }
    }
    let cipher = match (enc, key_bits) {
        (Some(EncryptionAlgorithm::TRIPLE_DES_CBC), None) => Some(CipherAlgorithm::TripleDesCbc),
        (Some(EncryptionAlgorithm::AES_CBC), None | Some(128)) => Some(CipherAlgorithm::AesCbc128),
        (Some(EncryptionAlgorithm::AES_CBC), Some(192)) => Some(CipherAlgorithm::AesCbc192),
        (Some(EncryptionAlgorithm::AES_CBC), Some(256)) => Some(CipherAlgorithm::AesCbc256),
        _ => None,
    };
    let hash = match hash {
        Some(WireHash::MD5) => Some(HashAlgorithm::Md5),
        Some(WireHash::SHA1) => Some(HashAlgorithm::Sha1),
        Some(WireHash::SHA2_256) => Some(HashAlgorithm::Sha256),
        Some(WireHash::SHA2_384) => Some(HashAlgorithm::Sha384),
        Some(WireHash::SHA2_512) => Some(HashAlgorithm::Sha512),
        _ => None,
    };
    let suite = match (cipher, hash, group, unknown) {
        (Some(cipher), Some(hash), Some(group), false) => Some(Phase1Suite {
            cipher,
            hash,
            group,
        }),
        _ => None,
    };
    Offer {
        suite,
        auth,
        lifetime,
    }
}

/// Which phase-1 suites we accept, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase1Policy {
    /// Accepted suites. The responder takes the peer's first offer that appears here.
    pub suites: Vec<Phase1Suite>,
    /// Our lifetime; a peer's shorter proposal wins.
    pub lifetime: Duration,
}

impl Default for Phase1Policy {
    /// Accepts what the built-in clients of Windows, macOS/iOS, Android and Linux offer:
    /// AES-CBC (128/192/256) and 3DES with SHA-2, SHA-1 or MD5, groups 2, 5, 14–16, 19, 20.
    /// Single DES, MODP-768 and custom groups are never accepted.
    fn default() -> Self {
        let mut suites = Vec::new();
        for cipher in [
            CipherAlgorithm::AesCbc256,
            CipherAlgorithm::AesCbc128,
            CipherAlgorithm::AesCbc192,
            CipherAlgorithm::TripleDesCbc,
        ] {
            for hash in [
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha512,
                HashAlgorithm::Sha1,
                HashAlgorithm::Md5,
            ] {
                for group in DhGroup::ALL {
                    suites.push(Phase1Suite {
                        cipher,
                        hash,
                        group,
                    });
                }
            }
        }
        Self {
            suites,
            lifetime: Duration::from_secs(8 * 3600),
        }
    }
}

/// The chosen transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice<'a> {
    /// The suite.
    pub suite: Phase1Suite,
    /// The effective lifetime.
    pub lifetime: Duration,
    /// The proposal's transform as offered, echoed verbatim in our SA (RFC 2409 §5: the
    /// responder returns exactly one transform of the offer).
    pub transform_number: u8,
    /// Its attribute bytes.
    pub attributes: &'a [u8],
}

/// Picks the first offered pre-shared-key transform our policy accepts (the peer orders its
/// offers by preference, RFC 2408 §4.2).
#[must_use]
pub fn choose<'a>(policy: &Phase1Policy, sa: &SecurityAssociation<'a>) -> Option<Choice<'a>> {
    choose_for(policy, AuthMethod::PSK, sa)
}

/// Picks the first offered transform with authentication method `auth` that our policy
/// accepts (RFC 2408 §4.2: offers come in the peer's order of preference).
#[must_use]
pub fn choose_for<'a>(
    policy: &Phase1Policy,
    auth: AuthMethod,
    sa: &SecurityAssociation<'a>,
) -> Option<Choice<'a>> {
    for proposal in sa.proposals().filter(|p| p.protocol == ProtocolId::ISAKMP) {
        for transform in proposal.transforms().filter(|t| t.id == KEY_IKE) {
            let offer = decode(transform.attributes());
            let Some(suite) = offer.suite else { continue };
            if offer.auth != auth || !policy.suites.contains(&suite) {
                continue;
            }
            let lifetime = offer
                .lifetime
                .map_or(policy.lifetime, |l| l.min(policy.lifetime));
            return Some(Choice {
                suite,
                lifetime,
                transform_number: transform.number,
                attributes: transform.attribute_bytes(),
            });
        }
    }
    None
}

impl core::fmt::Display for Phase1Suite {
    /// As strongSwan writes a proposal: `aes256-sha1-modp1024`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}-{}-{}", self.cipher, self.hash, self.group)
    }
}
