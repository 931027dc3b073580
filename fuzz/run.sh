#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), one after another, one libFuzzer
# process at a time, niced; prints each target's executions and crashes.
#   fuzz/run.sh [SECONDS] [TARGET...]
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`). A crash stops libFuzzer, so the
# target is restarted for the time left; crashing inputs land in fuzz/artifacts/<target>/.
# Turn each into a regression test (tests/fuzz_regressions.rs) and fix it. A stack overflow
# kills the process with no artifact (exit 139): find its input by having the target write
# each input to a file first (std::fs::write in its fuzz_target! body) and rerunning.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_header gguf model_config train_toml dataset_lines rollout_lines reward tokenizer chat_template adapter_config trainer_state)
flags=(--sanitizer none --debug-assertions)

python3 make_seeds.py
nice -n 19 cargo +nightly fuzz build "${flags[@]}"
bin=target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release

summary=()
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t" "corpus/$t"
    log="artifacts/$t/run.log"
    : > "$log"
    start=$(date +%s)
    execs=0
    crashes=0
    while :; do
        left=$((secs - ($(date +%s) - start)))
        [ "$left" -gt 0 ] || break
        set +e
        # The binary built above, run directly: a source edit during the campaign must not
        # make cargo rebuild inside a target's time.
        nice -n 19 "$bin/$t" -artifact_prefix="artifacts/$t/" \
            -max_total_time="$left" -print_final_stats=1 -max_len=65536 \
            -rss_limit_mb=2048 -timeout=10 "corpus/$t" >"$log.part" 2>&1
        rc=$?
        set -e
        n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log.part" | tail -n 1 | awk '{print $2}') || true
        if [ "$rc" -ne 0 ]; then
            crashes=$((crashes + 1))
            # Without final stats (a deadly signal), the last status line's "#N" counts the runs.
            [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$log.part" | tail -n 1 | tr -d '#') || true
            echo "$t: crash (libFuzzer exit $rc), see $log and artifacts/$t/" >&2
        fi
        execs=$((execs + ${n:-0}))
        cat "$log.part" >>"$log"
        rm -f "$log.part"
        echo "--- run ended (rc $rc) ---" >>"$log"
        [ "$rc" -ne 0 ] || break
    done
    mins=$(awk "BEGIN {printf \"%.1f\", ($(date +%s) - $start) / 60}")
    # Distinct panic sites: one bug found again after a restart counts once.
    sites=$(grep -o 'panicked at [^ ]*' "$log" | sort -u | sed 's/panicked at //' | paste -sd ' ' -) || true
    line="$t: ${mins} min, ${execs} executions, ${crashes} crashes${sites:+ at $sites}"
    echo "$line"
    summary+=("$line")
done
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
