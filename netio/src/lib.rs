//! The only l2sec crate that talks to the operating system.
//!
//! Everything the two drivers (`l2sec-server`, `l2sec-client`) need from the OS lives here, so
//! that all `unsafe` FFI is in one small, reviewed module ([`sys`], each block with a
//! `// SAFETY:` comment) and the engines stay sans-IO:
//!
//! - [`udp::UdpSocket`]: UDP for IKE (500), NAT-T (4500) and, when explicitly allowed, plain L2TP
//!   (1701), receiving and sending in batches with `recvmmsg`/`sendmmsg` and reporting the local
//!   destination address of each datagram (`IP_PKTINFO`), which NAT-D hashes and replies from
//!   the right address need.
//! - [`esp_socket::RawEsp`]: a raw IP-protocol-50 socket for plain ESP (no NAT in the path).
//! - [`tun::Tun`]: the TUN device, through the `tun-rs` crate.
//! - [`route::RouteTable`]: the client's routes and DNS, undone when dropped.
//! - [`privileges::drop_to`]: the switch to an unprivileged user once everything is open.
//! - [`gso`]: which queued datagrams leave as one UDP GSO send, and how a GRO buffer splits.
//! - [`batch::RecvBatch`] and [`batch::SendBatch`]: packet buffers allocated once and reused
//!   for the life of the process, with headroom for encapsulation.
//!
//! All sockets are tokio-registered and non-blocking; the batch calls return as soon as at least
//! one datagram was moved.

pub mod batch;
mod coalesce;
pub mod esp_socket;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod gso;
pub mod privileges;
pub mod route;
pub mod sealed;
mod sys;
pub mod tun;
pub mod udp;

pub use batch::{Datagram, Outbox, RecvBatch, RecvMeta, SendBatch};
