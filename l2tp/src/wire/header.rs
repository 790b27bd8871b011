//! The L2TP header (RFC 2661 §3.1): a checked view for input, writers for control headers and
//! for data headers placed in caller-reserved headroom.
//!
//! ```text
//!  0               1               2               3
//! |T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |       Length (if L)           |
//! |          Tunnel ID            |          Session ID           |
//! |          Ns (if S)            |          Nr (if S)            |
//! |       Offset Size (if O)      |  Offset pad … (if O)          |
//! ```
//!
//! Every offset is derived from the flags in one place (`ids_at`, `fixed_len`,
//! `header_len`, `end`); nothing else re-derives it.

use core::ops::Range;

use super::Error;
use crate::{Seq, SessionId, TunnelId};

/// T: 1 for a control message, 0 for a data message.
const TYPE: u16 = 0x8000;
/// L: the Length field is present.
const LENGTH: u16 = 0x4000;
/// S: the Ns and Nr fields are present.
const SEQUENCE: u16 = 0x0800;
/// O: the Offset Size field (and that many pad bytes) is present.
const OFFSET: u16 = 0x0200;
/// P: the data message should be treated preferentially (RFC 2661 §3.1).
const PRIORITY: u16 = 0x0100;
/// Ver: the protocol version in the low four bits.
const VERSION: u16 = 0x000f;

/// The only version this crate speaks. 1 is L2F (RFC 2341), 3 is L2TPv3 (RFC 3931).
pub const VERSION_2: u8 = 2;

/// Length of the header of every control message: flags, Length, Tunnel ID, Session ID, Ns, Nr.
pub const CONTROL_HEADER_LEN: usize = 12;

/// An L2TP packet over any byte container; accessors are panic-free once
/// [`Packet::new_checked`] succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps bytes received from the network, checking that every present field fits.
    ///
    /// # Errors
    /// [`Error::Truncated`] when a present field runs past the bytes,
    /// [`Error::UnsupportedVersion`] for anything but version 2, [`Error::ControlFlags`] for a
    /// control message without L and S or with O, [`Error::BadLength`] when Length exceeds the
    /// datagram or ends inside the header.
    pub fn new_checked(buf: T) -> Result<Self, Error> {
        let packet = Self { buf };
        packet.check()?;
        Ok(packet)
    }

    /// Wraps a buffer without checks (for bytes this crate wrote itself). Accessors still never
    /// panic, but return meaningless values if the buffer is not a well-formed header.
    pub const fn new_unchecked(buf: T) -> Self {
        Self { buf }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    fn check(&self) -> Result<(), Error> {
        let len = self.buf.as_ref().len();
        if len < 2 {
            return Err(Error::Truncated);
        }
        // RFC 2661 §3.1: a packet with an unknown Ver is discarded (1 is L2F, 3 is L2TPv3).
        if self.version() != VERSION_2 {
            return Err(Error::UnsupportedVersion(self.version()));
        }
        // RFC 2661 §3.1: control messages have L and S set and O clear.
        if self.is_control() && (!self.has(LENGTH) || !self.has(SEQUENCE) || self.has(OFFSET)) {
            return Err(Error::ControlFlags);
        }
        if len < self.fixed_len() {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len > len {
            return Err(Error::Truncated);
        }
        let end = self.end();
        // RFC 2661 §3.1: Length is the whole message in octets; it cannot end inside the header
        // nor past the datagram. Bytes after it are ignored.
        if end > len || end < header_len {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Whether this is a control message (T bit).
    #[must_use]
    pub fn is_control(&self) -> bool {
        self.has(TYPE)
    }

    /// Whether this is a Zero-Length Body control message: an explicit acknowledgement that
    /// carries no AVPs (RFC 2661 §5.8).
    #[must_use]
    pub fn is_zlb(&self) -> bool {
        self.is_control() && self.payload().is_empty()
    }

    /// Whether the P bit asks for preferential treatment of a data message (RFC 2661 §3.1).
    #[must_use]
    pub fn priority(&self) -> bool {
        self.has(PRIORITY)
    }

    /// The Ver field (always 2 after [`Packet::new_checked`]).
    #[must_use]
    pub fn version(&self) -> u8 {
        let [_, version] = (self.flags() & VERSION).to_be_bytes();
        version
    }

    /// The receiver's tunnel identifier.
    #[must_use]
    pub fn tunnel_id(&self) -> TunnelId {
        TunnelId(self.u16_at(self.ids_at()))
    }

    /// The receiver's session identifier (0 for tunnel-wide control messages).
    #[must_use]
    pub fn session_id(&self) -> SessionId {
        SessionId(self.u16_at(self.ids_at() + 2))
    }

    /// Ns and Nr (RFC 2661 §5.8): always present on control messages, optional on data messages
    /// (where Nr carries no meaning).
    #[must_use]
    pub fn sequence(&self) -> Option<(Seq, Seq)> {
        let at = self.ids_at() + 4;
        self.has(SEQUENCE)
            .then(|| (Seq(self.u16_at(at)), Seq(self.u16_at(at + 2))))
    }

    /// Ns, if present.
    #[must_use]
    pub fn ns(&self) -> Option<Seq> {
        self.sequence().map(|(ns, _)| ns)
    }

    /// Nr, if present.
    #[must_use]
    pub fn nr(&self) -> Option<Seq> {
        self.sequence().map(|(_, nr)| nr)
    }

    /// The header length, offset pad included.
    #[must_use]
    pub fn header_len(&self) -> usize {
        let pad = if self.has(OFFSET) {
            usize::from(self.u16_at(self.fixed_len() - 2))
        } else {
            0
        };
        self.fixed_len() + pad
    }

    /// The message body: after the header (and any offset pad), up to Length if present.
    /// For a control message these are the AVPs, for a data message the PPP frame.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.buf
            .as_ref()
            .get(self.header_len()..self.end())
            .unwrap_or_default()
    }

    /// The byte range of [`Packet::payload`] within the buffer (for in-place processing).
    #[must_use]
    pub fn payload_range(&self) -> Range<usize> {
        self.header_len()..self.end()
    }

    fn has(&self, bit: u16) -> bool {
        self.flags() & bit != 0
    }

    fn flags(&self) -> u16 {
        self.u16_at(0)
    }

    /// Offset of the Tunnel ID: after the flags and the optional Length.
    fn ids_at(&self) -> usize {
        2 + 2 * usize::from(self.has(LENGTH))
    }

    /// Length of the header without the offset pad.
    fn fixed_len(&self) -> usize {
        self.ids_at() + 4 + 4 * usize::from(self.has(SEQUENCE)) + 2 * usize::from(self.has(OFFSET))
    }

    /// Offset just past the message: Length if present, otherwise the whole datagram.
    fn end(&self) -> usize {
        if self.has(LENGTH) {
            usize::from(self.u16_at(2))
        } else {
            self.buf.as_ref().len()
        }
    }

    /// Reads a big-endian `u16`; bytes beyond the buffer read as zero, so an unchecked view
    /// cannot panic here either.
    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buf.as_ref();
        match (b.get(at), b.get(at + 1)) {
            (Some(&hi), Some(&lo)) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Rewrites Ns and Nr in place (a retransmission carries the current Nr, RFC 2661 §5.8).
    ///
    /// # Errors
    /// [`Error::NoSequence`] when the header has no Ns/Nr fields, [`Error::Truncated`] when the
    /// buffer is too short for them.
    pub fn set_sequence(&mut self, ns: Seq, nr: Seq) -> Result<(), Error> {
        if !self.has(SEQUENCE) {
            return Err(Error::NoSequence);
        }
        let at = self.ids_at() + 4;
        let field = self
            .buf
            .as_mut()
            .get_mut(at..at + 4)
            .ok_or(Error::Truncated)?;
        let [a, b] = ns.0.to_be_bytes();
        let [c, d] = nr.0.to_be_bytes();
        field.copy_from_slice(&[a, b, c, d]);
        Ok(())
    }
}

/// Writes a whole control message into `buf` — the 12-byte header (T, L, S set; Ver 2), then
/// whatever `body` writes (the AVPs) — back-patches Length and returns the message length.
///
/// An empty body gives a ZLB acknowledgement.
///
/// # Errors
/// [`codec::NoSpace`] when the message does not fit in `buf` or exceeds 65535 bytes.
pub fn write_control(
    buf: &mut [u8],
    tunnel: TunnelId,
    session: SessionId,
    ns: Seq,
    nr: Seq,
    body: impl FnOnce(&mut codec::Writer<'_>) -> Result<(), codec::NoSpace>,
) -> Result<usize, codec::NoSpace> {
    let mut w = codec::Writer::new(buf);
    w.put_u16(TYPE | LENGTH | SEQUENCE | u16::from(VERSION_2))?;
    let length = w.reserve_u16()?;
    w.put_u16(tunnel.0)?;
    w.put_u16(session.0)?;
    w.put_u16(ns.0)?;
    w.put_u16(nr.0)?;
    body(&mut w)?;
    w.patch_len_u16(length, 0)?;
    Ok(w.len())
}

/// Length of the data header [`write_data_header`] writes: 6 bytes, or 10 with Ns/Nr.
#[must_use]
pub const fn data_header_len(ns: Option<Seq>) -> usize {
    if ns.is_some() { 10 } else { 6 }
}

/// Writes a minimal data header (no Length, no offset) in the headroom just before
/// `buf[payload]` and returns the range of the whole L2TP message. The payload is not moved.
///
/// With `ns` the header carries Ns and an Nr of zero (Nr has no meaning on data messages,
/// RFC 2661 §3.1); without it, no sequence fields.
///
/// # Errors
/// [`codec::NoSpace`] when `payload` is not a range inside `buf` or leaves less headroom than
/// [`data_header_len`].
pub fn write_data_header(
    buf: &mut [u8],
    payload: Range<usize>,
    tunnel: TunnelId,
    session: SessionId,
    ns: Option<Seq>,
) -> Result<Range<usize>, codec::NoSpace> {
    if payload.start > payload.end || payload.end > buf.len() {
        return Err(codec::NoSpace);
    }
    let start = payload
        .start
        .checked_sub(data_header_len(ns))
        .ok_or(codec::NoSpace)?;
    let header = buf.get_mut(start..payload.start).ok_or(codec::NoSpace)?;
    let mut w = codec::Writer::new(header);
    let flags = if ns.is_some() { SEQUENCE } else { 0 } | u16::from(VERSION_2);
    w.put_u16(flags)?;
    w.put_u16(tunnel.0)?;
    w.put_u16(session.0)?;
    if let Some(ns) = ns {
        w.put_u16(ns.0)?;
        w.put_u16(0)?;
    }
    Ok(start..payload.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    #[test]
    fn parses_a_captured_zlb() {
        let bytes = hex!("c802000c589cd22400020004");
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.is_control() && p.is_zlb() && !p.priority());
        assert_eq!(p.version(), 2);
        assert_eq!(p.tunnel_id(), TunnelId(22684));
        assert_eq!(p.session_id(), SessionId(53796));
        assert_eq!(p.sequence(), Some((Seq(2), Seq(4))));
        assert_eq!((p.ns(), p.nr()), (Some(Seq(2)), Some(Seq(4))));
        assert_eq!(p.header_len(), 12);
    }

    #[test]
    fn versions_other_than_2_are_rejected_with_their_number() {
        // L2F (1) and L2TPv3 (3) share the flags word layout.
        for (version, bytes) in [
            (1, hex!("c801000c0001000000000000")),
            (3, hex!("c803000c0001000000000000")),
            (0, hex!("c800000c0001000000000000")),
        ] {
            assert_eq!(
                Packet::new_checked(&bytes[..]).unwrap_err(),
                Error::UnsupportedVersion(version)
            );
        }
    }

    #[test]
    fn control_messages_need_length_and_sequence_and_no_offset() {
        // T without L.
        assert_eq!(
            Packet::new_checked(&hex!("8802000100020003000400")[..]).unwrap_err(),
            Error::ControlFlags
        );
        // T without S.
        assert_eq!(
            Packet::new_checked(&hex!("c00200080001000200")[..]).unwrap_err(),
            Error::ControlFlags
        );
        // T with O.
        assert_eq!(
            Packet::new_checked(&hex!("ca02000e00010000000000000000")[..]).unwrap_err(),
            Error::ControlFlags
        );
    }

    #[test]
    fn length_must_cover_the_header_and_fit_the_datagram() {
        assert_eq!(
            Packet::new_checked(&hex!("c802000b0001000000000000")[..]).unwrap_err(),
            Error::BadLength
        );
        assert_eq!(
            Packet::new_checked(&hex!("c802000d0001000000000000")[..]).unwrap_err(),
            Error::BadLength
        );
        assert_eq!(
            Packet::new_checked(&hex!("c802")[..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&hex!("c8")[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn bytes_after_length_are_not_payload() {
        let bytes = hex!("c802000e000100000000000011 22 33");
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.payload(), &[0x11, 0x22]);
        assert_eq!(p.payload_range(), 12..14);
    }

    #[test]
    fn data_header_with_offset_pad_skips_the_pad() {
        // L, O, P set; Length 16; offset size 3; pad aa bb cc; payload ff 03.
        let bytes = hex!("4302 0010 0007 0009 0003 aabbcc ff03 eeee");
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert!(!p.is_control() && !p.is_zlb() && p.priority());
        assert_eq!((p.tunnel_id(), p.session_id()), (TunnelId(7), SessionId(9)));
        assert_eq!(p.sequence(), None);
        assert_eq!(p.header_len(), 13);
        assert_eq!(p.payload(), &[0xff, 0x03, 0xee]);
        // A pad that runs past the datagram.
        assert_eq!(
            Packet::new_checked(&hex!("0202 0007 0009 0005 aabb")[..]).unwrap_err(),
            Error::Truncated
        );
        // A pad that runs past Length.
        assert_eq!(
            Packet::new_checked(&hex!("4202 000b 0007 0009 0002 aabb cc")[..]).unwrap_err(),
            Error::BadLength
        );
    }

    #[test]
    fn minimal_data_message_without_length_runs_to_the_end() {
        let bytes = hex!("0002 0007 0009 ff03c021");
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.payload(), &hex!("ff03c021"));
        assert_eq!(
            Packet::new_checked(&hex!("0002 0007 00")[..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn every_prefix_of_a_control_message_is_rejected() {
        let bytes = hex!("c8020014d5e60000000100018008000000000003");
        for len in 0..bytes.len() {
            assert!(
                Packet::new_checked(&bytes[..len]).is_err(),
                "accepted a {len}-byte prefix"
            );
        }
        assert!(Packet::new_checked(&bytes[..]).is_ok());
    }

    #[test]
    fn set_sequence_rewrites_ns_and_nr() {
        let mut bytes = hex!("c802000c589cd22400020004");
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_sequence(Seq(7), Seq(9)).unwrap();
        assert_eq!(p.sequence(), Some((Seq(7), Seq(9))));
        let mut data = hex!("0002 0007 0009 ff03");
        let mut p = Packet::new_checked(&mut data[..]).unwrap();
        assert_eq!(p.set_sequence(Seq(1), Seq(1)), Err(Error::NoSequence));
    }

    #[test]
    fn written_control_header_matches_a_captured_scccn() {
        let mut buf = [0u8; 32];
        let n = write_control(
            &mut buf,
            TunnelId(54758),
            SessionId(0),
            Seq(1),
            Seq(1),
            |w| w.put_slice(&hex!("8008000000000003")),
        )
        .unwrap();
        assert_eq!(&buf[..n], &hex!("c8020014d5e60000000100018008000000000003"));
        assert_eq!(
            write_control(
                &mut buf[..11],
                TunnelId(1),
                SessionId(0),
                Seq(0),
                Seq(0),
                |_| { Ok(()) }
            ),
            Err(codec::NoSpace)
        );
    }

    #[test]
    fn data_header_is_written_into_headroom_without_moving_the_payload() {
        let mut buf = [0u8; 20];
        buf[12..16].copy_from_slice(&hex!("ff03c021"));
        let range = write_data_header(&mut buf, 12..16, TunnelId(7), SessionId(9), None).unwrap();
        assert_eq!(range, 6..16);
        assert_eq!(&buf[range.clone()], &hex!("0002 0007 0009 ff03c021"));
        let range =
            write_data_header(&mut buf, 12..16, TunnelId(7), SessionId(9), Some(Seq(5))).unwrap();
        assert_eq!(&buf[range], &hex!("0802 0007 0009 0005 0000 ff03c021"));

        let reversed = Range { start: 13, end: 12 };
        for bad in [5..16, 12..21, reversed] {
            assert_eq!(
                write_data_header(&mut buf, bad, TunnelId(7), SessionId(9), None),
                Err(codec::NoSpace)
            );
        }
        assert_eq!(
            write_data_header(&mut buf, 9..16, TunnelId(7), SessionId(9), Some(Seq(1))),
            Err(codec::NoSpace)
        );
    }

    proptest! {
        #[test]
        fn control_header_round_trips(
            tunnel: u16, session: u16, ns: u16, nr: u16,
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = [0u8; 128];
            let n = write_control(&mut buf, TunnelId(tunnel), SessionId(session), Seq(ns), Seq(nr), |w| w.put_slice(&body)).unwrap();
            let p = Packet::new_checked(&buf[..n]).unwrap();
            prop_assert!(p.is_control());
            prop_assert_eq!(p.is_zlb(), body.is_empty());
            prop_assert_eq!(p.tunnel_id(), TunnelId(tunnel));
            prop_assert_eq!(p.session_id(), SessionId(session));
            prop_assert_eq!(p.sequence(), Some((Seq(ns), Seq(nr))));
            prop_assert_eq!(p.payload(), &body[..]);
        }

        #[test]
        fn data_header_round_trips(
            tunnel: u16, session: u16, ns: Option<u16>, headroom in 10usize..16,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = vec![0u8; headroom + payload.len()];
            buf[headroom..].copy_from_slice(&payload);
            let range = write_data_header(&mut buf, headroom..headroom + payload.len(), TunnelId(tunnel), SessionId(session), ns.map(Seq)).unwrap();
            let p = Packet::new_checked(&buf[range]).unwrap();
            prop_assert!(!p.is_control());
            prop_assert_eq!(p.tunnel_id(), TunnelId(tunnel));
            prop_assert_eq!(p.session_id(), SessionId(session));
            prop_assert_eq!(p.ns(), ns.map(Seq));
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn no_byte_string_makes_the_view_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.tunnel_id(), p.session_id(), p.sequence(), p.payload(), p.is_zlb());
                prop_assert!(p.header_len() <= bytes.len());
            }
        }
    }
}
