//! The LNS layer holding thousands of sessions: what the timer and output paths cost, and that
//! no session's timer is lost. In memory and simulated time, as the parent module.

use super::*;
use rand_core::Rng as _;
use timer::TimerQueue;

/// An LNS as the server configures it (65,000 tunnels), with PAP and a pool of 25,000.
fn scale_lns() -> Lns<ChaCha20Rng> {
    let mut lns = new_lns(vec![Method::Pap], Ipv4Addr::new(172, 16, 100, 0));
    let mut l2tp = (*lns.config.l2tp).clone();
    l2tp.limits.max_tunnels = 65_000;
    lns.config.l2tp = Arc::new(l2tp);
    lns.l2tp = l2tp::Endpoint::new(Arc::clone(&lns.config.l2tp), ChaCha20Rng::seed_from_u64(5));
    lns
}

/// The LNS and many clients, driven by events: only clients that got a datagram or whose
/// timer came up are run (a scan of every client per step would make the test itself O(n²)).
struct Fleet {
    lns: Lns<ChaCha20Rng>,
    clients: Vec<Client>,
    by_addr: BTreeMap<SocketAddr, usize>,
    timers: TimerQueue<usize, Instant>,
    touched: Vec<usize>,
    now: Instant,
    /// When the LNS sent each client an LCP Echo-Request.
    echoes: Vec<Vec<Instant>>,
}

impl Fleet {
    fn new(now: Instant) -> Self {
        Self {
            lns: scale_lns(),
            clients: Vec::new(),
            by_addr: BTreeMap::new(),
            timers: TimerQueue::new(),
            touched: Vec::new(),
            now,
            echoes: Vec::new(),
        }
    }

    /// Starts one more client (it connects at once).
    fn add(&mut self) {
        let i = self.clients.len();
        let mut c = Client::new(1, "hb@hb", "admin@123", self.now);
        let n = u32::try_from(i).unwrap();
        c.addr = SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 1701));
        self.by_addr.insert(c.addr, i);
        self.clients.push(c);
        self.echoes.push(Vec::new());
        self.touched.push(i);
        self.settle();
    }

    /// Moves datagrams until nothing moves.
    fn settle(&mut self) {
        let mut buf = [0u8; 2048];
        loop {
            let mut moved = false;
            while let Some(i) = self.touched.pop() {
                moved |= self.client_out(i, &mut buf);
            }
            while let Some((peer, n)) = self.lns.poll_transmit(self.now, &mut buf) {
                moved = true;
                let Some(&i) = self.by_addr.get(&peer) else {
                    continue;
                };
                let c = &mut self.clients[i];
                let mut datagram = buf[..n].to_vec();
                if let Ok(Received::Data(d)) =
                    c.l2tp
                        .handle_datagram(self.now, SERVER.parse().unwrap(), &mut datagram)
                    && let Some(ppp) = c.ppp.as_mut()
                {
                    let frame = &datagram[d.frame];
                    // FF 03, LCP (C0 21), Echo-Request (9).
                    if frame.get(..5) == Some(&[0xff, 0x03, 0xc0, 0x21, 9]) {
                        self.echoes[i].push(self.now);
                    }
                    let _ = ppp.handle_frame(self.now, &mut c.ppp_rng, frame);
                }
                self.touched.push(i);
            }
            if !moved {
                return;
            }
        }
    }

    /// Sends what client `i` has to send, and re-arms its timer; whether anything went out.
    fn client_out(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let now = self.now;
        let c = &mut self.clients[i];
        let mut moved = false;
        while let Some(t) = c.l2tp.poll_transmit(now, buf) {
            moved = true;
            let _ = self.lns.handle_l2tp(now, c.addr, &mut buf[..t.len]);
        }
        while let Some(e) = c.l2tp.poll_event() {
            if let l2tp::Event::SessionUp(up) = e {
                c.tunnel = Some(up.tunnel);
                c.data = c.l2tp.data_path(up.tunnel, up.session);
                c.ppp_rng = ChaCha20Rng::seed_from_u64(99);
                c.ppp = Some(Session::client(Arc::clone(&c.config), &mut c.ppp_rng, now));
                moved = true;
            }
        }
        if let (Some(ppp), Some(data)) = (c.ppp.as_mut(), c.data) {
            while let Some(n) = ppp.poll_transmit(&mut buf[HEADROOM..]) {
                moved = true;
                let range = data.encapsulate(buf, HEADROOM..HEADROOM + n).unwrap();
                let _ = self.lns.handle_l2tp(now, c.addr, &mut buf[range]);
            }
            while let Some(e) = ppp.poll_event() {
                if let ppp::Event::Down(r) = e {
                    c.down = Some(r);
                }
            }
        }
        let at = [
            c.l2tp.poll_timeout(),
            c.ppp.as_ref().and_then(|p| p.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        self.timers.set(i, at);
        moved
    }

    /// Runs every timer (the LNS's and the clients') up to `until`, in order.
    fn run_until(&mut self, until: Instant) {
        loop {
            let next = [self.lns.poll_timeout(), self.timers.earliest()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|t| *t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            self.lns.handle_timeout(self.now);
            while let Some(i) = self.timers.pop_due(&self.now) {
                let c = &mut self.clients[i];
                c.l2tp.handle_timeout(self.now);
                if let Some(p) = c.ppp.as_mut() {
                    p.handle_timeout(self.now, &mut c.ppp_rng);
                }
                self.touched.push(i);
            }
            self.settle();
        }
        self.now = self.now.max(until);
    }

    /// Connects `n` clients, one every 1–4 ms (seeded), so that their timers are spread.
    fn fill(&mut self, n: usize, seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for _ in 0..n {
            self.add();
            let gap = Duration::from_micros(1000 + u64::from(rng.next_u32() % 3000));
            self.run_until(self.now + gap);
        }
        self.run_until(self.now + Duration::from_secs(1));
    }

    /// The sessions whose deadline is at or before `now`, by a full scan (the test's model).
    fn due_by_scan(&self, now: Instant) -> usize {
        self.lns
            .links
            .values()
            .filter(|l| {
                [l.ppp.poll_timeout(), l.deadline()]
                    .into_iter()
                    .flatten()
                    .min()
                    .is_some_and(|t| t <= now)
            })
            .count()
    }
}

#[test]
fn timers_of_10000_sessions_visit_only_the_sessions_due() {
    let mut fleet = Fleet::new(t0());
    fleet.fill(10_000, 8);
    assert_eq!(fleet.lns.sessions(), 10_000);
    assert!(fleet.clients.iter().all(|c| c.ipv4().is_some()));

    for _ in 0..20 {
        // The next deadline is one session's (its LCP echo): only it is visited.
        let next = fleet.lns.poll_timeout().unwrap();
        let due = fleet.due_by_scan(next);
        assert!((1..=2).contains(&due), "{due} sessions due at once");
        fleet.lns.visits = 0;
        fleet.now = next;
        fleet.lns.handle_timeout(next);
        let mut buf = [0u8; 2048];
        let mut frames = 0;
        while fleet.lns.poll_transmit(next, &mut buf).is_some() {
            frames += 1;
        }
        // Timer, pump and output each look at the due session (output twice: the frame,
        // then finding it dry).
        let visits = fleet.lns.visits;
        assert!(
            visits <= 4 * due as u64,
            "{visits} sessions visited for {due} due"
        );
        assert_eq!(frames, due, "one Echo-Request per due session");
        assert_eq!(fleet.due_by_scan(next), 0, "nothing due is left behind");
    }
}

#[test]
fn every_keepalive_of_jittered_sessions_fires_on_time_for_an_hour() {
    let mut fleet = Fleet::new(t0());
    fleet.fill(300, 21);
    let start = fleet.now;
    let first: Vec<usize> = fleet.echoes.iter().map(Vec::len).collect();
    fleet.run_until(start + Duration::from_secs(3600));
    let interval = ServerConfig::default().link.echo_interval.unwrap();
    assert_eq!(fleet.lns.sessions(), 300);
    for (i, echoes) in fleet.echoes.iter().enumerate() {
        let held = &echoes[first[i]..];
        // One Echo-Request every interval, exactly on time, for the whole hour.
        assert!(held.len() >= 119, "session {i}: {} echoes", held.len());
        for w in echoes.windows(2) {
            assert_eq!(w[1] - w[0], interval, "session {i}");
        }
        assert!(fleet.clients[i].down.is_none());
    }
}
