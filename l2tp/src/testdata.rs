//! Loads the captured control messages in `testdata/*-control.hex` (see
//! `ppp/testdata/README.md` for how they were extracted).

use std::path::PathBuf;

/// Who sent a captured message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// The client (LAC), `c>` lines.
    Client,
    /// The server (LNS), `s>` lines.
    Server,
}

/// One captured L2TP message with the extractor's decode of it.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// The file it came from and the pcap frame number, for failure messages.
    pub(crate) origin: String,
    /// The message name the extractor printed (`SCCRQ`, `ZLB`, …).
    pub(crate) decoded: String,
    pub(crate) sender: Sender,
    pub(crate) bytes: Vec<u8>,
}

/// The capture samples with a `-control.hex` file.
pub(crate) const SAMPLES: [&str; 3] = [
    "libreswan-server-linux-nm",
    "libreswan-server-natt",
    "strongswan-server-windows10",
];

/// Every control message of one sample, in capture order.
pub(crate) fn control(sample: &str) -> Vec<Captured> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "testdata",
        &format!("{sample}-control.hex"),
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut comment = "";
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            comment = c;
            continue;
        }
        let (sender, hex) = if let Some(h) = line.strip_prefix("c> ") {
            (Sender::Client, h)
        } else if let Some(h) = line.strip_prefix("s> ") {
            (Sender::Server, h)
        } else {
            continue;
        };
        let mut words = comment.split_whitespace();
        let frame = words.next().unwrap_or("?");
        out.push(Captured {
            origin: format!("{sample} frame {frame}"),
            decoded: words.next().unwrap_or("?").to_owned(),
            sender,
            bytes: decode_hex(hex),
        });
    }
    assert!(!out.is_empty(), "no messages in {}", path.display());
    out
}

/// Every control message of every sample.
pub(crate) fn all_control() -> Vec<Captured> {
    SAMPLES.iter().flat_map(|s| control(s)).collect()
}

fn decode_hex(hex: &str) -> Vec<u8> {
    let hex = hex.trim();
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}
