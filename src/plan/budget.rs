//! Budgets in and out: parsing `2GiB` / `1.5 GB` / `800MiB` / plain bytes, printing byte
//! counts, the plan as a table, and the message when nothing fits.

use std::fmt;

use super::{Category, Phase, Plan};
use crate::error::{Error, Result};
use crate::units::fmt_bytes;

/// A byte count: a number (decimals allowed) and an optional unit, case-insensitive, space
/// optional: B; KB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB and K, M, G, T (powers of
/// 1024).
pub fn parse_budget(s: &str) -> Result<u64> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "memory budget {s:?}: {why} (e.g. 2GiB, 1.5 GB, 800MiB, 500000000)"
        ))
    };
    let t = s.trim();
    let split = t
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| bad("not a number"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        _ => return Err(bad("unknown unit")),
    };
    let bytes = (num * mult).round();
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad("must be at least one byte"));
    }
    Ok(bytes as u64)
}


fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// Why the smallest plan (`best`) does not fit `budget`, and what would help.
pub(super) fn no_fit_message(best: &Plan, budget: u64, weights: u64) -> String {
    let k = &best.knobs;
    let how = format!(
        "gradient checkpointing {}, pack size {}",
        if k.gradient_checkpointing {
            "on"
        } else {
            "off"
        },
        k.pack_size
    );
    if best.peak_bytes <= budget {
        let b = &best.largest_binding;
        return format!(
            "cannot plan a training iteration: even with {how}, a buffer ({}) needs {} bytes, above the device's storage-binding limit of {} bytes; lower max_completion_length or num_generations",
            b.what, b.bytes, best.max_binding
        );
    }
    let top = best.largest_category();
    let why = if weights >= budget {
        format!(
            "weights alone are {}; use a smaller model or a 4-bit base (q4_0/q4_1)",
            fmt_bytes(weights)
        )
    } else {
        let hint = match (top.category, best.peak_phase) {
            (Category::Weights, _) => "a 4-bit base (q4_0/q4_1) or a smaller model would help most",
            (_, Phase::VisionTower) => {
                "smaller images (fewer tiles: the processor's size.longest_edge) or fewer prompts_per_step (each prompt's image features stay alive with its group)"
            }
            (_, Phase::Rollout) => {
                "lower num_generations or max_completion_length (the rollout's KV cache and logits grow with both)"
            }
            _ => "lower max_completion_length, num_generations, the prompt length or the LoRA rank",
        };
        format!(
            "the largest part is {}: {}; {hint}",
            top.label,
            fmt_bytes(top.bytes)
        )
    };
    format!(
        "the memory budget of {} cannot be met: the smallest plan ({how}) peaks at {} in the {}, {} over; {why}",
        fmt_bytes(budget),
        fmt_bytes(best.peak_bytes),
        best.peak_phase.label(),
        fmt_bytes(best.peak_bytes - budget),
    )
}

/// The table `edgerl plan` prints.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.workload;
        writeln!(
            f,
            "{:<36} {:>14} {:>10}",
            "category (at the peak)", "bytes", "MiB"
        )?;
        for c in &self.by_category {
            writeln!(f, "{:<36} {:>14} {:>10.2}", c.label, c.bytes, mib(c.bytes))?;
        }
        writeln!(
            f,
            "{:<36} {:>14} {:>10.2}",
            format!("peak ({})", self.peak_phase.label()),
            self.peak_bytes,
            mib(self.peak_bytes)
        )?;
        for p in &self.phases {
            writeln!(
                f,
                "  {:<34} {:>14} {:>10.2}",
                format!("{} peak", p.phase.label()),
                p.peak_bytes,
                mib(p.peak_bytes)
            )?;
        }
        let b = &self.largest_binding;
        writeln!(
            f,
            "largest binding: {} bytes ({}), device limit {} bytes",
            b.bytes, b.what, self.max_binding
        )?;
        let k = &self.knobs;
        writeln!(
            f,
            "knobs: gradient_checkpointing = {}, pack_size = {}{}, optimizer = {:?}, lora r = {}",
            k.gradient_checkpointing,
            k.pack_size,
            if k.pack_size == w.num_generations {
                " (whole group)"
            } else {
                ""
            },
            k.optimizer,
            k.lora_rank
        )?;
        write!(
            f,
            "workload: prompt {} tokens, {} completions × {} tokens ({}), pack of {} tokens / {} rows{}",
            w.prompt_tokens,
            w.num_generations,
            w.completion_tokens,
            if w.rollouts {
                "sampled on the device"
            } else {
                "offline rollouts"
            },
            w.packed_tokens,
            w.packed_rows,
            if w.reference_pass {
                ", KL reference pass"
            } else {
                ""
            }
        )
    }
}
