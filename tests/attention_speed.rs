//! Timing of the attention kernels (not a check), ignored by default: forward and backward on
//! SmolLM2-135M's packed GRPO shape (9 heads over 3 KV heads, head_dim 64, a 145-token prompt
//! and 8 completions of 16 inputs: 273 tokens) and a 145-token causal prefill, the median of
//! REPS (default 5) submits on each device:
//! `cargo test --release --test attention_speed -- --ignored --nocapture`.

mod backward;
mod common;

use backward::*;
use edgerl::gpu::Recorder;
use std::time::Instant;

#[test]
#[ignore]
fn attention_speed() {
    let reps: usize = std::env::var("REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    for gpu in common::all_gpus() {
        if is_tiny(gpu) {
            continue;
        }
        let (heads, kv, hd) = (9, 3, 64);
        let comps: Vec<Vec<u32>> = (0..8).map(|_| vec![7; 17]).collect();
        let refs: Vec<&[u32]> = comps.iter().map(|c| &c[..]).collect();
        let pack = edgerl::model::pack::Pack::new(&vec![5; 145], &refs).unwrap();
        let t = pack.len();
        let mut rng = common::Rng::new(1);
        let (q, k, v, dout) = (rng.vec(t * heads * hd), rng.vec(t * kv * hd), rng.vec(t * kv * hd), rng.vec(t * heads * hd));
        let (qb, kb, vb, db) = (up(gpu, &q), up(gpu, &k), up(gpu, &v), up(gpu, &dout));
        let alloc = |n: usize| up(gpu, &vec![0.0; n]);
        let (ob, dqb, dkb, dvb, sb) = (alloc(q.len()), alloc(q.len()), alloc(k.len()), alloc(k.len()), alloc(t * heads * 2));
        let spans = up_u32(gpu, &pack.spans);
        let packing = edgerl::gpu::Packing { prefix: pack.prefix, spans: &spans, decode: false, host_spans: None };
        let scale = 0.125;
        let mut fw = vec![];
        let mut bw = vec![];
        for rep in 0..reps + 1 {
            let t0 = Instant::now();
            let mut r = Recorder::new(gpu);
            r.attention_packed(&qb, &kb, &vb, &ob, t, heads, kv, hd, scale, &packing, 0).unwrap();
            r.submit().unwrap();
            gpu.wait().unwrap();
            let t1 = Instant::now();
            let mut r = Recorder::new(gpu);
            r.attention_backward(&qb, &kb, &vb, &ob, &db, &dqb, &dkb, &dvb, &sb, t, heads, kv, hd, scale, Some(&packing), 0).unwrap();
            r.submit().unwrap();
            gpu.wait().unwrap();
            let t2 = Instant::now();
            if rep > 0 {
                fw.push((t1 - t0).as_secs_f64() * 1e3);
                bw.push((t2 - t1).as_secs_f64() * 1e3);
            }
        }
        // causal prefill, 145 tokens, and 64 queries over 512 keys
        let mut pf = vec![];
        let tp = 145;
        for rep in 0..reps + 1 {
            let t0 = Instant::now();
            let mut r = Recorder::new(gpu);
            r.attention(&qb, &kb, &vb, &ob, tp, heads, kv, hd, 0, scale, 0).unwrap();
            r.submit().unwrap();
            gpu.wait().unwrap();
            if rep > 0 {
                pf.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        let med = |v: &mut Vec<f64>| { v.sort_by(|a, b| a.partial_cmp(b).unwrap()); v[v.len() / 2] };
        println!("{}: t={t} forward {:.1} ms, backward {:.1} ms, prefill145 {:.1} ms (median of {reps})", label(gpu), med(&mut fw), med(&mut bw), med(&mut pf));
    }
}
