//! RADIUS end to end: `l2sec-server` in the reference scenario authenticates and accounts
//! through a real FreeRADIUS running on the loopback of the server's namespace (`lns`), and
//! `l2sec-client` logs in from `mobile`. Namespaces use the prefix `l2rd…`.
//!
//! FreeRADIUS's users file checks the NAS attributes of every Access-Request (NAS-IP-Address,
//! NAS-Identifier, NAS-Port-Type Virtual, Service-Type Framed, Framed-Protocol PPP,
//! Calling-Station-Id = the laptop's public address, Called-Station-Id = ours): a request
//! without them would not match the user and be rejected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test harness"
)]

use l2sec_tests::freeradius::{self, FreeRadius};
use l2sec_tests::netns::available;
use l2sec_tests::scenario::{Options, Scenario, binary, output};
use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

const SECRET: &str = "rd-shared-secret";
const DAE_SECRET: &str = "rd-dae-secret";

/// The laptop's public address: its own, or the NAT's in the scenario behind a NAT.
const LAPTOP: &str = "2.2.2.10";
const NAT: &str = "2.2.2.3";

/// The users, each entry checking what the Access-Request must say, with Calling-Station-Id
/// `calling` (the laptop's public address).
fn users_calling(calling: &str) -> String {
    let checks = format!(
        "NAS-IP-Address == 2.2.2.2, NAS-Identifier == \"rd-lns\", NAS-Port-Type == Virtual, \
         Service-Type == Framed-User, Framed-Protocol == PPP, \
         Calling-Station-Id == \"{calling}\", Called-Station-Id == \"2.2.2.2\""
    );
    users_with(&checks)
}

fn users() -> String {
    users_calling(LAPTOP)
}

fn users_with(checks: &str) -> String {
    format!(
        "rdpap\tCleartext-Password := \"pap-secret-1\", {checks}\n\
         \tClass = \"rd-class-pap\", Reply-Message = \"welcome pap\"\n\n\
         rdchap\tCleartext-Password := \"chap-secret-2\", {checks}\n\
         \tClass = \"rd-class-chap\"\n\n\
         rdms\tCleartext-Password := \"ms-secret-3\", {checks}\n\
         \tClass = \"rd-class-ms\"\n\n\
         rdfixed\tCleartext-Password := \"fixed-secret-4\", {checks}\n\
         \tFramed-IP-Address = 172.16.1.50\n"
    )
}

/// Root, namespaces and FreeRADIUS, or a loud reason why not. Without root the test is
/// skipped; as root a missing FreeRADIUS fails it (`scripts/test` installs it).
fn ready() -> bool {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return false;
    }
    assert!(
        freeradius::installed(),
        "FreeRADIUS is missing: apt-get install freeradius freeradius-utils (scripts/test does)"
    );
    true
}

/// The `[radius]` section for servers on 127.0.0.1 at `ports` (auth; acct is the next).
fn radius_config(ports: &[u16], extra: &str) -> String {
    let mut text =
        format!("[radius]\norder = \"radius-only\"\nnas_identifier = \"rd-lns\"\n{extra}\n");
    for port in ports {
        text.push_str(&format!(
            "\n[[radius.server]]\naddress = \"127.0.0.1\"\nauth_port = {port}\nacct_port = {}\nsecret = \"{SECRET}\"\n",
            port + 1
        ));
    }
    text
}

/// Polls `f` every 100 ms for at most `limit`; the first `Some` it returns.
fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for the client to exit (at most 20 s) and returns its status and log.
fn wait_exit(mut client: Child) -> (Option<std::process::ExitStatus>, String) {
    let status = poll(Duration::from_secs(20), || client.try_wait().ok().flatten());
    (status, output(client))
}

/// `l2sec-client disconnect` for the client of `s`, then its exit.
fn disconnect(s: &Scenario, client: Child) -> (Option<std::process::ExitStatus>, String) {
    let pid_file = s.state.join("client.pid");
    let _ = s
        .topo
        .run(
            "mobile",
            binary("l2sec-client").to_str().unwrap(),
            &["disconnect", "--pid-file", pid_file.to_str().unwrap()],
        )
        .unwrap();
    wait_exit(client)
}

type Record = BTreeMap<String, String>;

fn field<'a>(r: &'a Record, key: &str) -> &'a str {
    r.get(key).map_or("", String::as_str)
}

fn number(r: &Record, key: &str) -> u64 {
    field(r, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {r:?}"))
}

/// The records of one status type for `user`.
fn records<'a>(all: &'a [Record], status: &str, user: &str) -> Vec<&'a Record> {
    all.iter()
        .filter(|r| field(r, "Acct-Status-Type") == status && field(r, "User-Name") == user)
        .collect()
}

#[test]
fn pap_chap_and_mschapv2_users_log_in_through_freeradius_and_are_accounted() {
    if !ready() {
        return;
    }
    let len = 1_000_000u64;
    // Each method runs its own server process: their Acct-Session-Ids must all differ.
    let mut sessions: Vec<String> = Vec::new();
    for (tag, auth, user, password, class) in [
        ("rdp", "pap", "rdpap", "pap-secret-1", "rd-class-pap"),
        (
            "rdc",
            "chap-md5",
            "rdchap",
            "chap-secret-2",
            "rd-class-chap",
        ),
        ("rdm", "mschapv2", "rdms", "ms-secret-3", "rd-class-ms"),
    ] {
        let config = radius_config(&[18120], "interim_interval = \"2s\"\ntimeout = \"1s\"");
        let mut s = Scenario::prepare(
            tag,
            &Options {
                auth,
                config: &config,
                ..Options::default()
            },
        );
        let radius = FreeRadius::start(&s.topo, "lns", 18120, SECRET, &users());
        s.launch();
        let client = s.client_as(user, password);
        let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
        let transfer = up.then(|| s.tcp_round_trip(usize::try_from(len).unwrap()));
        // An Interim-Update is written while the session lasts (interim_interval 2 s).
        let interim = up
            && poll(Duration::from_secs(20), || {
                (!records(&radius.accounting(), "Interim-Update", user).is_empty()).then_some(())
            })
            .is_some();
        let (exited, client_log) = disconnect(&s, client);
        let stop = poll(Duration::from_secs(10), || {
            records(&radius.accounting(), "Stop", user)
                .first()
                .map(|r| (*r).clone())
        });
        let server_log = s.stop_server();
        let all = radius.accounting();
        let context = format!(
            "{auth}\nclient:\n{client_log}\nserver:\n{server_log}\nfreeradius:\n{}\ndetail: {all:#?}",
            radius.log()
        );
        assert!(up, "{auth}: no address\n{context}");
        if let Some(Err(e)) = transfer {
            panic!("{auth}: 1 MB round trip through the tunnel: {e}\n{context}");
        }
        assert!(exited.is_some_and(|st| st.success()), "{context}");
        assert!(interim, "{auth}: no Interim-Update\n{context}");
        let stop = stop.unwrap_or_else(|| panic!("{auth}: no Stop record\n{context}"));

        let start = records(&all, "Start", user);
        assert_eq!(start.len(), 1, "{context}");
        let start = start[0];
        for (key, value) in [
            ("Framed-IP-Address", "172.16.1.2"),
            ("NAS-IP-Address", "2.2.2.2"),
            ("NAS-Identifier", "rd-lns"),
            ("NAS-Port-Type", "Virtual"),
            ("Service-Type", "Framed-User"),
            ("Framed-Protocol", "PPP"),
            ("Calling-Station-Id", LAPTOP),
            ("Called-Station-Id", "2.2.2.2"),
            ("Acct-Authentic", "RADIUS"),
        ] {
            assert_eq!(field(start, key), value, "{auth}: Start {key}\n{context}");
        }
        assert!(start.contains_key("Event-Timestamp"), "{context}");
        // Class is echoed as the Access-Accept sent it (FreeRADIUS writes it in hex).
        let class_hex: String = class.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(field(start, "Class"), format!("0x{class_hex}"), "{context}");
        let session = field(start, "Acct-Session-Id");
        assert_eq!(session.len(), 25, "{context}");
        assert!(
            !sessions.iter().any(|s| s == session),
            "{session} reused across restarts: {sessions:?}"
        );
        sessions.push(session.to_owned());
        for r in records(&all, "Interim-Update", user) {
            assert_eq!(field(r, "Acct-Session-Id"), session, "{context}");
        }
        assert_eq!(field(&stop, "Acct-Session-Id"), session, "{context}");
        assert_eq!(field(&stop, "Framed-IP-Address"), "172.16.1.2");
        assert_eq!(
            field(&stop, "Acct-Terminate-Cause"),
            "User-Request",
            "{context}"
        );
        assert_eq!(number(&stop, "Acct-Input-Gigawords"), 0);
        assert_eq!(number(&stop, "Acct-Output-Gigawords"), 0);
        assert!(number(&stop, "Acct-Session-Time") >= 2, "{context}");
        // What the laptop sent (1 MB up, plus TCP/IP headers and the ACKs of the 1 MB down)
        // and what it received (the same the other way): the payload plus at most 20 %.
        let (input, output) = (
            number(&stop, "Acct-Input-Octets"),
            number(&stop, "Acct-Output-Octets"),
        );
        eprintln!(
            "{auth}: {len} bytes each way; Stop says input {input} octets / {} packets, output {output} octets / {} packets",
            number(&stop, "Acct-Input-Packets"),
            number(&stop, "Acct-Output-Packets")
        );
        for (what, octets) in [("input", input), ("output", output)] {
            assert!(
                (len..=len + len / 5).contains(&octets),
                "{auth}: {what} octets {octets} for {len} bytes of payload\n{context}"
            );
        }
        assert!(number(&stop, "Acct-Input-Packets") >= len / 1400);
        // Accounting-On at start, Accounting-Off at the clean stop (SIGTERM).
        let onoff: Vec<&str> = all
            .iter()
            .map(|r| field(r, "Acct-Status-Type"))
            .filter(|t| t.starts_with("Accounting-"))
            .collect();
        assert_eq!(onoff, ["Accounting-On", "Accounting-Off"], "{context}");
    }
}

#[test]
fn a_wrong_password_is_refused_framed_ip_address_is_honoured_and_a_clean_stop_is_accounted() {
    if !ready() {
        return;
    }
    let config = radius_config(&[18120], "timeout = \"1s\"");
    let mut s = Scenario::prepare(
        "rdw",
        &Options {
            auth: "mschapv2",
            config: &config,
            ..Options::default()
        },
    );
    let radius = FreeRadius::start(&s.topo, "lns", 18120, SECRET, &users());
    s.launch();
    let (status, wrong_log) = wait_exit(s.client_as("rdms", "not-the-password"));
    // The user with a Framed-IP-Address gets exactly that address and can use it.
    let client = s.client_as("rdfixed", "fixed-secret-4");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.50");
    let ping = up.then(|| {
        s.topo
            .run("mobile", "ping", &["-c", "2", "-W", "2", "192.168.1.1"])
            .unwrap()
    });
    // A clean stop of the server (SIGTERM) with the session up: Stop, then Accounting-Off.
    let server_log = s.stop_server();
    let mut client = client;
    let _ = client.kill();
    let client_log = output(client);
    let all = radius.accounting();
    let stop = records(&all, "Stop", "rdfixed")
        .first()
        .map(|r| (*r).clone());
    let context = format!("client:\n{client_log}\nserver:\n{server_log}\ndetail: {all:#?}");
    let status = status.unwrap_or_else(|| panic!("the client did not give up:\n{wrong_log}"));
    assert!(!status.success(), "{wrong_log}");
    assert!(
        wrong_log.contains("AuthFailed"),
        "a wrong password is an authentication failure:\n{wrong_log}"
    );
    assert!(
        server_log
            .lines()
            .any(|l| l.contains("authentication failed") && l.contains("rejected by RADIUS")),
        "{context}"
    );
    assert!(up, "rdfixed did not get 172.16.1.50\n{context}");
    assert!(ping.unwrap().status.success(), "{context}");
    assert!(
        server_log
            .lines()
            .any(|l| l.contains("user connected") && l.contains("172.16.1.50")),
        "{context}"
    );
    let stop = stop.unwrap_or_else(|| panic!("no Stop record for rdfixed\n{context}"));
    assert_eq!(field(&stop, "Framed-IP-Address"), "172.16.1.50");
    assert_eq!(
        field(&stop, "Acct-Terminate-Cause"),
        "Admin-Reboot",
        "{context}"
    );
    assert_eq!(
        all.last().map(|r| field(r, "Acct-Status-Type")),
        Some("Accounting-Off"),
        "{context}"
    );
}

#[test]
fn a_stopped_server_fails_over_to_the_next_and_with_none_left_the_client_is_refused() {
    if !ready() {
        return;
    }
    let config = radius_config(&[18120, 18130], "timeout = \"1s\"\nretries = 1");
    let mut s = Scenario::prepare(
        "rdf",
        &Options {
            auth: "mschapv2",
            config: &config,
            ..Options::default()
        },
    );
    let mut first = FreeRadius::start(&s.topo, "lns", 18120, SECRET, &users());
    let mut second = FreeRadius::start(&s.topo, "lns", 18130, SECRET, &users());
    s.launch();
    first.stop();
    let started = Instant::now();
    let client = s.client_as("rdms", "ms-secret-3");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let failover = started.elapsed();
    let (_, client_log) = disconnect(&s, client);
    // The second server also took the accounting.
    let stop = poll(Duration::from_secs(10), || {
        records(&second.accounting(), "Stop", "rdms")
            .first()
            .map(|r| (*r).clone())
    });
    second.stop();
    let started = Instant::now();
    let (status, refused_log) = wait_exit(s.client_as("rdms", "ms-secret-3"));
    let refusal = started.elapsed();
    let server_log = s.server_log();
    let context = format!("client:\n{client_log}\nrefused:\n{refused_log}\nserver:\n{server_log}");
    eprintln!(
        "failover: connected in {failover:?} with the first server down; refused in {refusal:?} with none left"
    );
    assert!(up, "no address through the second server\n{context}");
    assert!(
        stop.is_some(),
        "no Stop record at the second server\n{context}"
    );
    assert!(
        server_log
            .lines()
            .any(|l| l.contains("RADIUS server 127.0.0.1:18120 does not answer")),
        "{context}"
    );
    let status = status.unwrap_or_else(|| panic!("the client hangs\n{context}"));
    assert!(!status.success(), "{context}");
    assert!(refused_log.contains("AuthFailed"), "{context}");
    assert!(
        server_log
            .lines()
            .any(|l| l.contains("authentication failed") && l.contains("no RADIUS server answered")),
        "{context}"
    );
}

/// radclient in `lns` sending `attributes` as `code` to the server's DAE port.
fn radclient(s: &Scenario, code: &str, secret: &str, attributes: &str) -> String {
    let out = s
        .topo
        .run(
            "lns",
            "sh",
            &[
                "-c",
                &format!(
                    "printf '{attributes}\\n' | radclient -x -t 2 -r 1 127.0.0.1:3799 {code} {secret}"
                ),
            ],
        )
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn coa_and_disconnect_requests_end_sessions_and_are_answered_behind_a_nat() {
    if !ready() {
        return;
    }
    let extra = format!(
        "timeout = \"1s\"\ndae_listen = \"127.0.0.1:3799\"\n\n[[radius.dae_client]]\naddress = \"127.0.0.1\"\nsecret = \"{DAE_SECRET}\"\n"
    );
    let config = radius_config(&[18120], &extra);
    // Behind the NAT: Calling-Station-Id is the NAT's public address (FreeRADIUS checks it).
    let mut s = Scenario::prepare(
        "rdd",
        &Options {
            auth: "pap",
            nat: true,
            config: &config,
            ..Options::default()
        },
    );
    let radius = FreeRadius::start(&s.topo, "lns", 18120, SECRET, &users_calling(NAT));
    s.launch();
    let client = s.client_as("rdpap", "pap-secret-1");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    // Forged (wrong secret): no answer at all. Unknown user: NAK, session not found.
    let forged = radclient(&s, "disconnect", "guess", "User-Name = rdpap");
    let unknown = radclient(&s, "disconnect", DAE_SECRET, "User-Name = nobody");
    // CoA: Session-Timeout 1 s; the session ends by itself soon after.
    let coa = radclient(
        &s,
        "coa",
        DAE_SECRET,
        "User-Name = rdpap, Session-Timeout = 1, Message-Authenticator = 0x00",
    );
    let timed_out = poll(Duration::from_secs(15), || {
        records(&radius.accounting(), "Stop", "rdpap")
            .first()
            .map(|r| (*r).clone())
    });
    // The client reconnects after the loss; a Disconnect-Request ends the new session.
    let again = poll(Duration::from_secs(20), || {
        (records(&radius.accounting(), "Start", "rdpap").len() >= 2).then_some(())
    });
    let disconnect = radclient(
        &s,
        "disconnect",
        DAE_SECRET,
        "User-Name = rdpap, NAS-IP-Address = 2.2.2.2",
    );
    let ended = poll(Duration::from_secs(15), || {
        records(&radius.accounting(), "Stop", "rdpap")
            .get(1)
            .map(|r| (*r).clone())
    });
    let mut client = client;
    let _ = client.kill();
    let client_log = output(client);
    let server_log = s.server_log();
    let context = format!(
        "forged:\n{forged}\nunknown:\n{unknown}\ncoa:\n{coa}\ndisconnect:\n{disconnect}\nclient:\n{client_log}\nserver:\n{server_log}\ndetail: {:#?}",
        radius.accounting()
    );
    assert!(up, "{context}");
    assert!(
        !forged.contains("Received"),
        "a request with the wrong secret is not answered\n{context}"
    );
    assert!(unknown.contains("Received Disconnect-NAK"), "{context}");
    assert!(
        unknown.contains("Error-Cause = Session-Context-Not-Found"),
        "{context}"
    );
    assert!(coa.contains("Received CoA-ACK"), "{context}");
    let timed_out = timed_out.unwrap_or_else(|| panic!("no Stop after the CoA\n{context}"));
    assert_eq!(
        field(&timed_out, "Acct-Terminate-Cause"),
        "Session-Timeout",
        "{context}"
    );
    assert!(again.is_some(), "the client did not come back\n{context}");
    let starts = records(&radius.accounting(), "Start", "rdpap")
        .iter()
        .map(|r| field(r, "Calling-Station-Id").to_owned())
        .collect::<Vec<_>>();
    assert!(starts.iter().all(|c| c == NAT), "{starts:?}\n{context}");
    assert!(disconnect.contains("Received Disconnect-ACK"), "{context}");
    let ended = ended.unwrap_or_else(|| panic!("no Stop after the Disconnect\n{context}"));
    assert_eq!(
        field(&ended, "Acct-Terminate-Cause"),
        "Admin-Reset",
        "{context}"
    );
    assert_ne!(
        field(&ended, "Acct-Session-Id"),
        field(&timed_out, "Acct-Session-Id"),
        "{context}"
    );
}
