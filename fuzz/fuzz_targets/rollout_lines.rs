#![no_main]

use std::sync::OnceLock;

use edgerl::model::Tokenizer;

/// The qwen3_f16 fixture's tokenizer (vocabulary 403), loaded once.
fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/models/qwen3_f16"
        );
        Tokenizer::open(std::path::Path::new(dir)).expect("the fixture tokenizer loads")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgerl::fuzzing::rollout_lines(data, tokenizer(), 403));
