//! The responder's Diffie-Hellman budget for unauthenticated peers (`max_dh_per_second`): a
//! burst of peers beyond it is not refused, only paced by the initiators' retransmissions, and
//! the rate of modular exponentiations stays at the budget.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness"
)]

mod common;

use common::World;
use ike::endpoint::Config;
use l2sec_ike as ike;
use std::time::Duration;

const PSK: &[u8] = b"the office key";

#[test]
fn a_burst_beyond_the_dh_budget_is_paced_not_refused() {
    let mut server = Config::new(PSK);
    server.max_dh_per_second = Some(5);
    let mut w = World::new(server, Duration::from_millis(10));
    let peers = 40;
    for i in 0..peers {
        let local = format!("10.1.{}.{}:500", i / 200, 1 + i % 200);
        w.add_peer(Config::new(PSK), &local, None);
    }
    let start = w.now;
    for i in 0..peers {
        w.connect(i);
    }
    // Sample the responder's DH count every second while the burst is served.
    let mut per_second = Vec::new();
    let mut last = w.server.stats().dh_computations;
    let all_up = |w: &World| w.peers.iter().all(|p| p.child().is_some());
    while !all_up(&w) && w.now < start + Duration::from_secs(120) {
        let until = w.now + Duration::from_secs(1);
        while w.now < until && w.step(until) {}
        let now = w.server.stats().dh_computations;
        per_second.push(now - last);
        last = now;
    }
    assert!(all_up(&w), "{per_second:?}");
    assert_eq!(w.server.stats().dh_computations, 40, "one DH per peer");
    assert!(w.limited > 0, "the budget was reached");
    // A full bucket (5) plus at most 5 per second after it.
    assert!(per_second[0] <= 10, "{per_second:?}");
    assert!(per_second.iter().skip(1).all(|n| *n <= 6), "{per_second:?}");
    // 40 peers at 5 per second take at least 7 s.
    assert!(per_second.len() >= 7, "{per_second:?}");
}
