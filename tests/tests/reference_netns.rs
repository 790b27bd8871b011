//! The reference scenario end to end with the real binaries in network namespaces: the laptop
//! (`mobile`) runs `l2sec-client`, the LNS (`lns`, 2.2.2.2) runs `l2sec-server`, and the
//! intranet server 192.168.1.1 answers pings through the tunnel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::available;
use l2sec_tests::scenario::{Options, Scenario, binary, output};
use std::time::Duration;

#[test]
fn laptop_reaches_the_intranet_server_through_the_tunnel_with_each_auth_method() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    for (tag, auth) in [("p", "pap"), ("c", "chap-md5"), ("m", "mschapv2")] {
        let mut s = Scenario::start(tag, auth);
        let client = s.client("admin@123");
        let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
        let ping = up.then(|| {
            s.topo
                .run("mobile", "ping", &["-c", "3", "-W", "2", "192.168.1.1"])
                .unwrap()
        });
        // 10 MB to the intranet server and back over TCP, compared byte for byte.
        let transfer = up.then(|| s.tcp_round_trip(10_000_000));
        // The intranet server sees the pool address, not the laptop's public one.
        let reverse = up.then(|| {
            s.topo
                .run("intranet", "ping", &["-c", "1", "-W", "2", "172.16.1.2"])
                .unwrap()
        });
        // `l2sec-client disconnect` ends the connection cleanly: the client exits with success
        // and the server sees the user hang up.
        let mut client = client;
        let pid_file = s.state.join("client.pid");
        let disconnect = s
            .topo
            .run(
                "mobile",
                binary("l2sec-client").to_str().unwrap(),
                &["disconnect", "--pid-file", pid_file.to_str().unwrap()],
            )
            .unwrap();
        let mut exited = None;
        for _ in 0..100 {
            if let Ok(Some(st)) = client.try_wait() {
                exited = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        let client_log = output(client);
        let server_log = s.server_log();
        assert!(
            up,
            "{auth}: no address\nclient:\n{client_log}\nserver:\n{server_log}"
        );
        assert!(
            disconnect.status.success(),
            "{auth}: disconnect found no client"
        );
        assert!(
            exited.is_some_and(|st| st.success()),
            "{auth}: the client did not exit cleanly:\n{client_log}"
        );
        assert!(
            server_log
                .lines()
                .any(|l| l.contains("user disconnected") && l.contains("PeerTerminated")),
            "{auth}: the server sees a clean hang-up:\n{server_log}"
        );
        let ping = ping.unwrap();
        assert!(
            ping.status.success(),
            "{auth}: ping failed: {}\nclient:\n{client_log}\nserver:\n{server_log}",
            String::from_utf8_lossy(&ping.stdout)
        );
        assert!(String::from_utf8_lossy(&ping.stdout).contains("3 received"));
        if let Some(Err(e)) = transfer {
            panic!("{auth}: 10 MB round trip: {e}\nclient:\n{client_log}\nserver:\n{server_log}");
        }
        assert!(
            reverse.unwrap().status.success(),
            "{auth}: the intranet cannot reach the client"
        );
        assert!(server_log.contains("user connected"), "{server_log}");
    }
}

#[test]
fn wrong_password_fails_at_the_ppp_stage() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::start("w", "mschapv2");
    let mut client = s.client("wrong");
    let mut status = None;
    for _ in 0..150 {
        if let Ok(Some(st)) = client.try_wait() {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let client_log = output(client);
    let server_log = s.server_log();
    let status = status.unwrap_or_else(|| panic!("the client did not give up:\n{client_log}"));
    assert!(!status.success());
    assert!(
        client_log.contains("Ppp") && client_log.contains("AuthFailed"),
        "{client_log}"
    );
    assert!(server_log.contains("authentication failed"), "{server_log}");
}

#[test]
fn wrong_psk_fails_at_the_ike_stage_with_a_clear_message() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::start("k", "mschapv2");
    let mut client = s.client_with_psk("not-the-psk", "admin@123");
    let mut status = None;
    // The client's connect timeout is 30 s; give it twice that.
    for _ in 0..600 {
        if let Ok(Some(st)) = client.try_wait() {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let client_log = output(client);
    let server_log = s.server_log();
    let status = status.unwrap_or_else(|| panic!("the client did not give up:\n{client_log}"));
    assert!(!status.success());
    // Its authentication (message 5) cannot be decrypted by the server: no answer comes, and
    // the client says which stage and the likely cause, and does not retry forever.
    assert!(
        client_log.contains("IKE") && client_log.contains("pre-shared key"),
        "{client_log}"
    );
    assert!(!server_log.contains("IPsec SA established"), "{server_log}");
    assert!(!server_log.contains("user connected"), "{server_log}");
}

#[test]
fn behind_a_nat_the_laptop_uses_udp_4500_and_reaches_the_intranet() {
    if !available()
        || std::process::Command::new("nft")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("SKIPPED: needs root, iproute2 and nftables");
        return;
    }
    let mut s = Scenario::with(
        "n",
        &Options {
            auth: "mschapv2",
            nat: true,
            // The data path through the crypto pool (started after the switch to nobody).
            server: "crypto_threads = 2",
            ..Options::default()
        },
    );
    let c = s.connect_and_ping("admin@123");
    c.assert_reached_the_intranet("behind the NAT");
    let (client_log, server_log) = (&c.client_log, &c.server_log);
    assert!(
        server_log.contains("threads=2") && server_log.contains("ESP crypto threads"),
        "{server_log}"
    );
    assert!(
        client_log.contains("encapsulated=true"),
        "ESP must be UDP-encapsulated behind a NAT:\n{client_log}"
    );
    assert!(
        server_log.contains("peer=2.2.2.3"),
        "the server sees the NAT's address:\n{server_log}"
    );
}

#[test]
fn listening_on_every_address_still_sees_there_is_no_nat_and_uses_plain_esp() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    // The default listen address is the wildcard: IKE's NAT-D hashes must use the address the
    // laptop actually sent to, or every peer looks NATed (found by the container test).
    let mut s = Scenario::with(
        "w",
        &Options {
            auth: "mschapv2",
            listen: Some("0.0.0.0"),
            ..Options::default()
        },
    );
    let c = s.connect_and_ping("admin@123");
    c.assert_reached_the_intranet("wildcard listen address");
    let (client_log, server_log) = (&c.client_log, &c.server_log);
    assert!(
        server_log.contains("nat=false") && server_log.contains("encapsulation=\"esp\""),
        "no NAT between them: plain ESP (IP protocol 50)\n{server_log}"
    );
    assert!(
        !client_log.contains("encapsulated=true"),
        "the laptop must not encapsulate:\n{client_log}"
    );
}

#[test]
fn a_wildcard_server_answers_from_the_address_the_laptop_dialled() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    // The LNS has a second public address, 2.2.2.40, beside its primary 2.2.2.2, and listens
    // on the wildcard (the default). The kernel's route lookup would answer from 2.2.2.2, and
    // the laptop, which talks to 2.2.2.40, would drop every answer. Plain ESP and NAT-T.
    for nat in [false, true] {
        let mut s = Scenario::with(
            if nat { "v" } else { "u" },
            &Options {
                auth: "mschapv2",
                listen: Some("0.0.0.0"),
                dial: Some("2.2.2.40"),
                nat,
                ..Options::default()
            },
        );
        let c = s.connect_and_ping("admin@123");
        c.assert_reached_the_intranet(&format!("dialling 2.2.2.40, nat {nat}"));
        let server_log = &c.server_log;
        let encapsulation = if nat { "udp" } else { "esp" };
        assert!(
            server_log.contains(&format!("nat={nat}"))
                && server_log.contains(&format!("encapsulation=\"{encapsulation}")),
            "nat {nat}: {encapsulation}\n{server_log}"
        );
    }
}

#[test]
fn a_server_that_stops_tells_the_laptop_with_stopccn_and_ike_delete() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::start("g", "mschapv2");
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let server_log = s.stop_server();
    // The laptop learns at once, not after its LCP echoes or DPD give up (20 s and more).
    std::thread::sleep(Duration::from_secs(2));
    let client_log = output(client);
    assert!(
        up,
        "no address\nclient:\n{client_log}\nserver:\n{server_log}"
    );
    assert!(
        server_log.contains("SHUTTING_DOWN") && server_log.contains("IKE SA deleted"),
        "StopCCN (Shutting Down), then IKE delete:\n{server_log}"
    );
    assert!(
        client_log.contains("connection lost")
            && (client_log.contains("TunnelDown") || client_log.contains("EspDeleted")),
        "the laptop was told:\n{client_log}"
    );
    assert!(!client_log.contains("EchoTimeout"), "{client_log}");
}

#[test]
fn policy_keeps_the_dmz_and_the_servers_own_ports_out_of_reach() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let mut s = Scenario::start("z", "pap");
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let intranet = up.then(|| {
        s.topo
            .run("mobile", "ping", &["-c", "1", "-W", "2", "192.168.1.1"])
            .unwrap()
    });
    // The dmz is routed into the tunnel by the client, but the server's policy drops it.
    let dmz = up.then(|| {
        s.topo
            .run("mobile", "ping", &["-c", "2", "-W", "1", "10.99.0.1"])
            .unwrap()
    });
    // The LNS answers pings on its PPP address (allowed) but no other port: nc cannot connect.
    let lns_ping = up.then(|| {
        s.topo
            .run("mobile", "ping", &["-c", "1", "-W", "2", "172.16.1.1"])
            .unwrap()
    });
    let lns_tcp = up.then(|| {
        s.topo
            .run("mobile", "nc", &["-z", "-w", "2", "172.16.1.1", "22"])
            .unwrap()
    });
    let client_log = output(client);
    let server_log = s.server_log();
    assert!(up, "no address\n{client_log}\n{server_log}");
    assert!(
        intranet.unwrap().status.success(),
        "the intranet must be reachable"
    );
    assert!(
        !dmz.unwrap().status.success(),
        "the dmz must not be reachable from the pool"
    );
    assert!(
        lns_ping.unwrap().status.success(),
        "the default policy allows ICMP to the LNS"
    );
    assert!(
        !lns_tcp.unwrap().status.success(),
        "the LNS's other ports are closed to the pool"
    );
}

/// A minimal SCCRQ (RFC 2661 §6.1): Message Type, Protocol Version 1.0, Host Name "t",
/// Framing Capabilities, Assigned Tunnel ID 1.
const SCCRQ: &[u8] = &[
    0xc8, 0x02, 0x00, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, // T L S, Ver 2, length 53, IDs 0, Ns Nr 0
    0x80, 0x08, 0, 0, 0, 0, 0, 1, // Message Type: SCCRQ
    0x80, 0x08, 0, 0, 0, 2, 1, 0, // Protocol Version 1.0
    0x80, 0x07, 0, 0, 0, 7, b't', // Host Name
    0x80, 0x0a, 0, 0, 0, 3, 0, 0, 0, 3, // Framing Capabilities
    0x80, 0x08, 0, 0, 0, 9, 0, 1, // Assigned Tunnel ID
];

/// Sends `SCCRQ` from the laptop to 2.2.2.2:1701 in the clear; returns the reply bytes.
fn plain_sccrq(s: &Scenario) -> Vec<u8> {
    let file = s.state.join("sccrq");
    std::fs::write(&file, SCCRQ).unwrap();
    let out = s
        .topo
        .run(
            "mobile",
            "sh",
            &[
                "-c",
                &format!("nc -u -w 2 2.2.2.2 1701 < '{}'", file.display()),
            ],
        )
        .unwrap();
    out.stdout
}

#[test]
fn forged_sources_from_the_tunnel_and_plain_l2tp_are_refused() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    // Control: the same SCCRQ is answered (SCCRP) by a server that allows plain L2TP, so the
    // silence below is the refusal and not a malformed probe.
    let mut s = Scenario::with(
        "q",
        &Options {
            auth: "pap",
            server: "allow_plain_l2tp = true",
            ..Options::default()
        },
    );
    let reply = plain_sccrq(&s);
    assert!(
        reply.len() > 12 && reply[0] & 0x80 != 0,
        "the control server answers a plain SCCRQ: {reply:02x?}\n{}",
        s.server_log()
    );
    drop(s);

    let mut s = Scenario::start("f", "pap");
    assert!(
        plain_sccrq(&s).is_empty(),
        "plain L2TP must get no answer by default"
    );
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    // The laptop sends one datagram from another pool address (it owns it on lo) and one
    // from its own: only the second reaches the intranet.
    let listen = |port: u16, file: &str| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &s.topo.ns("intranet")])
            .args(["sh", "-c"])
            .arg(format!(
                "timeout 5 nc -u -l 192.168.1.1 {port} > '{}'",
                s.state.join(file).display()
            ))
            .spawn()
            .unwrap()
    };
    let (mut forged_rx, mut real_rx) = (listen(5555, "forged"), listen(5556, "real"));
    std::thread::sleep(Duration::from_millis(300));
    if up {
        s.topo
            .run(
                "mobile",
                "ip",
                &["addr", "add", "172.16.1.99/32", "dev", "lo"],
            )
            .unwrap();
        for (src, port) in [("172.16.1.99", "5555"), ("172.16.1.2", "5556")] {
            s.topo
                .run(
                    "mobile",
                    "sh",
                    &[
                        "-c",
                        &format!("echo hello | nc -u -w 1 -s {src} 192.168.1.1 {port}"),
                    ],
                )
                .unwrap();
        }
    }
    let _ = forged_rx.wait();
    let _ = real_rx.wait();
    let client_log = output(client);
    let server_log = s.server_log();
    assert!(up, "no address\n{client_log}\n{server_log}");
    let read = |f: &str| std::fs::read_to_string(s.state.join(f)).unwrap_or_default();
    assert_eq!(
        read("real"),
        "hello\n",
        "the laptop's own address goes through"
    );
    assert_eq!(
        read("forged"),
        "",
        "a forged source must be dropped by the server"
    );
}

#[test]
fn when_the_nat_changes_its_public_address_the_session_follows() {
    if !available()
        || std::process::Command::new("nft")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("SKIPPED: needs root, iproute2 and nftables");
        return;
    }
    let mut s = Scenario::with(
        "v",
        &Options {
            auth: "pap",
            nat: true,
            ..Options::default()
        },
    );
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let ping = |s: &Scenario| {
        s.topo
            .run("mobile", "ping", &["-c", "5", "-W", "2", "192.168.1.1"])
            .unwrap()
    };
    let before = up.then(|| ping(&s));
    // The NAT's outside address changes (a laptop moving between networks looks the same to
    // the server): the kernel drops the masquerade mappings, the next packets leave from
    // 2.2.2.4 with new ports.
    if up {
        let router = s.topo.ns("nat");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &router, "sh", "-c"])
            .arg(
                "dev=$(ip -o -4 addr show | awk '/2.2.2.3/ {print $2}') && \
                 ip addr del 2.2.2.3/24 dev $dev && ip addr add 2.2.2.4/24 dev $dev",
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let after = up.then(|| ping(&s));
    let client_log = output(client);
    let server_log = s.server_log();
    let context = format!("client:\n{client_log}\nserver:\n{server_log}");
    assert!(up, "no address\n{context}");
    assert!(before.unwrap().status.success(), "ping before\n{context}");
    let after = after.unwrap();
    assert!(
        after.status.success(),
        "ping after the move: {}\n{context}",
        String::from_utf8_lossy(&after.stdout)
    );
    assert!(
        server_log
            .lines()
            .any(|l| l.contains("peer address changed") && l.contains("2.2.2.4")),
        "{context}"
    );
    assert_eq!(
        server_log.matches("user connected").count(),
        1,
        "the session was not rebuilt\n{context}"
    );
}
