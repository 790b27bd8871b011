//! Attributes (RFC 2865 §5) and Vendor-Specific sub-attributes (RFC 2865 §5.26).
//!
//! ```text
//!  0                   1                   2
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3
//! |     Type      |    Length     |  Value ...
//! ```
//!
//! Vendor-Specific (Type 26) carries a 4-octet Vendor-Id and, in the format RFC 2865 §5.26
//! recommends and RFC 2548 uses, a chain of Vendor-Type / Vendor-Length / Value triples.

use super::{
    ATTRIBUTE_HEADER_LEN, AcctAuthentic, AcctStatusType, AcctTerminateCause, AttributeType, Error,
    ErrorCause, FramedProtocol, MAX_VALUE_LEN, NasPortType, Result, ServiceType, VendorId,
    WriteError,
};
use codec::{Reader, Writer};
use std::net::Ipv4Addr;

/// One attribute, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The Type octet.
    pub kind: AttributeType,
    /// The Value (Length − 2 octets).
    pub value: &'a [u8],
    /// Offset of the Type octet from the start of the chain that was walked.
    pub offset: usize,
}

/// The attributes of a packet. Yields at most one error, then ends.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> Attributes<'a> {
    /// Walks an attribute chain (a packet from octet 20 up to Length).
    #[must_use]
    pub const fn new(chain: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(chain),
            failed: false,
        }
    }

    fn read_one(&mut self) -> Result<Attribute<'a>> {
        let offset = self.reader.position();
        let mut header = self.reader;
        let (Ok(kind), Ok(len)) = (header.u8(), header.u8()) else {
            return Err(Error::AttributeLength(offset));
        };
        let value_len = usize::from(len)
            .checked_sub(ATTRIBUTE_HEADER_LEN)
            .ok_or(Error::AttributeLength(offset))?;
        let value = header
            .take(value_len)
            .map_err(|_| Error::AttributeLength(offset))?;
        self.reader = header;
        Ok(Attribute {
            kind: AttributeType(kind),
            value,
            offset,
        })
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<Attribute<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

/// One sub-attribute of a Vendor-Specific attribute, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorAttribute<'a> {
    /// The Vendor-Type octet.
    pub kind: u8,
    /// The value (Vendor-Length − 2 octets).
    pub value: &'a [u8],
}

/// The sub-attributes of one Vendor-Specific attribute's data (after the Vendor-Id). Yields at
/// most one error, then ends.
#[derive(Debug, Clone)]
pub struct VendorAttributes<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> VendorAttributes<'a> {
    /// Walks the triples after the Vendor-Id.
    #[must_use]
    pub const fn new(data: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(data),
            failed: false,
        }
    }

    fn read_one(&mut self) -> Result<VendorAttribute<'a>> {
        let mut r = self.reader;
        let kind = r.u8().map_err(|_| Error::VendorSpecific)?;
        let len = r.u8().map_err(|_| Error::VendorSpecific)?;
        let value_len = usize::from(len)
            .checked_sub(ATTRIBUTE_HEADER_LEN)
            .ok_or(Error::VendorSpecific)?;
        let value = r.take(value_len).map_err(|_| Error::VendorSpecific)?;
        self.reader = r;
        Ok(VendorAttribute { kind, value })
    }
}

impl<'a> Iterator for VendorAttributes<'a> {
    type Item = Result<VendorAttribute<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

/// A typed attribute: the attributes the LNS sends or reads, each with the value type RFC 2865,
/// RFC 2866, RFC 2869, RFC 3579 or RFC 5176 gives it. Anything else is [`Attr::Other`].
///
/// Text values (User-Name, Reply-Message, …) stay bytes: RFC 2865 §5 asks for UTF-8 but
/// servers send what they were configured with, and the caller decides how to show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr<'a> {
    /// User-Name (RFC 2865 §5.1).
    UserName(&'a [u8]),
    /// User-Password, still hidden: 16 to 128 octets in multiples of 16 (RFC 2865 §5.2).
    UserPassword(&'a [u8]),
    /// CHAP-Password: the CHAP Identifier and the 16-octet Response (RFC 2865 §5.3).
    ChapPassword {
        /// The PPP CHAP Identifier.
        ident: u8,
        /// MD5(Identifier + secret + challenge) (RFC 1994 §4.1).
        response: [u8; 16],
    },
    /// NAS-IP-Address (RFC 2865 §5.4).
    NasIpAddress(Ipv4Addr),
    /// NAS-Port (RFC 2865 §5.5).
    NasPort(u32),
    /// Service-Type (RFC 2865 §5.6).
    ServiceType(ServiceType),
    /// Framed-Protocol (RFC 2865 §5.7).
    FramedProtocol(FramedProtocol),
    /// Framed-IP-Address (RFC 2865 §5.8).
    FramedIpAddress(Ipv4Addr),
    /// Filter-Id (RFC 2865 §5.11).
    FilterId(&'a [u8]),
    /// Reply-Message (RFC 2865 §5.18).
    ReplyMessage(&'a [u8]),
    /// State (RFC 2865 §5.24).
    State(&'a [u8]),
    /// Class (RFC 2865 §5.25).
    Class(&'a [u8]),
    /// Vendor-Specific: the Vendor-Id and the octets after it (RFC 2865 §5.26).
    VendorSpecific {
        /// The Vendor-Id.
        vendor: VendorId,
        /// The vendor's data, usually [`VendorAttributes`].
        data: &'a [u8],
    },
    /// Session-Timeout in seconds (RFC 2865 §5.27).
    SessionTimeout(u32),
    /// Idle-Timeout in seconds (RFC 2865 §5.28).
    IdleTimeout(u32),
    /// Called-Station-Id (RFC 2865 §5.30).
    CalledStationId(&'a [u8]),
    /// Calling-Station-Id (RFC 2865 §5.31).
    CallingStationId(&'a [u8]),
    /// NAS-Identifier (RFC 2865 §5.32).
    NasIdentifier(&'a [u8]),
    /// Proxy-State (RFC 2865 §5.33).
    ProxyState(&'a [u8]),
    /// Acct-Status-Type (RFC 2866 §5.1).
    AcctStatusType(AcctStatusType),
    /// Acct-Delay-Time in seconds (RFC 2866 §5.2).
    AcctDelayTime(u32),
    /// Acct-Input-Octets, low 32 bits (RFC 2866 §5.3).
    AcctInputOctets(u32),
    /// Acct-Output-Octets, low 32 bits (RFC 2866 §5.4).
    AcctOutputOctets(u32),
    /// Acct-Session-Id (RFC 2866 §5.5).
    AcctSessionId(&'a [u8]),
    /// Acct-Authentic (RFC 2866 §5.6).
    AcctAuthentic(AcctAuthentic),
    /// Acct-Session-Time in seconds (RFC 2866 §5.7).
    AcctSessionTime(u32),
    /// Acct-Input-Packets (RFC 2866 §5.8).
    AcctInputPackets(u32),
    /// Acct-Output-Packets (RFC 2866 §5.9).
    AcctOutputPackets(u32),
    /// Acct-Terminate-Cause (RFC 2866 §5.10).
    AcctTerminateCause(AcctTerminateCause),
    /// Acct-Input-Gigawords: how many times Acct-Input-Octets wrapped (RFC 2869 §5.1).
    AcctInputGigawords(u32),
    /// Acct-Output-Gigawords (RFC 2869 §5.2).
    AcctOutputGigawords(u32),
    /// Event-Timestamp, seconds since 1970-01-01 UTC (RFC 2869 §5.3).
    EventTimestamp(u32),
    /// CHAP-Challenge (RFC 2865 §5.40).
    ChapChallenge(&'a [u8]),
    /// NAS-Port-Type (RFC 2865 §5.41).
    NasPortType(NasPortType),
    /// Message-Authenticator: HMAC-MD5 over the packet (RFC 3579 §3.2).
    MessageAuthenticator([u8; 16]),
    /// Acct-Interim-Interval in seconds (RFC 2869 §5.16).
    AcctInterimInterval(u32),
    /// Framed-Pool (RFC 2869 §5.18).
    FramedPool(&'a [u8]),
    /// Error-Cause (RFC 5176 §3.5).
    ErrorCause(ErrorCause),
    /// Any other attribute, unparsed.
    Other {
        /// The Type octet.
        kind: AttributeType,
        /// The Value.
        value: &'a [u8],
    },
}

fn exact<const N: usize>(attribute: AttributeType, value: &[u8]) -> Result<[u8; N]> {
    value.try_into().map_err(|_| Error::ValueLength {
        attribute,
        len: value.len(),
    })
}

fn integer(attribute: AttributeType, value: &[u8]) -> Result<u32> {
    exact::<4>(attribute, value).map(u32::from_be_bytes)
}

fn address(attribute: AttributeType, value: &[u8]) -> Result<Ipv4Addr> {
    exact::<4>(attribute, value).map(Ipv4Addr::from)
}

impl<'a> Attr<'a> {
    /// Types an attribute, checking the size its type requires.
    ///
    /// # Errors
    /// [`Error::ValueLength`] for a value of the wrong size, [`Error::VendorSpecific`] for a
    /// Vendor-Specific attribute without a whole Vendor-Id.
    pub fn parse(attribute: Attribute<'a>) -> Result<Self> {
        use AttributeType as T;
        let Attribute { kind, value, .. } = attribute;
        Ok(match kind {
            T::USER_NAME => Self::UserName(value),
            T::USER_PASSWORD => {
                if value.is_empty() || value.len() > 128 || !value.len().is_multiple_of(16) {
                    return Err(Error::ValueLength {
                        attribute: kind,
                        len: value.len(),
                    });
                }
                Self::UserPassword(value)
            }
            T::CHAP_PASSWORD => {
                let [ident, response @ ..] = exact::<17>(kind, value)?;
                Self::ChapPassword { ident, response }
            }
            T::NAS_IP_ADDRESS => Self::NasIpAddress(address(kind, value)?),
            T::NAS_PORT => Self::NasPort(integer(kind, value)?),
            T::SERVICE_TYPE => Self::ServiceType(ServiceType(integer(kind, value)?)),
            T::FRAMED_PROTOCOL => Self::FramedProtocol(FramedProtocol(integer(kind, value)?)),
            T::FRAMED_IP_ADDRESS => Self::FramedIpAddress(address(kind, value)?),
            T::FILTER_ID => Self::FilterId(value),
            T::REPLY_MESSAGE => Self::ReplyMessage(value),
            T::STATE => Self::State(value),
            T::CLASS => Self::Class(value),
            T::VENDOR_SPECIFIC => {
                let mut r = Reader::new(value);
                let vendor = r.u32().map_err(|_| Error::VendorSpecific)?;
                Self::VendorSpecific {
                    vendor: VendorId(vendor),
                    data: r.rest(),
                }
            }
            T::SESSION_TIMEOUT => Self::SessionTimeout(integer(kind, value)?),
            T::IDLE_TIMEOUT => Self::IdleTimeout(integer(kind, value)?),
            T::CALLED_STATION_ID => Self::CalledStationId(value),
            T::CALLING_STATION_ID => Self::CallingStationId(value),
            T::NAS_IDENTIFIER => Self::NasIdentifier(value),
            T::PROXY_STATE => Self::ProxyState(value),
            T::ACCT_STATUS_TYPE => Self::AcctStatusType(AcctStatusType(integer(kind, value)?)),
            T::ACCT_DELAY_TIME => Self::AcctDelayTime(integer(kind, value)?),
            T::ACCT_INPUT_OCTETS => Self::AcctInputOctets(integer(kind, value)?),
            T::ACCT_OUTPUT_OCTETS => Self::AcctOutputOctets(integer(kind, value)?),
            T::ACCT_SESSION_ID => Self::AcctSessionId(value),
            T::ACCT_AUTHENTIC => Self::AcctAuthentic(AcctAuthentic(integer(kind, value)?)),
            T::ACCT_SESSION_TIME => Self::AcctSessionTime(integer(kind, value)?),
            T::ACCT_INPUT_PACKETS => Self::AcctInputPackets(integer(kind, value)?),
            T::ACCT_OUTPUT_PACKETS => Self::AcctOutputPackets(integer(kind, value)?),
            T::ACCT_TERMINATE_CAUSE => {
                Self::AcctTerminateCause(AcctTerminateCause(integer(kind, value)?))
            }
            T::ACCT_INPUT_GIGAWORDS => Self::AcctInputGigawords(integer(kind, value)?),
            T::ACCT_OUTPUT_GIGAWORDS => Self::AcctOutputGigawords(integer(kind, value)?),
            T::EVENT_TIMESTAMP => Self::EventTimestamp(integer(kind, value)?),
            T::CHAP_CHALLENGE => Self::ChapChallenge(value),
            T::NAS_PORT_TYPE => Self::NasPortType(NasPortType(integer(kind, value)?)),
            T::MESSAGE_AUTHENTICATOR => Self::MessageAuthenticator(exact::<16>(kind, value)?),
            T::ACCT_INTERIM_INTERVAL => Self::AcctInterimInterval(integer(kind, value)?),
            T::FRAMED_POOL => Self::FramedPool(value),
            T::ERROR_CAUSE => Self::ErrorCause(ErrorCause(integer(kind, value)?)),
            _ => Self::Other { kind, value },
        })
    }

    /// The Type octet.
    #[must_use]
    pub const fn kind(&self) -> AttributeType {
        use AttributeType as T;
        match self {
            Self::UserName(_) => T::USER_NAME,
            Self::UserPassword(_) => T::USER_PASSWORD,
            Self::ChapPassword { .. } => T::CHAP_PASSWORD,
            Self::NasIpAddress(_) => T::NAS_IP_ADDRESS,
            Self::NasPort(_) => T::NAS_PORT,
            Self::ServiceType(_) => T::SERVICE_TYPE,
            Self::FramedProtocol(_) => T::FRAMED_PROTOCOL,
            Self::FramedIpAddress(_) => T::FRAMED_IP_ADDRESS,
            Self::FilterId(_) => T::FILTER_ID,
            Self::ReplyMessage(_) => T::REPLY_MESSAGE,
            Self::State(_) => T::STATE,
            Self::Class(_) => T::CLASS,
            Self::VendorSpecific { .. } => T::VENDOR_SPECIFIC,
            Self::SessionTimeout(_) => T::SESSION_TIMEOUT,
            Self::IdleTimeout(_) => T::IDLE_TIMEOUT,
            Self::CalledStationId(_) => T::CALLED_STATION_ID,
            Self::CallingStationId(_) => T::CALLING_STATION_ID,
            Self::NasIdentifier(_) => T::NAS_IDENTIFIER,
            Self::ProxyState(_) => T::PROXY_STATE,
            Self::AcctStatusType(_) => T::ACCT_STATUS_TYPE,
            Self::AcctDelayTime(_) => T::ACCT_DELAY_TIME,
            Self::AcctInputOctets(_) => T::ACCT_INPUT_OCTETS,
            Self::AcctOutputOctets(_) => T::ACCT_OUTPUT_OCTETS,
            Self::AcctSessionId(_) => T::ACCT_SESSION_ID,
            Self::AcctAuthentic(_) => T::ACCT_AUTHENTIC,
            Self::AcctSessionTime(_) => T::ACCT_SESSION_TIME,
            Self::AcctInputPackets(_) => T::ACCT_INPUT_PACKETS,
            Self::AcctOutputPackets(_) => T::ACCT_OUTPUT_PACKETS,
            Self::AcctTerminateCause(_) => T::ACCT_TERMINATE_CAUSE,
            Self::AcctInputGigawords(_) => T::ACCT_INPUT_GIGAWORDS,
            Self::AcctOutputGigawords(_) => T::ACCT_OUTPUT_GIGAWORDS,
            Self::EventTimestamp(_) => T::EVENT_TIMESTAMP,
            Self::ChapChallenge(_) => T::CHAP_CHALLENGE,
            Self::NasPortType(_) => T::NAS_PORT_TYPE,
            Self::MessageAuthenticator(_) => T::MESSAGE_AUTHENTICATOR,
            Self::AcctInterimInterval(_) => T::ACCT_INTERIM_INTERVAL,
            Self::FramedPool(_) => T::FRAMED_POOL,
            Self::ErrorCause(_) => T::ERROR_CAUSE,
            Self::Other { kind, .. } => *kind,
        }
    }

    /// Writes Type, Length and Value.
    ///
    /// # Errors
    /// [`WriteError::ValueTooLong`] for a value over 253 octets, [`WriteError::NoSpace`] when
    /// the buffer is full.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let kind = self.kind();
        match *self {
            Self::UserName(v)
            | Self::UserPassword(v)
            | Self::FilterId(v)
            | Self::ReplyMessage(v)
            | Self::State(v)
            | Self::Class(v)
            | Self::CalledStationId(v)
            | Self::CallingStationId(v)
            | Self::NasIdentifier(v)
            | Self::ProxyState(v)
            | Self::AcctSessionId(v)
            | Self::ChapChallenge(v)
            | Self::FramedPool(v)
            | Self::Other { value: v, .. } => emit_raw(w, kind, &[v]),
            Self::ChapPassword { ident, response } => emit_raw(w, kind, &[&[ident], &response]),
            Self::NasIpAddress(a) | Self::FramedIpAddress(a) => emit_raw(w, kind, &[&a.octets()]),
            Self::VendorSpecific { vendor, data } => {
                emit_raw(w, kind, &[&vendor.0.to_be_bytes(), data])
            }
            Self::MessageAuthenticator(m) => emit_raw(w, kind, &[&m]),
            Self::NasPort(v)
            | Self::SessionTimeout(v)
            | Self::IdleTimeout(v)
            | Self::AcctDelayTime(v)
            | Self::AcctInputOctets(v)
            | Self::AcctOutputOctets(v)
            | Self::AcctSessionTime(v)
            | Self::AcctInputPackets(v)
            | Self::AcctOutputPackets(v)
            | Self::AcctInputGigawords(v)
            | Self::AcctOutputGigawords(v)
            | Self::EventTimestamp(v)
            | Self::AcctInterimInterval(v)
            | Self::ServiceType(ServiceType(v))
            | Self::FramedProtocol(FramedProtocol(v))
            | Self::AcctStatusType(AcctStatusType(v))
            | Self::AcctAuthentic(AcctAuthentic(v))
            | Self::AcctTerminateCause(AcctTerminateCause(v))
            | Self::NasPortType(NasPortType(v))
            | Self::ErrorCause(ErrorCause(v)) => emit_raw(w, kind, &[&v.to_be_bytes()]),
        }
    }
}

/// Writes one attribute whose value is the concatenation of `parts`.
pub(crate) fn emit_raw(
    w: &mut Writer<'_>,
    kind: AttributeType,
    parts: &[&[u8]],
) -> Result<(), WriteError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_VALUE_LEN {
        return Err(WriteError::ValueTooLong(len));
    }
    let total =
        u8::try_from(len + ATTRIBUTE_HEADER_LEN).map_err(|_| WriteError::ValueTooLong(len))?;
    if w.remaining() < usize::from(total) {
        return Err(WriteError::NoSpace);
    }
    w.put_u8(kind.0)?;
    w.put_u8(total)?;
    for part in parts {
        w.put_slice(part)?;
    }
    Ok(())
}
