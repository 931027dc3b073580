#!/usr/bin/env bash
# edgerl against its anchors (TRL, transformers, llama.cpp Vulkan and CPU), one after another on
# this machine, then one table of ratios edgerl / anchor.
#
#   bench/compare.sh [--json] [--quick] [--skip trl,transformers,llama,edgerl]
#
# --quick shrinks the workload for a smoke run (2 GRPO steps, 4 screens, one timed prefill +
# decode run on each side: llama-bench -r 1, edgerl bench --repetitions 1).
# --skip leaves pieces out (their last results in target/anchors/compare stay in the table).
# --json prints {"device": ..., "rows": [{"measure", "edgerl", "anchor", "anchor_value",
# "ratio", "better"}...]} as one line instead of the table.
# Environment: EDGERL (binary; default target/release/edgerl, built when missing), XDG_RUNTIME_DIR,
# EDGERL_ANCHOR_DEVICE (cpu, the default, or cuda: where TRL and transformers run).
# Results of each piece are kept in target/anchors/compare/*.json.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JSON=0
QUICK=0
SKIP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --json) JSON=1 ;;
        --quick) QUICK=1 ;;
        --skip) SKIP=$2; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/edgerl-xdg}
mkdir -p "$XDG_RUNTIME_DIR"
EDGERL=${EDGERL:-$ROOT/target/release/edgerl}
export EDGERL
if [ ! -x "$EDGERL" ]; then
    cargo build --release >&2
fi
if [ $QUICK = 1 ]; then STEPS=2; SCREENS=4; LQ=--quick; REPS=1; else STEPS=3; SCREENS=16; LQ=; REPS=3; fi
OUT=$ROOT/target/anchors/compare
DATA=$ROOT/target/anchors/compare-data
mkdir -p "$OUT"
# fd 3: the terminal's stderr, also where a piece's own stderr goes elsewhere (trl.log).
exec 3>&2
log() { echo "[compare.sh $(date -u +%H:%M:%S)] $*" >&3; }
skip() { [[ ",$SKIP," == *",$1,"* ]]; }
# A skipped piece keeps its last results (the table shows them); a piece that runs starts clean.
for p in edgerl transformers trl llama; do
    skip $p || rm -f "$OUT/$p"*.json
done
# The anchors' Python: target/anchors/venv when there is one, else the system's.
if [ -x "$ROOT/target/anchors/venv/bin/python3" ]; then
    export PATH=$ROOT/target/anchors/venv/bin:$PATH
fi

for m in python3; do command -v $m >/dev/null || { echo "needs $m" >&2; exit 1; }; done
# Only the TRL and transformers anchors need torch & co.; edgerl's side and llama.cpp's run on
# the system's python alone (--skip trl,transformers on a fresh machine).
if ! skip trl || ! skip transformers; then
    python3 -c 'import torch, transformers, peft, trl, datasets, gguf' 2>/dev/null || {
        echo "needs python packages torch transformers peft trl datasets gguf (or --skip trl,transformers); e.g.:" >&2
        echo "  python3 -m venv target/anchors/venv && target/anchors/venv/bin/pip install torch==2.15.0 transformers==5.25.0 peft==0.21.2 trl==1.16.0 datasets==5.2.0 gguf==0.19.0" >&2
        exit 1
    }
fi

log "the demo's screens and run.toml ($STEPS steps x 2 prompts, $SCREENS held-out) in $DATA"
CONFIG=$(python3 bench/anchors/common.py demo-data "$DATA" --steps "$STEPS" --eval-screens "$SCREENS")
A=bench/anchors
# A piece that fails is logged and left out of the table (its file removed); the others still
# run, and the script exits non-zero at the end.
FAILED=""
piece() { # piece NAME OUTFILE command...: runs the command with stdout into OUTFILE
    local name=$1 file=$2
    shift 2
    if ! "$@" >"$file"; then
        log "$name FAILED (left out of the table)"
        rm -f "$file"
        FAILED="$FAILED $name"
    fi
}
if ! skip edgerl; then
    log "edgerl bench: prefill 64, decode 32 (SmolLM2-135M shape, Q4_1), mean of $REPS runs as llama-bench -r $REPS"
    piece edgerl-forward "$OUT/edgerl_forward.json" python3 $A/edgerl_side.py forward --prompt-tokens 64 --decode-tokens 32 --repetitions $REPS
    log "edgerl bench --rollout: one 128-token prompt, G = 8 x 16 tokens"
    piece edgerl-rollout "$OUT/edgerl_rollout.json" python3 $A/edgerl_side.py rollout --prompt-tokens 128 --completions 8 --completion-tokens 16
    log "edgerl eval: $SCREENS screens x 16 new tokens, greedy"
    piece edgerl-eval "$OUT/edgerl_eval.json" python3 $A/edgerl_side.py eval --config "$CONFIG" --dataset "$DATA/heldout.jsonl" -n "$SCREENS" --new-tokens 16
    log "edgerl train: $STEPS GRPO steps of the demo's run.toml"
    piece edgerl-train "$OUT/edgerl_train.json" python3 $A/edgerl_side.py train --config "$CONFIG" --steps "$STEPS"
fi
if ! skip transformers; then
    log "transformers generate: $SCREENS screens x 16 new tokens, batch 1 and batched"
    piece transformers "$OUT/transformers.json" python3 $A/transformers_eval.py --dataset "$DATA/heldout.jsonl" -n "$SCREENS" --new-tokens 16 --json \
        2> >(grep -v 'it/s\]' >&2)
fi
if ! skip trl; then
    log "TRL GRPOTrainer: $STEPS steps of the same run.toml"
    piece trl "$OUT/trl.json" python3 $A/trl_grpo.py --config "$CONFIG" --steps "$STEPS" --json \
        2> >(grep -v 'it/s\]' >"$OUT/trl.log")
fi
if ! skip llama; then
    log "llama.cpp: Vulkan (GGML_VK_VISIBLE_DEVICES=0) and CPU"
    piece llama "$OUT/llama.json" $A/llama_cpp.sh --json $LQ
fi

python3 - "$OUT" "$JSON" "$QUICK" <<'EOF'
import json, os, sys
out, as_json, quick = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
def load(name):
    p = os.path.join(out, name + ".json")
    if not os.path.exists(p):
        return None
    lines = [l for l in open(p) if l.strip().startswith("{")]
    return json.loads(lines[-1]) if lines else None
ef, er, ee, et = (load(n) for n in ("edgerl_forward", "edgerl_rollout", "edgerl_eval", "edgerl_train"))
tf, trl = load("transformers"), load("trl")
# llama.json from this script; llama-*.json from llama_cpp.sh --only ... --json run by hand.
llama = {}
for name in sorted(os.listdir(out)):
    if name.startswith("llama") and name.endswith(".json"):
        for r in (load(name[:-5]) or {}).get("rows", []):
            llama[r["backend"]] = r
rows = []
def row(measure, e, anchor, a, better):
    if e is None or a is None:
        return
    rows.append({"measure": measure, "edgerl": e, "anchor": anchor, "anchor_value": a,
                 "ratio": e / a if a else None, "better": better})
g = lambda d, k: None if d is None else d.get(k)
row("grpo_step_s", g(et, "grpo_step_s"), "trl", g(trl, "grpo_step_s"), "lower")
row("grpo_peak_rss_mib", g(et, "peak_rss_mib"), "trl", g(trl, "peak_rss_mib"), "lower")
row("eval_rows_s", g(ee, "eval_rows_s"), "transformers-batch1", g(tf, "batch1_rows_s"), "higher")
row("eval_rows_s", g(ee, "eval_rows_s"), "transformers-batched", g(tf, "batched_rows_s"), "higher")
for b in ("vulkan", "cpu"):
    r = llama.get(b)
    row("prefill_tok_s", g(ef, "prefill_tok_s"), "llama.cpp-" + b, g(r, "prefill_tok_s"), "higher")
    row("decode_tok_s", g(ef, "decode_tok_s"), "llama.cpp-" + b, g(r, "decode_tok_s"), "higher")
    row("batched_decode_g8_tok_s", g(er, "batched_g8_tok_s"), "llama.cpp-" + b, g(r, "batched_g8_tok_s"), "higher")
    row("batched_steps_g8_tok_s", g(er, "batched_decode_phase_tok_s"), "llama.cpp-" + b,
        g(r, "batched_decode_phase_tok_s"), "higher")
    row("batched_g8_s", g(er, "batched_s"), "llama.cpp-" + b, g(r, "batched_s"), "lower")
device = g(ef, "adapter") or "?"
if ef:
    device = (f"{ef['adapter']} ({ef['backend']}); anchors on "
              f"{os.environ.get('EDGERL_ANCHOR_DEVICE', 'cpu')}, CPU {os.cpu_count()} threads")
res = {"device": device, "quick": quick, "rows": rows}
if as_json:
    print(json.dumps(res))
else:
    print(f"edgerl on {device}{' (--quick)' if quick else ''}")
    print(f"{'measure':<26}{'anchor':<22}{'edgerl':>12}{'anchor':>12}{'edgerl/anchor':>15}  better")
    for r in rows:
        print(f"{r['measure']:<26}{r['anchor']:<22}{r['edgerl']:>12.3f}{r['anchor_value']:>12.3f}"
              f"{r['ratio']:>15.3f}  {r['better']}")
    if et and trl:
        print(f"(GRPO first steps: edgerl {et['first_step_s']:.1f} s, TRL {trl['first_step_s']:.1f} s; "
              f"edgerl update only {sum(x for x in et['update_s'][1:] if x) / max(1, len(et['update_s']) - 1):.1f} s/step)")
EOF
if [ -n "$FAILED" ]; then
    log "failed:$FAILED"
    exit 1
fi
