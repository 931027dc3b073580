// swift-tools-version:5.9
// edgerl for iOS and macOS: a Swift layer (Sources/Edgerl) over the C ABI, which comes in
// EdgerlFFI.xcframework (libedgerl.a + edgerl.h + a module map), built by
// build-xcframework.sh on a Mac.
import PackageDescription

let package = Package(
    name: "Edgerl",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "Edgerl", targets: ["Edgerl"])],
    targets: [
        .binaryTarget(name: "EdgerlFFI", path: "EdgerlFFI.xcframework"),
        .target(
            name: "Edgerl",
            dependencies: ["EdgerlFFI"],
            // wgpu's Metal backend.
            linkerSettings: [.linkedFramework("Metal"), .linkedFramework("QuartzCore"), .linkedFramework("Foundation")]
        ),
    ]
)
