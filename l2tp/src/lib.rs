//! L2TPv2 (RFC 2661) for the l2sec LNS and LAC, sans-IO.
//!
//! # Scope
//!
//! Everything L2TP: the wire formats ([`wire`]), the reliable control channel ([`reliable`]),
//! the control connection and incoming-call machines of both roles ([`Tunnel`]) and the
//! [`Endpoint`] that demultiplexes many tunnels on one port, allocates IDs and enforces limits.
//! It owns no sockets, clocks or threads (STYLE.md §1): the driver feeds it datagrams and
//! instants and drains what it wants to send.
//!
//! Not here: PPP (the `ppp` crate runs over the sessions), IPsec, outgoing calls (an OCRQ is
//! refused), sequenced data messages and HDLC framing (an SLI's ACCM is only reported), L2TPv3.
//!
//! # The handle/poll contract
//!
//! [`Endpoint`] (and each [`Tunnel`]) follows one contract:
//!
//! 1. Inputs are [`Endpoint::handle_datagram`] (one UDP payload and the peer's transport
//!    address, which together with our Tunnel ID selects the tunnel: clients behind one NAT
//!    never share state) and [`Endpoint::handle_timeout`], plus the local operations
//!    ([`Endpoint::connect`], [`Endpoint::close_session`], [`Endpoint::close_tunnel`]). Each
//!    takes `now`; time is monotonic.
//! 2. After every input, drain [`Endpoint::poll_transmit`] (datagrams, each with its
//!    destination) and [`Endpoint::poll_event`] (tunnels and calls up and down), then re-arm the
//!    timer from [`Endpoint::poll_timeout`]. Calling `handle_timeout` early or twice is harmless.
//! 3. `Err(Discard)` means the datagram was dropped and nothing changed. A peer that breaks the
//!    protocol gets the protocol's answer (StopCCN or CDN with a Result Code) and the call
//!    returns `Ok`.
//! 4. Data messages are not copied: [`Received::Data`] gives the PPP frame's range in the
//!    caller's buffer, and [`DataPath::encapsulate`] writes the data header into the
//!    [`DATA_HEADROOM`] bytes the caller reserved before the frame.
//! 5. Randomness (tunnel and session IDs, challenges, tie breakers) comes from the `CryptoRng`
//!    given to [`Endpoint::new`]. Every table and queue is bounded by [`Limits`] or
//!    [`reliable::Config::max_queued`]; at a bound the new thing is refused and nothing grows.
//!
//! # RFC 2661 sections implemented
//!
//! | section | what | where |
//! |---|---|---|
//! | §3.1 | header: T/L/S/O/P bits, Ver 2, Length, offset pad; control and data header writers | [`wire::header`] |
//! | §3.2, §4.4 | message type and attribute type registries | [`wire::avp`] |
//! | §4.1 | AVP format, M/H/reserved bits; unknown mandatory AVP → StopCCN or CDN, error 8 | [`wire::avp`], [`wire::message`], [`Tunnel`] |
//! | §4.3 | hidden AVPs: hide and reveal with secret and Random Vector | [`wire::hidden`] |
//! | §4.4.1–§4.4.6 | every AVP value of RFC 2661 | [`wire::message`] |
//! | §4.4.3 | Tie Breaker between simultaneous SCCRQs | [`Endpoint`] |
//! | §5.1.1 | tunnel authentication: Challenge and Challenge Response both ways | [`Tunnel`], [`wire::hidden::challenge_response`] |
//! | §5.7 | StopCCN, hold period before the tunnel is forgotten | [`Tunnel`] |
//! | §5.8, App. A | Ns/Nr, windows, slow start, retransmission, ZLB; dead peer detection | [`reliable`], [`Tunnel`] |
//! | §6.1–§6.14 | typed control messages; HELLO keepalive; OCRQ refused; WEN, SLI accepted | [`wire::ControlMessage`], [`Tunnel`] |
//! | §7.2, §7.4 | control connection and incoming-call states, LNS and LAC | [`Tunnel`], [`session`] |
//!
//! `COMPLIANCE.md` lists each requirement with the test that covers it.
//!
//! # Example
//!
//! Our LAC and our LNS in memory, in simulated time: the tunnel and the call come up, a PPP
//! frame crosses, and the LAC hangs up.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use l2sec_l2tp::wire::message::{CdnResult, StopCcnResult};
//! use l2sec_l2tp::{Config, DATA_HEADROOM, Endpoint, Event, MAX_CONTROL_LEN, Received};
//! # use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
//!
//! let lns_addr = "192.0.2.1:1701".parse().unwrap();
//! let lac_addr = "198.51.100.7:40123".parse().unwrap();
//! let config = Arc::new(Config::default());
//! let mut lns = Endpoint::new(Arc::clone(&config), ChaCha8Rng::seed_from_u64(1));
//! let mut lac = Endpoint::new(config, ChaCha8Rng::seed_from_u64(2));
//! # #[expect(clippy::disallowed_methods, reason = "the example's epoch")]
//! let mut now = Instant::now(); // a driver reads its clock; a simulation makes time up
//!
//! let (tunnel, session) = lac.connect(now, lns_addr).unwrap();
//! let mut buf = [0u8; MAX_CONTROL_LEN];
//! let mut lns_events = Vec::new();
//! // Deliver everything both ways; when nothing moves, jump to the next deadline.
//! for _ in 0..50 {
//!     while let Some(t) = lac.poll_transmit(now, &mut buf) {
//!         let _ = lns.handle_datagram(now, lac_addr, &mut buf[..t.len]);
//!     }
//!     while let Some(t) = lns.poll_transmit(now, &mut buf) {
//!         let _ = lac.handle_datagram(now, lns_addr, &mut buf[..t.len]);
//!     }
//!     lns_events.extend(std::iter::from_fn(|| lns.poll_event()));
//!     let Some(at) = [lac.poll_timeout(), lns.poll_timeout()].into_iter().flatten().min() else {
//!         break;
//!     };
//!     now = now.max(at);
//!     lac.handle_timeout(now);
//!     lns.handle_timeout(now);
//!     if lns_events.iter().any(|e| matches!(e, Event::SessionUp(_))) {
//!         break;
//!     }
//! }
//! let Some(Event::SessionUp(up)) = lns_events.last() else { panic!("{lns_events:?}") };
//! assert_eq!(up.peer, lac_addr);
//! assert_eq!(up.peer_session, session);
//!
//! // A PPP frame from the LAC: the header goes into the headroom, nothing is copied.
//! let mut packet = [0u8; 64];
//! let frame = DATA_HEADROOM..DATA_HEADROOM + 4;
//! packet[frame.clone()].copy_from_slice(&[0xff, 0x03, 0xc0, 0x21]);
//! let message = lac.data_path(tunnel, session).unwrap().encapsulate(&mut packet, frame).unwrap();
//! let Ok(Received::Data(data)) = lns.handle_datagram(now, lac_addr, &mut packet[message.clone()]) else {
//!     panic!("not routed");
//! };
//! assert_eq!((data.tunnel, data.session), (up.tunnel, up.session));
//! assert_eq!(&packet[message][data.frame], &[0xff, 0x03, 0xc0, 0x21]);
//!
//! // Hang up: CDN, then StopCCN; the LNS reports both.
//! lac.close_session(now, tunnel, session, CdnResult::ADMINISTRATIVE, None).unwrap();
//! lac.close_tunnel(now, tunnel, StopCcnResult::GENERAL_REQUEST, None).unwrap();
//! while let Some(t) = lac.poll_transmit(now, &mut buf) {
//!     lns.handle_datagram(now, lac_addr, &mut buf[..t.len]).unwrap();
//! }
//! let downs: Vec<Event> = std::iter::from_fn(|| lns.poll_event()).collect();
//! assert!(matches!(downs[..], [Event::SessionDown { .. }, Event::TunnelDown { .. }]));
//! // After the hold period (RFC 2661 §5.7) the LNS forgets the tunnel.
//! lns.handle_timeout(now + Duration::from_secs(31));
//! assert_eq!(lns.tunnel_count(), 0);
//! ```
#![forbid(unsafe_code)]

pub mod config;
pub mod endpoint;
pub mod event;
mod ids;
pub mod reliable;
pub mod session;
pub mod tunnel;
pub mod wire;

pub use config::{Config, Limits, Secret};
pub use endpoint::{
    ConnectError, DATA_HEADROOM, DataMessage, DataPath, Endpoint, Received, Transmit,
};
pub use event::{Event, Origin, Proxy, SessionDownReason, SessionUp, TunnelDownReason};
pub use ids::{Seq, SessionId, TunnelId};
pub use session::SessionState;
pub use tunnel::{CallError, Discard, MAX_CONTROL_LEN, Role, Tunnel, TunnelState};

#[cfg(any(test, fuzzing))]
pub mod fuzzing;

#[cfg(test)]
mod testdata;
