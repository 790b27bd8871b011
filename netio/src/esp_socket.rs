//! A raw IP-protocol-50 socket for plain ESP (RFC 4303 directly over IPv4, no NAT in the path).
//!
//! The kernel here has no ESP support of its own, so a raw socket sees every ESP packet sent to
//! the host. Received packets carry their IPv4 header, which [`RawEsp::recv_batch`] strips (the
//! ranges it reports start at the SPI); on send the kernel writes the IPv4 header.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::batch::{Datagram, RecvBatch, SendBatch};

/// IANA protocol number of ESP.
pub const IPPROTO_ESP: i32 = 50;

/// A tokio-registered raw socket for IP protocol 50.
#[derive(Debug)]
pub struct RawEsp {
    inner: AsyncFd<Socket>,
}

impl RawEsp {
    /// Opens the socket, bound to `local` (use the unspecified address for all). Needs
    /// `CAP_NET_RAW`.
    pub fn bind(local: IpAddr) -> io::Result<Self> {
        Self::bind_protocol(local, IPPROTO_ESP)
    }

    /// The same for another IP protocol number, with ESP's batching: what the bench's raw
    /// relay measures raw-socket I/O with (an unassigned number, so that the server's ESP
    /// socket beside it sees none of it).
    pub fn bind_protocol(local: IpAddr, protocol: i32) -> io::Result<Self> {
        let domain = if local.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(protocol)))?;
        socket.set_nonblocking(true)?;
        let _ = socket.set_recv_buffer_size(4 << 20);
        let _ = socket.set_send_buffer_size(4 << 20);
        crate::sys::enable_pktinfo(socket.as_raw_fd(), local.is_ipv6())?;
        socket.bind(&SocketAddr::new(local, 0).into())?;
        Ok(Self {
            inner: crate::sys::register_async(socket)?,
        })
    }

    /// Waits for at least one ESP packet and receives as many as fit in `batch`. Each reported
    /// range starts at the SPI (IPv4 header removed); packets too short to hold an IPv4 header
    /// are reported with an empty range.
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            let mut guard = self.inner.readable().await?;
            match guard.try_io(|fd| batch.recv_from_fd(fd.as_raw_fd())) {
                Ok(Ok(n)) => {
                    // Room to spare: the queue is empty, so the next call waits for the
                    // reactor instead of hearing EAGAIN first (as `UdpSocket::recv_batch`).
                    if n < batch.capacity() {
                        guard.clear_ready();
                    }
                    batch.strip_ipv4_headers();
                    return Ok(n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Sends `datagrams` (ESP packets from the SPI on, at most [`crate::Outbox::CAPACITY`])
    /// with `sendmmsg`; packets the kernel refuses are dropped. Returns how many left.
    pub async fn send_datagrams(&self, datagrams: &[Datagram<'_>]) -> io::Result<usize> {
        let mut sent = 0;
        while sent < datagrams.len() {
            let mut guard = self.inner.writable().await?;
            let rest = &datagrams[sent..];
            match guard.try_io(|fd| crate::sys::send_batch(fd.as_raw_fd(), rest)) {
                Ok(Ok(0)) => break,
                Ok(Ok(k)) => sent += k,
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(Err(_)) if sent + 1 < datagrams.len() => sent += 1,
                Ok(Err(e)) if sent == 0 => return Err(e),
                Ok(Err(_)) => break,
                Err(_would_block) => {}
            }
        }
        Ok(sent)
    }

    /// Sends every queued ESP packet (SPI onwards; the port of each destination is ignored).
    pub async fn send_batch(&self, batch: &mut SendBatch) -> io::Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        loop {
            let mut guard = self.inner.writable().await?;
            match guard.try_io(|fd| batch.send_to_fd(fd.as_raw_fd())) {
                Ok(result) => return result,
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn esp_sent_on_loopback_comes_back_without_its_ipv4_header() {
        let esp = match RawEsp::bind("127.0.0.1".parse().unwrap()) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                eprintln!("skipped: raw sockets need CAP_NET_RAW ({e})");
                return;
            }
            Err(e) => panic!("raw ESP socket: {e}"),
        };
        let mut out = SendBatch::new(4, 128);
        let packet = [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 0xaa, 0xbb];
        out.next_slot().unwrap()[..packet.len()].copy_from_slice(&packet);
        out.push("127.0.0.1:0".parse().unwrap(), 0..packet.len());
        assert_eq!(esp.send_batch(&mut out).await.unwrap(), 1);

        let mut batch = RecvBatch::new(4, 256, 32);
        let n = esp.recv_batch(&mut batch).await.unwrap();
        assert!(n >= 1);
        let (meta, slot) = batch.get_mut(0).unwrap();
        assert_eq!(meta.from.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            &slot[meta.range.clone()],
            &packet,
            "the range starts at the SPI"
        );
        assert_eq!(meta.range.start, 32 + 20);
    }
}
