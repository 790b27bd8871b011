//! Sending a batch of sealed ESP packets, shared by both drivers (STYLE.md §6.2): ESP in UDP on
//! the NAT-T socket (equal-sized runs to one peer as single UDP GSO messages) and raw ESP, one
//! `sendmmsg` per socket for each [`Outbox::CAPACITY`] packets. Nothing here allocates.

use crate::batch::Outbox;
use crate::esp_socket::RawEsp;
use crate::gso::GsoPlan;
use crate::udp::UdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// Where a sealed packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// ESP in UDP (RFC 3948) from the NAT-T socket to this peer.
    NatT(SocketAddr),
    /// Raw ESP (IP protocol 50) to this peer.
    Esp(IpAddr),
}

/// Sends `packets` (each borrowed from its own batch slot, with the local address it leaves
/// from, `None` for the kernel's choice), batched per socket. Send errors are logged at debug
/// level and the rest of the batch still goes: a datagram lost here is a datagram lost on the
/// path.
pub async fn send_sealed<'a, I>(natt: &UdpSocket, esp: &RawEsp, plan: &mut GsoPlan, packets: I)
where
    I: IntoIterator<Item = (Sealed, Option<IpAddr>, &'a [u8])>,
{
    let mut packets = packets.into_iter().peekable();
    while packets.peek().is_some() {
        let mut to_natt = Outbox::new();
        let mut to_esp = Outbox::new();
        for (to, from, bytes) in packets.by_ref().take(Outbox::CAPACITY) {
            match to {
                Sealed::NatT(remote) => to_natt.push_from(from, remote, bytes),
                Sealed::Esp(remote) => to_esp.push_from(from, SocketAddr::new(remote, 0), bytes),
            };
        }
        if !to_natt.is_empty()
            && let Err(e) = natt.send_datagrams(to_natt.as_slice(), plan).await
        {
            tracing::debug!(%e, "UDP 4500 send failed");
        }
        if !to_esp.is_empty()
            && let Err(e) = esp.send_datagrams(to_esp.as_slice()).await
        {
            tracing::debug!(%e, "ESP send failed");
        }
    }
}

/// Bytes the non-ESP marker takes in front of IKE on port 4500 (RFC 3948 §2.2).
pub const MARKER_ROOM: usize = 4;

/// Writes the non-ESP marker into the [`MARKER_ROOM`] bytes before `datagram` and returns the
/// range to send, marker included; `None` when there is no room before it or `datagram` is
/// not inside `buf`.
#[must_use]
pub fn with_non_esp_marker(buf: &mut [u8], datagram: Range<usize>) -> Option<Range<usize>> {
    let start = datagram.start.checked_sub(MARKER_ROOM)?;
    buf.get(datagram.clone())?;
    buf.get_mut(start..datagram.start)?.fill(0);
    Some(start..datagram.end)
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn the_marker_goes_in_the_room_before_the_datagram() {
        let mut buf = [9u8; 12];
        assert_eq!(with_non_esp_marker(&mut buf, 4..12), Some(0..12));
        assert_eq!(buf[..4], [0; 4]);
        assert_eq!(buf[4..], [9; 8], "the datagram is untouched");
        assert_eq!(with_non_esp_marker(&mut buf, 3..12), None, "no room");
        assert_eq!(
            with_non_esp_marker(&mut buf, 8..14),
            None,
            "past the buffer"
        );
    }
}
