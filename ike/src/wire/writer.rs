//! Emitting ISAKMP messages: payload chains with back-patched Next Payload and Length fields.

use super::{Cookie, ExchangeType, HEADER_LEN, MessageId, PayloadType};
use codec::{NoSpace, Writer};

/// A chain of payloads being written: remembers where the previous payload's Next Payload byte
/// is, so each new payload can announce itself there (RFC 2408 §3.2).
#[derive(Debug, Clone, Copy)]
pub struct Chain {
    next_at: Option<usize>,
}

impl Chain {
    /// A chain whose first type goes into the byte at `next_at` (the header's Next Payload).
    #[must_use]
    pub const fn starting_at(next_at: usize) -> Self {
        Self {
            next_at: Some(next_at),
        }
    }

    /// A chain whose first type is implied by its container (proposals inside an SA,
    /// transforms inside a proposal).
    #[must_use]
    pub const fn nested() -> Self {
        Self { next_at: None }
    }

    /// Appends one payload of type `kind` whose body `body` writes.
    ///
    /// # Errors
    /// [`NoSpace`] when it does not fit or the body exceeds 65 531 bytes.
    pub fn put(
        &mut self,
        w: &mut Writer<'_>,
        kind: PayloadType,
        body: impl FnOnce(&mut Writer<'_>) -> Result<(), NoSpace>,
    ) -> Result<(), NoSpace> {
        let start = w.len();
        w.put_u8(PayloadType::NONE.0)?;
        w.put_u8(0)?;
        let length = w.reserve_u16()?;
        body(w)?;
        w.patch_len_u16(length, start)?;
        if let Some(at) = self.next_at {
            *w.written_mut().get_mut(at).ok_or(NoSpace)? = kind.0;
        }
        self.next_at = Some(start);
        Ok(())
    }
}

/// Writes a whole ISAKMP message: header, then payloads, then the total Length.
#[derive(Debug)]
pub struct MessageWriter<'a> {
    w: Writer<'a>,
    chain: Chain,
}

impl<'a> MessageWriter<'a> {
    /// Starts a message with the given header fields; Next Payload and Length are filled in as
    /// payloads are added and by [`MessageWriter::finish`].
    ///
    /// # Errors
    /// [`NoSpace`] when `buf` is shorter than the header.
    pub fn new(
        buf: &'a mut [u8],
        initiator: Cookie,
        responder: Cookie,
        exchange: ExchangeType,
        flags: u8,
        message_id: MessageId,
    ) -> Result<Self, NoSpace> {
        let mut w = Writer::new(buf);
        w.put_slice(&initiator.0)?;
        w.put_slice(&responder.0)?;
        w.put_u8(PayloadType::NONE.0)?;
        w.put_u8(0x10)?;
        w.put_u8(exchange.0)?;
        w.put_u8(flags)?;
        w.put_u32(message_id.0)?;
        w.put_u32(0)?;
        Ok(Self {
            w,
            chain: Chain::starting_at(16),
        })
    }

    /// Appends one payload.
    ///
    /// # Errors
    /// [`NoSpace`] when it does not fit.
    pub fn payload(
        &mut self,
        kind: PayloadType,
        body: impl FnOnce(&mut Writer<'_>) -> Result<(), NoSpace>,
    ) -> Result<(), NoSpace> {
        self.chain.put(&mut self.w, kind, body)
    }

    /// Bytes written so far (header included).
    #[must_use]
    pub fn written(&self) -> &[u8] {
        self.w.written()
    }

    /// Appends raw bytes after the last payload (padding before encryption, or ciphertext).
    ///
    /// # Errors
    /// [`NoSpace`] when it does not fit.
    pub fn put_raw(&mut self, bytes: &[u8]) -> Result<(), NoSpace> {
        self.w.put_slice(bytes)
    }

    /// Mutable access to the bytes after the header, to encrypt them in place.
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.w.written_mut()[HEADER_LEN..]
    }

    /// Fills in Length and returns the message.
    ///
    /// # Errors
    /// [`NoSpace`] when the buffer cannot hold the length field (cannot happen after `new`).
    pub fn finish(mut self) -> Result<&'a mut [u8], NoSpace> {
        let len = u32::try_from(self.w.len()).map_err(|_| NoSpace)?;
        self.w
            .written_mut()
            .get_mut(24..28)
            .ok_or(NoSpace)?
            .copy_from_slice(&len.to_be_bytes());
        Ok(self.w.into_written())
    }
}

/// Writes data attributes (RFC 2408 §3.3).
#[derive(Debug, Clone, Copy)]
pub struct AttributeWriter;

impl AttributeWriter {
    /// A short (TV) attribute.
    ///
    /// # Errors
    /// [`NoSpace`].
    pub fn short(w: &mut Writer<'_>, kind: u16, value: u16) -> Result<(), NoSpace> {
        w.put_u16(0x8000 | kind)?;
        w.put_u16(value)
    }

    /// A variable (TLV) attribute.
    ///
    /// # Errors
    /// [`NoSpace`] when it does not fit or is longer than 65 535 bytes.
    pub fn long(w: &mut Writer<'_>, kind: u16, value: &[u8]) -> Result<(), NoSpace> {
        w.put_u16(kind & 0x7fff)?;
        w.put_u16(u16::try_from(value.len()).map_err(|_| NoSpace)?)?;
        w.put_slice(value)
    }

    /// A number: short form when it fits in 16 bits, else a 4-byte variable form (life
    /// durations).
    ///
    /// # Errors
    /// [`NoSpace`].
    pub fn number(w: &mut Writer<'_>, kind: u16, value: u32) -> Result<(), NoSpace> {
        match u16::try_from(value) {
            Ok(v) => Self::short(w, kind, v),
            Err(_) => Self::long(w, kind, &value.to_be_bytes()),
        }
    }
}
