use super::*;
use crate::engine::lns::Drop as L;

#[test]
fn histogram_puts_each_observation_in_its_bucket() {
    let mut h = Histogram::default();
    h.record(Duration::from_millis(50)); // on a bound: that bucket
    h.record(Duration::from_millis(51));
    h.record(Duration::from_secs(61)); // beyond the last bound: +Inf only
    assert_eq!(h.count(), 3);
    assert!((h.sum_seconds() - 61.101).abs() < 1e-9);
    let b = h.buckets();
    assert_eq!(b[0], (0.05, 1));
    assert_eq!(b[1], (0.1, 1));
    assert_eq!(
        b.iter().map(|(_, n)| n).sum::<u64>(),
        2,
        "61 s is in no finite bucket"
    );
}

#[test]
fn drops_are_counted_by_reason_with_an_example_source() {
    let mut s = EngineStats::default();
    let from = Some(IpAddr::from([203, 0, 113, 9]));
    for (drop, reason) in [
        (Drop::Esp(EspDiscard::Replay), DropReason::Replay),
        (Drop::Esp(EspDiscard::TooOld), DropReason::Replay),
        (Drop::Esp(EspDiscard::Integrity), DropReason::Integrity),
        (Drop::Esp(EspDiscard::UnknownSpi(7)), DropReason::NoSa),
        (Drop::Ike(IkeDiscard::Malformed), DropReason::Malformed),
        (Drop::Ike(IkeDiscard::Limit), DropReason::RateLimited),
        (Drop::Lns(L::Policy), DropReason::Policy),
        (Drop::Lns(L::Spoofed), DropReason::Spoofed),
        (Drop::Lns(L::NoRoute), DropReason::NoRoute),
        (Drop::PlainL2tp, DropReason::PlainL2tp),
    ] {
        assert_eq!(DropReason::of(&drop), Some(reason), "{drop:?}");
        let before = s.drops(reason);
        s.result::<()>(&Err(drop), from);
        assert_eq!(s.drops(reason), before + 1, "{drop:?}");
        assert_eq!(s.example(reason), from);
    }
    assert_eq!(s.drops(DropReason::Replay), 2);
    // Not errors: nothing counted.
    s.result::<()>(&Err(Drop::Keepalive), from);
    s.result::<()>(&Err(Drop::Esp(EspDiscard::DummyPacket)), from);
    s.result(&Ok(()), from);
    let total: u64 = DropReason::ALL.iter().map(|r| s.drops(*r)).sum();
    assert_eq!(total, 10);
}

#[test]
fn reason_and_outcome_names_are_distinct_metric_labels() {
    let names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "{n} twice");
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{n}"
        );
    }
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i, "ALL is in declaration order");
    }
    for (i, o) in Outcome::ALL.iter().enumerate() {
        assert_eq!(*o as usize, i);
    }
}

#[expect(clippy::disallowed_methods, reason = "the simulation's epoch")]
fn t0() -> Instant {
    Instant::now()
}

#[test]
fn an_attempt_without_an_outcome_ends_as_other_after_the_timeout() {
    let (mut a, mut s, t) = (Attempts::default(), EngineStats::default(), t0());
    let peer = IpAddr::from([203, 0, 113, 5]);
    a.first_packet(t, peer);
    a.first_packet(t + Duration::from_secs(1), peer); // a retransmission: same attempt
    assert_eq!(a.len(), 1);
    a.expire(&mut s, t + ATTEMPT_TIMEOUT - Duration::from_secs(1));
    assert_eq!((a.len(), s.connects(Outcome::Other)), (1, 0));
    a.expire(&mut s, t + ATTEMPT_TIMEOUT + SWEEP_INTERVAL);
    assert_eq!((a.len(), s.connects(Outcome::Other)), (0, 1));
}

#[test]
fn attempts_are_bounded() {
    let (mut a, t) = (Attempts::default(), t0());
    for i in 0..u32::try_from(MAX_ATTEMPTS).unwrap() + 10 {
        a.first_packet(t, IpAddr::from(i.to_be_bytes()));
    }
    assert_eq!(a.len(), MAX_ATTEMPTS);
}
