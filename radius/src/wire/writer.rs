//! Builds a RADIUS packet in a caller buffer, attribute by attribute, without allocating.
//!
//! ```
//! # use l2sec_radius::wire::{AttributeType, Authenticator, Attr, Code, Identifier, Packet, PacketWriter};
//! # use l2sec_radius::crypto::Secret;
//! let secret = Secret::new("s3cret");
//! let mut buf = [0u8; 4096];
//! let mut w = PacketWriter::new(&mut buf, Code::ACCESS_REQUEST, Identifier(1), &Authenticator([7; 16])).unwrap();
//! w.message_authenticator().unwrap(); // first, as RFC 3579 §3.2 and BlastRADIUS advice want
//! w.attr(&Attr::UserName(b"hb")).unwrap();
//! w.user_password(b"admin@123", &secret).unwrap();
//! let packet = w.finish_request(&secret).unwrap();
//! assert_eq!(Packet::new_checked(&*packet).unwrap().attributes().count(), 3);
//! ```

use super::attribute::emit_raw;
use super::microsoft::emit_vendor;
use super::{
    Attr, AttributeType, Authenticator, Code, HEADER_LEN, Identifier, MAX_LEN, MsAttr,
    MsAttributeType,
};
use crate::crypto::{self, Secret};
use codec::Writer;

/// Why a packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The buffer, or the 4096-octet packet limit (RFC 2865 §3), is full.
    #[error("packet does not fit")]
    NoSpace,
    /// A value longer than one attribute can carry (253 octets, fewer inside Vendor-Specific).
    #[error("value of {0} octets does not fit one attribute")]
    ValueTooLong(usize),
    /// A User-Password longer than 128 octets (RFC 2865 §5.2).
    #[error("password of {0} octets is longer than 128")]
    PasswordTooLong(usize),
    /// A key longer than Key-Length can say (RFC 2548 §2.4.2).
    #[error("key of {0} octets is too long")]
    KeyTooLong(usize),
    /// A salt without its high bit (RFC 2548 §2.4.2).
    #[error("salt without its most significant bit")]
    BadSalt,
    /// A second Message-Authenticator (RFC 3579 §3.2 allows one).
    #[error("Message-Authenticator already present")]
    DuplicateMessageAuthenticator,
}

impl From<codec::NoSpace> for WriteError {
    fn from(_: codec::NoSpace) -> Self {
        Self::NoSpace
    }
}

/// Writes one packet: the header first, then attributes, then `finish_*` fills in Length,
/// Message-Authenticator and the Authenticator.
#[derive(Debug)]
pub struct PacketWriter<'b> {
    w: Writer<'b>,
    /// Offset of the Message-Authenticator value, once reserved.
    message_authenticator_at: Option<usize>,
}

impl<'b> PacketWriter<'b> {
    /// Starts a packet in `buf` (of which at most 4096 octets are used). `authenticator` is
    /// the random Request Authenticator of an Access-Request or Status-Server; for other codes
    /// it is a placeholder that `finish_*` overwrites.
    ///
    /// # Errors
    /// [`WriteError::NoSpace`] if `buf` is shorter than the 20-octet header.
    pub fn new(
        buf: &'b mut [u8],
        code: Code,
        identifier: Identifier,
        authenticator: &Authenticator,
    ) -> Result<Self, WriteError> {
        let limit = buf.len().min(MAX_LEN);
        let mut w = Writer::new(&mut buf[..limit]);
        w.put_u8(code.0)?;
        w.put_u8(identifier.0)?;
        w.put_u16(0)?;
        w.put_slice(&authenticator.0)?;
        Ok(Self {
            w,
            message_authenticator_at: None,
        })
    }

    /// Octets written so far.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.w.len()
    }

    /// Whether only the header has been written.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.w.len() <= HEADER_LEN
    }

    /// The Authenticator field as written so far.
    #[must_use]
    pub fn authenticator(&self) -> Authenticator {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.w.written()[4..HEADER_LEN]);
        Authenticator(a)
    }

    fn code(&self) -> Code {
        Code(self.w.written()[0])
    }

    /// Appends a typed attribute.
    ///
    /// # Errors
    /// [`WriteError::NoSpace`] or [`WriteError::ValueTooLong`].
    pub fn attr(&mut self, attr: &Attr<'_>) -> Result<(), WriteError> {
        if let Attr::MessageAuthenticator(_) = attr {
            return self.message_authenticator();
        }
        attr.emit(&mut self.w)
    }

    /// Appends an attribute with a raw value.
    ///
    /// # Errors
    /// [`WriteError::NoSpace`] or [`WriteError::ValueTooLong`].
    pub fn raw(&mut self, kind: AttributeType, value: &[u8]) -> Result<(), WriteError> {
        if kind == AttributeType::MESSAGE_AUTHENTICATOR {
            return self.message_authenticator();
        }
        emit_raw(&mut self.w, kind, &[value])
    }

    /// Appends a Microsoft sub-attribute in its own Vendor-Specific attribute.
    ///
    /// # Errors
    /// [`WriteError::NoSpace`] or [`WriteError::ValueTooLong`].
    pub fn ms_attr(&mut self, attr: &MsAttr<'_>) -> Result<(), WriteError> {
        attr.emit(&mut self.w)
    }

    /// Appends User-Password, hidden with the secret and this packet's Authenticator
    /// (RFC 2865 §5.2). Only meaningful in an Access-Request.
    ///
    /// # Errors
    /// [`WriteError::PasswordTooLong`] past 128 octets, [`WriteError::NoSpace`].
    pub fn user_password(&mut self, password: &[u8], secret: &Secret) -> Result<(), WriteError> {
        if password.len() > crypto::MAX_PASSWORD_LEN {
            return Err(WriteError::PasswordTooLong(password.len()));
        }
        let authenticator = self.authenticator();
        let len = crypto::hidden_password_len(password.len());
        let total = u8::try_from(len + 2).map_err(|_| WriteError::ValueTooLong(len))?;
        if self.w.remaining() < usize::from(total) {
            return Err(WriteError::NoSpace);
        }
        self.w.put_u8(AttributeType::USER_PASSWORD.0)?;
        self.w.put_u8(total)?;
        let out = self.w.put_with(len)?;
        crypto::hide_user_password(password, secret, &authenticator, out)?;
        Ok(())
    }

    /// Appends MS-MPPE-Send-Key or MS-MPPE-Recv-Key, salt-encrypted (RFC 2548 §2.4.2) with the
    /// Request Authenticator of the Access-Request being answered. The salts of one packet
    /// must differ.
    ///
    /// # Errors
    /// [`WriteError::KeyTooLong`], [`WriteError::BadSalt`], [`WriteError::NoSpace`].
    pub fn mppe_key(
        &mut self,
        kind: MsAttributeType,
        key: &[u8],
        salt: [u8; 2],
        secret: &Secret,
        request_authenticator: &Authenticator,
    ) -> Result<(), WriteError> {
        let mut value = [0u8; 253];
        let len = crypto::encrypt_salted(key, salt, secret, request_authenticator, &mut value)?;
        let value = value.get(..len).ok_or(WriteError::KeyTooLong(key.len()))?;
        emit_vendor(&mut self.w, kind, &[value])
    }

    /// Reserves Message-Authenticator (RFC 3579 §3.2), computed by `finish_*`.
    ///
    /// # Errors
    /// [`WriteError::DuplicateMessageAuthenticator`] the second time, [`WriteError::NoSpace`].
    pub fn message_authenticator(&mut self) -> Result<(), WriteError> {
        if self.message_authenticator_at.is_some() {
            return Err(WriteError::DuplicateMessageAuthenticator);
        }
        let at = self.w.len() + 2;
        emit_raw(
            &mut self.w,
            AttributeType::MESSAGE_AUTHENTICATOR,
            &[&[0; 16]],
        )?;
        self.message_authenticator_at = Some(at);
        Ok(())
    }

    fn set_length(&mut self) -> Result<(), WriteError> {
        let len = u16::try_from(self.w.len()).map_err(|_| WriteError::NoSpace)?;
        self.w.written_mut()[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn sign(&mut self, authenticator_for_mac: &Authenticator, secret: &Secret) {
        if let Some(at) = self.message_authenticator_at {
            let mac =
                crypto::message_authenticator(self.w.written(), authenticator_for_mac, at, secret);
            self.w.written_mut()[at..at + 16].copy_from_slice(&mac);
        }
    }

    /// Finishes a request. An Access-Request or Status-Server keeps its random Authenticator
    /// and Message-Authenticator is computed over it. Accounting-Request, Disconnect-Request and
    /// CoA-Request get Message-Authenticator over a zero Authenticator, then the Request
    /// Authenticator MD5(packet with zero Authenticator + secret) (RFC 2866 §3,
    /// RFC 5176 §2.3, RFC 3579 §3.2 as RFC 5176 §3.1 applies it).
    ///
    /// # Errors
    /// Never in practice; [`WriteError::NoSpace`] if the length cannot be written.
    pub fn finish_request(mut self, secret: &Secret) -> Result<&'b mut [u8], WriteError> {
        self.set_length()?;
        if self.code().has_computed_request_authenticator() {
            self.w.written_mut()[4..HEADER_LEN].copy_from_slice(&Authenticator::ZERO.0);
            self.sign(&Authenticator::ZERO, secret);
            let a = crypto::packet_authenticator(self.w.written(), &Authenticator::ZERO, secret);
            self.w.written_mut()[4..HEADER_LEN].copy_from_slice(&a);
        } else {
            let own = self.authenticator();
            self.sign(&own, secret);
        }
        Ok(self.w.into_written())
    }

    /// Finishes an answer to a request whose Authenticator was `request_authenticator`:
    /// Message-Authenticator over it, then the Response Authenticator (RFC 2865 §3,
    /// RFC 3579 §3.2).
    ///
    /// # Errors
    /// Never in practice; [`WriteError::NoSpace`] if the length cannot be written.
    pub fn finish_response(
        mut self,
        secret: &Secret,
        request_authenticator: &Authenticator,
    ) -> Result<&'b mut [u8], WriteError> {
        self.set_length()?;
        self.sign(request_authenticator, secret);
        let a = crypto::packet_authenticator(self.w.written(), request_authenticator, secret);
        self.w.written_mut()[4..HEADER_LEN].copy_from_slice(&a);
        Ok(self.w.into_written())
    }
}
