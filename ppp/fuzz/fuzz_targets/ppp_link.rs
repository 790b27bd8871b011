#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ppp::fuzzing::link(data));
