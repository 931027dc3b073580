//! An SFT optimizer step over micro-batches of sequences, and which rows (or packed
//! sequences) each micro-batch takes: a shuffle per epoch, a function of (seed, step).

use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::rl::trainer::Trainer;

use super::Example;

/// SplitMix64 mixing (the epoch shuffle).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The row order of `epoch`: a Fisher–Yates shuffle seeded by (seed, epoch).
fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = mix(seed, epoch.wrapping_add(0x5F7));
    for i in (1..n).rev() {
        s = mix(s, i as u64);
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

/// The rows of micro-batch `k` (0-based over the run): epochs of ⌈n / batch⌉ micro-batches, the
/// last one of an epoch shorter, as a DataLoader without drop_last.
pub fn micro_batch(n: usize, batch: usize, seed: u64, k: usize) -> Vec<usize> {
    let per_epoch = n.div_ceil(batch);
    let (epoch, j) = (k / per_epoch, k % per_epoch);
    let order = epoch_order(n, seed, epoch as u64);
    order[j * batch..((j + 1) * batch).min(n)].to_vec()
}

/// Runs one optimizer step over `micro` (a list of micro-batches of sequences, each trained on
/// its own; a packed row gives all of its sequences): loss Σ −lp / N, N the trained targets of
/// all of them. Metrics in TRL's names; `entropy` and `mean_token_accuracy` averaged over the
/// micro-batches, as SFTTrainer logs them; `num_tokens` counts every token of the sequences.
pub fn step(t: &mut Trainer, micro: &[Vec<&Example>]) -> Result<Map<String, Value>> {
    let t0 = std::time::Instant::now();
    let n: usize = micro.iter().flatten().map(|e| e.targets()).sum();
    let a = -1.0 / n.max(1) as f32;
    let mut seqs = Vec::new();
    let mut owner = Vec::new();
    for (mi, mb) in micro.iter().enumerate() {
        for e in mb {
            if let Some(mut s) = e.supervised(a)? {
                // A vision row: the tower runs on its images now (features only for this step).
                if let Some(im) = &e.images {
                    let side = t.vision.as_ref().ok_or_else(crate::vision::model::no_tower)?;
                    let images = super::vision::open_images(&im.files)?;
                    s.images = Some(side.encode(t.gpu, &images)?.features);
                }
                owner.push((mi, *e));
                seqs.push(s);
            }
        }
    }
    let out = t.step_supervised(&seqs)?;
    let mut ent = vec![(0.0f64, 0usize, 0usize); micro.len()];
    for ((mi, e), (s, rows)) in owner.iter().zip(seqs.iter().zip(&out.rows)) {
        let first = e.ids.len() - s.pack.targets.len();
        for (k, &tr) in e.trained[first..].iter().enumerate() {
            if tr {
                ent[*mi].0 += rows.entropy[k] as f64;
                ent[*mi].1 += 1;
                ent[*mi].2 += rows.top1[k] as usize;
            }
        }
    }
    let mean = |f: &dyn Fn(&(f64, usize, usize)) -> f64| {
        ent.iter().map(f).sum::<f64>() / ent.len().max(1) as f64
    };
    let entropy = mean(&|x| if x.1 > 0 { x.0 / x.1 as f64 } else { 0.0 });
    let accuracy = mean(&|x| {
        if x.1 > 0 {
            x.2 as f64 / x.1 as f64
        } else {
            0.0
        }
    });
    t.tokens_seen += micro.iter().flatten().map(|e| e.ids.len()).sum::<usize>();
    let mut m = Map::new();
    m.insert("step".into(), json!(t.optimizer_steps));
    m.insert("loss".into(), json!(out.loss));
    m.insert("grad_norm".into(), json!(out.grad_norm));
    m.insert("learning_rate".into(), json!(out.lr));
    m.insert("num_tokens".into(), json!(t.tokens_seen));
    m.insert("mean_token_accuracy".into(), json!(accuracy));
    m.insert("entropy".into(), json!(entropy));
    m.insert("trained_tokens".into(), json!(n));
    m.insert("skipped_steps".into(), json!(t.skipped_steps));
    m.insert("step_time".into(), json!(t0.elapsed().as_secs_f64()));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_batches_cover_each_epoch() {
        for k in 0..3 {
            let mut seen: Vec<usize> = (0..3)
                .flat_map(|j| micro_batch(7, 3, 1, k * 3 + j))
                .collect();
            assert_eq!(seen.len(), 7);
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<_>>());
        }
        assert_ne!(epoch_order(20, 1, 0), epoch_order(20, 1, 1));
    }
}
