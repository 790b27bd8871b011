//! The payload chain (RFC 2408 §3.2) and the simple payloads (§3.8–3.15, RFC 3947 §5.2).
//!
//! ```text
//! | Next Payload | RESERVED |        Payload Length         |  body ...
//! ```

use super::{Error, IdType, NotifyType, PayloadType, ProtocolId, Result};
use codec::Reader;

/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;
/// Most payloads we accept in one message or SA. Real clients send at most about twenty (vendor
/// IDs included); the cap bounds work per unauthenticated datagram.
pub const MAX_PAYLOADS: usize = 64;

/// One payload borrowed from a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    /// Its type (announced by the previous payload or the header).
    pub kind: PayloadType,
    /// The body after the generic header.
    pub body: &'a [u8],
}

/// The payloads of a message, starting with the type the header announces. Yields at most one
/// error, then ends; bytes after the last payload (encryption padding) are ignored.
#[derive(Debug, Clone)]
pub struct Payloads<'a> {
    next: PayloadType,
    rest: &'a [u8],
    count: usize,
    failed: bool,
}

impl<'a> Payloads<'a> {
    /// Walks `body` whose first payload has type `first`.
    #[must_use]
    pub const fn new(first: PayloadType, body: &'a [u8]) -> Self {
        Self {
            next: first,
            rest: body,
            count: 0,
            failed: false,
        }
    }

    /// Checks the whole chain once; after `Ok`, iteration yields no error.
    ///
    /// # Errors
    /// The first malformed payload's error.
    pub fn validate(first: PayloadType, body: &'a [u8]) -> Result<Self> {
        Self::new(first, body).try_for_each(|p| p.map(drop))?;
        Ok(Self::new(first, body))
    }

    fn read_one(&mut self) -> Result<Payload<'a>> {
        self.count += 1;
        if self.count > MAX_PAYLOADS {
            return Err(Error::TooManyPayloads);
        }
        let &[next, _reserved, l0, l1, ..] = self.rest else {
            return Err(Error::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if len < GENERIC_HEADER_LEN {
            return Err(Error::BadLength(len));
        }
        let (payload, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(Error::BadLength(len))?;
        let kind = self.next;
        self.next = PayloadType(next);
        self.rest = rest;
        Ok(Payload {
            kind,
            body: &payload[GENERIC_HEADER_LEN..],
        })
    }
}

impl<'a> Iterator for Payloads<'a> {
    type Item = Result<Payload<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next == PayloadType::NONE {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

/// An Identification payload (RFC 2407 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identification<'a> {
    /// The ID type.
    pub id_type: IdType,
    /// IP protocol (17 for L2TP's UDP), or 0 for any.
    pub protocol: u8,
    /// Port (1701 for L2TP), or 0 for any.
    pub port: u16,
    /// The identification data.
    pub data: &'a [u8],
    /// The whole body, as the HASH_I/HASH_R computation needs it (IDii_b / IDir_b).
    pub body: &'a [u8],
}

impl<'a> Identification<'a> {
    /// Parses an ID payload body.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        Ok(Self {
            id_type: IdType(r.u8()?),
            protocol: r.u8()?,
            port: r.u16()?,
            data: r.rest(),
            body,
        })
    }
}

/// A Notification payload (RFC 2408 §3.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification<'a> {
    /// Domain of interpretation (1 for IPsec).
    pub doi: u32,
    /// Protocol the SPI belongs to.
    pub protocol: ProtocolId,
    /// The SPI (16 bytes of cookies for ISAKMP, 4 bytes for ESP, or empty).
    pub spi: &'a [u8],
    /// Notify message type.
    pub kind: NotifyType,
    /// Notification data (the sequence number for DPD).
    pub data: &'a [u8],
}

impl<'a> Notification<'a> {
    /// Parses a Notification body.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let doi = r.u32()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let kind = NotifyType(r.u16()?);
        let spi = r.take(usize::from(spi_size))?;
        Ok(Self {
            doi,
            protocol,
            spi,
            kind,
            data: r.rest(),
        })
    }
}

/// A Delete payload (RFC 2408 §3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete<'a> {
    /// Domain of interpretation.
    pub doi: u32,
    /// Protocol of the SAs deleted.
    pub protocol: ProtocolId,
    /// Size of each SPI.
    pub spi_size: u8,
    spis: &'a [u8],
}

impl<'a> Delete<'a> {
    /// Parses a Delete body; the SPI list must be exactly `count × size` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::BadLength`].
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let doi = r.u32()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let count = usize::from(r.u16()?);
        let spis = r.rest();
        if spi_size == 0 || spis.len() != count * usize::from(spi_size) {
            return Err(Error::BadLength(spis.len()));
        }
        Ok(Self {
            doi,
            protocol,
            spi_size,
            spis,
        })
    }

    /// The SPIs.
    pub fn spis(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.spis.chunks_exact(usize::from(self.spi_size))
    }
}

/// A NAT-OA payload (RFC 3947 §5.2): the original address of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatOa<'a> {
    /// IPV4_ADDR or IPV6_ADDR.
    pub id_type: IdType,
    /// The address bytes (4 or 16).
    pub address: &'a [u8],
}

impl<'a> NatOa<'a> {
    /// Parses a NAT-OA body.
    ///
    /// # Errors
    /// [`Error::Truncated`], or [`Error::BadLength`] when the address length does not fit the
    /// type.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8()?);
        r.skip(3)?;
        let address = r.rest();
        let want = match id_type {
            IdType::IPV4_ADDR => 4,
            IdType::IPV6_ADDR => 16,
            _ => return Err(Error::BadLength(address.len())),
        };
        if address.len() != want {
            return Err(Error::BadLength(address.len()));
        }
        Ok(Self { id_type, address })
    }
}
