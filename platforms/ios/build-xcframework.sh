#!/usr/bin/env bash
# Builds platforms/ios/EdgerlFFI.xcframework (libedgerl.a for iOS devices, the iOS simulator
# and macOS, with edgerl.h and a module map) for the Swift package beside this script.
#
# Needs a Mac with Xcode and: rustup target add aarch64-apple-ios aarch64-apple-ios-sim \
#     x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/target/xcframework"
rm -rf "$build" "$here/EdgerlFFI.xcframework"
mkdir -p "$build/include" "$build/ios" "$build/ios-sim" "$build/macos"

# The library without the `fetch` feature: an app ships or downloads its own model.
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin; do
    cargo build --manifest-path "$root/Cargo.toml" --release --lib --no-default-features --target "$t"
done
lib() { echo "$root/target/$1/release/libedgerl.a"; }
cp "$(lib aarch64-apple-ios)" "$build/ios/libedgerl.a"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$build/ios-sim/libedgerl.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$build/macos/libedgerl.a"

cp "$root/platforms/c/edgerl.h" "$build/include/"
cat > "$build/include/module.modulemap" <<'MAP'
module EdgerlFFI {
    header "edgerl.h"
    export *
}
MAP
xcodebuild -create-xcframework \
    -library "$build/ios/libedgerl.a" -headers "$build/include" \
    -library "$build/ios-sim/libedgerl.a" -headers "$build/include" \
    -library "$build/macos/libedgerl.a" -headers "$build/include" \
    -output "$here/EdgerlFFI.xcframework"
echo "built $here/EdgerlFFI.xcframework"
