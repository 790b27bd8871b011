use super::*;
use crate::wire::{Frame, RawOption};

/// RFC 1661 §4.1, typed from the RFC's two tables one event row at a time, states 0–9 in the
/// RFC's column order. `-` is an impossible cell; `r` (restart) is not taken by us.
const TABLE: [(Event, [&str; 10]); 16] = [
    (
        Event::Up,
        ["2", "irc,scr/6", "-", "-", "-", "-", "-", "-", "-", "-"],
    ),
    (
        Event::Down,
        ["-", "-", "0", "tls/1", "0", "1", "1", "1", "1", "tld/1"],
    ),
    (
        Event::Open,
        ["tls/1", "1", "irc,scr/6", "3", "5", "5", "6", "7", "8", "9"],
    ),
    (
        Event::Close,
        [
            "0",
            "tlf/0",
            "2",
            "2",
            "4",
            "4",
            "irc,str/4",
            "irc,str/4",
            "irc,str/4",
            "tld,irc,str/4",
        ],
    ),
    (
        Event::TimeoutRetry,
        [
            "-", "-", "-", "-", "str/4", "str/5", "scr/6", "scr/6", "scr/8", "-",
        ],
    ),
    (
        Event::TimeoutGiveUp,
        [
            "-", "-", "-", "-", "tlf/2", "tlf/3", "tlf/3", "tlf/3", "tlf/3", "-",
        ],
    ),
    (
        Event::GoodRequest,
        [
            "-",
            "-",
            "sta/2",
            "irc,scr,sca/8",
            "4",
            "5",
            "sca/8",
            "sca,tlu/9",
            "sca/8",
            "tld,scr,sca/8",
        ],
    ),
    (
        Event::BadRequest,
        [
            "-",
            "-",
            "sta/2",
            "irc,scr,scn/6",
            "4",
            "5",
            "scn/6",
            "scn/7",
            "scn/6",
            "tld,scr,scn/6",
        ],
    ),
    (
        Event::Ack,
        [
            "-",
            "-",
            "sta/2",
            "sta/3",
            "4",
            "5",
            "irc/7",
            "scr/6",
            "irc,tlu/9",
            "tld,scr/6",
        ],
    ),
    (
        Event::Nak,
        [
            "-",
            "-",
            "sta/2",
            "sta/3",
            "4",
            "5",
            "irc,scr/6",
            "scr/6",
            "irc,scr/8",
            "tld,scr/6",
        ],
    ),
    (
        Event::TermRequest,
        [
            "-",
            "-",
            "sta/2",
            "sta/3",
            "sta/4",
            "sta/5",
            "sta/6",
            "sta/6",
            "sta/6",
            "tld,zrc,sta/5",
        ],
    ),
    (
        Event::TermAck,
        [
            "-",
            "-",
            "2",
            "3",
            "tlf/2",
            "tlf/3",
            "6",
            "6",
            "8",
            "tld,scr/6",
        ],
    ),
    (
        Event::UnknownCode,
        [
            "-", "-", "scj/2", "scj/3", "scj/4", "scj/5", "scj/6", "scj/7", "scj/8", "scj/9",
        ],
    ),
    (
        Event::PermittedReject,
        ["-", "-", "2", "3", "4", "5", "6", "6", "8", "9"],
    ),
    (
        Event::FatalReject,
        [
            "-",
            "-",
            "tlf/2",
            "tlf/3",
            "tlf/2",
            "tlf/3",
            "tlf/3",
            "tlf/3",
            "tlf/3",
            "tld,irc,str/5",
        ],
    ),
    (
        Event::EchoOrDiscard,
        ["-", "-", "2", "3", "4", "5", "6", "7", "8", "ser/9"],
    ),
];

const STATES: [State; 10] = [
    State::Initial,
    State::Starting,
    State::Closed,
    State::Stopped,
    State::Closing,
    State::Stopping,
    State::ReqSent,
    State::AckRcvd,
    State::AckSent,
    State::Opened,
];

fn parse_cell(cell: &str) -> Option<(Vec<Action>, State)> {
    if cell == "-" {
        return None;
    }
    let (actions, state) = cell.rsplit_once('/').unwrap_or(("", cell));
    let actions = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(|a| match a {
            "tlu" => Action::Tlu,
            "tld" => Action::Tld,
            "tls" => Action::Tls,
            "tlf" => Action::Tlf,
            "irc" => Action::Irc,
            "zrc" => Action::Zrc,
            "scr" => Action::Scr,
            "sca" => Action::Sca,
            "scn" => Action::Scn,
            "str" => Action::Str,
            "sta" => Action::Sta,
            "scj" => Action::Scj,
            "ser" => Action::Ser,
            other => panic!("unknown action {other}"),
        })
        .collect();
    Some((actions, STATES[state.parse::<usize>().unwrap()]))
}

#[test]
fn every_cell_of_the_rfc_1661_table() {
    let mut checked = 0;
    for (event, row) in TABLE {
        for (state, cell) in STATES.into_iter().zip(row) {
            let expected = parse_cell(cell);
            let got = transition(state, event).map(|(a, s)| (a.to_vec(), s));
            assert_eq!(got, expected, "{state:?} x {event:?} (RFC cell {cell:?})");
            checked += 1;
        }
    }
    assert_eq!(checked, 160);
}

/// A negotiator with one option we ask for (kind 1, two bytes) and one we refuse (kind 99).
#[derive(Debug, Default)]
struct Toy {
    value: u16,
    resets: u32,
    peer_value: Option<u16>,
    accepted: Option<u16>,
    nak_with: Option<u16>,
}

impl Negotiator for Toy {
    const PROTOCOL: Protocol = Protocol::IPCP;

    fn write_request(&self, w: &mut codec::Writer<'_>) -> Result<(), codec::NoSpace> {
        write_be_option(w, 1, self.value.to_be_bytes())
    }

    fn review(&mut self, request: Options<'_>, reply: &mut Reply) {
        self.peer_value = None;
        for opt in request.flatten() {
            match (opt.kind, self.nak_with) {
                (99, _) => reply.reject(opt.raw),
                (1, Some(want)) if opt.data != want.to_be_bytes() => {
                    reply.nak(opt.raw, 1, &want.to_be_bytes())
                }
                (1, _) => self.peer_value = opt.data.try_into().ok().map(u16::from_be_bytes),
                _ => reply.reject(opt.raw),
            }
        }
    }

    fn commit_peer(&mut self) {
        self.accepted = self.peer_value;
    }

    fn apply_nak(&mut self, suggested: Options<'_>) -> Result<(), Unacceptable> {
        for opt in suggested.flatten() {
            if opt.kind == 1 {
                self.value = opt
                    .data
                    .try_into()
                    .map(u16::from_be_bytes)
                    .map_err(|_| Unacceptable)?;
            }
        }
        Ok(())
    }

    fn apply_reject(&mut self, rejected: Options<'_>) -> Result<(), Unacceptable> {
        if rejected.flatten().any(|o| o.kind == 1) {
            Err(Unacceptable)
        } else {
            Ok(())
        }
    }

    fn reset(&mut self) {
        self.resets += 1;
        self.accepted = None;
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the simulation's epoch; every later instant derives from it"
)]
fn t0() -> Instant {
    Instant::now()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The frames queued in `out`, decoded as (code, identifier, data).
fn drain(out: &mut Outbox) -> Vec<(u8, u8, Vec<u8>)> {
    let mut buf = [0u8; 2048];
    let mut frames = Vec::new();
    while let Some(n) = out.pop_into(&mut buf) {
        let frame = Frame::parse(&buf[..n]).unwrap();
        assert_eq!(frame.protocol, Protocol::IPCP);
        let p = Packet::parse(frame.information).unwrap();
        frames.push((p.code, p.identifier, p.data.to_vec()));
    }
    frames
}

fn packet(code: Code, identifier: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![code.0, identifier, 0, 0];
    v.extend_from_slice(data);
    let len = u16::try_from(v.len()).unwrap().to_be_bytes();
    v[2..4].copy_from_slice(&len);
    v
}

#[track_caller]
fn feed(fsm: &mut Fsm<Toy>, now: Instant, bytes: &[u8], out: &mut Outbox) -> Option<Signal> {
    fsm.handle_packet(now, &Packet::parse(bytes).unwrap(), out)
}

fn opened(now: Instant, out: &mut Outbox) -> Fsm<Toy> {
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    assert_eq!(fsm.event(now, Event::Open, out), Some(Signal::Started));
    assert_eq!(fsm.event(now, Event::Up, out), None);
    let sent = drain(out);
    assert_eq!(sent, vec![(1, 1, vec![1, 4, 0, 7])]);
    assert_eq!(
        feed(
            &mut fsm,
            now,
            &packet(Code::CONFIGURE_REQUEST, 40, &[1, 4, 0, 9]),
            out
        ),
        None
    );
    // The peer's first request: ours is repeated at once, ahead of the Ack.
    assert_eq!(
        drain(out),
        vec![(1, 1, vec![1, 4, 0, 7]), (2, 40, vec![1, 4, 0, 9])]
    );
    assert_eq!(fsm.state(), State::AckSent);
    assert_eq!(
        feed(
            &mut fsm,
            now,
            &packet(Code::CONFIGURE_ACK, 1, &[1, 4, 0, 7]),
            out
        ),
        Some(Signal::Up)
    );
    assert_eq!(fsm.state(), State::Opened);
    assert_eq!(fsm.negotiator().accepted, Some(9));
    assert_eq!(fsm.poll_timeout(), None, "no restart timer in Opened");
    fsm
}

#[test]
fn negotiation_opens_and_commits_only_acknowledged_options() {
    let mut out = Outbox::default();
    let fsm = opened(t0(), &mut out);
    assert_eq!(fsm.negotiator().resets, 1);
}

#[test]
fn configure_request_is_retransmitted_max_configure_times_then_gives_up() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    assert_eq!(fsm.state(), State::ReqSent);
    let mut now = t0;
    let mut requests = drain(&mut out).len();
    for _ in 0..20 {
        assert_eq!(fsm.poll_timeout(), Some(now + secs(3)));
        // Early and repeated calls are harmless.
        assert_eq!(fsm.handle_timeout(now + secs(2), &mut out), None);
        assert!(drain(&mut out).is_empty());
        now += secs(3);
        let signal = fsm.handle_timeout(now, &mut out);
        let sent = drain(&mut out);
        if signal == Some(Signal::Finished) {
            assert!(sent.is_empty());
            break;
        }
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, 1, "a retransmission keeps its identifier");
        requests += 1;
    }
    assert_eq!(requests, 10, "Max-Configure is 10");
    assert_eq!(fsm.state(), State::Stopped);
    assert_eq!(fsm.failure(), Some(Failure::Timeout));
    assert_eq!(fsm.poll_timeout(), None);
    assert_eq!(now, t0 + secs(30));
}

#[test]
fn close_sends_terminate_requests_max_terminate_times() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = opened(t0, &mut out);
    assert_eq!(fsm.close(t0, "admin", &mut out), Some(Signal::Down));
    assert_eq!(drain(&mut out), vec![(5, 2, b"admin".to_vec())]);
    assert_eq!(fsm.state(), State::Closing);
    assert_eq!(fsm.poll_timeout(), Some(t0 + secs(3)));
    assert_eq!(fsm.handle_timeout(t0 + secs(3), &mut out), None);
    assert_eq!(drain(&mut out).len(), 1);
    assert_eq!(
        fsm.handle_timeout(t0 + secs(6), &mut out),
        Some(Signal::Finished)
    );
    assert_eq!(fsm.state(), State::Closed);
    assert!(drain(&mut out).is_empty());
}

#[test]
fn terminate_ack_finishes_closing_at_once() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = opened(t0, &mut out);
    fsm.close(t0, "bye", &mut out);
    drain(&mut out);
    assert_eq!(
        feed(
            &mut fsm,
            t0 + secs(1),
            &packet(Code::TERMINATE_ACK, 2, &[]),
            &mut out
        ),
        Some(Signal::Finished)
    );
    assert_eq!(fsm.state(), State::Closed);
    assert_eq!(fsm.poll_timeout(), None);
}

#[test]
fn peer_terminate_request_is_acked_and_waits_one_restart_period() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = opened(t0, &mut out);
    assert_eq!(
        feed(
            &mut fsm,
            t0,
            &packet(Code::TERMINATE_REQUEST, 77, b"bye"),
            &mut out
        ),
        Some(Signal::Down)
    );
    assert_eq!(drain(&mut out), vec![(6, 77, vec![])]);
    assert_eq!(fsm.state(), State::Stopping);
    assert_eq!(
        fsm.poll_timeout(),
        Some(t0 + secs(3)),
        "zrc starts the timer"
    );
    assert_eq!(
        fsm.handle_timeout(t0 + secs(3), &mut out),
        Some(Signal::Finished)
    );
    assert_eq!(fsm.state(), State::Stopped);
}

#[test]
fn naks_turn_into_rejects_after_max_failure() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            nak_with: Some(5),
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    drain(&mut out);
    for id in 0..5 {
        feed(
            &mut fsm,
            t0,
            &packet(Code::CONFIGURE_REQUEST, id, &[1, 4, 0, 9]),
            &mut out,
        );
        let mut sent = drain(&mut out);
        if id == 0 {
            // The peer's first request: ours is repeated first.
            assert_eq!(sent.remove(0), (1, 1, vec![1, 4, 0, 7]));
        }
        assert_eq!(sent, vec![(3, id, vec![1, 4, 0, 5])]);
    }
    feed(
        &mut fsm,
        t0,
        &packet(Code::CONFIGURE_REQUEST, 5, &[1, 4, 0, 9]),
        &mut out,
    );
    assert_eq!(
        drain(&mut out),
        vec![(4, 5, vec![1, 4, 0, 9])],
        "the sixth Nak became a Reject"
    );
}

#[test]
fn reject_wins_over_nak_and_lists_only_rejected_options() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            nak_with: Some(5),
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    drain(&mut out);
    feed(
        &mut fsm,
        t0,
        &packet(Code::CONFIGURE_REQUEST, 3, &[1, 4, 0, 9, 99, 3, 1]),
        &mut out,
    );
    assert_eq!(
        drain(&mut out),
        vec![(1, 1, vec![1, 4, 0, 7]), (4, 3, vec![99, 3, 1])]
    );
    assert_eq!(fsm.state(), State::ReqSent);
}

#[test]
fn the_peers_first_request_makes_us_repeat_ours_at_once_and_only_once() {
    // xl2tpd starts pppd only after the call is up and drops what arrives before: our first
    // request is lost, and without the repeat the link waits a whole restart period for it.
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Open, &mut out);
    fsm.event(t0, Event::Up, &mut out);
    assert_eq!(drain(&mut out), vec![(1, 1, vec![1, 4, 0, 7])]);
    let late = t0 + Duration::from_millis(700);
    feed(
        &mut fsm,
        late,
        &packet(Code::CONFIGURE_REQUEST, 9, &[1, 4, 0, 9]),
        &mut out,
    );
    assert_eq!(
        drain(&mut out),
        vec![(1, 1, vec![1, 4, 0, 7]), (2, 9, vec![1, 4, 0, 9])],
        "the same request (same identifier) ahead of the Ack"
    );
    assert_eq!(fsm.poll_timeout(), Some(late + secs(3)), "timer restarted");
    // The repeat is not a retransmission: Max-Configure counts only timeouts.
    assert_eq!(fsm.counter, Config::default().max_configure - 1);
    // The peer's retransmission does not make us repeat ours again.
    feed(
        &mut fsm,
        late,
        &packet(Code::CONFIGURE_REQUEST, 9, &[1, 4, 0, 9]),
        &mut out,
    );
    assert_eq!(drain(&mut out), vec![(2, 9, vec![1, 4, 0, 9])]);
    // Its Ack (perhaps for both copies) opens the link once.
    let ack = packet(Code::CONFIGURE_ACK, 1, &[1, 4, 0, 7]);
    assert_eq!(feed(&mut fsm, late, &ack, &mut out), Some(Signal::Up));
    assert_eq!(feed(&mut fsm, late, &ack, &mut out), None);
    assert_eq!(fsm.state(), State::Opened);
}

#[test]
fn acks_and_naks_with_a_stale_identifier_or_other_options_are_ignored() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    drain(&mut out);
    assert_eq!(
        feed(
            &mut fsm,
            t0,
            &packet(Code::CONFIGURE_ACK, 9, &[1, 4, 0, 7]),
            &mut out
        ),
        None
    );
    assert_eq!(
        feed(
            &mut fsm,
            t0,
            &packet(Code::CONFIGURE_ACK, 1, &[1, 4, 0, 8]),
            &mut out
        ),
        None
    );
    assert_eq!(
        feed(
            &mut fsm,
            t0,
            &packet(Code::CONFIGURE_NAK, 9, &[1, 4, 0, 8]),
            &mut out
        ),
        None
    );
    assert_eq!(fsm.state(), State::ReqSent);
    assert!(drain(&mut out).is_empty());
    // The right Nak changes our request and sends it with a new identifier.
    feed(
        &mut fsm,
        t0,
        &packet(Code::CONFIGURE_NAK, 1, &[1, 4, 0, 8]),
        &mut out,
    );
    assert_eq!(drain(&mut out), vec![(1, 2, vec![1, 4, 0, 8])]);
}

#[test]
fn rejecting_an_option_we_need_closes_the_protocol() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    drain(&mut out);
    feed(
        &mut fsm,
        t0,
        &packet(Code::CONFIGURE_REJECT, 1, &[1, 4, 0, 7]),
        &mut out,
    );
    assert_eq!(fsm.failure(), Some(Failure::Unacceptable));
    assert_eq!(fsm.state(), State::Closing);
    assert_eq!(drain(&mut out)[0].0, 5, "Terminate-Request");
}

#[test]
fn endless_naks_end_negotiation() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    for _ in 0..=10 {
        let id = drain(&mut out).last().unwrap().1;
        feed(
            &mut fsm,
            t0,
            &packet(Code::CONFIGURE_NAK, id, &[1, 4, 0, 8]),
            &mut out,
        );
    }
    assert_eq!(fsm.failure(), Some(Failure::TooManyNaks));
    assert_eq!(fsm.state(), State::Closing);
}

#[test]
fn unknown_codes_are_code_rejected_with_the_packet_quoted() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = opened(t0, &mut out);
    let weird = packet(Code(42), 5, &[1, 2, 3]);
    assert_eq!(feed(&mut fsm, t0, &weird, &mut out), None);
    assert_eq!(drain(&mut out), vec![(7, 2, weird.clone())]);
    assert_eq!(fsm.state(), State::Opened);
}

#[test]
fn code_reject_of_a_needed_code_is_fatal_and_of_others_is_not() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = opened(t0, &mut out);
    assert_eq!(
        feed(
            &mut fsm,
            t0,
            &packet(Code::CODE_REJECT, 3, &packet(Code(12), 1, &[])),
            &mut out
        ),
        None
    );
    assert_eq!(fsm.state(), State::Opened);
    let signal = feed(
        &mut fsm,
        t0,
        &packet(
            Code::CODE_REJECT,
            4,
            &packet(Code::CONFIGURE_REQUEST, 1, &[]),
        ),
        &mut out,
    );
    assert_eq!(signal, Some(Signal::Down));
    assert_eq!(fsm.state(), State::Stopping);
    assert_eq!(fsm.failure(), Some(Failure::CodeRejected));
}

#[test]
fn malformed_requests_are_silently_discarded() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = Fsm::new(
        Toy {
            value: 7,
            ..Toy::default()
        },
        Config::default(),
    );
    fsm.event(t0, Event::Up, &mut out);
    fsm.event(t0, Event::Open, &mut out);
    drain(&mut out);
    assert_eq!(
        feed(
            &mut fsm,
            t0,
            &packet(Code::CONFIGURE_REQUEST, 3, &[1, 9, 0]),
            &mut out
        ),
        None
    );
    assert!(drain(&mut out).is_empty());
    assert_eq!(fsm.state(), State::ReqSent);
    let _ = RawOption {
        kind: 0,
        data: &[],
        raw: &[],
    };
}

#[test]
fn renegotiation_from_opened_resets_the_negotiator() {
    let t0 = t0();
    let mut out = Outbox::default();
    let mut fsm = opened(t0, &mut out);
    let signal = feed(
        &mut fsm,
        t0,
        &packet(Code::CONFIGURE_REQUEST, 41, &[1, 4, 0, 3]),
        &mut out,
    );
    assert_eq!(signal, Some(Signal::Down));
    assert_eq!(fsm.state(), State::AckSent);
    let sent = drain(&mut out);
    assert_eq!(
        sent.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![1, 2],
        "scr then sca"
    );
    assert_eq!(fsm.negotiator().accepted, Some(3));
    assert_eq!(fsm.negotiator().resets, 2);
}
