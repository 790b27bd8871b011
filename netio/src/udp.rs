//! UDP sockets with batched receive and send.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

use crate::batch::{Datagram, RecvBatch, SendBatch};
use crate::gso::GsoPlan;
use crate::sys;

/// Makes every later send on `socket` (a UDP socket of any kind, e.g. a traffic generator's
/// `std::net::UdpSocket`) a UDP GSO send: one buffer of several `size`-byte datagrams (the
/// last may be shorter) leaves as that many datagrams.
///
/// # Errors
/// When the kernel has no UDP GSO (before Linux 4.18) or `fd` is not a UDP socket.
pub fn set_send_segment_size(socket: &impl AsRawFd, size: u16) -> io::Result<()> {
    sys::set_udp_segment(socket.as_raw_fd(), size)
}

/// A non-blocking, tokio-registered UDP socket that moves datagrams in batches.
#[derive(Debug)]
pub struct UdpSocket {
    inner: tokio::net::UdpSocket,
    /// Whether UDP GSO sends work here; cleared (for the life of the socket) the first time
    /// the kernel refuses one, after which runs go out as single datagrams.
    gso: AtomicBool,
}

impl UdpSocket {
    /// Binds `addr` (with `SO_REUSEADDR`), asks the kernel for each datagram's local address,
    /// and registers the socket with the current tokio runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let domain = if addr.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(false)?;
        }
        // Generous kernel buffers: a burst of handshakes or a batch of data must not be dropped
        // by the socket before the loop gets to it. The kernel caps these at its own maximum.
        let _ = socket.set_recv_buffer_size(4 << 20);
        let _ = socket.set_send_buffer_size(4 << 20);
        sys::enable_pktinfo(socket.as_raw_fd(), addr.is_ipv6())?;
        socket.bind(&addr.into())?;
        let inner = tokio::net::UdpSocket::from_std(socket.into())?;
        Ok(Self {
            inner,
            gso: AtomicBool::new(true),
        })
    }

    /// Asks the kernel to coalesce arriving datagrams of one flow (`UDP_GRO`); each buffer of
    /// [`Self::recv_batch`] then reports its segment size ([`crate::RecvMeta::datagrams`] splits
    /// it), so its slots must hold a whole coalesced buffer (64 KiB). Returns whether the
    /// kernel agreed.
    pub fn enable_gro(&self) -> bool {
        sys::enable_udp_gro(self.inner.as_raw_fd()).is_ok()
    }

    /// Stops using UDP GSO on send (the fallback path; also what a refused GSO send does).
    pub fn disable_gso(&self) {
        self.gso.store(false, Ordering::Relaxed);
    }

    /// Whether sends still use UDP GSO.
    #[must_use]
    pub fn gso(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Sends `datagrams` (at most [`crate::Outbox::CAPACITY`]) with as few system calls as
    /// the kernel allows: one `sendmmsg`, in which each run of equal-sized datagrams to one
    /// peer is a single UDP GSO message (`UDP_SEGMENT`). `plan` is scratch space, reused.
    /// Datagrams the kernel refuses after the socket reported writable are dropped, as a
    /// router would. Returns how many datagrams left.
    pub async fn send_datagrams(
        &self,
        datagrams: &[Datagram<'_>],
        plan: &mut GsoPlan,
    ) -> io::Result<usize> {
        plan.clear();
        for d in datagrams {
            if !plan.push_from(d.from, d.to, d.bytes.len()) {
                break;
            }
        }
        if !self.gso() {
            return self.send_singles(&datagrams[..plan.len()]).await;
        }
        let mut sent_runs = 0;
        let mut sent = 0;
        while sent_runs < plan.runs().len() {
            self.inner.writable().await?;
            let runs = &plan.runs()[sent_runs..];
            match self.inner.try_io(Interest::WRITABLE, || {
                sys::send_runs(self.inner.as_raw_fd(), datagrams, runs)
            }) {
                Ok(0) => break,
                Ok(k) => {
                    sent += runs.iter().take(k).map(|r| r.count).sum::<usize>();
                    sent_runs += k;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // EIO/EINVAL: this path cannot do GSO (no checksum offload on the way out, an
                // old kernel): fall back for good and send these one by one.
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL))
                        && runs.first().is_some_and(|r| r.count > 1) =>
                {
                    tracing::debug!(%e, "UDP GSO refused; sending datagrams singly from now on");
                    self.disable_gso();
                    let first = runs.first().map_or(0, |r| r.first);
                    return Ok(sent + self.send_singles(&datagrams[first..plan.len()]).await?);
                }
                // One refused message (no route for that peer): skip it, send the rest.
                Err(_) if sent_runs + 1 < plan.runs().len() => sent_runs += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }

    /// `sendmmsg` without GSO.
    async fn send_singles(&self, datagrams: &[Datagram<'_>]) -> io::Result<usize> {
        let mut sent = 0;
        while sent < datagrams.len() {
            self.inner.writable().await?;
            let rest = &datagrams[sent..];
            match self.inner.try_io(Interest::WRITABLE, || {
                sys::send_batch(self.inner.as_raw_fd(), rest)
            }) {
                Ok(0) => break,
                Ok(k) => sent += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) if sent + 1 < datagrams.len() => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Waits until at least one datagram is there, then receives as many as fit in `batch`.
    ///
    /// A batch that came back with room to spare emptied the socket's queue, so the socket is
    /// marked not ready at once: the next call waits for the reactor instead of first asking
    /// the kernel again only to hear `EAGAIN` (one system call saved per wake-up).
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            self.inner.readable().await?;
            let mut drained = 0;
            match self.inner.try_io(Interest::READABLE, || {
                let n = batch.recv_from_fd(self.inner.as_raw_fd())?;
                if n < batch.capacity() {
                    // Reported as "would block" so that tokio clears the readiness; a
                    // datagram that arrives after this read raises it again.
                    drained = n;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            }) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && drained > 0 => {
                    return Ok(drained);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives what is there now into `batch` without waiting: 0 when nothing is.
    ///
    /// # Errors
    /// A socket error other than "nothing to read".
    pub fn try_recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        // The socket is non-blocking: this reads the kernel's queue whatever tokio last saw.
        match batch.recv_from_fd(self.inner.as_raw_fd()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    /// Sends every datagram queued in `batch` and clears it.
    pub async fn send_batch(&self, batch: &mut SendBatch) -> io::Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        loop {
            self.inner.writable().await?;
            match self.inner.try_io(Interest::WRITABLE, || {
                batch.send_to_fd(self.inner.as_raw_fd())
            }) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one datagram.
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.inner.send_to(datagram, to).await
    }

    /// Sends one datagram from the local address `from` (`IP_PKTINFO`; `None`: the kernel's
    /// choice). On a socket bound to the wildcard address this is how a reply leaves from the
    /// address its request arrived at (see [`crate::RecvMeta::local`]).
    pub async fn send_from(
        &self,
        datagram: &[u8],
        from: Option<IpAddr>,
        to: SocketAddr,
    ) -> io::Result<usize> {
        if from.is_none() {
            return self.send_to(datagram, to).await;
        }
        let one = [Datagram {
            to,
            from,
            bytes: datagram,
        }];
        loop {
            self.inner.writable().await?;
            match self.inner.try_io(Interest::WRITABLE, || {
                sys::send_batch(self.inner.as_raw_fd(), &one)
            }) {
                Ok(_) => return Ok(datagram.len()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gso::GsoPlan;

    #[tokio::test]
    async fn a_try_receive_takes_what_is_queued_and_never_waits() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut batch = RecvBatch::new(8, 256, 0);
        assert_eq!(b.try_recv_batch(&mut batch).unwrap(), 0, "nothing queued");
        let to = b.local_addr().unwrap();
        a.send_to(b"one", to).await.unwrap();
        a.send_to(b"two", to).await.unwrap();
        // Loopback delivery is synchronous with the send: both are queued now.
        assert_eq!(b.try_recv_batch(&mut batch).unwrap(), 2);
        let (meta, slot) = batch.get_mut(1).unwrap();
        assert_eq!(&slot[meta.range.clone()], b"two");
        assert_eq!(b.try_recv_batch(&mut batch).unwrap(), 0);
        // The waiting receive still works after a try that consumed the queue.
        a.send_to(b"three", to).await.unwrap();
        assert_eq!(b.recv_batch(&mut batch).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_short_batch_clears_readiness_without_losing_the_next_datagram() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = b.local_addr().unwrap();
        let mut batch = RecvBatch::new(8, 256, 0);
        let wait = std::time::Duration::from_secs(5);
        for i in 0..200u8 {
            // One or two datagrams, then a full batch now and then: each receive comes back
            // short (readiness cleared) or full (kept), and the next datagram must still wake.
            let count = if i % 10 == 9 {
                9
            } else {
                1 + usize::from(i % 2)
            };
            for _ in 0..count {
                a.send_to(&[i], to).await.unwrap();
            }
            let mut got = 0;
            while got < count {
                let n = tokio::time::timeout(wait, b.recv_batch(&mut batch))
                    .await
                    .expect("a datagram that arrived after a short batch was not seen")
                    .unwrap();
                for k in 0..n {
                    let (meta, slot) = batch.get_mut(k).unwrap();
                    assert_eq!(slot[meta.range], [i]);
                }
                got += n;
            }
            assert_eq!(got, count);
        }
    }

    #[tokio::test]
    async fn a_batch_sent_on_loopback_arrives_with_sender_and_local_address() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = b.local_addr().unwrap();

        let mut out = SendBatch::new(8, 256);
        for i in 0..5u8 {
            let slot = out.next_slot().unwrap();
            slot[..3].copy_from_slice(&[i, i, i]);
            out.push(to, 0..3);
        }
        assert_eq!(a.send_batch(&mut out).await.unwrap(), 5);
        assert!(out.is_empty());

        let mut batch = RecvBatch::new(8, 256, 64);
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let n = b.recv_batch(&mut batch).await.unwrap();
            for i in 0..n {
                let (meta, slot) = batch.get_mut(i).unwrap();
                assert_eq!(meta.from, a.local_addr().unwrap());
                assert_eq!(meta.local, Some("127.0.0.1".parse().unwrap()));
                assert_eq!(meta.range.start, 64, "datagrams land after the headroom");
                assert!(!meta.truncated);
                seen.push(slot[meta.range].to_vec());
            }
        }
        assert_eq!(seen, (0..5u8).map(|i| vec![i, i, i]).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_datagram_longer_than_its_slot_is_flagged_truncated() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        a.send_to(&[7u8; 100], b.local_addr().unwrap())
            .await
            .unwrap();
        let mut batch = RecvBatch::new(2, 64, 16);
        assert_eq!(b.recv_batch(&mut batch).await.unwrap(), 1);
        let (meta, _) = batch.get_mut(0).unwrap();
        assert!(meta.truncated);
        assert_eq!(meta.range, 16..64);
        assert!(batch.get_mut(1).is_none());
    }

    /// Sends `lens`-sized datagrams (byte `i` of datagram `k` is `k`) with `send_datagrams`
    /// to a GRO receiver and returns what arrived, split back into datagrams.
    async fn round_trip(gso: bool, lens: &[usize]) -> (Vec<Vec<u8>>, usize) {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(b.enable_gro(), "this kernel has UDP GRO");
        if !gso {
            a.disable_gso();
        }
        let to = b.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(k, &len)| vec![u8::try_from(k).unwrap(); len])
            .collect();
        let mut outbox = crate::Outbox::new();
        for p in &payloads {
            assert!(outbox.push(to, p));
        }
        let mut plan = GsoPlan::new(64);
        let sent = a
            .send_datagrams(outbox.as_slice(), &mut plan)
            .await
            .unwrap();
        assert_eq!(sent, lens.len());
        let mut batch = RecvBatch::new(8, 65_536 + 64, 64);
        let mut seen = Vec::new();
        let mut coalesced = 0;
        while seen.len() < lens.len() {
            let n = b.recv_batch(&mut batch).await.unwrap();
            let mut by_index = Vec::new();
            for i in 0..n {
                let (meta, slot) = batch.get_mut(i).unwrap();
                assert!(!meta.truncated);
                if meta.segment_size > 0 {
                    coalesced += 1;
                }
                for d in meta.datagrams() {
                    by_index.push(slot[d].to_vec());
                }
            }
            // The disjoint slots and datagrams of `filled_mut` and `datagrams_mut` are the same.
            let mut by_slot = Vec::new();
            for (meta, slot) in batch.filled_mut() {
                by_slot.extend(meta.datagrams_mut(slot).map(|d| d.to_vec()));
            }
            assert_eq!(by_slot, by_index);
            assert_eq!(batch.filled_mut().count(), n);
            seen.extend(by_index);
        }
        assert_eq!(seen, payloads, "every datagram arrives whole and in order");
        (seen, coalesced)
    }

    #[tokio::test]
    async fn a_gso_run_arrives_as_its_datagrams_and_a_gro_buffer_splits_back() {
        let lens = [1400, 1400, 1400, 1400, 700, 64, 64, 1400];
        let (_, coalesced) = round_trip(true, &lens).await;
        // On loopback the GSO send stays one buffer up to the GRO socket.
        assert!(coalesced >= 1, "no coalesced buffer arrived");
    }

    #[tokio::test]
    async fn without_gso_the_same_datagrams_go_one_by_one() {
        let lens = [1400, 1400, 1400, 700, 64];
        let (_, coalesced) = round_trip(false, &lens).await;
        assert_eq!(coalesced, 0, "nothing was sent as one GSO buffer");
    }

    /// Receives until `count` datagrams are in, as (sender, bytes).
    async fn receive(b: &UdpSocket, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut batch = RecvBatch::new(8, 65_536 + 64, 64);
        let mut seen = Vec::new();
        while seen.len() < count {
            let n = b.recv_batch(&mut batch).await.unwrap();
            for i in 0..n {
                let (meta, slot) = batch.get_mut(i).unwrap();
                for d in meta.datagrams() {
                    seen.push((meta.from, slot[d].to_vec()));
                }
            }
        }
        seen
    }

    #[tokio::test]
    async fn a_wildcard_socket_sends_from_the_source_address_it_is_given() {
        // Every 127/8 address is local on lo: a socket bound to the wildcard can answer from
        // any of them, as a multi-homed server answers from the address a request came to.
        let a = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(b.enable_gro());
        let to = b.local_addr().unwrap();
        let (x, y) = (
            "127.0.0.7".parse::<IpAddr>().unwrap(),
            "127.0.0.8".parse::<IpAddr>().unwrap(),
        );
        a.send_from(b"one", Some(x), to).await.unwrap();
        a.send_from(b"two", None, to).await.unwrap();
        let got = receive(&b, 2).await;
        assert_eq!(got[0], (SocketAddr::new(x, port), b"one".to_vec()));
        assert_eq!(
            got[1].0.ip(),
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "without a source the route's own"
        );

        // Batched, with GSO runs (which must not mix sources) and without.
        for gso in [true, false] {
            if !gso {
                a.disable_gso();
            }
            let payloads = [[1u8; 100], [2; 100], [3; 100], [4; 100]];
            let froms = [Some(x), Some(x), Some(y), None];
            let mut outbox = crate::Outbox::new();
            for (p, from) in payloads.iter().zip(froms) {
                assert!(outbox.push_from(from, to, p));
            }
            let mut plan = GsoPlan::new(64);
            let sent = a
                .send_datagrams(outbox.as_slice(), &mut plan)
                .await
                .unwrap();
            assert_eq!(sent, 4);
            let got = receive(&b, 4).await;
            let sources: Vec<IpAddr> = got.iter().map(|(f, _)| f.ip()).collect();
            let local = "127.0.0.1".parse().unwrap();
            assert_eq!(sources, [x, x, y, local], "gso {gso}");
            let bytes: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
            assert_eq!(bytes, payloads.map(|p| p.to_vec()), "gso {gso}");
        }
    }
}
