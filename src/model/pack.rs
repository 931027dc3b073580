//! Packed training sequences. The completions of a GRPO group share their prompt, so training
//! runs the prompt once and lays the completions after it, each attending to the prompt and to
//! itself (`gpu::Packing`): the prompt's forward and backward run once per group instead of once
//! per completion, and the prompt's keys and values gather every completion's gradient.

use std::ops::Range;

use crate::error::{Error, Result};

pub struct Pack {
    /// The prompt, then each completion's tokens but its last (a last token is only predicted).
    pub ids: Vec<u32>,
    /// Each token's position: completions start right after the prompt.
    pub positions: Vec<u32>,
    pub prefix: usize,
    /// [t, 2] per token: the first key of its segment (0 in the prompt) and one past the last
    /// query that sees it as a key.
    pub spans: Vec<u32>,
    /// Per predicted token, the completions one after another: the row that predicts it.
    pub rows: Vec<u32>,
    pub targets: Vec<u32>,
    /// Each completion's range in `rows` and `targets`.
    pub completions: Vec<Range<usize>>,
}

impl Pack {
    pub fn new(prompt: &[u32], completions: &[&[u32]]) -> Result<Pack> {
        let p = prompt.len();
        if p == 0 {
            return Err(Error::Invalid(
                "training needs a prompt of at least one token".into(),
            ));
        }
        let mut ids = prompt.to_vec();
        let mut positions: Vec<u32> = (0..p as u32).collect();
        let (mut rows, mut targets, mut ranges, mut segments) = (vec![], vec![], vec![], vec![]);
        for c in completions {
            let start = ids.len();
            ranges.push(rows.len()..rows.len() + c.len());
            for (k, &tok) in c.iter().enumerate() {
                // The prompt's last row predicts every completion's first token.
                rows.push(if k == 0 { p - 1 } else { start + k - 1 } as u32);
                targets.push(tok);
            }
            for (k, &tok) in c.iter().take(c.len().saturating_sub(1)).enumerate() {
                ids.push(tok);
                positions.push((p + k) as u32);
            }
            segments.push(start..ids.len());
        }
        let t = ids.len();
        let mut spans = Vec::with_capacity(2 * t);
        for _ in 0..p {
            spans.extend([0, t as u32]);
        }
        for s in segments {
            for _ in s.clone() {
                spans.extend([s.start as u32, s.end as u32]);
            }
        }
        Ok(Pack {
            ids,
            positions,
            prefix: p,
            spans,
            rows,
            targets,
            completions: ranges,
        })
    }

    /// Tokens in the packed sequence.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let pk = Pack::new(&[10, 11, 12], &[&[20, 21, 22], &[30], &[40, 41]]).unwrap();
        assert_eq!(pk.ids, vec![10, 11, 12, 20, 21, 40]);
        assert_eq!(pk.positions, vec![0, 1, 2, 3, 4, 3]);
        assert_eq!(pk.rows, vec![2, 3, 4, 2, 2, 5]);
        assert_eq!(pk.targets, vec![20, 21, 22, 30, 40, 41]);
        assert_eq!(pk.completions, vec![0..3, 3..4, 4..6]);
        assert_eq!(pk.spans, vec![0, 6, 0, 6, 0, 6, 3, 5, 3, 5, 5, 6]);
        assert!(Pack::new(&[], &[&[1]]).is_err());
    }
}
