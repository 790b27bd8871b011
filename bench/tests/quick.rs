//! `l2sec-bench --quick` runs and writes JSON in the schema of issue 8. Not a timed assertion:
//! no figure is checked, only that the bench runs its three sections and the file has the
//! promised shape. Needs root (namespaces, TUN) and the server and client binaries of the same
//! profile (`cargo build --bins`); skipped loudly otherwise.

use std::path::Path;
use std::process::Command;

fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

#[test]
fn quick_run_writes_the_issue_schema() {
    if !root() {
        eprintln!(
            "SKIPPED quick_run_writes_the_issue_schema: needs root (network namespaces, TUN)"
        );
        return;
    }
    let bench = Path::new(env!("CARGO_BIN_EXE_l2sec-bench"));
    let dir = bench.parent().unwrap();
    for needed in ["l2sec-server", "l2sec-client"] {
        if !dir.join(needed).exists() {
            eprintln!(
                "SKIPPED quick_run_writes_the_issue_schema: {} is missing (cargo build --bins)",
                dir.join(needed).display()
            );
            return;
        }
    }
    let json = std::env::temp_dir().join(format!("l2sec-bench-quick-{}.json", std::process::id()));
    let out = Command::new(bench)
        .args(["--quick", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "l2sec-bench --quick failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let top = v.as_object().unwrap();
    let mut keys: Vec<&str> = top.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["machine", "results"]);
    let machine = top["machine"].as_object().unwrap();
    for k in ["cpu_model", "cores", "kernel", "rustc"] {
        assert!(machine.contains_key(k), "machine.{k} missing");
    }
    let results = top["results"].as_array().unwrap();
    let want = [
        "limit",
        "name",
        "ratio",
        "target_max",
        "target_min",
        "target_ratio",
        "unit",
        "value",
    ];
    for r in results {
        let r = r.as_object().unwrap();
        let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, want, "{r:?}");
        assert!(r["name"].is_string() && r["unit"].is_string(), "{r:?}");
        for k in [
            "value",
            "limit",
            "ratio",
            "target_ratio",
            "target_min",
            "target_max",
        ] {
            assert!(r[k].is_number() || r[k].is_null(), "{k} in {r:?}");
        }
    }
    // Each section contributed, with the figures its limits belong to.
    for prefix in [
        "datapath/",
        "control/dh_cost/",
        "control/connect_latency",
        "control/connects_per_second/",
        "scale/",
    ] {
        assert!(
            results
                .iter()
                .any(|r| r["name"].as_str().unwrap().starts_with(prefix)),
            "no {prefix} row in\n{stdout}"
        );
    }
    assert!(!stdout.contains("note: "), "a section failed:\n{stdout}");
    // The relay (the tunnel I/O limit) carried traffic beside the VPN.
    assert!(
        results.iter().any(|r| {
            r["name"].as_str().unwrap().ends_with("/relay_throughput")
                && r["value"].as_f64().unwrap() > 0.0
        }),
        "no relay figure in\n{stdout}"
    );
    // Both directions went through the tunnel and around it.
    for (suffix, what) in [
        ("/crypto-auto/throughput", "upstream"),
        ("/crypto-auto/down/throughput", "downstream"),
    ] {
        assert!(
            results.iter().any(|r| {
                r["name"].as_str().unwrap().ends_with(suffix)
                    && r["value"].as_f64().unwrap() > 0.0
                    && r["limit"].as_f64().unwrap() > 0.0
            }),
            "no {what} throughput in\n{stdout}"
        );
    }
    // The load generator connected every session it was asked for, and held them.
    let counts: Vec<_> = results
        .iter()
        .filter(|r| {
            let name = r["name"].as_str().unwrap();
            name.starts_with("control/connects_completed/") || name.ends_with("/sessions_held")
        })
        .collect();
    assert_eq!(counts.len(), 3, "two groups and one scale size:\n{stdout}");
    for r in counts {
        assert!(
            r["value"].as_f64().unwrap() > 0.0 && r["value"] == r["limit"],
            "{r:?}"
        );
    }
}
