#!/usr/bin/env bash
# Runs the Kotlin wrapper + JNI shim on this machine's JVM (no Android toolchain needed): builds
# the shim for the host against target/release/libedgerl.a, compiles Edgerl.kt with the tests,
# and runs them (host-test/HostSmoke.kt, then host-test/HostEpisodes.kt) on a model directory;
# with more arguments, also the image checks (host-test/HostVision.kt: VISION_MODEL_DIR
# TEXT_MODEL_DIR SPEC_FILE). Needs a JDK (jni.h,
# java) and kotlinc.
#   bash platforms/android/host-test.sh tests/fixtures/models/qwen3_f16 OUT_DIR [VISION ARGS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
model="$1"; out="$2"; shift 2
mkdir -p "$out"
java_home="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
cc -shared -fPIC -O2 -Wall -Wextra -Werror -I"$java_home/include" -I"$java_home/include/linux" \
    -I"$root/platforms/c" "$here/jni/edgerl_jni.c" "${EDGERL_STATIC_LIB:-$root/target/release/libedgerl.a}" \
    -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc -o "$out/libedgerl_jni.so"
# EdgerlBitmap.kt is compiled against host-test/AndroidStubs.kt (a few android.graphics stubs).
kotlinc -nowarn "$here/src/main/kotlin/dev/edgerl/Edgerl.kt" "$here/src/main/kotlin/dev/edgerl/EdgerlBitmap.kt" \
    "$here"/host-test/*.kt \
    -include-runtime -d "$out/host-smoke.jar" 2>&1 | grep -v -e '^OpenJDK.*warning' -e '^warning: ' >&2 || true
# -Xcheck:jni: a JNI call made while an exception is pending (CheckJNI aborts on Android) is
# reported on stderr, which tests/android_host.rs checks.
java -Xcheck:jni -Djava.library.path="$out" -cp "$out/host-smoke.jar" HostSmokeKt "$model" "$out"
java -Xcheck:jni -Djava.library.path="$out" -cp "$out/host-smoke.jar" HostEpisodesKt "$model"
if [ $# -gt 0 ]; then
    java -Xcheck:jni -Djava.library.path="$out" -cp "$out/host-smoke.jar" HostVisionKt "$out" "$@"
fi
