//! Bodies of the fuzz targets (STYLE.md §10.6), shared by `l2tp/fuzz` and the corpus replay
//! test. Compiled only for tests and under `--cfg fuzzing`.

use crate::wire::{Avps, ControlMessage, Packet, hidden};

/// The secret used to exercise the hidden-AVP path.
const FUZZ_SECRET: &[u8] = b"fuzz-secret";

/// `l2tp_control`: the header view, the AVP iterator, hidden-AVP revealing and the typed
/// message parser over one datagram. What parses as a message is written back and must read
/// back the same.
pub fn control_message(data: &[u8]) {
    let Ok(packet) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        packet.tunnel_id(),
        packet.session_id(),
        packet.sequence(),
        packet.priority(),
        packet.is_zlb(),
    );
    let body = packet.payload();
    assert!(packet.header_len() + body.len() <= data.len());
    if !packet.is_control() {
        return;
    }
    round_trip(body);
    let _ = ControlMessage::peek_type(body);

    let mut revealed = body.to_vec();
    if let Ok(len) = hidden::reveal_body(&mut revealed, FUZZ_SECRET) {
        assert!(len <= body.len(), "revealing never grows a body");
        if let Some(revealed) = revealed.get(..len) {
            round_trip(revealed);
        }
    }
}

fn round_trip(body: &[u8]) {
    let Ok(message) = ControlMessage::parse(Avps::new(body)) else {
        return;
    };
    // What we accept we can write back (never longer than what we read), and it reads back
    // the same.
    let mut out = vec![0u8; body.len()];
    let mut w = codec::Writer::new(&mut out);
    message
        .emit(&mut w)
        .expect("invariant: a parsed message re-emits within its own length");
    assert_eq!(
        ControlMessage::parse(Avps::new(w.written())),
        Ok(message),
        "re-emitted message parses differently"
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn replay(target: &str, run: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
        assert!(count > 0, "empty corpus {}", dir.display());
        count
    }

    #[test]
    fn committed_corpus_replays() {
        replay("l2tp_control", super::control_message);
    }

    #[test]
    fn every_captured_message_goes_through_the_fuzz_body() {
        for m in crate::testdata::all_control() {
            super::control_message(&m.bytes);
        }
    }
}
