#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgerl::fuzzing::chat_template(data));
