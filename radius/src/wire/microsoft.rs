//! Microsoft vendor-specific attributes, Vendor-Id 311 (RFC 2548).
//!
//! Each one travels as a sub-attribute of Vendor-Specific (RFC 2865 §5.26):
//!
//! ```text
//! | Type = 26 | Length | Vendor-Id = 311 (4 octets) | Vendor-Type | Vendor-Length | Value ...
//! ```

use super::attribute::VendorAttribute;
use super::{
    ATTRIBUTE_HEADER_LEN, AttributeType, Error, MAX_VALUE_LEN, MsAttributeType, Result, VendorId,
    WriteError,
};
use codec::Writer;
use std::net::Ipv4Addr;

/// The value of MS-CHAP2-Response (RFC 2548 §2.3.2): 50 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsChap2Response {
    /// The PPP MS-CHAP-V2 Identifier.
    pub ident: u8,
    /// Reserved, zero (RFC 2548 §2.3.2).
    pub flags: u8,
    /// The peer's 16-octet challenge.
    pub peer_challenge: [u8; 16],
    /// Reserved, zero; carried as received.
    pub reserved: [u8; 8],
    /// The 24-octet NT-Response (RFC 2759 §8.1).
    pub nt_response: [u8; 24],
}

/// The length of an MS-CHAP2-Response value.
pub const MS_CHAP2_RESPONSE_LEN: usize = 50;

/// A salt-encrypted key as received: MS-MPPE-Send-Key or MS-MPPE-Recv-Key (RFC 2548 §2.4.2,
/// §2.4.3). Decrypt it with [`crate::crypto::decrypt_salted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedKey<'a> {
    /// The Salt; its high bit is set (RFC 2548 §2.4.2).
    pub salt: [u8; 2],
    /// The encrypted String: a non-empty multiple of 16 octets.
    pub string: &'a [u8],
}

/// A typed Microsoft sub-attribute. Anything not listed is [`MsAttr::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsAttr<'a> {
    /// MS-CHAP-Challenge (RFC 2548 §2.1.2): the authenticator challenge, 16 octets for
    /// MS-CHAP-V2.
    ChapChallenge(&'a [u8]),
    /// MS-CHAP-Error (RFC 2548 §2.1.5): the PPP Identifier and the Failure message text
    /// (`E=691 R=0 C=… V=3 M=…`, RFC 2759 §6).
    ChapError {
        /// The PPP Identifier.
        ident: u8,
        /// The text for the PPP Failure packet.
        message: &'a [u8],
    },
    /// MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4): 1 allowed, 2 required.
    MppeEncryptionPolicy(u32),
    /// MS-MPPE-Encryption-Types (RFC 2548 §2.4.5): bit 0x2 = 40-bit, 0x4 = 128-bit RC4.
    MppeEncryptionTypes(u32),
    /// MS-MPPE-Send-Key (RFC 2548 §2.4.2): the key for what the NAS sends.
    MppeSendKey(EncryptedKey<'a>),
    /// MS-MPPE-Recv-Key (RFC 2548 §2.4.3): the key for what the NAS receives.
    MppeRecvKey(EncryptedKey<'a>),
    /// MS-CHAP2-Response (RFC 2548 §2.3.2).
    Chap2Response(MsChap2Response),
    /// MS-CHAP2-Success (RFC 2548 §2.3.3): the PPP Identifier and the 42-octet authenticator
    /// response `S=<40 hex digits>` for the PPP Success message.
    Chap2Success {
        /// The PPP Identifier.
        ident: u8,
        /// The authenticator response string.
        message: &'a [u8],
    },
    /// MS-Primary-DNS-Server (RFC 2548 §2.7.6).
    PrimaryDnsServer(Ipv4Addr),
    /// MS-Secondary-DNS-Server (RFC 2548 §2.7.7).
    SecondaryDnsServer(Ipv4Addr),
    /// MS-Primary-NBNS-Server (RFC 2548 §2.7.8).
    PrimaryNbnsServer(Ipv4Addr),
    /// MS-Secondary-NBNS-Server (RFC 2548 §2.7.9).
    SecondaryNbnsServer(Ipv4Addr),
    /// Any other Microsoft sub-attribute, unparsed.
    Other {
        /// The Vendor-Type.
        kind: MsAttributeType,
        /// The value.
        value: &'a [u8],
    },
}

fn exact<const N: usize>(attribute: MsAttributeType, value: &[u8]) -> Result<[u8; N]> {
    value.try_into().map_err(|_| Error::MsValueLength {
        attribute,
        len: value.len(),
    })
}

fn ident_and_text(attribute: MsAttributeType, value: &[u8]) -> Result<(u8, &[u8])> {
    value
        .split_first()
        .map(|(i, t)| (*i, t))
        .ok_or(Error::MsValueLength {
            attribute,
            len: value.len(),
        })
}

fn encrypted(attribute: MsAttributeType, value: &[u8]) -> Result<EncryptedKey<'_>> {
    let Some((&[s0, s1], string)) = value.split_first_chunk::<2>() else {
        return Err(Error::MsValueLength {
            attribute,
            len: value.len(),
        });
    };
    if string.is_empty() || !string.len().is_multiple_of(16) {
        return Err(Error::MsValueLength {
            attribute,
            len: value.len(),
        });
    }
    if s0 & 0x80 == 0 {
        return Err(Error::Encrypted);
    }
    Ok(EncryptedKey {
        salt: [s0, s1],
        string,
    })
}

impl<'a> MsAttr<'a> {
    /// Types one sub-attribute of a Microsoft Vendor-Specific attribute.
    ///
    /// # Errors
    /// [`Error::MsValueLength`] for a value of the wrong size, [`Error::Encrypted`] for a salt
    /// without its high bit.
    pub fn parse(sub: VendorAttribute<'a>) -> Result<Self> {
        use MsAttributeType as T;
        let kind = MsAttributeType(sub.kind);
        let value = sub.value;
        Ok(match kind {
            T::MS_CHAP_CHALLENGE => {
                if value.is_empty() {
                    return Err(Error::MsValueLength {
                        attribute: kind,
                        len: 0,
                    });
                }
                Self::ChapChallenge(value)
            }
            T::MS_CHAP_ERROR => {
                let (ident, message) = ident_and_text(kind, value)?;
                Self::ChapError { ident, message }
            }
            T::MS_MPPE_ENCRYPTION_POLICY => {
                Self::MppeEncryptionPolicy(u32::from_be_bytes(exact(kind, value)?))
            }
            T::MS_MPPE_ENCRYPTION_TYPES => {
                Self::MppeEncryptionTypes(u32::from_be_bytes(exact(kind, value)?))
            }
            T::MS_MPPE_SEND_KEY => Self::MppeSendKey(encrypted(kind, value)?),
            T::MS_MPPE_RECV_KEY => Self::MppeRecvKey(encrypted(kind, value)?),
            T::MS_CHAP2_RESPONSE => {
                let bytes: [u8; MS_CHAP2_RESPONSE_LEN] = exact(kind, value)?;
                let mut r = codec::Reader::new(&bytes);
                let parsed = (|| {
                    Ok::<_, codec::Truncated>(MsChap2Response {
                        ident: r.u8()?,
                        flags: r.u8()?,
                        peer_challenge: r.array()?,
                        reserved: r.array()?,
                        nt_response: r.array()?,
                    })
                })();
                Self::Chap2Response(parsed.map_err(|_| Error::MsValueLength {
                    attribute: kind,
                    len: value.len(),
                })?)
            }
            T::MS_CHAP2_SUCCESS => {
                let (ident, message) = ident_and_text(kind, value)?;
                Self::Chap2Success { ident, message }
            }
            T::MS_PRIMARY_DNS_SERVER => {
                Self::PrimaryDnsServer(Ipv4Addr::from(exact::<4>(kind, value)?))
            }
            T::MS_SECONDARY_DNS_SERVER => {
                Self::SecondaryDnsServer(Ipv4Addr::from(exact::<4>(kind, value)?))
            }
            T::MS_PRIMARY_NBNS_SERVER => {
                Self::PrimaryNbnsServer(Ipv4Addr::from(exact::<4>(kind, value)?))
            }
            T::MS_SECONDARY_NBNS_SERVER => {
                Self::SecondaryNbnsServer(Ipv4Addr::from(exact::<4>(kind, value)?))
            }
            _ => Self::Other { kind, value },
        })
    }

    /// The Vendor-Type.
    #[must_use]
    pub const fn kind(&self) -> MsAttributeType {
        use MsAttributeType as T;
        match self {
            Self::ChapChallenge(_) => T::MS_CHAP_CHALLENGE,
            Self::ChapError { .. } => T::MS_CHAP_ERROR,
            Self::MppeEncryptionPolicy(_) => T::MS_MPPE_ENCRYPTION_POLICY,
            Self::MppeEncryptionTypes(_) => T::MS_MPPE_ENCRYPTION_TYPES,
            Self::MppeSendKey(_) => T::MS_MPPE_SEND_KEY,
            Self::MppeRecvKey(_) => T::MS_MPPE_RECV_KEY,
            Self::Chap2Response(_) => T::MS_CHAP2_RESPONSE,
            Self::Chap2Success { .. } => T::MS_CHAP2_SUCCESS,
            Self::PrimaryDnsServer(_) => T::MS_PRIMARY_DNS_SERVER,
            Self::SecondaryDnsServer(_) => T::MS_SECONDARY_DNS_SERVER,
            Self::PrimaryNbnsServer(_) => T::MS_PRIMARY_NBNS_SERVER,
            Self::SecondaryNbnsServer(_) => T::MS_SECONDARY_NBNS_SERVER,
            Self::Other { kind, .. } => *kind,
        }
    }

    /// Writes this sub-attribute as its own Vendor-Specific attribute.
    ///
    /// # Errors
    /// [`WriteError::ValueTooLong`] when it does not fit one attribute,
    /// [`WriteError::NoSpace`] when the buffer is full.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let kind = self.kind();
        match *self {
            Self::ChapChallenge(v) | Self::Other { value: v, .. } => emit_vendor(w, kind, &[v]),
            Self::ChapError { ident, message } | Self::Chap2Success { ident, message } => {
                emit_vendor(w, kind, &[&[ident], message])
            }
            Self::MppeEncryptionPolicy(v) | Self::MppeEncryptionTypes(v) => {
                emit_vendor(w, kind, &[&v.to_be_bytes()])
            }
            Self::MppeSendKey(k) | Self::MppeRecvKey(k) => {
                emit_vendor(w, kind, &[&k.salt, k.string])
            }
            Self::Chap2Response(r) => emit_vendor(
                w,
                kind,
                &[
                    &[r.ident, r.flags],
                    &r.peer_challenge,
                    &r.reserved,
                    &r.nt_response,
                ],
            ),
            Self::PrimaryDnsServer(a)
            | Self::SecondaryDnsServer(a)
            | Self::PrimaryNbnsServer(a)
            | Self::SecondaryNbnsServer(a) => emit_vendor(w, kind, &[&a.octets()]),
        }
    }
}

/// Writes one Microsoft sub-attribute, wrapped in its own Vendor-Specific attribute, whose
/// value is the concatenation of `parts`.
pub(crate) fn emit_vendor(
    w: &mut Writer<'_>,
    kind: MsAttributeType,
    parts: &[&[u8]],
) -> Result<(), WriteError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // Vendor-Id (4) and the sub-attribute header (2) share the 253 octets of value.
    if len + 4 + ATTRIBUTE_HEADER_LEN > MAX_VALUE_LEN {
        return Err(WriteError::ValueTooLong(len));
    }
    let sub_len =
        u8::try_from(len + ATTRIBUTE_HEADER_LEN).map_err(|_| WriteError::ValueTooLong(len))?;
    let total = sub_len + 4 + 2;
    if w.remaining() < usize::from(total) {
        return Err(WriteError::NoSpace);
    }
    w.put_u8(AttributeType::VENDOR_SPECIFIC.0)?;
    w.put_u8(total)?;
    w.put_u32(VendorId::MICROSOFT.0)?;
    w.put_u8(kind.0)?;
    w.put_u8(sub_len)?;
    for part in parts {
        w.put_slice(part)?;
    }
    Ok(())
}
