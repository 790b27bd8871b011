//! Test support, not an API: the reference server of the in-memory tests and their test
//! traffic, shared by the server's own tests and the client's (its engine tests and
//! `client/tests/no_alloc.rs` run this server engine in memory against the client engine).
//! Built only for tests: `cfg(test)` here, the `testing` feature for the client's
//! dev-dependency.
//!
//! The reference server is the scenario's LNS: PAP, the user hb@hb, the pool
//! 172.16.1.2–172.16.1.100 reaching 192.168.1.0/24, DNS 192.168.1.1, the LNS at 172.16.1.1.

use crate::engine::ipsec::Engine;
use crate::engine::lns::{Lns, LnsConfig};
use crate::engine::policy::{Policy, Proto, Rule};
use crate::engine::pool::Pool;
use crate::users::Users;
use ppp::ServerConfig;
use ppp::auth::Method;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What a test changes in the reference server.
#[derive(Debug)]
pub struct ServerSetup {
    /// IKE settings (the pre-shared key `interop-test-psk` by default).
    pub ike: ike::endpoint::Config,
    /// PPP authentication methods offered (PAP by default).
    pub methods: Vec<Method>,
    /// hb@hb's password (`admin@123` by default).
    pub password: String,
    /// The address pool ([`reference_pool`] by default).
    pub pool: Pool,
}

impl Default for ServerSetup {
    fn default() -> Self {
        Self {
            ike: ike::endpoint::Config::new(b"interop-test-psk"),
            methods: vec![Method::Pap],
            password: "admin@123".to_owned(),
            pool: reference_pool(),
        }
    }
}

/// The reference server as `setup` changes it; its LNS draws from `seed`, its IKE from
/// `seed + 1`.
#[must_use]
pub fn reference_server(setup: ServerSetup, seed: u64) -> Engine<ChaCha20Rng> {
    let lns_config = LnsConfig {
        l2tp: Arc::new(l2tp::Config::default()),
        ppp: Arc::new(ServerConfig {
            methods: setup.methods,
            ..ServerConfig::default()
        }),
        local: Ipv4Addr::new(172, 16, 1, 1),
        dns: [Some(Ipv4Addr::new(192, 168, 1, 1)), None],
    };
    let lns = Lns::new(
        lns_config,
        setup.pool,
        reference_users(&setup.password),
        reference_policy(),
        ChaCha20Rng::seed_from_u64(seed),
    );
    Engine::new(setup.ike, lns, 1024, ChaCha20Rng::seed_from_u64(seed + 1))
}

/// hb@hb with `password`.
///
/// # Panics
/// When `password` has a character a TOML basic string cannot hold as is.
#[must_use]
pub fn reference_users(password: &str) -> Users {
    Users::parse(
        "users.toml",
        &format!("[[user]]\nname = \"hb@hb\"\npassword = \"{password}\"\n"),
    )
    .expect("the reference users file parses")
}

/// 172.16.1.2–172.16.1.100.
#[must_use]
pub fn reference_pool() -> Pool {
    let a = Ipv4Addr::new(172, 16, 1, 2);
    Pool::new(a, Ipv4Addr::new(172, 16, 1, 100), &[], &[]).expect("a valid range")
}

/// The pool reaches 192.168.1.0/24.
///
/// # Panics
/// Never: the networks are literals.
#[must_use]
pub fn reference_policy() -> Policy {
    Policy::new(vec![Rule {
        from: vec!["172.16.1.0/24".parse().expect("a network")],
        to: vec!["192.168.1.0/24".parse().expect("a network")],
        proto: Proto::Any,
        ports: None,
    }])
}

/// An IPv4/UDP packet of `len` bytes (at least 28) from `src` to `dst`, ports 5000 → 6000,
/// its payload bytes counting from `n` (modulo 251), with valid header and UDP checksums.
///
/// # Panics
/// When `len` is under 28 or over 65,535.
#[must_use]
pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, len: usize, n: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    let total = u16::try_from(len).expect("an IPv4 length");
    p[..12].copy_from_slice(&[0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0]);
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&6000u16.to_be_bytes());
    p[24..26].copy_from_slice(&(total - 20).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = u8::try_from((i + n) % 251).expect("under 251");
    }
    let header = !ones_complement_sum(&p[..20], 0);
    p[10..12].copy_from_slice(&header.to_be_bytes());
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&p[12..20]);
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(total - 20).to_be_bytes());
    let udp = !ones_complement_sum(&p[20..], ones_complement_sum(&pseudo, 0));
    p[26..28].copy_from_slice(&(if udp == 0 { 0xffff } else { udp }).to_be_bytes());
    p
}

/// The 16-bit ones' complement sum of `bytes` (RFC 1071), continuing from `initial`.
fn ones_complement_sum(bytes: &[u8], initial: u16) -> u16 {
    let mut sum = u32::from(initial);
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).unwrap_or(u16::MAX)
}
