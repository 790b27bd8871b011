//! The `l2sec-server` binary in the reference topology (namespaces `mobile`, `lns`,
//! `intranet`), driven over real sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "test harness"
)]

use l2sec_tests::netns::{Topology, available};
use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

/// `target/<profile>/l2sec-server`, built by `cargo test --workspace` with the server package.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("l2sec-server");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p l2sec-server`",
        bin.display()
    );
    bin
}

#[test]
fn server_negotiates_ike_and_esp_with_a_client_in_another_namespace() {
    if !available() {
        eprintln!("SKIPPED: needs root and iproute2 to create network namespaces");
        return;
    }
    let prefix = format!("l2s{}", std::process::id() % 100_000);
    let topo = Topology::reference(&prefix).unwrap();
    let state = std::env::temp_dir().join(format!("{prefix}-state"));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    let config = state.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"2.2.2.2\"\nstate_dir = \"{0}\"\ncontrol_socket = \"{0}/control.sock\"\n\n[ipsec]\npsk = \"e2e-test-psk\"\n\n[tun]\nname = \"{prefix}t\"\n",
            state.display()
        ),
    )
    .unwrap();
    let server = server_binary();
    let mut child = topo
        .spawn(
            "lns",
            server.to_str().unwrap(),
            &["run", "--config", config.to_str().unwrap()],
        )
        .unwrap();
    // The server is ready when its TUN device carries the LNS address.
    let mut ready = false;
    for _ in 0..50 {
        let out = topo
            .run(
                "lns",
                "ip",
                &["-4", "addr", "show", "dev", &format!("{prefix}t")],
            )
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("172.16.1.1") {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let probe = env!("CARGO_BIN_EXE_ike_probe");
    let result = ready.then(|| {
        topo.run("mobile", probe, &["2.2.2.10", "2.2.2.2", "e2e-test-psk"])
            .unwrap()
    });
    let wrong = ready.then(|| {
        topo.run("mobile", probe, &["2.2.2.10", "2.2.2.2", "wrong-psk", "5"])
            .unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    let _ = std::fs::remove_dir_all(&state);
    assert!(ready, "the server did not come up:\n{log}");
    let result = result.unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "probe failed:\n{stdout}\nserver log:\n{log}"
    );
    assert!(
        stdout.contains("phase 1 up") && stdout.contains("ESP up"),
        "{stdout}"
    );
    let wrong = wrong.unwrap();
    assert!(
        !wrong.status.success(),
        "a wrong PSK must not get ESP SAs: {}",
        String::from_utf8_lossy(&wrong.stdout)
    );
    drop(topo);
}
