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
            ..Options::default()
        },
    );
    let client = s.client("admin@123");
    let up = s.wait_for("mobile", "l2c0", "172.16.1.2");
    let ping = up.then(|| {
        s.topo
            .run("mobile", "ping", &["-c", "3", "-W", "2", "192.168.1.1"])
            .unwrap()
    });
    let client_log = output(client);
    let server_log = s.server_log();
    assert!(
        up,
        "no address behind the NAT\nclient:\n{client_log}\nserver:\n{server_log}"
    );
    assert!(
        ping.unwrap().status.success(),
        "ping failed behind the NAT\n{client_log}"
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
