#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgerl::fuzzing::trainer_state(data));
