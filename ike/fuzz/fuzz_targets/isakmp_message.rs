#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ike::fuzzing::isakmp_message(data));
