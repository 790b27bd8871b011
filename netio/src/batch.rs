//! Packet buffers allocated once and reused for the life of the process (STYLE.md §6).
//!
//! A batch is one contiguous allocation cut into equal slots. Each received datagram lands in
//! its own slot after `headroom` free bytes, so an engine can prepend headers (PPP, L2TP, UDP,
//! ESP) in place and append ESP padding and the ICV into the slot's tailroom without copying.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use crate::sys;

/// Where one received datagram came from and where it sits in its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvMeta {
    /// The sender's transport address.
    pub from: SocketAddr,
    /// The local address the datagram was sent to, when the socket reports it (`IP_PKTINFO`).
    pub local: Option<IpAddr>,
    /// The datagram's bytes within the slot (starts at the batch's headroom).
    pub range: Range<usize>,
    /// The datagram was longer than the slot and was cut (the engine must drop it).
    pub truncated: bool,
    /// When the kernel coalesced several datagrams of one flow into this buffer (`UDP_GRO`):
    /// the length of each, the last possibly shorter ([`crate::gso::segments`] splits them).
    /// 0 for a single datagram.
    pub segment_size: usize,
}

impl RecvMeta {
    /// The datagrams in `range`: one, or each segment of a GRO buffer, as ranges of the slot.
    pub fn datagrams(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let start = self.range.start;
        crate::gso::segments(self.range.len(), self.segment_size)
            .map(move |r| r.start + start..r.end + start)
    }

    /// The same datagrams as [`RecvMeta::datagrams`], as disjoint `&mut` slices of `slot`
    /// (this datagram's slot); nothing if `range` does not fit in it.
    pub fn datagrams_mut<'s>(&self, slot: &'s mut [u8]) -> impl Iterator<Item = &'s mut [u8]> {
        let bytes = slot.get_mut(self.range.clone()).unwrap_or_default();
        let step = if self.segment_size == 0 {
            bytes.len().max(1)
        } else {
            self.segment_size
        };
        bytes.chunks_mut(step)
    }
}

/// One datagram to send from the caller's storage.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Destination (the port is ignored on raw sockets).
    pub to: SocketAddr,
    /// The local address to send from (`IP_PKTINFO`): on a socket bound to the wildcard
    /// address, a reply must leave from the address its request was sent to, which the
    /// kernel's route lookup does not know. `None`: the kernel's choice.
    pub from: Option<IpAddr>,
    /// The datagram.
    pub bytes: &'a [u8],
}

/// Up to [`Outbox::CAPACITY`] datagrams borrowed from wherever they were sealed (the slots of a
/// receive batch), to go out in one batched send; lives on the stack, allocates nothing.
#[derive(Debug)]
pub struct Outbox<'a> {
    items: [Datagram<'a>; sys::MAX_BATCH],
    len: usize,
}

impl Default for Outbox<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Outbox<'a> {
    /// Most datagrams an outbox holds (one `sendmmsg`).
    pub const CAPACITY: usize = sys::MAX_BATCH;

    /// An empty outbox.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            items: [Datagram {
                to: SocketAddr::V4(std::net::SocketAddrV4::new(
                    std::net::Ipv4Addr::UNSPECIFIED,
                    0,
                )),
                from: None,
                bytes: &[],
            }; sys::MAX_BATCH],
            len: 0,
        }
    }

    /// Adds a datagram sent from the kernel's choice of address; returns whether there was
    /// room.
    pub fn push(&mut self, to: SocketAddr, bytes: &'a [u8]) -> bool {
        self.push_from(None, to, bytes)
    }

    /// Adds a datagram sent from `from` (see [`Datagram::from`]); returns whether there was
    /// room.
    pub fn push_from(&mut self, from: Option<IpAddr>, to: SocketAddr, bytes: &'a [u8]) -> bool {
        match self.items.get_mut(self.len) {
            Some(item) => {
                *item = Datagram { to, from, bytes };
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The datagrams, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[Datagram<'a>] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    /// Number of datagrams.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Slots for receiving a batch of datagrams.
#[derive(Debug)]
pub struct RecvBatch {
    storage: Box<[u8]>,
    slot_len: usize,
    headroom: usize,
    meta: Box<[RecvMeta]>,
    scratch: Box<[sys::Received]>,
    filled: usize,
}

impl RecvBatch {
    /// Allocates `slots` slots (at most the kernel batch size, 64) of `slot_len` bytes, each
    /// receiving after `headroom` bytes.
    ///
    /// # Panics
    /// If `headroom >= slot_len` or `slots == 0`: a programming error at start-up.
    #[must_use]
    #[expect(
        clippy::panic,
        reason = "construction-time misuse by our own code, not input"
    )]
    pub fn new(slots: usize, slot_len: usize, headroom: usize) -> Self {
        if headroom >= slot_len || slots == 0 {
            panic!("RecvBatch needs slots > 0 and headroom < slot_len");
        }
        let slots = slots.min(sys::MAX_BATCH);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Self {
            storage: vec![0; slots * slot_len].into_boxed_slice(),
            slot_len,
            headroom,
            meta: vec![
                RecvMeta {
                    from: unspecified,
                    local: None,
                    range: 0..0,
                    truncated: false,
                    segment_size: 0,
                };
                slots
            ]
            .into_boxed_slice(),
            scratch: vec![
                sys::Received {
                    len: 0,
                    from: unspecified,
                    local: None,
                    truncated: false,
                    segment_size: 0,
                };
                slots
            ]
            .into_boxed_slice(),
            filled: 0,
        }
    }

    /// Number of slots.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// Number of datagrams received by the last call.
    #[must_use]
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether the last call received nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Headroom before each datagram.
    #[must_use]
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// The `i`-th received datagram: its metadata and its whole slot (headroom, datagram at
    /// `meta.range`, tailroom), mutable so the engine can work in place.
    pub fn get_mut(&mut self, i: usize) -> Option<(RecvMeta, &mut [u8])> {
        if i >= self.filled {
            return None;
        }
        let meta = self.meta.get(i)?.clone();
        let slot = self.storage.chunks_exact_mut(self.slot_len).nth(i)?;
        Some((meta, slot))
    }

    /// The `i`-th slot, read-only (after the engine worked in place in it).
    #[must_use]
    pub fn slot(&self, i: usize) -> Option<&[u8]> {
        if i >= self.filled {
            return None;
        }
        self.storage.chunks_exact(self.slot_len).nth(i)
    }

    /// Every received datagram's metadata and whole slot at once, in order: disjoint `&mut`
    /// slots, so the datagrams of a batch can be worked on side by side (on several threads).
    pub fn filled_mut(&mut self) -> impl Iterator<Item = (&RecvMeta, &mut [u8])> {
        self.meta
            .iter()
            .zip(self.storage.chunks_exact_mut(self.slot_len))
            .take(self.filled)
    }

    /// Narrows each received range past its IPv4 header (raw sockets deliver it).
    pub(crate) fn strip_ipv4_headers(&mut self) {
        for (i, meta) in self.meta.iter_mut().enumerate().take(self.filled) {
            let start = i * self.slot_len + meta.range.start;
            let ihl = self
                .storage
                .get(start)
                .map_or(0, |b| usize::from(b & 0x0f) * 4);
            let len = meta.range.len();
            if ihl < 20 || ihl > len {
                meta.range = meta.range.start..meta.range.start;
            } else {
                meta.range = meta.range.start + ihl..meta.range.end;
            }
        }
    }

    /// Receives into the slots from `fd` without blocking; returns how many datagrams arrived.
    pub(crate) fn recv_from_fd(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
        self.filled = 0;
        let n = sys::recv_batch(
            fd,
            &mut self.storage,
            self.slot_len,
            self.headroom,
            &mut self.scratch,
        )?;
        for (meta, got) in self.meta.iter_mut().zip(self.scratch.iter()).take(n) {
            *meta = RecvMeta {
                from: got.from,
                local: got.local,
                range: self.headroom..self.headroom + got.len,
                truncated: got.truncated,
                segment_size: got.segment_size,
            };
        }
        self.filled = n;
        Ok(n)
    }
}

/// Datagrams queued for one `sendmmsg` call; each has its own slot.
#[derive(Debug)]
pub struct SendBatch {
    storage: Box<[u8]>,
    slot_len: usize,
    queued: Vec<(SocketAddr, Range<usize>)>,
}

impl SendBatch {
    /// Allocates `slots` slots (at most 64) of `slot_len` bytes.
    #[must_use]
    pub fn new(slots: usize, slot_len: usize) -> Self {
        let slots = slots.clamp(1, sys::MAX_BATCH);
        Self {
            storage: vec![0; slots * slot_len].into_boxed_slice(),
            slot_len,
            queued: Vec::with_capacity(slots),
        }
    }

    /// Number of queued datagrams.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Whether every slot is taken (send before queueing more).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.queued.len() * self.slot_len >= self.storage.len()
    }

    /// The next free slot, to be filled by the engine and then committed with [`Self::push`].
    pub fn next_slot(&mut self) -> Option<&mut [u8]> {
        let i = self.queued.len();
        self.storage.chunks_exact_mut(self.slot_len).nth(i)
    }

    /// Queues `range` of the slot last returned by [`Self::next_slot`] for `to`.
    pub fn push(&mut self, to: SocketAddr, range: Range<usize>) {
        if !self.is_full() && range.end <= self.slot_len && range.start <= range.end {
            self.queued.push((to, range));
        }
    }

    /// Forgets everything queued.
    pub fn clear(&mut self) {
        self.queued.clear();
    }

    /// Sends what is queued (in calls of at most 64) and clears the batch. Datagrams the kernel
    /// refuses with `EWOULDBLOCK` after the socket reported writable are dropped, as a router
    /// would; other errors are returned.
    pub(crate) fn send_to_fd(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<usize> {
        let mut out = [sys::Outgoing {
            to: SocketAddr::from(([0, 0, 0, 0], 0)),
            from: None,
            bytes: &[],
        }; sys::MAX_BATCH];
        let n = self.queued.len().min(sys::MAX_BATCH);
        for (i, (to, range)) in self.queued.iter().take(n).enumerate() {
            let start = i * self.slot_len;
            out[i] = sys::Outgoing {
                to: *to,
                from: None,
                bytes: &self.storage[start + range.start..start + range.end],
            };
        }
        let mut sent = 0;
        while sent < n {
            match sys::send_batch(fd, &out[sent..n]) {
                Ok(0) => break,
                Ok(k) => sent += k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if sent == 0 => {
                    self.queued.clear();
                    return Err(e);
                }
                Err(_) => {
                    // The datagram at `sent` was refused (e.g. no route); skip it, send the rest.
                    sent += 1;
                }
            }
        }
        self.queued.clear();
        Ok(sent)
    }
}
