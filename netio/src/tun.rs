//! The TUN device through which decapsulated IP packets reach the host's stack.

use std::io;
use std::net::Ipv4Addr;

/// How to create the TUN device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name (the kernel picks `tunN` when `None`).
    pub name: Option<String>,
    /// Our address on the device.
    pub address: Ipv4Addr,
    /// Prefix length of the device's network (the kernel adds the connected route).
    pub prefix_len: u8,
    /// MTU of the device.
    pub mtu: u16,
}

/// An up, addressed TUN device registered with the current tokio runtime.
pub struct Tun {
    dev: tun_rs::AsyncDevice,
    name: String,
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Tun {
    /// Creates the device, gives it `config.address/prefix_len` and the MTU, and brings it up.
    /// Needs `CAP_NET_ADMIN` and `/dev/net/tun`.
    pub fn open(config: &TunConfig) -> io::Result<Self> {
        let mut builder = tun_rs::DeviceBuilder::new()
            .ipv4(config.address, config.prefix_len, None)
            .mtu(config.mtu)
            .packet_information(false);
        if let Some(name) = &config.name {
            builder = builder.name(name.clone());
        }
        let dev = builder.build_async()?;
        let name = dev.name()?;
        Ok(Self { dev, name })
    }

    /// The interface name the kernel gave the device.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one IP packet into `buf`, waiting until one is there.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.recv(buf).await
    }

    /// Waits until a packet is there, then reads as many as are ready into the slots of
    /// `batch` (one `read` each; the device has no batched read without offloads), leaving
    /// `tailroom` free at the end of each slot.
    pub async fn recv_batch(
        &self,
        batch: &mut crate::batch::RecvBatch,
        tailroom: usize,
    ) -> io::Result<usize> {
        loop {
            self.dev.readable().await?;
            match batch.fill_with(tailroom, |buf| self.dev.try_recv(buf)) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one more packet if one is ready, without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev.try_recv(buf)
    }

    /// Writes one IP packet to the host's stack.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.dev.send(packet).await
    }
}
