#!/usr/bin/env bash
# edgerl's own measurements on the adapter it picks (meant for a real GPU), no model file needed:
# every `edgerl bench` case runs on random weights with SmolLM2-135M's shapes (Q4_0 / Q4_1).
#
#   bench/gpu.sh [--out DIR] [--quick]
#
# Cases, each under its own timeout, one JSON line each in DIR/results.jsonl ({"case": ...,
# "result": <bench's JSON>} or {"case": ..., "error": ...}), then a table of the headline
# figures: adapter info (Vulkan and GL), prefill/decode with the default, portable
# (EDGERL_PORTABLE_KERNELS=1) and GL kernels and each decode-product form (--matvec blocked,
# split, general, run; the default is split on GPUs), group sampling (G = 8, 64; blocked and
# run too, with and without a LoRA adapter; and
# G different prompts side by side, prefilled together vs one by one),
# products of 1, 8, 32 rows in each form and 128 rows, the reducing kernels' portable and
# subgroup forms, and a GRPO step with and without gradient checkpointing. Against TRL and
# transformers on the same machine: EDGERL_ANCHOR_DEVICE=cuda bench/compare.sh --skip llama.
# --quick: fewer tokens and cases (a smoke run). Environment: EDGERL (binary; default
# target/release/edgerl, built when missing), XDG_RUNTIME_DIR.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/target/anchors/gpu
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift ;;
        --quick) QUICK=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/edgerl-xdg}
mkdir -p "$XDG_RUNTIME_DIR" "$OUT"
E=${EDGERL:-$ROOT/target/release/edgerl}
if [ ! -x "$E" ]; then
    (cd "$ROOT" && cargo build --release >&2) || exit 1
fi
R=$OUT/results.jsonl
: >"$R"
S=(--shape smollm2-135m --dtype q4_1)
if [ $QUICK = 1 ]; then P=16; D=8; C=4; else P=64; D=32; C=16; fi
log() { echo "[gpu.sh $(date -u +%H:%M:%S)] $*" >&2; }

# case NAME SECONDS [ENV=VALUE ...] -- edgerl args...: one line in results.jsonl.
case_() {
    local name=$1 secs=$2 envs=()
    shift 2
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    log "$name"
    local out err
    err=$(mktemp)
    out=$(env "${envs[@]}" timeout "$secs" "$E" "$@" 2>"$err")
    local rc=$?
    python3 - "$name" "$rc" "$out" "$err" >>"$R" <<'EOF'
import json, sys
name, rc, out, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], open(sys.argv[4]).read()
try:
    res = json.loads(out[out.index("{"):]) if rc == 0 else None
except ValueError:
    res = None
line = {"case": name, "result": res} if res is not None else {
    "case": name, "error": f"exit {rc}" + (" (timed out)" if rc == 124 else ""), "stderr": err[-600:]}
print(json.dumps(line))
EOF
    rm -f "$err"
}

log "edgerl info (default, then GL)"
"$E" info >"$OUT/info.txt" 2>&1
EDGERL_BACKEND=gl "$E" info >"$OUT/info-gl.txt" 2>&1
cat "$OUT/info.txt" >&2

FWD=(bench "${S[@]}" --prompt-tokens $P --decode-tokens $D)
case_ forward 120 -- "${FWD[@]}"
case_ forward-portable 120 EDGERL_PORTABLE_KERNELS=1 -- "${FWD[@]}"
case_ forward-blocked 120 -- "${FWD[@]}" --matvec blocked
case_ forward-split 120 -- "${FWD[@]}" --matvec split
case_ forward-general 120 -- "${FWD[@]}" --matvec general
case_ forward-gl 120 EDGERL_BACKEND=gl -- "${FWD[@]}"
case_ rollout-g8 120 -- bench "${S[@]}" --rollout --prompt-tokens 128 --completions 8 --completion-tokens $C
case_ rollout-g8-blocked 120 -- bench "${S[@]}" --rollout --prompt-tokens 128 --completions 8 --completion-tokens $C --matvec blocked
case_ rollout-g8-run 120 -- bench "${S[@]}" --rollout --prompt-tokens 128 --completions 8 --completion-tokens $C --matvec run
[ $QUICK = 1 ] || case_ rollout-g64 180 -- bench "${S[@]}" --rollout --prompt-tokens 128 --completions 64 --completion-tokens $C
[ $QUICK = 1 ] || case_ rollout-g64-blocked 180 -- bench "${S[@]}" --rollout --prompt-tokens 128 --completions 64 --completion-tokens $C --matvec blocked
for dt in q4_1 q4_0; do
    for t in 1 8 32 128; do
        case_ "matmul-$dt-t$t" 120 -- bench --matmul --dtypes $dt --t $t --k 576 --n 1536
        if [ $t != 128 ]; then
            case_ "matmul-$dt-t$t-blocked" 120 -- bench --matmul --dtypes $dt --t $t --k 576 --n 1536 --matvec blocked
            [ $t = 1 ] && case_ "matmul-$dt-t$t-general" 120 -- bench --matmul --dtypes $dt --t $t --k 576 --n 1536 --matvec general
            [ $t = 8 ] && case_ "matmul-$dt-t$t-run" 120 -- bench --matmul --dtypes $dt --t $t --k 576 --n 1536 --matvec run
        fi
        [ $QUICK = 1 ] && break
    done
done
case_ reductions 180 -- bench --reductions --prompt-tokens $P --decode-tokens $D
case_ train 180 -- bench "${S[@]}" --train --prompt-tokens 230 --completions 8 --completion-tokens $C
[ $QUICK = 1 ] || case_ train-no-checkpointing 180 -- bench "${S[@]}" --train --no-checkpointing --prompt-tokens 230 --completions 8 --completion-tokens $C

python3 - "$R" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def fig(case, r):
    if case.startswith("forward"):
        return f"prefill {r['prefill_tokens_per_s']:.1f} tok/s, decode {r['decode_tokens_per_s']:.1f} tok/s"
    if case.startswith("rollout"):
        return (f"batched {r['batched_tokens_per_s']:.1f} tok/s ({r['batched_seconds']:.3f} s; with LoRA {r['batched_lora_seconds']:.3f} s), one by one {r['shared_tokens_per_s']:.1f}; "
                f"different prompts prefilled together {r['prompts_together_seconds']:.3f} s / one by one {r['prompts_one_by_one_seconds']:.3f} s")
    if case.startswith("matmul"):
        m = r["matmul"][0]
        return f"{m['gflops']:.2f} GFLOP/s ({m['seconds'] * 1e3:.3f} ms); FMA peak {r.get('peak_gflops', float('nan')):.1f}"
    if case == "reductions":
        return f"decode portable {r['decode_portable_tokens_per_s']:.1f} / subgroup {r['decode_subgroup_tokens_per_s']:.1f} tok/s"
    if case.startswith("train"):
        return f"step {r['step_seconds']:.3f} s, peak {r['peak_device_bytes'] / 2**20:.0f} MiB"
    return ""
for row in rows:
    r = row.get("result")
    try:
        text = fig(row["case"], r) if r else row["error"]
    except (KeyError, IndexError, TypeError) as e:
        text = f"(unreadable: {e})"
    print(f"{row['case']:<34} {text}")
EOF
