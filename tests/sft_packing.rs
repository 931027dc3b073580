//! `edgerl sft` with `packing = true`, beside the TRL parity case in sft_fixtures.rs: the
//! packer against TRL's own `pack_dataset` (every strategy, on 2300 synthetic rows:
//! tests/fixtures/sft/pack_layouts.json, made by make_sft_fixtures.py), and the keys a session
//! refuses.

mod common;

use edgerl::rl::sft::{Example, Strategy, packing};
use serde_json::Value;

/// The runs [row, first token, count] of a packed row (token j of row i is i·1000 + j).
fn runs(ids: impl Iterator<Item = u32>) -> Vec<[u64; 3]> {
    let mut out: Vec<[u64; 3]> = Vec::new();
    for t in ids.map(u64::from) {
        match out.last_mut() {
            Some(r) if t == r[0] * 1000 + r[1] + r[2] => r[2] += 1,
            _ => out.push([t / 1000, t % 1000, 1]),
        }
    }
    out
}

#[test]
fn packs_as_trl_pack_dataset() {
    let path = common::fixtures().join("sft/pack_layouts.json");
    let want: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let seq_length = want["seq_length"].as_u64().unwrap() as usize;
    let rows: Vec<Example> = want["lengths"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let ids: Vec<u32> = (0..n.as_u64().unwrap() as u32).map(|j| i as u32 * 1000 + j).collect();
            let trained = ids.iter().map(|t| (t / 1000 + t % 1000) % 3 != 0).collect();
            Example { ids, trained, images: None }
        })
        .collect();
    for name in ["bfd", "bfd_split", "wrapped"] {
        let strategy = Strategy::parse(name).unwrap();
        let got = packing::pack(rows.clone(), seq_length, strategy);
        let want = want["strategies"][name].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: packed rows");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            let w_runs: Vec<[u64; 3]> = serde_json::from_value(w["runs"].clone()).unwrap();
            assert_eq!(runs(g.iter().flat_map(|e| e.ids.iter().copied())), w_runs, "{name}: packed row {k}");
            let lengths: Vec<usize> = g.iter().map(|e| e.ids.len()).collect();
            match w.get("seq_lengths") {
                Some(l) => assert_eq!(lengths, serde_json::from_value::<Vec<usize>>(l.clone()).unwrap(), "{name}: row {k}"),
                // Wrapped: one sequence a row, attending across the rows it holds.
                None => assert_eq!(lengths.len(), 1, "{name}: row {k}"),
            }
            for e in g {
                assert!(e.ids.len() <= seq_length);
                assert!(e.ids.iter().zip(&e.trained).all(|(t, &b)| b == ((t / 1000 + t % 1000) % 3 != 0)), "{name}: labels moved");
            }
        }
    }
}
