//! PPP as carried in L2TP data messages, both ends: the authenticator (our LNS) and the peer
//! (our client), as a sans-IO state machine.
//!
//! # Scope
//! - Framing as L2TP carries it (RFC 2661 §3.1, RFC 1662 §3.1): optional `FF 03`, one- or
//!   two-byte protocol field, no HDLC flags, escaping or FCS ([`wire`]).
//! - The option negotiation automaton of RFC 1661 §4 with its restart timer and counters
//!   ([`fsm`]), shared by LCP (RFC 1661 §6, [`lcp`]), IPCP with the DNS/NBNS options of RFC 1877
//!   ([`ipcp`]) and IPV6CP (RFC 5072, [`ipv6cp`]).
//! - Authentication both ways: PAP (RFC 1334), CHAP-MD5 (RFC 1994, with re-challenge) and
//!   MS-CHAP-V2 (RFC 2759) with the MPPE key derivation of RFC 3079 ([`auth`]).
//! - LCP keepalive (Echo-Request/Reply), Discard-Request, Code-Reject, and Protocol-Reject of every
//!   network protocol we do not run (CCP and ECP included), without disturbing the link.
//!
//! Not in scope: MPPE/MPPC themselves (CCP is rejected; IPsec already encrypts), multilink, LQR,
//! callback, asynchronous (HDLC-like) framing. `COMPLIANCE.md` lists the RFC sections covered.
//!
//! # The contract (STYLE.md §5)
//! One [`Session`] per L2TP session. Feed it frames with [`Session::handle_frame`] and timer ticks
//! with [`Session::handle_timeout`]; after each call drain [`Session::poll_transmit`] (frames
//! for the L2TP data channel) and [`Session::poll_event`], then re-arm one timer at
//! [`Session::poll_timeout`]. The server's user store answers [`Event::AuthRequest`] through
//! [`Session::auth_verdict`] and its pool answers [`Event::AddressRequest`] through
//! [`Session::assign_address`]. The crate reads no clock, opens no socket and takes randomness
//! from the `rand_core::CryptoRng` the caller passes to the inputs that need it (a session
//! keeps no generator, so thousands of sessions share their owner's one). IP packets pass through without copies: received
//! ones are borrowed from the frame, outgoing ones get their 4-byte header written into headroom
//! by [`Session::encapsulate`].
//!
//! ```
//! use l2sec_ppp::auth::{Credential, Method, Password};
//! use l2sec_ppp::ipcp::Assignment;
//! use l2sec_ppp::{ClientConfig, Event, ServerConfig, Session};
//! use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
//! use std::{net::Ipv4Addr, sync::Arc, time::{Duration, Instant}};
//!
//! # #[expect(clippy::disallowed_methods, reason = "doctest epoch")]
//! # fn epoch() -> Instant { Instant::now() }
//! let mut now = epoch();
//! let server_config = ServerConfig { methods: vec![Method::Pap], ..ServerConfig::default() };
//! // One generator per owner: a server hands its one to every session's inputs.
//! let (mut server_rng, mut client_rng) = (ChaCha8Rng::seed_from_u64(1), ChaCha8Rng::seed_from_u64(2));
//! let mut server = Session::server(Arc::new(server_config), &mut server_rng, now);
//! let client_config = ClientConfig::new("hb@hb", Password::new("admin@123"));
//! let mut client = Session::client(Arc::new(client_config), &mut client_rng, now);
//! let store = Credential::Password(Password::new("admin@123"));
//!
//! let mut buf = [0u8; 1600];
//! while client.ipv4().is_none() {
//!     // Server events first: a verdict or an address produces frames at the same instant.
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             Event::AuthRequest(request) => server.auth_verdict(now, &mut server_rng, request.verify(&store)),
//!             Event::AddressRequest { .. } => server.assign_address(now, Assignment {
//!                 local: Ipv4Addr::new(172, 16, 1, 1),
//!                 peer: Ipv4Addr::new(172, 16, 1, 51),
//!                 dns: [Some(Ipv4Addr::new(192, 168, 1, 1)), None],
//!                 nbns: [None; 2],
//!             }),
//!             _ => {}
//!         }
//!     }
//!     // A lossless link with no delay: hand every frame straight to the other side.
//!     while let Some(n) = server.poll_transmit(&mut buf) {
//!         let _ = client.handle_frame(now, &mut client_rng, &buf[..n]);
//!     }
//!     while let Some(n) = client.poll_transmit(&mut buf) {
//!         let _ = server.handle_frame(now, &mut server_rng, &buf[..n]);
//!     }
//!     now += Duration::from_millis(1);
//!     server.handle_timeout(now, &mut server_rng);
//!     client.handle_timeout(now, &mut client_rng);
//! }
//! assert_eq!(client.ipv4().unwrap().local, Ipv4Addr::new(172, 16, 1, 51));
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod fsm;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
mod outbox;
pub mod session;
pub mod wire;

pub use session::{
    ClientConfig, DownReason, Event, LinkConfig, Phase, Received, ServerConfig, Session,
};
