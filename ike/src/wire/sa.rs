//! Security Association, Proposal and Transform payloads with their data attributes
//! (RFC 2408 §3.3–3.6, RFC 2407 §4.6.1).
//!
//! ```text
//! SA:        | DOI (4) | Situation (4) | Proposal payloads ...
//! Proposal:  | generic | Proposal # | Protocol-Id | SPI Size | # Transforms | SPI | Transforms ...
//! Transform: | generic | Transform # | Transform-Id | RESERVED2 (2) | SA Attributes ...
//! Attribute: | A F | type (15) | value (2)            -- TV, when AF = 1
//!            | A F | type (15) | length (2) | value   -- TLV, when AF = 0
//! ```

use super::{Error, PayloadType, Payloads, ProtocolId, Result};
use codec::Reader;

/// An SA payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityAssociation<'a> {
    /// Domain of interpretation (1 = IPsec).
    pub doi: u32,
    /// Situation bitmap (1 = identity only).
    pub situation: u32,
    proposals: &'a [u8],
    /// The whole body, as the HASH computations need it (SAi_b).
    pub body: &'a [u8],
}

impl<'a> SecurityAssociation<'a> {
    /// Parses an SA body and validates every proposal, transform and attribute in it, so the
    /// iterators below never yield an error.
    ///
    /// # Errors
    /// The first malformed element's error.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let doi = r.u32()?;
        let situation = r.u32()?;
        let sa = Self {
            doi,
            situation,
            proposals: r.rest(),
            body,
        };
        for proposal in sa.proposals_checked() {
            for transform in proposal?.transforms_checked() {
                transform?.attributes().try_for_each(|a| a.map(drop))?;
            }
        }
        Ok(sa)
    }

    fn proposals_checked(&self) -> Proposals<'a> {
        Proposals {
            inner: Payloads::new(PayloadType::PROPOSAL, self.proposals),
        }
    }

    /// The proposals, in order (already validated by [`SecurityAssociation::parse`]).
    pub fn proposals(&self) -> impl Iterator<Item = Proposal<'a>> + 'a {
        self.proposals_checked().map_while(Result::ok)
    }
}

/// The proposals of an SA.
#[derive(Debug, Clone)]
pub struct Proposals<'a> {
    inner: Payloads<'a>,
}

impl<'a> Iterator for Proposals<'a> {
    type Item = Result<Proposal<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let payload = self.inner.next()?;
        Some(payload.and_then(|p| {
            if p.kind != PayloadType::PROPOSAL {
                return Err(Error::UnexpectedPayload(p.kind));
            }
            Proposal::parse(p.body)
        }))
    }
}

/// One proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal<'a> {
    /// Proposal number (equal numbers form one AND-ed bundle, RFC 2408 §4.2).
    pub number: u8,
    /// Protocol (ISAKMP in phase 1, ESP in phase 2).
    pub protocol: ProtocolId,
    /// The SPI (empty or 16 bytes in phase 1, 4 bytes for ESP).
    pub spi: &'a [u8],
    /// Number of transforms announced.
    pub transform_count: u8,
    transforms: &'a [u8],
}

impl<'a> Proposal<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let transform_count = r.u8()?;
        let spi = r.take(usize::from(spi_size))?;
        let proposal = Self {
            number,
            protocol,
            spi,
            transform_count,
            transforms: r.rest(),
        };
        // RFC 2408 §3.5: the count must match the transforms present.
        let mut present = 0usize;
        for t in proposal.transforms_checked() {
            t?;
            present += 1;
        }
        if present != usize::from(transform_count) {
            return Err(Error::TransformCount);
        }
        Ok(proposal)
    }

    fn transforms_checked(&self) -> Transforms<'a> {
        Transforms {
            inner: Payloads::new(PayloadType::TRANSFORM, self.transforms),
        }
    }

    /// The transforms, in order of preference.
    pub fn transforms(&self) -> impl Iterator<Item = Transform<'a>> + 'a {
        self.transforms_checked().map_while(Result::ok)
    }
}

/// The transforms of a proposal.
#[derive(Debug, Clone)]
pub struct Transforms<'a> {
    inner: Payloads<'a>,
}

impl<'a> Iterator for Transforms<'a> {
    type Item = Result<Transform<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let payload = self.inner.next()?;
        Some(payload.and_then(|p| {
            if p.kind != PayloadType::TRANSFORM {
                return Err(Error::UnexpectedPayload(p.kind));
            }
            Transform::parse(p.body)
        }))
    }
}

/// One transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform<'a> {
    /// Transform number.
    pub number: u8,
    /// Transform identifier (KEY_IKE in phase 1, an ESP transform in phase 2).
    pub id: u8,
    attributes: &'a [u8],
}

impl<'a> Transform<'a> {
    fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let number = r.u8()?;
        let id = r.u8()?;
        r.skip(2)?;
        let t = Self {
            number,
            id,
            attributes: r.rest(),
        };
        t.attributes().try_for_each(|a| a.map(drop))?;
        Ok(t)
    }

    /// The attributes.
    #[must_use]
    pub const fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: self.attributes,
            failed: false,
        }
    }

    /// The raw attribute bytes (to echo a chosen transform verbatim).
    #[must_use]
    pub const fn attribute_bytes(&self) -> &'a [u8] {
        self.attributes
    }
}

/// An attribute value: short (TV) or variable (TLV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeValue<'a> {
    /// A 16-bit value (AF = 1).
    Short(u16),
    /// A variable-length value (AF = 0).
    Long(&'a [u8]),
}

impl AttributeValue<'_> {
    /// The value as an unsigned number, if it fits in 32 bits (life durations are sent both
    /// ways by different clients).
    #[must_use]
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Self::Short(v) => Some(u32::from(*v)),
            Self::Long(bytes) if bytes.len() <= 4 => {
                Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
            }
            Self::Long(bytes) => {
                // Leading zeros are allowed: some clients send 8-byte lifetimes.
                let (high, low) = bytes.split_at(bytes.len() - 4);
                high.iter()
                    .all(|b| *b == 0)
                    .then(|| low.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
            }
        }
    }
}

/// One data attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute class (without the AF bit).
    pub kind: u16,
    /// The value.
    pub value: AttributeValue<'a>,
}

/// The attributes of a transform. Yields at most one error, then ends.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Attributes<'a> {
    /// Attributes written back to back, as in a RESPONDER-LIFETIME notification (RFC 2407
    /// §4.6.3.1) or a transform's tail.
    #[must_use]
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            failed: false,
        }
    }

    fn read_one(&mut self) -> Result<Attribute<'a>> {
        let mut r = Reader::new(self.rest);
        let word = r.u16()?;
        let kind = word & 0x7fff;
        let value = if word & 0x8000 != 0 {
            AttributeValue::Short(r.u16()?)
        } else {
            let len = usize::from(r.u16()?);
            AttributeValue::Long(r.take(len)?)
        };
        self.rest = r.rest();
        Ok(Attribute { kind, value })
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

impl ProtocolId {
    /// Whether this is the ISAKMP protocol (phase 1 proposals).
    #[must_use]
    pub fn is_isakmp(self) -> bool {
        self == Self::ISAKMP
    }
}
