#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ike::fuzzing::ike_responder(data));
