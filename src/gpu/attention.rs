//! Attention wrappers: causal attention over a KV cache, packed sequences (a prompt and its
//! completions) in training and in batched decoding, and the choice between the per-row
//! kernels (`shaders/attention.wgsl`) and the tiled ones (`shaders/attention_tiled.wgsl`).
//! The backward pass is `Recorder::attention_backward` in `gpu::backward`.

use bytemuck::{Pod, Zeroable};

use super::kernels::{Kernel, Recorder, groups_2d};
use super::memory::GpuBuffer;
use crate::error::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct AttentionParams {
    pub t: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub hd: u32,
    pub p0: u32,
    pub scale: f32,
    /// Packing: the shared prefix's length, and 1 (training) or 2 (decoding); else 0, 0.
    pub prefix: u32,
    pub packed: u32,
    /// Sliding-window attention: a query at position P sees keys at positions above
    /// P − window; 0 is no window (see `window_u32`).
    pub window: u32,
    pub _pad: [u32; 3],
}

/// Below this many queries the forward attention takes the per-row kernel: in decoding a
/// tiled workgroup would run one or a few live threads walking every key alone, where the
/// per-row kernel spreads each query's keys over 64 threads.
pub const TILED_ATTENTION_MIN_QUERIES: usize = 16;

/// Whether the tiled attention kernels (`AttentionTiled*`) take head_dim `hd` over `keys` keys
/// with `group` query heads per KV head: head_dim a multiple of 8 up to 128, and each thread's
/// walk (estimated in loop iterations, the backward's dk / dv pass being the longest) well
/// under llvmpipe's cap of 65,535 per invocation.
pub fn attention_tiled_fits(hd: usize, keys: usize, group: usize) -> bool {
    let per_key = (hd / 4 + 4) * group.max(1);
    hd.is_multiple_of(8) && hd <= 128 && keys.saturating_mul(per_key) <= 50_000
}

/// The window as the kernels take it, for queries and keys at positions below `keys`: 0 (none)
/// where `window` is 0 or covers every position (P − S < keys ≤ window for any pair), so such
/// calls run the unwindowed kernels and give their results bit for bit; else the window.
/// (Below `keys`, the kernels' `key + window` sums stay far from overflowing.)
pub(super) fn window_u32(window: usize, keys: usize) -> Result<u32> {
    if window >= keys {
        return Ok(0);
    }
    u32::try_from(window)
        .map_err(|_| Error::Invalid(format!("attention window {window} is too large")))
}

/// Several completions of one prompt in one attention call; every query sees the prompt's
/// keys 0 .. `prefix` and its own completion's. `spans` is a u32 buffer [t, 2]. Positions (for
/// a sliding window) are the index in the prompt, and continue from `prefix` in each
/// completion's segment.
/// - Training (`decode` false): one packed sequence of t tokens, the prompt then each
///   completion's segment; a token sees the prompt and its segment up to itself. Per token:
///   the first key of its segment (0 in the prompt) and one past the last query that sees it.
/// - Decoding (`decode` true, forward only): q holds one token per sample, k and v the cache.
///   Per query: the first cache slot of its sample's segment, and one past its own slot.
pub struct Packing<'a> {
    pub prefix: usize,
    pub spans: &'a GpuBuffer,
    pub decode: bool,
    /// Decoding: the spans as uploaded, where the caller has them, so the kernel can be chosen
    /// by the keys each 64-query tile walks (`decode_tiles_pay`); `None` decides by the cache.
    pub host_spans: Option<&'a [u32]>,
}

/// Decoding rows on a CPU device at head_dim 64 (the tiled kernel's registers path, which
/// skips the keys between the prefix and a tile's segments): whether the tiled kernel pays
/// for these rows, and the longest walk of a tile. A tile of 64 queries walks the prefix and
/// every key from its first segment start to its last query; the per-row kernel walks only
/// each query's own keys. Rows of one long prompt's prefill share most of their keys; one
/// sample per segment (a decoding step) would walk every sample's segment (at G = 16 that
/// tripled a SmolLM2 decoding step's time on lavapipe). Measured there, a walked key costs the
/// tiled kernel about 0.65 of what a seen key costs the per-row one: it is picked where it
/// walks at most 1.5 times the keys the rows see.
fn decode_tiles_pay(prefix: usize, spans: &[u32]) -> (bool, usize) {
    let (mut walked, mut seen, mut longest) = (0usize, 0usize, 0usize);
    for tile in spans.chunks(2 * 64) {
        let first = tile.iter().step_by(2).min().copied().unwrap_or(0) as usize;
        let end = tile.iter().skip(1).step_by(2).max().copied().unwrap_or(0) as usize;
        let walk = prefix + end.saturating_sub(first);
        longest = longest.max(walk);
        walked += 64 * walk;
        seen += tile.chunks(2).map(|r| prefix + (r[1].saturating_sub(r[0])) as usize).sum::<usize>();
    }
    (2 * walked <= 3 * seen, longest)
}

/// The attention uniforms' (prefix, packed) and the buffer for the spans binding: without
/// packing the kernels never read it, and `unused` (a buffer bound read-only anyway) stands in.
pub(super) fn check_packing<'b>(
    what: &str,
    packing: Option<&'b Packing>,
    t: usize,
    unused: &'b GpuBuffer,
) -> Result<(u32, u32, &'b wgpu::Buffer)> {
    match packing {
        None => Ok((0, 0, &unused.buffer)),
        Some(pk) => {
            // Training packs the prefix into the t tokens; decoding reads it from the cache.
            if (!pk.decode && pk.prefix > t) || pk.spans.bytes < (t * 8) as u64 {
                return Err(Error::Invalid(format!(
                    "{what}: packing of {t} tokens needs {} bytes of spans (and in training a prefix of at most {t}), got {} and a prefix of {}",
                    t * 8,
                    pk.spans.bytes,
                    pk.prefix
                )));
            }
            Ok((pk.prefix as u32, 1 + pk.decode as u32, &pk.spans.buffer))
        }
    }
}

impl Recorder<'_> {
    /// Causal attention of q [t, heads, hd] (positions p0 .. p0+t) over the cache k, v
    /// [≥ p0+t, kv_heads, hd] into out [t, heads, hd]. With `window` W > 0 (sliding-window
    /// attention, Gemma 3's local layers) the query at position P sees the keys at positions
    /// P − W + 1 ..= P only; 0 is no window. The same for `attention_packed`, with the
    /// positions of `Packing`.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        q: &GpuBuffer,
        k: &GpuBuffer,
        v: &GpuBuffer,
        out: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        p0: usize,
        scale: f32,
        window: usize,
    ) -> Result<()> {
        self.attention_with(q, k, v, out, t, heads, kv_heads, hd, p0, scale, None, window)
    }

    /// Attention of t packed queries (see `Packing`): in training k, v hold the same t
    /// tokens; in decoding they are the cache.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_packed(
        &mut self,
        q: &GpuBuffer,
        k: &GpuBuffer,
        v: &GpuBuffer,
        out: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        scale: f32,
        packing: &Packing,
        window: usize,
    ) -> Result<()> {
        self.attention_with(
            q,
            k,
            v,
            out,
            t,
            heads,
            kv_heads,
            hd,
            0,
            scale,
            Some(packing),
            window,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn attention_with(
        &mut self,
        q: &GpuBuffer,
        k: &GpuBuffer,
        v: &GpuBuffer,
        out: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        p0: usize,
        scale: f32,
        packing: Option<&Packing>,
        window: usize,
    ) -> Result<()> {
        if hd > 256 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(Error::Model(format!(
                "attention with head_dim {hd}, {heads} heads over {kv_heads} KV heads is not supported"
            )));
        }
        let (prefix, packed, spans) = check_packing("attention", packing, t, q)?;
        // The keys the queries reach: the whole cache in decoding, else up to the last query.
        let keys = match packing {
            Some(pk) if pk.decode => (k.bytes / (kv_heads * hd * 4).max(1) as u64) as usize,
            _ => p0 + t,
        };
        let params = AttentionParams {
            t: t as u32,
            heads: heads as u32,
            kv_heads: kv_heads as u32,
            hd: hd as u32,
            p0: p0 as u32,
            scale,
            prefix,
            packed,
            window: window_u32(window, keys)?,
            _pad: [0; 3],
        };
        let bufs = [
            (1, &q.buffer),
            (2, &k.buffer),
            (3, &v.buffer),
            (4, &out.buffer),
            (11, spans),
        ];
        let cpu = self.gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
        let group = heads / kv_heads;
        let tiled = match packing.and_then(|pk| pk.host_spans.filter(|_| pk.decode && cpu && hd == 64)) {
            Some(spans) => {
                let (pays, walk) = decode_tiles_pay(prefix as usize, spans);
                t >= TILED_ATTENTION_MIN_QUERIES && pays && attention_tiled_fits(hd, walk, group)
            }
            None => t >= TILED_ATTENTION_MIN_QUERIES && attention_tiled_fits(hd, keys, group),
        };
        // Both kernels take a window.
        if !self.general_attention && tiled {
            // One 64-thread workgroup per 64 queries of a head.
            let g = groups_2d(self.gpu, (t.div_ceil(64) * heads) as u32);
            return self.dispatch_at(Kernel::AttentionTiled, &params, &bufs, g);
        }
        // One 64-thread workgroup per (query, head); head_dim 64 on a CPU device takes the
        // decode kernel, one per (query, 4 heads of a KV head) (`general_attention` keeps the
        // per-row one).
        if hd == 64 && cpu && !self.general_attention {
            let quads = (heads / kv_heads).div_ceil(4);
            let g = groups_2d(self.gpu, (t * kv_heads * quads) as u32);
            return self.dispatch_at(Kernel::AttentionDecodeHd64, &params, &bufs, g);
        }
        let g = groups_2d(self.gpu, (t * heads) as u32);
        // head_dim 128 / 256 on a CPU device: the same workgroups, 8 threads each.
        if matches!(hd, 128 | 256) && cpu && !self.general_attention {
            return self.dispatch_at(Kernel::AttentionLanes(hd as u16), &params, &bufs, g);
        }
        self.dispatch_at(Kernel::Attention, &params, &bufs, g)
    }
}

/// `attention_bidirectional`'s uniforms (WGSL `BidirectionalParams` in shaders/attention.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BidirectionalParams {
    pub t: u32,
    pub seq: u32,
    pub heads: u32,
    pub hd: u32,
    pub scale: f32,
    pub _pad: [u32; 3],
}

impl Recorder<'_> {
    /// Bidirectional attention within each of `images` sequences of `seq` tokens (the vision
    /// tower): q, k, v, out [images × seq, heads, hd]; a query sees every key of its own image
    /// whose `key_mask` entry (u32, [images × seq]) is nonzero. Every image needs at least one
    /// unmasked key, or its rows are NaN.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_bidirectional(
        &mut self,
        q: &GpuBuffer,
        k: &GpuBuffer,
        v: &GpuBuffer,
        out: &GpuBuffer,
        key_mask: &GpuBuffer,
        images: usize,
        seq: usize,
        heads: usize,
        hd: usize,
        scale: f32,
    ) -> Result<()> {
        if hd == 0 || hd > 256 || heads == 0 || seq == 0 {
            return Err(Error::Model(format!(
                "bidirectional attention with head_dim {hd}, {heads} heads over {seq} tokens is not supported"
            )));
        }
        let t = images * seq;
        let bytes = (t * heads * hd * 4) as u64;
        if [q, k, v, out].iter().any(|b| b.bytes < bytes) || key_mask.bytes < (t * 4) as u64 {
            return Err(Error::Invalid(format!(
                "bidirectional attention of {images}×{seq} tokens × {heads} heads × {hd}: needs {bytes}-byte q, k, v, out and a {}-byte key mask",
                t * 4
            )));
        }
        if t == 0 {
            return Ok(());
        }
        let params = BidirectionalParams {
            t: t as u32,
            seq: seq as u32,
            heads: heads as u32,
            hd: hd as u32,
            scale,
            _pad: [0; 3],
        };
        let bufs = [
            (1, &q.buffer),
            (2, &k.buffer),
            (3, &v.buffer),
            (4, &out.buffer),
            (12, &key_mask.buffer),
        ];
        // One 64-thread workgroup per (query, head).
        let g = groups_2d(self.gpu, (t * heads) as u32);
        self.dispatch_at(Kernel::AttentionBidirectional, &params, &bufs, g)
    }
}

/// `rope_kv`'s uniforms (WGSL `Params` in shaders/rope_kv.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct RopeKvParams {
    pub t: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub hd: u32,
    pub p0: u32,
    pub slotted: u32,
    pub _pad: [u32; 2],
}

/// Where `rope_kv` stores row i's key and value: cache slot `At(p0)` + i, or the slots of a
/// batched decode step (`Packing::spans` of decoding: row i's slot is spans[2i + 1] − 1), the
/// largest of which is given for the bounds check.
pub enum KvRows<'a> {
    At(usize),
    Slots { spans: &'a GpuBuffer, max_slot: usize },
}

impl Recorder<'_> {
    /// Inference: rope of q [t, heads, hd] in place (cos_sin [2, t, hd/2] as for `rope`), of k
    /// [t, kv_heads, hd] into the cache `kc`, and v into `vc` (caches [slots, kv_heads, hd]) at
    /// the rows `rows` says: what `rope` twice and a copy per row of k and of v do, in one
    /// dispatch. head_dim must be even.
    #[allow(clippy::too_many_arguments)]
    pub fn rope_kv(
        &mut self,
        q: &GpuBuffer,
        k: &GpuBuffer,
        v: &GpuBuffer,
        cos_sin: &GpuBuffer,
        kc: &GpuBuffer,
        vc: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        rows: KvRows,
    ) -> Result<()> {
        let f = |n: usize| (n * 4) as u64;
        let short = q.bytes < f(t * heads * hd) || k.bytes < f(t * kv_heads * hd) || v.bytes < f(t * kv_heads * hd);
        let Some((params, spans, g)) = self.rope_kv_params(short, cos_sin, kc, vc, t, heads, kv_heads, hd, &rows)? else {
            return Ok(());
        };
        // head_dim a multiple of 8: 4 pairs a thread.
        let kernel = if hd.is_multiple_of(8) { Kernel::RopeKv4 } else { Kernel::RopeKv };
        let bufs = [&cos_sin.buffer, &q.buffer, &k.buffer, &v.buffer, &kc.buffer, &vc.buffer, &spans.buffer];
        self.dispatch(kernel, &params, &bufs, g)
    }

    /// `rope_kv` of q, k and v side by side in the rows of one product (`qkv` [t, heads +
    /// 2 kv_heads, hd], `Layer::qkv`), q roped into `q` [t, heads, hd]. head_dim a multiple of 8.
    #[allow(clippy::too_many_arguments)]
    pub fn rope_qkv(
        &mut self,
        qkv: &GpuBuffer,
        q: &GpuBuffer,
        cos_sin: &GpuBuffer,
        kc: &GpuBuffer,
        vc: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        rows: KvRows,
    ) -> Result<()> {
        let f = |n: usize| (n * 4) as u64;
        let short = qkv.bytes < f(t * (heads + 2 * kv_heads) * hd) || q.bytes < f(t * heads * hd) || !hd.is_multiple_of(8);
        let Some((params, spans, g)) = self.rope_kv_params(short, cos_sin, kc, vc, t, heads, kv_heads, hd, &rows)? else {
            return Ok(());
        };
        let bufs = [(1, &cos_sin.buffer), (2, &q.buffer), (5, &kc.buffer), (6, &vc.buffer), (7, &spans.buffer), (8, &qkv.buffer)];
        self.dispatch_at(Kernel::RopeQkv4, &params, &bufs, g)
    }

    /// The checks, params, spans and workgroups of `rope_kv` and `rope_qkv` (`None`: no rows);
    /// `short`: a source buffer is too small.
    #[allow(clippy::too_many_arguments)]
    fn rope_kv_params<'b>(
        &self,
        short: bool,
        cos_sin: &'b GpuBuffer,
        kc: &GpuBuffer,
        vc: &GpuBuffer,
        t: usize,
        heads: usize,
        kv_heads: usize,
        hd: usize,
        rows: &KvRows<'b>,
    ) -> Result<Option<(RopeKvParams, &'b GpuBuffer, (u32, u32))>> {
        let (p0, slotted, spans, last) = match *rows {
            KvRows::At(p0) => (p0, 0, cos_sin, p0 + t),
            KvRows::Slots { spans, max_slot } => {
                if spans.bytes < (t * 8) as u64 {
                    return Err(Error::Invalid(format!(
                        "rope_kv: {t} rows need {} bytes of spans, got {}",
                        t * 8,
                        spans.bytes
                    )));
                }
                (0, 1, spans, max_slot + 1)
            }
        };
        let f = |n: usize| (n * 4) as u64;
        let short = short
            || cos_sin.bytes < f(t * hd)
            || kc.bytes < f(last * kv_heads * hd)
            || vc.bytes < f(last * kv_heads * hd);
        if hd % 2 != 0 || short {
            return Err(Error::Invalid(format!(
                "rope_kv of {t} rows × ({heads} + {kv_heads}) heads × {hd} (even) into {last} cache rows: a buffer is too small or head_dim is odd"
            )));
        }
        if t == 0 {
            return Ok(None);
        }
        let params = RopeKvParams {
            t: t as u32,
            heads: heads as u32,
            kv_heads: kv_heads as u32,
            hd: hd as u32,
            p0: p0 as u32,
            slotted,
            _pad: [0; 2],
        };
        let per = if hd.is_multiple_of(8) { 8 } else { 2 };
        let n = (t * (heads + kv_heads) * hd / per) as u32;
        Ok(Some((params, spans, groups_2d(self.gpu, n.div_ceil(64)))))
    }
}

#[cfg(test)]
mod tests {
    use super::decode_tiles_pay;

    /// Spans of prompts with `own` rows each, segments `own + spare` apart after the prefix.
    fn spans(prefix: usize, own: &[usize], spare: usize) -> Vec<u32> {
        let (mut out, mut start) = (vec![], prefix);
        for &n in own {
            out.extend((0..n).flat_map(|i| [start as u32, (start + i + 1) as u32]));
            start += n + spare;
        }
        out
    }

    #[test]
    fn tiles_pay_for_prompts_not_for_decoding_steps() {
        // Four prompts of 256 rows: each tile lies in one prompt and walks the prefix and the
        // prompt's rows up to its last (a causal triangle's waste).
        let (pays, walk) = decode_tiles_pay(24, &spans(24, &[256; 4], 15));
        assert!(pays);
        assert_eq!(walk, 24 + 256);
        // Eval's prefill of the demo's screens: 8 prompts of 120 rows, tiles straddling two
        // prompts walk 1.8 times the keys the rows see (measured slower than the per-row kernel).
        let (pays, walk) = decode_tiles_pay(24, &spans(24, &[120; 8], 15));
        assert!(!pays);
        // Rows 832..896 (prompt 6's last 8, prompt 7's first 56) walk the prefix, all of
        // prompt 6's segment and prompt 7's first 56 slots.
        assert_eq!(walk, 24 + 120 + 15 + 56);
        // A decoding step: one row per sample, each in its own segment of 135 slots.
        let step: Vec<u32> = (0..16u32).flat_map(|j| [24 + 135 * j, 24 + 135 * j + 100]).collect();
        let (pays, walk) = decode_tiles_pay(24, &step);
        assert!(!pays);
        assert_eq!(walk, 24 + 135 * 15 + 100);
    }
}
