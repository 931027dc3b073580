#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgerl::fuzzing::tokenizer_json(data));
