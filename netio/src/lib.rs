//! The only l2sec crate that talks to the operating system.
//!
//! It will hold everything the two drivers (`l2sec-server`, `l2sec-client`) need from the OS, so
//! that all `unsafe` FFI lives in one small, reviewed place (`src/sys/`, each block with a
//! `// SAFETY:` comment):
//!
//! - UDP sockets for IKE (500) and NAT-T (4500) with batched I/O (`recvmmsg`/`sendmmsg`, UDP GSO/GRO),
//! - a raw IP-protocol-50 socket for plain ESP,
//! - the TUN device (vnet header and offloads where the kernel offers them),
//! - `PacketBuf`, allocate-once packet buffers with headroom and tailroom for encapsulation.
//!
//! It is filled by the server/client issue; until then it exports nothing.
#![forbid(unsafe_code)]
