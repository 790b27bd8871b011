//! RADIUS client for the l2sec LNS, sans-IO: authentication (RFC 2865) for PAP, CHAP-MD5 and
//! MS-CHAP-V2 (RFC 2548), accounting (RFC 2866, RFC 2869), Message-Authenticator (RFC 3579),
//! and the codec for Dynamic Authorization (RFC 5176).
//!
//! # Scope
//!
//! - [`wire`]: the packet view, attribute iteration through checked views, typed attributes
//!   ([`wire::Attr`]) and Microsoft sub-attributes ([`wire::MsAttr`]), and
//!   [`wire::PacketWriter`], which builds a packet in a caller buffer.
//! - [`crypto`]: User-Password hiding (RFC 2865 §5.2), MPPE key salt encryption
//!   (RFC 2548 §2.4.2), the Authenticators (RFC 2865 §3, RFC 2866 §3) and Message-Authenticator
//!   (RFC 3579 §3.2); [`verify`] checks received packets with them, in constant time.
//! - [`Client`]: the state machine. Requests in ([`AccessRequest`], [`AccountingRequest`]),
//!   datagrams out to one of several servers, with per-request timeout, retransmission,
//!   failover and Identifier allocation; verified answers in, [`Event`]s out.
//! - [`dae`]: Disconnect-Request and CoA-Request (RFC 5176) parsed and answered.
//!
//! It owns no sockets, clocks or threads (STYLE.md §1): the driver sends what
//! [`Client::poll_transmit`] writes from one UDP socket, feeds back what arrives on it, and
//! calls [`Client::handle_timeout`] at [`Client::poll_timeout`].
//!
//! # The handle/poll contract
//!
//! 1. Inputs are [`Client::authenticate`], [`Client::account`], [`Client::cancel`],
//!    [`Client::handle_datagram`] and [`Client::handle_timeout`], each with `now`; time is
//!    monotonic.
//! 2. After every input, drain [`Client::poll_transmit`] and [`Client::poll_event`], then
//!    re-arm the timer from [`Client::poll_timeout`]. Calling `handle_timeout` early or twice
//!    is harmless.
//! 3. `Err(Discard)` from `handle_datagram` means the datagram was dropped and nothing changed
//!    but [`Stats`]. An answer is acted upon only once its Response Authenticator and
//!    Message-Authenticator verify.
//! 4. Request Authenticators come from the `CryptoRng` given to [`Client::new`]. Requests,
//!    queued and in flight, plus unpolled events are bounded by [`Config::max_requests`];
//!    in-flight requests per server by the 256 Identifiers, beyond which requests wait in
//!    order.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use l2sec_radius::crypto::{Password, Secret};
//! use l2sec_radius::{AccessRequest, Client, Config, Credentials, Event, ServerConfig};
//! # use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
//!
//! let config = Config {
//!     servers: vec![ServerConfig {
//!         name: "radius1".into(),
//!         secret: Secret::new("testing123"),
//!         auth: Some("192.0.2.10:1812".parse().unwrap()),
//!         acct: Some("192.0.2.10:1813".parse().unwrap()),
//!         message_authenticator: Default::default(),
//!     }],
//!     ..Config::default()
//! };
//! let mut client = Client::new(config, 0x1234, ChaCha8Rng::seed_from_u64(1)).unwrap();
//! # #[expect(clippy::disallowed_methods, reason = "the example's epoch")]
//! let now = Instant::now(); // a driver reads its clock; a simulation makes time up
//! let id = client
//!     .authenticate(now, AccessRequest {
//!         user_name: b"hb".to_vec(),
//!         credentials: Credentials::Pap(Password::new("admin@123")),
//!         nas_port: Some(1),
//!         calling_station_id: Some(b"198.51.100.7".to_vec()),
//!         called_station_id: None,
//!         acct_session_id: None,
//!     })
//!     .unwrap();
//! let mut buf = [0u8; 4096];
//! let tx = client.poll_transmit(&mut buf).unwrap(); // send buf[..tx.len] to tx.to
//! assert_eq!(tx.to, "192.0.2.10:1812".parse().unwrap());
//! // Nobody answers: three sends 3 s apart, then the request times out.
//! let mut t = now;
//! while let Some(deadline) = client.poll_timeout() {
//!     t = deadline;
//!     client.handle_timeout(t);
//!     while client.poll_transmit(&mut buf).is_some() {}
//! }
//! assert_eq!(t - now, Duration::from_secs(9));
//! assert!(matches!(client.poll_event(), Some(Event::ServerDead { .. })));
//! assert_eq!(client.poll_event(), Some(Event::Timeout { request: id, service: l2sec_radius::Service::Authentication }));
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod crypto;
pub mod dae;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
pub mod reply;
pub mod request;
pub mod verify;
pub mod wire;

pub use client::{
    Client, Config, ConfigError, Discard, Event, RequestId, ServerConfig, ServerIndex, Service,
    Stats, SubmitError, Transmit,
};
pub use reply::{
    Accept, InvalidAccept, MppeKeys, MsChap2Success, MsChapError, Reject, RejectCause,
};
pub use request::{
    AccessRequest, AccountingRequest, AcctSessionId, AcctSessionIds, Counters, Credentials,
    NasIdentity,
};
