//! The engine's counters against the in-memory laptop: each connection outcome moves its
//! counter by exactly one; drops are counted by reason; a flood of garbage yields a bounded
//! number of warnings.

use super::*;
use crate::drop_warnings::{DropWarning, DropWarnings, INTERVAL};
use crate::engine::stats::{DropReason, Outcome};

/// Connects the laptop to `server` for up to 30 simulated seconds; returns the world after
/// the driver took every event.
fn connect(server: Engine<ChaCha20Rng>) -> World {
    let mut w = World::new(t0(), server);
    w.drive(Duration::from_secs(30), |w| w.laptop.ipv4().is_some());
    while w.server.poll_event(w.now).is_some() {}
    w
}

/// Asserts that exactly one attempt was counted, with `outcome`.
fn only(w: &World, outcome: Outcome) {
    for o in Outcome::ALL {
        let expected = u64::from(o == outcome);
        assert_eq!(w.server.stats().connects(o), expected, "{}", o.name());
    }
}

#[test]
fn a_connection_counts_ok_once_with_its_handshake_time_traffic_and_gauges() {
    let mut w = connect(server_with(
        ike::endpoint::Config::new(PSK),
        "admin@123",
        reference_pool(),
    ));
    assert!(w.laptop.ipv4().is_some());
    only(&w, Outcome::Ok);
    let s = w.server.snapshot();
    assert_eq!(s.stats.handshake().count(), 1);
    assert!(s.stats.handshake().sum_seconds() < 30.0);
    assert_eq!(
        (
            s.ike_sas,
            s.child_sas,
            s.tunnels,
            s.sessions,
            s.pool_in_use,
            s.connecting
        ),
        (1, 1, 1, 1, 1, 0)
    );
    let (packets_in, packets_out) = s.stats.packets();
    let (bytes_in, bytes_out) = s.stats.bytes();
    assert!(
        packets_in > 0 && packets_out > 0,
        "L2TP and PPP control went through ESP"
    );
    assert!(bytes_in > packets_in * 20 && bytes_out > packets_out * 20);
    // An ESP packet replayed is dropped and counted as such, with its source.
    let (spi, _) = w.laptop.outbound.unwrap();
    let mut esp = w
        .laptop
        .seal(b"\xc8\x02\x00\x0c\x00\x01\x00\x00\x00\x00\x00\x00")
        .unwrap()
        .1;
    assert_eq!(u32::from_be_bytes(esp[..4].try_into().unwrap()), spi);
    let copy = esp.clone();
    let from: IpAddr = "203.0.113.5".parse().unwrap();
    let _ = w.server.handle_esp(w.now, from, &mut esp);
    let mut replayed = copy;
    let before = w.server.stats().drops(DropReason::Replay);
    assert!(w.server.handle_esp(w.now, from, &mut replayed).is_err());
    assert_eq!(w.server.stats().drops(DropReason::Replay), before + 1);
    assert_eq!(w.server.stats().example(DropReason::Replay), Some(from));
    // A tampered one fails integrity.
    let mut tampered = w
        .laptop
        .seal(&[0xc8, 2, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0])
        .unwrap()
        .1;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(w.server.handle_esp(w.now, from, &mut tampered).is_err());
    assert_eq!(w.server.stats().drops(DropReason::Integrity), 1);
    // From TUN to an address nobody has: no route.
    let stray = icmp(Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(172, 16, 1, 77));
    let mut buf = vec![0u8; HEADROOM + stray.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + stray.len()].copy_from_slice(&stray);
    assert!(
        w.server
            .handle_tun(&mut buf, HEADROOM..HEADROOM + stray.len())
            .is_err()
    );
    assert_eq!(w.server.stats().drops(DropReason::NoRoute), 1);
    // The kernel's IPv6 chatter on TUN is counted, and is nothing to warn about.
    let malformed = w.server.stats().drops(DropReason::Malformed);
    let v6 = [0x60u8, 0, 0, 0, 0, 0, 58, 255];
    let mut buf = vec![0u8; HEADROOM + v6.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + v6.len()].copy_from_slice(&v6);
    assert!(
        w.server
            .handle_tun(&mut buf, HEADROOM..HEADROOM + v6.len())
            .is_err()
    );
    assert_eq!(w.server.stats().drops(DropReason::NotIpv4), 1);
    assert_eq!(w.server.stats().drops(DropReason::Malformed), malformed);
    let mut warned = Vec::new();
    DropWarnings::new(INTERVAL).observe(w.now, w.server.stats(), |x| warned.push(x.reason));
    assert!(
        !warned.is_empty() && !warned.contains(&DropReason::NotIpv4),
        "{warned:?}"
    );
}

#[test]
fn a_wrong_psk_counts_bad_psk_once() {
    let w = connect(server_with(
        ike::endpoint::Config::new(b"another key"),
        "admin@123",
        reference_pool(),
    ));
    assert!(w.laptop.ipv4().is_none());
    only(&w, Outcome::BadPsk);
    assert_eq!(w.server.stats().handshake().count(), 0);
}

#[test]
fn no_acceptable_proposal_counts_no_proposal_once() {
    let mut ike = ike::endpoint::Config::new(PSK);
    ike.phase1.policy.suites.clear();
    let w = connect(server_with(ike, "admin@123", reference_pool()));
    assert!(w.laptop.ipv4().is_none());
    only(&w, Outcome::NoProposal);
}

#[test]
fn a_wrong_password_counts_auth_failed_once() {
    let w = connect(server_with(
        ike::endpoint::Config::new(PSK),
        "not the password",
        reference_pool(),
    ));
    assert!(w.laptop.ipv4().is_none());
    only(&w, Outcome::AuthFailed);
}

#[test]
fn an_exhausted_pool_counts_pool_empty_once() {
    let a = Ipv4Addr::new(172, 16, 1, 2);
    let mut pool = Pool::new(a, a, &[], &[]).unwrap();
    assert_eq!(pool.allocate().unwrap(), a, "the only address is taken");
    let w = connect(server_with(
        ike::endpoint::Config::new(PSK),
        "admin@123",
        pool,
    ));
    assert!(w.laptop.ipv4().is_none());
    only(&w, Outcome::PoolEmpty);
}

/// 10,000 malformed ISAKMP datagrams over 20 simulated seconds, the counters observed
/// after each (as the driver does after each loop turn): one warning per interval.
#[test]
fn a_flood_of_garbage_yields_one_warning_per_reason_per_interval() {
    let mut engine = server();
    let mut limiter = DropWarnings::new(INTERVAL);
    let (start, local): (Instant, SocketAddr) = (t0(), "2.2.2.2:500".parse().unwrap());
    let mut warnings = Vec::new();
    for i in 0..10_000u32 {
        let now = start + Duration::from_millis(u64::from(i) * 2);
        let from = SocketAddr::from(([198, 51, 100, 7], 500));
        let mut garbage = i.to_be_bytes().repeat(3);
        let r = engine.handle_udp(now, local, from, &mut garbage);
        assert!(
            matches!(r, Err(Drop::Ike(ike::endpoint::Discard::Malformed))),
            "{r:?}"
        );
        limiter.observe(now, engine.stats(), |w| warnings.push(w));
    }
    assert_eq!(engine.stats().drops(DropReason::Malformed), 10_000);
    // At 0 s (the first) and 10 s, then nothing before 20 s.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let example = Some(IpAddr::from([198, 51, 100, 7]));
    assert_eq!(
        warnings[0],
        DropWarning {
            reason: DropReason::Malformed,
            example,
            suppressed: 0
        }
    );
    // Drops 1 to 5,000 (the one at 10 s shown, the others suppressed).
    assert_eq!(warnings[1].suppressed, 4_999);
    // The rest is reported once the interval has passed, even with no new drop.
    let later = start + Duration::from_secs(30);
    limiter.observe(later, engine.stats(), |w| warnings.push(w));
    assert_eq!(warnings.len(), 3);
    assert_eq!(warnings[2].suppressed, 4_998);
    limiter.observe(later + INTERVAL, engine.stats(), |w| warnings.push(w));
    assert_eq!(warnings.len(), 3, "nothing new, nothing said");
    let reported: u64 = warnings.iter().map(|w| w.suppressed + 1).sum();
    assert_eq!(reported, 10_000, "every drop is in exactly one warning");
}

#[test]
fn runts_on_port_4500_are_counted_malformed() {
    let mut engine = server();
    let (local, from): (SocketAddr, SocketAddr) = (
        "2.2.2.2:4500".parse().unwrap(),
        "198.51.100.7:4500".parse().unwrap(),
    );
    for runt in [&[1u8, 2][..], &[0, 0, 0, 0], &[0xff]] {
        let _ = engine.handle_udp(t0(), local, from, &mut runt.to_vec());
    }
    // The NAT keepalive (0xff) is no drop.
    assert_eq!(engine.stats().drops(DropReason::Malformed), 2);
}
