#!/usr/bin/env bash
# Builds libedgerl_jni.so (the C ABI plus the JNI shim) for Android arm64-v8a into
# platforms/android/src/main/jniLibs/arm64-v8a/, ready to be packaged with Edgerl.kt.
#
# Needs: the Android NDK (ANDROID_NDK_HOME), `rustup target add aarch64-linux-android`,
# `cargo install cargo-ndk`. ANDROID_API (default 26) is the minimum API level.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
api="${ANDROID_API:-26}"
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the NDK directory}"

# The library without the `fetch` feature: an app ships or downloads its own model.
cargo ndk --manifest-path "$root/Cargo.toml" -t arm64-v8a --platform "$api" \
    build --release --lib --no-default-features

host="$(uname -s | tr '[:upper:]' '[:lower:]')-x86_64"
cc="$ANDROID_NDK_HOME/toolchains/llvm/prebuilt/$host/bin/aarch64-linux-android$api-clang"
out="$here/src/main/jniLibs/arm64-v8a"
mkdir -p "$out"
# wgpu opens Vulkan/EGL with dlopen at run time, so only libc's companions are linked.
"$cc" -shared -fPIC -O2 -I"$root/platforms/c" "$here/jni/edgerl_jni.c" \
    "$root/target/aarch64-linux-android/release/libedgerl.a" \
    -Wl,--gc-sections -Wl,--exclude-libs,ALL -llog -ldl -lm -o "$out/libedgerl_jni.so"
echo "built $out/libedgerl_jni.so"
