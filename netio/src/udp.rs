//! UDP sockets with batched receive and send.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

use crate::batch::{RecvBatch, SendBatch};
use crate::sys;

/// A non-blocking, tokio-registered UDP socket that moves datagrams in batches.
#[derive(Debug)]
pub struct UdpSocket {
    inner: tokio::net::UdpSocket,
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
        Ok(Self { inner })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Waits until at least one datagram is there, then receives as many as fit in `batch`.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            self.inner.readable().await?;
            match self.inner.try_io(Interest::READABLE, || {
                batch.recv_from_fd(self.inner.as_raw_fd())
            }) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
