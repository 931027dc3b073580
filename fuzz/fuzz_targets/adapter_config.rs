#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgerl::fuzzing::adapter_config(data));
