//! `packing = true`: TRL's `pack_dataset` (trl/data_utils.py) on tokenized rows. A packed row
//! is a list of sequences of at most `max_length` tokens together; the training pass runs each
//! sequence of it on its own (positions from 0, no attention to the others), which is what
//! TRL's padding-free batches compute (`position_ids` restarting per sequence, and the block-
//! diagonal attention transformers derives from them). Packing decides which sequences share
//! a batch row: `per_device_train_batch_size` counts packed rows.

use std::collections::{BTreeMap, VecDeque};

use super::Example;

/// TRL `SFTConfig.packing_strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Best fit decreasing; a row longer than `max_length` is truncated (TRL's default).
    Bfd,
    /// Best fit decreasing; a longer row is split into pieces of `max_length` tokens, each
    /// packed as a sequence of its own.
    BfdSplit,
    /// The rows' tokens one after another, cut every `max_length` tokens: a packed row is one
    /// sequence, attending across the rows it holds.
    Wrapped,
}

impl Strategy {
    pub fn parse(name: &str) -> Result<Strategy, String> {
        match name {
            "bfd" => Ok(Strategy::Bfd),
            "bfd_split" | "bfd-requeue" => Ok(Strategy::BfdSplit),
            "wrapped" => Ok(Strategy::Wrapped),
            _ => Err(format!(
                "`packing_strategy` = {name:?} is not a TRL packing strategy (\"bfd\", \"bfd_split\" or \"wrapped\")"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bfd => "bfd",
            Strategy::BfdSplit => "bfd_split",
            Strategy::Wrapped => "wrapped",
        }
    }
}

/// TRL packs with `datasets.map(batched=True)`, whose batches are 1000 rows: each 1000
/// consecutive rows are packed by themselves.
const MAP_BATCH: usize = 1000;

/// The packed rows of `examples` (in dataset order), each a list of sequences of together at
/// most `seq_length` tokens, in TRL's order.
pub fn pack(examples: Vec<Example>, seq_length: usize, strategy: Strategy) -> Vec<Vec<Example>> {
    let seq_length = seq_length.max(1);
    let mut out = Vec::new();
    let mut rest = examples.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<Example> = rest.by_ref().take(MAP_BATCH).collect();
        match strategy {
            Strategy::Wrapped => out.extend(wrap(chunk, seq_length).into_iter().map(|e| vec![e])),
            Strategy::Bfd | Strategy::BfdSplit => {
                let mut seqs = Vec::new();
                for mut e in chunk.into_iter().filter(|e| !e.ids.is_empty()) {
                    if strategy == Strategy::Bfd {
                        e.truncate(seq_length);
                        seqs.push(e);
                    } else {
                        seqs.extend(split(e, seq_length));
                    }
                }
                let lengths: Vec<usize> = seqs.iter().map(|e| e.ids.len()).collect();
                let mut slots: Vec<Option<Example>> = seqs.into_iter().map(Some).collect();
                for bin in best_fit_decreasing(&lengths, seq_length) {
                    out.push(bin.into_iter().filter_map(|i| slots[i].take()).collect());
                }
            }
        }
    }
    out
}

/// `e` in pieces of `seq_length` tokens, the last one shorter (`_pack_bfd`'s "split").
fn split(e: Example, seq_length: usize) -> Vec<Example> {
    e.ids
        .chunks(seq_length)
        .zip(e.trained.chunks(seq_length))
        .map(|(ids, trained)| Example { ids: ids.to_vec(), trained: trained.to_vec(), images: None })
        .collect()
}

/// `_pack_wrapped`: the chunk's tokens (and labels) concatenated and cut every `seq_length`.
fn wrap(chunk: Vec<Example>, seq_length: usize) -> Vec<Example> {
    let ids: Vec<u32> = chunk.iter().flat_map(|e| e.ids.iter().copied()).collect();
    let trained: Vec<bool> = chunk.iter().flat_map(|e| e.trained.iter().copied()).collect();
    split(Example { ids, trained, images: None }, seq_length)
}

/// `_pack_bfd`'s bins over sequence lengths (each in 1..=cap): longest first (a stable sort,
/// as Arrow's), each into the bin with the least room that fits it (of those, the one that got
/// that room first), else a new bin. Bins in the order they were opened, their sequences in
/// the order they went in.
fn best_fit_decreasing(lengths: &[usize], cap: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut bins: Vec<(Vec<usize>, usize)> = Vec::new();
    // Room left → the bins with that room, oldest first (TRL's segment tree and deques).
    let mut by_room: BTreeMap<usize, VecDeque<usize>> = BTreeMap::new();
    for i in order {
        let len = lengths[i];
        let fit = by_room.range_mut(len..).next().map(|(&room, bins)| (room, bins.pop_front()));
        let b = match fit {
            Some((room, Some(b))) => {
                if by_room.get(&room).is_some_and(VecDeque::is_empty) {
                    by_room.remove(&room);
                }
                b
            }
            _ => {
                bins.push((Vec::new(), 0));
                bins.len() - 1
            }
        };
        bins[b].0.push(i);
        bins[b].1 += len;
        let room = cap.saturating_sub(bins[b].1);
        if room > 0 {
            by_room.entry(room).or_default().push_back(b);
        }
    }
    bins.into_iter().map(|(ids, _)| ids).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(ids: &[u32]) -> Example {
        Example { ids: ids.to_vec(), trained: ids.iter().map(|&i| i % 2 == 0).collect(), images: None }
    }

    fn ids(packed: &[Vec<Example>]) -> Vec<Vec<Vec<u32>>> {
        packed.iter().map(|r| r.iter().map(|e| e.ids.clone()).collect()).collect()
    }

    /// The examples of `pack_dataset`'s docstring (TRL 1.16).
    #[test]
    fn trl_docstring_examples() {
        let rows = || vec![ex(&[1, 2, 3, 4, 5]), ex(&[6, 7]), ex(&[8, 9, 10]), ex(&[11])];
        assert_eq!(
            ids(&pack(rows(), 4, Strategy::Bfd)),
            vec![vec![vec![1, 2, 3, 4]], vec![vec![8, 9, 10], vec![11]], vec![vec![6, 7]]]
        );
        assert_eq!(
            ids(&pack(rows(), 4, Strategy::BfdSplit)),
            vec![vec![vec![1, 2, 3, 4]], vec![vec![8, 9, 10], vec![5]], vec![vec![6, 7], vec![11]]]
        );
        assert_eq!(
            ids(&pack(rows(), 4, Strategy::Wrapped)),
            vec![vec![vec![1, 2, 3, 4]], vec![vec![5, 6, 7, 8]], vec![vec![9, 10, 11]]]
        );
        // Labels travel with their tokens.
        let p = pack(rows(), 4, Strategy::Wrapped);
        assert_eq!(p[1][0].trained, vec![false, true, false, true]);
        assert!(pack(vec![ex(&[]), ex(&[1])], 4, Strategy::Bfd).len() == 1);
        assert_eq!(Strategy::parse("bfd-requeue"), Ok(Strategy::BfdSplit));
        assert!(Strategy::parse("ffd").unwrap_err().contains("bfd_split"));
    }

    /// Every 1000 rows are packed apart, as `datasets.map(batched=True)` hands them to TRL.
    #[test]
    fn each_thousand_rows_apart() {
        let rows: Vec<Example> = (0..1001).map(|i| ex(&[i as u32])).collect();
        let p = pack(rows, 2000, Strategy::Bfd);
        assert_eq!(p.iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1]);
    }
}
