//! One direction of an ESP security association in transport mode, sealed and opened in place
//! (RFC 4303 §3.3, §3.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ─┐
//! |               Security Parameters Index (SPI)                 |  │ header
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  │ (8 bytes)
//! |                      Sequence Number                          |  │
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ─┤
//! |        IV (16 bytes AES-CBC, 8 bytes 3DES-CBC and AES-GCM)    |  │ headroom
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ─┤
//! |      Payload (the UDP datagram in transport mode) ...         |  │ encrypted
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  │
//! |               |  Padding 1, 2, 3, ... (0-255 bytes)           |  │
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  │
//! |                               |  Pad Length   | Next Header   |  │
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ─┤
//! |        ICV (HMAC truncation, or the 16-byte GCM tag)          |  │ tailroom
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ─┘
//! ```
//!
//! CBC modes are paired with an HMAC computed over SPI through the end of the ciphertext; GCM
//! authenticates SPI and sequence number as associated data (RFC 4106 §5). Extended sequence
//! numbers are not negotiated, so the sequence number is 32 bits and never wraps.

use super::replay::{ReplayError, ReplayWindow};
use super::{IpProtocol, Spi};
use crate::crypto::cipher::{GCM_IV_LEN, GCM_TAG_LEN};
use crate::crypto::{
    Cipher, CipherAlgorithm, CipherError, Integrity, IntegrityAlgorithm, IntegrityError,
};
use core::ops::Range;
use rand_core::CryptoRng;

/// Length of the SPI and sequence number fields.
pub const HEADER_LEN: usize = 8;
/// Largest IV of any transform.
pub const MAX_IV_LEN: usize = 16;
/// Largest ICV of any transform.
pub const MAX_ICV_LEN: usize = 32;

/// A negotiated ESP transform: a cipher and, for the CBC ciphers, an integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transform {
    cipher: CipherAlgorithm,
    integrity: Option<IntegrityAlgorithm>,
}

/// The cipher and integrity algorithms do not form a valid ESP transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A CBC cipher needs an integrity algorithm (we never offer encryption without integrity).
    #[error("a CBC cipher needs an integrity algorithm")]
    MissingIntegrity,
    /// An AEAD cipher authenticates by itself; RFC 4106 §8.4 forbids adding an integrity
    /// algorithm.
    #[error("AEAD ciphers take no separate integrity algorithm")]
    UnexpectedIntegrity,
}

impl Transform {
    /// Pairs `cipher` with `integrity` (which must be `None` for GCM and `Some` for CBC).
    ///
    /// # Errors
    /// [`TransformError`] for an invalid pairing.
    pub const fn new(
        cipher: CipherAlgorithm,
        integrity: Option<IntegrityAlgorithm>,
    ) -> Result<Self, TransformError> {
        match (cipher.is_aead(), integrity.is_some()) {
            (true, true) => Err(TransformError::UnexpectedIntegrity),
            (false, false) => Err(TransformError::MissingIntegrity),
            (true, false) | (false, true) => Ok(Self { cipher, integrity }),
        }
    }

    /// The cipher.
    #[must_use]
    pub const fn cipher(&self) -> CipherAlgorithm {
        self.cipher
    }

    /// The integrity algorithm, `None` for AEAD ciphers.
    #[must_use]
    pub const fn integrity(&self) -> Option<IntegrityAlgorithm> {
        self.integrity
    }

    /// Bytes of encryption keying material ([`CipherAlgorithm::key_len`], salt included).
    #[must_use]
    pub const fn encryption_key_len(&self) -> usize {
        self.cipher.key_len()
    }

    /// Bytes of integrity keying material (0 for AEAD).
    #[must_use]
    pub const fn integrity_key_len(&self) -> usize {
        match self.integrity {
            Some(i) => i.key_len(),
            None => 0,
        }
    }

    /// ICV length.
    #[must_use]
    pub const fn icv_len(&self) -> usize {
        match self.integrity {
            Some(i) => i.icv_len(),
            None => self.cipher.tag_len(),
        }
    }

    /// The alignment the padded plaintext must reach: the cipher block for CBC, 4 bytes for
    /// GCM (RFC 4303 §2.4: the ciphertext ends on a 4-byte boundary). Always a power of two
    /// (4, 8 or 16), which [`Sa::seal`] and [`Sa::open`] rely on.
    #[must_use]
    pub const fn pad_alignment(&self) -> usize {
        let block = self.cipher.block_len();
        if block < 4 { 4 } else { block }
    }

    /// Space [`Sa::seal`] needs around a payload.
    #[must_use]
    pub const fn overhead(&self) -> Overhead {
        Overhead {
            head: HEADER_LEN + self.cipher.iv_len(),
            tail: self.pad_alignment() - 1 + 2 + self.icv_len(),
        }
    }

    /// The ESP packet length for a payload of `payload_len` bytes, or `None` on overflow.
    #[must_use]
    pub const fn sealed_len(&self, payload_len: usize) -> Option<usize> {
        let Some(plain) = payload_len.checked_add(2) else {
            return None;
        };
        let Some(padded) = plain.checked_next_multiple_of(self.pad_alignment()) else {
            return None;
        };
        let Some(with_icv) = padded.checked_add(self.icv_len()) else {
            return None;
        };
        with_icv.checked_add(HEADER_LEN + self.cipher.iv_len())
    }
}

/// Free space a caller leaves around a payload for [`Sa::seal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overhead {
    /// Bytes needed before the payload: SPI, sequence number and IV.
    pub head: usize,
    /// Bytes needed after the payload at most: padding, pad length, next header and ICV.
    pub tail: usize,
}

/// Which way an SA carries traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// We open packets the peer sealed.
    Inbound,
    /// We seal packets for the peer.
    Outbound,
}

/// Keying material for one SA direction, as derived by Quick Mode (RFC 2409 §5.5).
#[derive(Clone, Copy)]
pub struct SaKeys<'k> {
    /// Encryption key (for GCM followed by the 4-byte salt).
    pub encryption: &'k [u8],
    /// Integrity key (empty for GCM).
    pub integrity: &'k [u8],
}

impl core::fmt::Debug for SaKeys<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SaKeys(<redacted>)")
    }
}

/// Errors building an [`Sa`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    /// The encryption key does not fit the cipher.
    #[error("encryption key: {0}")]
    Cipher(#[from] CipherError),
    /// The integrity key does not fit the integrity algorithm.
    #[error("integrity key: {0}")]
    Integrity(#[from] IntegrityError),
    /// An integrity key was given for an AEAD transform.
    #[error("integrity key given for an AEAD transform")]
    UnexpectedIntegrityKey,
    /// SPI 0 is reserved and 1..=255 are reserved for IANA (RFC 4303 §2.1).
    #[error("SPI {0:#x} is reserved")]
    ReservedSpi(u32),
}

/// Why [`Sa::seal`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The 32-bit sequence number space is used up: the SA must be rekeyed (RFC 4303 §3.3.3).
    #[error("sequence numbers exhausted, rekey")]
    SequenceExhausted,
    /// Less than [`Overhead::head`] bytes before the payload.
    #[error("not enough headroom before the payload")]
    NoHeadroom,
    /// Not enough bytes after the payload for padding, trailer and ICV.
    #[error("not enough tailroom after the payload")]
    NoTailroom,
    /// The payload range is not inside the buffer.
    #[error("payload range outside the buffer")]
    BadRange,
    /// Sealing was asked of an inbound SA.
    #[error("inbound SA cannot seal")]
    WrongDirection,
    /// [`Sa::encrypt`] was given a packet another SA framed.
    #[error("packet framed by another SA")]
    NotFramedHere,
    /// The cipher refused (an internal invariant broke).
    #[error("cipher: {0}")]
    Cipher(#[from] CipherError),
    /// The integrity transform refused (an internal invariant broke).
    #[error("integrity: {0}")]
    Integrity(#[from] IntegrityError),
}

/// Why an inbound packet was dropped (STYLE.md §8). Nothing in the SA changed, except for the
/// drop counters in [`SaStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// Shorter than header, IV, one minimal trailer and ICV.
    #[error("truncated")]
    Truncated,
    /// The SPI is not this SA's.
    #[error("SPI {0:#x} does not belong to this SA")]
    SpiMismatch(u32),
    /// No SA has this SPI.
    #[error("unknown SPI {0:#x}")]
    UnknownSpi(u32),
    /// The sequence number was already received.
    #[error("replayed sequence number")]
    Replay,
    /// The sequence number is left of the replay window.
    #[error("sequence number left of the replay window")]
    TooOld,
    /// The ciphertext is not a whole number of cipher blocks / 4-byte words.
    #[error("ciphertext not aligned to the cipher block")]
    Misaligned,
    /// The ICV did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// Pad length larger than the payload, or padding bytes not 1, 2, 3, ...
    #[error("bad padding")]
    Padding,
    /// A dummy packet (next header 59, RFC 4303 §2.6): authentic, carries nothing.
    #[error("dummy packet")]
    DummyPacket,
    /// Opening was asked of an outbound SA.
    #[error("outbound SA cannot open")]
    WrongDirection,
}

impl From<ReplayError> for Discard {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Duplicate => Self::Replay,
            ReplayError::TooOld => Self::TooOld,
        }
    }
}

/// A decrypted packet: where its payload sits in the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The payload's range in the buffer passed to [`Sa::open`].
    pub payload: Range<usize>,
    /// The Next Header field (17 for UDP in transport mode).
    pub next_header: IpProtocol,
    /// The packet's sequence number.
    pub sequence: u32,
}

/// Traffic counters, for lifetimes (RFC 2401/4301 byte and packet lifetimes) and statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaStats {
    /// Packets sealed or opened successfully.
    pub packets: u64,
    /// Payload bytes sealed or opened successfully.
    pub bytes: u64,
    /// Inbound packets dropped as replays or too old.
    pub replay_drops: u64,
    /// Inbound packets dropped for a bad ICV.
    pub integrity_drops: u64,
    /// Inbound packets dropped for any other reason.
    pub other_drops: u64,
}

/// Default point at which an outbound SA asks to be rekeyed: 2^31 packets before exhaustion
/// would be too late for a slow rekey, so ask when 7/8 of the space is used.
pub const DEFAULT_REKEY_SEQUENCE: u32 = u32::MAX - (u32::MAX >> 3);

/// One direction of an ESP SA: SPI, keys, sequence counter or replay window, counters.
///
/// `Debug` shows the SPI, transform and counters, never keys.
#[derive(Debug)]
pub struct Sa {
    spi: Spi,
    direction: Direction,
    transform: Transform,
    cipher: Cipher,
    integrity: Option<Integrity>,
    /// Outbound: the last sequence number sent (0 before the first packet).
    last_sequence: u32,
    /// Outbound: sequence number from which [`Sa::wants_rekey`] is true.
    rekey_sequence: u32,
    /// Outbound GCM: IVs are `iv_base + sequence` (mod 2^64), unique because sequence numbers
    /// never repeat under one key (RFC 4106 §3.1).
    iv_base: u64,
    /// Inbound: the anti-replay window (boxed, 256 bytes); outbound SAs have none.
    replay: Option<Box<ReplayWindow>>,
    stats: SaStats,
    /// The transform's lengths, worked out once instead of per packet.
    geometry: Geometry,
}

/// Per-packet constants of a transform.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// SPI, sequence number and IV: where the ciphertext starts.
    body_at: usize,
    iv_len: usize,
    icv_len: usize,
    /// Padding alignment minus one (the alignment is a power of two).
    align_mask: usize,
    /// The shortest packet that can open: header, IV, one aligned unit holding pad length
    /// and next header, ICV.
    min_len: usize,
}

impl Geometry {
    const fn of(t: Transform) -> Self {
        let iv_len = t.cipher.iv_len();
        let align = t.pad_alignment();
        Self {
            body_at: HEADER_LEN + iv_len,
            iv_len,
            icv_len: t.icv_len(),
            align_mask: align - 1,
            min_len: HEADER_LEN + iv_len + if align < 4 { 4 } else { align } + t.icv_len(),
        }
    }
}

impl Sa {
    /// An inbound SA: we open what the peer sends to `spi` (an SPI we chose, see
    /// [`super::SaDb::allocate_spi`]).
    ///
    /// # Errors
    /// [`SaError`] if the keys do not fit the transform or the SPI is reserved.
    pub fn inbound(spi: Spi, transform: Transform, keys: SaKeys<'_>) -> Result<Self, SaError> {
        Self::new(spi, Direction::Inbound, transform, keys, 0)
    }

    /// An outbound SA: we seal to the peer's `spi`. For GCM, draws the starting point of the
    /// per-SA IV counter from `rng`.
    ///
    /// # Errors
    /// [`SaError`] if the keys do not fit the transform or the SPI is reserved.
    pub fn outbound<R: CryptoRng + ?Sized>(
        spi: Spi,
        transform: Transform,
        keys: SaKeys<'_>,
        rng: &mut R,
    ) -> Result<Self, SaError> {
        let iv_base = if transform.cipher.is_aead() {
            rng.next_u64()
        } else {
            0
        };
        Self::new(spi, Direction::Outbound, transform, keys, iv_base)
    }

    fn new(
        spi: Spi,
        direction: Direction,
        transform: Transform,
        keys: SaKeys<'_>,
        iv_base: u64,
    ) -> Result<Self, SaError> {
        // RFC 4303 §2.1: SPI 0 is reserved for local use and 1..=255 for IANA.
        if spi.0 < 256 {
            return Err(SaError::ReservedSpi(spi.0));
        }
        let cipher = Cipher::new(transform.cipher, keys.encryption)?;
        let integrity = match transform.integrity {
            Some(alg) => Some(Integrity::new(alg, keys.integrity)?),
            None if keys.integrity.is_empty() => None,
            None => return Err(SaError::UnexpectedIntegrityKey),
        };
        Ok(Self {
            spi,
            direction,
            transform,
            cipher,
            integrity,
            last_sequence: 0,
            rekey_sequence: DEFAULT_REKEY_SEQUENCE,
            iv_base,
            replay: match direction {
                Direction::Inbound => Some(Box::new(ReplayWindow::new())),
                Direction::Outbound => None,
            },
            stats: SaStats::default(),
            geometry: Geometry::of(transform),
        })
    }

    /// The SPI carried in this SA's packets.
    #[must_use]
    pub const fn spi(&self) -> Spi {
        self.spi
    }

    /// Inbound or outbound.
    #[must_use]
    pub const fn direction(&self) -> Direction {
        self.direction
    }

    /// The transform.
    #[must_use]
    pub const fn transform(&self) -> Transform {
        self.transform
    }

    /// Space [`Sa::seal`] needs around a payload.
    #[must_use]
    pub const fn overhead(&self) -> Overhead {
        self.transform.overhead()
    }

    /// Traffic and drop counters.
    #[must_use]
    pub const fn stats(&self) -> SaStats {
        self.stats
    }

    /// Outbound: the last sequence number used (0 before the first packet).
    #[must_use]
    pub const fn last_sequence(&self) -> u32 {
        self.last_sequence
    }

    /// Inbound: the anti-replay window (an outbound SA has none and shows an empty one).
    #[must_use]
    pub fn replay_window(&self) -> &ReplayWindow {
        static NONE: ReplayWindow = ReplayWindow::new();
        self.replay.as_deref().unwrap_or(&NONE)
    }

    /// Whether this SA carries an anti-replay window (only inbound SAs do).
    #[must_use]
    pub const fn has_replay_window(&self) -> bool {
        self.replay.is_some()
    }

    /// Sets the sequence number from which [`Sa::wants_rekey`] turns true (default
    /// [`DEFAULT_REKEY_SEQUENCE`]).
    pub const fn set_rekey_sequence(&mut self, sequence: u32) {
        self.rekey_sequence = sequence;
    }

    /// Outbound: true once the sequence counter passed the rekey threshold, so a new SA should
    /// be negotiated before [`SealError::SequenceExhausted`].
    #[must_use]
    pub const fn wants_rekey(&self) -> bool {
        matches!(self.direction, Direction::Outbound) && self.last_sequence >= self.rekey_sequence
    }

    /// Test and fuzzing hook: pretend `sequence` packets were already sent.
    #[cfg(any(test, fuzzing))]
    pub(crate) const fn set_last_sequence(&mut self, sequence: u32) {
        self.last_sequence = sequence;
    }

    /// Encrypts `buf[payload]` in place and frames it as ESP (RFC 4303 §3.3): [`Sa::frame`]
    /// and [`Sa::encrypt`] in one call.
    ///
    /// Needs [`Overhead::head`] free bytes before `payload` and up to [`Overhead::tail`] after
    /// it. CBC IVs are drawn from `rng` (RFC 3602 §2.1: unpredictable); GCM IVs come from the
    /// SA's counter and `rng` is not used. Returns the range of `buf` holding the ESP packet,
    /// SPI through ICV. Allocates nothing and does not move the payload.
    ///
    /// # Errors
    /// [`SealError`]; on error the SA's counter has not moved.
    pub fn seal<R: CryptoRng + ?Sized>(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: IpProtocol,
        rng: &mut R,
    ) -> Result<Range<usize>, SealError> {
        let framed = self.write_frame(buf, payload, next_header, rng)?;
        let sealed = self.encrypt(buf, &framed)?;
        self.commit(&framed);
        Ok(sealed)
    }

    /// The stateful half of [`Sa::seal`], to be called in packet order: checks the room around
    /// `buf[payload]`, takes the next sequence number, writes header, padding and trailer and
    /// the IV (CBC: drawn from `rng` here, so the draws stay in packet order). The counters
    /// move now; [`Sa::encrypt`] finishes the packet and needs only `&self`, so the packets of
    /// a batch can be encrypted on several threads once each was framed.
    ///
    /// # Errors
    /// [`SealError`]; on error the SA's counter has not moved.
    pub fn frame<R: CryptoRng + ?Sized>(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: IpProtocol,
        rng: &mut R,
    ) -> Result<Framed, SealError> {
        let framed = self.write_frame(buf, payload, next_header, rng)?;
        self.commit(&framed);
        Ok(framed)
    }

    /// Frames without moving the counters (see [`Sa::frame`]).
    fn write_frame<R: CryptoRng + ?Sized>(
        &self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: IpProtocol,
        rng: &mut R,
    ) -> Result<Framed, SealError> {
        if self.direction != Direction::Outbound {
            return Err(SealError::WrongDirection);
        }
        if payload.start > payload.end || payload.end > buf.len() {
            return Err(SealError::BadRange);
        }
        // RFC 4303 §3.3.3: the counter must not cycle; at 2^32-1 the SA is used up.
        let seq = self
            .last_sequence
            .checked_add(1)
            .ok_or(SealError::SequenceExhausted)?;

        let g = self.geometry;
        let start = payload
            .start
            .checked_sub(g.body_at)
            .ok_or(SealError::NoHeadroom)?;
        let len = payload.end - payload.start;
        // RFC 4303 §2.4: pad so that payload, padding, pad length and next header fill whole
        // blocks (and end on a 4-byte boundary). The alignment is a power of two: a mask, not
        // a division, on every packet.
        let pad_len = (len + 2).wrapping_neg() & g.align_mask;
        let cipher_end = payload.end + pad_len + 2;
        let packet = buf
            .get_mut(start..cipher_end + g.icv_len)
            .ok_or(SealError::NoTailroom)?;

        // Packet-relative: header | IV | payload, padding, pad length, next header | ICV.
        let (header, rest) = packet.split_at_mut(HEADER_LEN);
        let (iv, rest) = rest.split_at_mut(g.iv_len);
        let (body, _icv) = rest.split_at_mut(cipher_end - payload.start);
        let (_, trailer) = body.split_at_mut(len);
        // RFC 4303 §2.4: padding bytes are 1, 2, 3, ... and the pad length counts them.
        if let Some((last, padding)) = trailer.split_last_mut()
            && let Some((pad_length, padding)) = padding.split_last_mut()
        {
            for (b, value) in padding.iter_mut().zip(1u8..) {
                *b = value;
            }
            *pad_length = u8::try_from(pad_len).unwrap_or(0);
            *last = next_header.0;
        }
        let spi = self.spi.0.to_be_bytes();
        let sequence = seq.to_be_bytes();
        header.copy_from_slice(&[
            spi[0],
            spi[1],
            spi[2],
            spi[3],
            sequence[0],
            sequence[1],
            sequence[2],
            sequence[3],
        ]);
        match self.integrity {
            // RFC 3602 §2.1: the CBC IV is unpredictable.
            Some(_) => rng.fill_bytes(iv),
            // RFC 4106 §3.1: the explicit IV is the SA's counter (see `iv_base`).
            None => iv.copy_from_slice(&self.gcm_iv(seq)),
        }
        Ok(Framed {
            spi: self.spi,
            sequence: seq,
            packet: start..cipher_end + g.icv_len,
            payload_len: len,
        })
    }

    /// The GCM explicit IV of sequence number `seq`.
    const fn gcm_iv(&self, seq: u32) -> [u8; GCM_IV_LEN] {
        self.iv_base.wrapping_add(seq as u64).to_be_bytes()
    }

    const fn commit(&mut self, framed: &Framed) {
        self.last_sequence = framed.sequence;
        self.stats.packets += 1;
        self.stats.bytes += framed.payload_len as u64;
    }

    /// The pure half of [`Sa::seal`]: encrypts and authenticates in place the packet that
    /// [`Sa::frame`] framed in `buf` (the same buffer, untouched since). Changes nothing in the
    /// SA, so any number of threads may encrypt the packets of one SA at once. Returns the
    /// range of `buf` holding the ESP packet, SPI through ICV.
    ///
    /// # Errors
    /// [`SealError::NotFramedHere`] for a packet another SA framed, [`SealError::BadRange`]
    /// if it is not inside `buf`; the cipher's errors only if an internal invariant broke. The
    /// sequence number stays used either way.
    pub fn encrypt(&self, buf: &mut [u8], framed: &Framed) -> Result<Range<usize>, SealError> {
        if framed.spi != self.spi || self.direction != Direction::Outbound {
            return Err(SealError::NotFramedHere);
        }
        let g = self.geometry;
        let packet = buf
            .get_mut(framed.packet.clone())
            .ok_or(SealError::BadRange)?;
        let covered_len = packet
            .len()
            .checked_sub(g.icv_len)
            .filter(|&l| l >= g.body_at)
            .ok_or(SealError::BadRange)?;
        match &self.integrity {
            Some(integrity) => seal_cbc(&self.cipher, integrity, packet, g, covered_len)?,
            None => {
                let (covered, icv) = packet.split_at_mut(covered_len);
                let (head, body) = covered.split_at_mut(g.body_at);
                // RFC 4106 §5: the AAD is SPI || sequence number (no ESN).
                let header = head.get(..HEADER_LEN).ok_or(SealError::BadRange)?;
                self.cipher
                    .seal_aead(&self.gcm_iv(framed.sequence), header, body, icv)?;
            }
        }
        Ok(framed.packet.clone())
    }

    /// Authenticates, decrypts and strips one ESP packet in place (RFC 4303 §3.4):
    /// [`Sa::verify`] and [`Sa::accept`] in one call.
    ///
    /// `packet` starts at the SPI and ends with the ICV. The replay check runs first and
    /// changes nothing; the ICV is verified in constant time before any decryption; the window
    /// moves only after the packet proved authentic and well formed. Returns the payload's range
    /// inside `packet`. Allocates nothing.
    ///
    /// # Errors
    /// [`Discard`]; the SA is unchanged apart from its drop counters. On
    /// [`Discard::Integrity`] for GCM the buffer holds neither plaintext nor the original
    /// ciphertext.
    pub fn open(&mut self, packet: &mut [u8]) -> Result<Opened, Discard> {
        let verified = self.verify(packet);
        self.accept(verified)
    }

    /// The pure half of [`Sa::open`]: the replay check against the window as it is now (it
    /// changes nothing), the ICV in constant time, decryption in place, the trailer. Needs only
    /// `&self` and changes nothing, not even the drop counters, so the packets of a batch can
    /// be verified on several threads; hand each result to [`Sa::accept`], in packet order.
    ///
    /// # Errors
    /// [`Discard`], as [`Sa::open`].
    pub fn verify(&self, packet: &mut [u8]) -> Result<Verified, Discard> {
        if self.direction != Direction::Inbound {
            return Err(Discard::WrongDirection);
        }
        let g = self.geometry;
        if packet.len() < g.min_len {
            return Err(Discard::Truncated);
        }
        let icv_at = packet.len() - g.icv_len;
        let (covered, icv) = packet.split_at_mut(icv_at);
        let Some(&header) = covered.first_chunk::<HEADER_LEN>() else {
            return Err(Discard::Truncated);
        };
        let [s0, s1, s2, s3, q0, q1, q2, q3] = header;
        let spi = u32::from_be_bytes([s0, s1, s2, s3]);
        let seq = u32::from_be_bytes([q0, q1, q2, q3]);
        if spi != self.spi.0 {
            return Err(Discard::SpiMismatch(spi));
        }
        // RFC 4303 §3.4.3: duplicates and numbers left of the window are dropped before the
        // ICV is computed, and this check changes nothing.
        self.replay
            .as_deref()
            .ok_or(Discard::WrongDirection)?
            .check(seq)?;
        // RFC 4303 §2.4: the ciphertext fills whole cipher blocks and 4-byte words (the
        // alignment is a power of two).
        if (covered.len() - g.body_at) & g.align_mask != 0 {
            return Err(Discard::Misaligned);
        }

        match &self.integrity {
            Some(integrity) => open_cbc(&self.cipher, integrity, covered, icv, g)?,
            None => {
                let (head, body) = covered.split_at_mut(g.body_at);
                let explicit: &[u8; GCM_IV_LEN] = head
                    .get(HEADER_LEN..)
                    .and_then(|iv| iv.try_into().ok())
                    .ok_or(Discard::Truncated)?;
                let tag = icv.get(..GCM_TAG_LEN).ok_or(Discard::Truncated)?;
                self.cipher
                    .open_aead(explicit, &header, body, tag)
                    .map_err(|_| Discard::Integrity)?;
            }
        }
        let body_at = g.body_at;

        // Trailer: ... padding | pad length | next header.
        let plain = covered.get(body_at..).ok_or(Discard::Truncated)?;
        let (&next_header, rest) = plain.split_last().ok_or(Discard::Padding)?;
        let (&pad_len, rest) = rest.split_last().ok_or(Discard::Padding)?;
        let payload_len = rest
            .len()
            .checked_sub(usize::from(pad_len))
            .ok_or(Discard::Padding)?;
        let padding = rest.get(payload_len..).ok_or(Discard::Padding)?;
        // RFC 4303 §2.4: the receiver should check the padding holds 1, 2, 3, ...
        if padding.iter().zip(1u8..).any(|(&b, value)| b != value) {
            return Err(Discard::Padding);
        }
        // RFC 4303 §2.6: dummy packets (next header 59) are dropped after decryption.
        if next_header == IpProtocol::NO_NEXT_HEADER.0 {
            return Err(Discard::DummyPacket);
        }
        Ok(Verified {
            spi: self.spi,
            opened: Opened {
                payload: body_at..body_at + payload_len,
                next_header: IpProtocol(next_header),
                sequence: seq,
            },
        })
    }

    /// The stateful half of [`Sa::open`], called in packet order with what [`Sa::verify`]
    /// returned: checks the replay window again (two copies of one packet verified in the same
    /// batch both passed `verify`; only the first is accepted), moves the window and counts
    /// the packet, or counts the drop.
    ///
    /// # Errors
    /// The [`Discard`] given, [`Discard::Replay`] for the second copy of a packet, or
    /// [`Discard::SpiMismatch`] for a packet another SA verified.
    pub fn accept(&mut self, verified: Result<Verified, Discard>) -> Result<Opened, Discard> {
        let result = verified.and_then(|v| self.accept_verified(v));
        if let Err(discard) = result {
            self.count_drop(discard);
        }
        result
    }

    fn accept_verified(&mut self, verified: Verified) -> Result<Opened, Discard> {
        if verified.spi != self.spi {
            return Err(Discard::SpiMismatch(verified.spi.0));
        }
        let replay = self.replay.as_deref_mut().ok_or(Discard::WrongDirection)?;
        let seq = verified.opened.sequence;
        replay.check(seq)?;
        // RFC 4303 §3.4.3: the window moves only for packets that passed the ICV check.
        replay.accept(seq);
        self.stats.packets += 1;
        self.stats.bytes += verified.opened.payload.len() as u64;
        Ok(verified.opened)
    }

    #[cold]
    const fn count_drop(&mut self, discard: Discard) {
        match discard {
            Discard::Replay | Discard::TooOld => self.stats.replay_drops += 1,
            Discard::Integrity => self.stats.integrity_drops += 1,
            _ => self.stats.other_drops += 1,
        }
    }
}

/// A packet [`Sa::frame`] framed in the caller's buffer, waiting for [`Sa::encrypt`]: which
/// SA, which sequence number, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    spi: Spi,
    sequence: u32,
    /// SPI through ICV, in the caller's buffer.
    packet: Range<usize>,
    payload_len: usize,
}

impl Framed {
    /// Where the ESP packet sits in the buffer (SPI through ICV).
    #[must_use]
    pub fn range(&self) -> Range<usize> {
        self.packet.clone()
    }

    /// Its sequence number.
    #[must_use]
    pub const fn sequence(&self) -> u32 {
        self.sequence
    }
}

/// A packet [`Sa::verify`] found authentic and decrypted, not yet accepted by [`Sa::accept`].
/// Only `verify` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    spi: Spi,
    opened: Opened,
}

impl Verified {
    /// The decrypted packet, as [`Sa::open`] would return it.
    #[must_use]
    pub const fn opened(&self) -> &Opened {
        &self.opened
    }
}

/// CBC with HMAC: the ICV is verified (in constant time) before anything is decrypted (RFC
/// 4303 §3.4.4.1); it covers SPI through the end of the ciphertext. Out of line, as
/// [`seal_cbc`].
#[inline(never)]
fn open_cbc(
    cipher: &Cipher,
    integrity: &Integrity,
    covered: &mut [u8],
    icv: &[u8],
    g: Geometry,
) -> Result<(), Discard> {
    integrity
        .verify(covered, icv)
        .map_err(|_| Discard::Integrity)?;
    let (head, body) = covered.split_at_mut(g.body_at);
    cipher
        .decrypt_cbc(&head[HEADER_LEN..], body)
        .map_err(|_| Discard::Misaligned)
}

/// CBC with HMAC: encryption of the body from the IV [`Sa::frame`] drew, and the ICV over SPI
/// through the end of the ciphertext (RFC 4303 §3.3.4). Kept out of line so that the GCM path
/// of [`Sa::encrypt`] stays small.
#[inline(never)]
fn seal_cbc(
    cipher: &Cipher,
    integrity: &Integrity,
    packet: &mut [u8],
    g: Geometry,
    covered_len: usize,
) -> Result<(), SealError> {
    let (covered, icv) = packet.split_at_mut(covered_len);
    let (head, body) = covered.split_at_mut(g.body_at);
    let iv = head.get(HEADER_LEN..).ok_or(SealError::BadRange)?;
    cipher.encrypt_cbc(iv, body)?;
    integrity.compute(covered, icv)?;
    Ok(())
}
