// Images for vision-language models (SmolVLM / Idefics3) over edgerl_generate_images and
// edgerl_score_images (platforms/c/edgerl.h).
import EdgerlFFI
import Foundation
#if canImport(CoreGraphics)
import CoreGraphics
#endif

/// An image as edgerl takes it: `height` rows of `width` RGBA pixels, 8 bits a channel,
/// straight (not premultiplied) alpha, rows top to bottom and packed. Transparent pixels are
/// composited onto white, as transformers does.
public struct RgbaImage {
    public let rgba: [UInt8]
    public let width: Int
    public let height: Int

    public init(rgba: [UInt8], width: Int, height: Int) {
        self.rgba = rgba
        self.width = width
        self.height = height
    }
}

#if canImport(CoreGraphics)
extension RgbaImage {
    /// The CGImage drawn over white into an RGBA8 buffer. Premultiplied or not does not matter
    /// then: every pixel is opaque, so the bytes are straight RGBA too (for an opaque image,
    /// exactly its pixels; where it has transparency, Core Graphics' blend may differ from
    /// transformers' by a rounding step). An RGB image keeps its colour space (its bytes are
    /// not converted, as PIL does not convert them); others (grey, indexed) are drawn in sRGB.
    /// A UIImage's orientation is not in its cgImage: pass images whose imageOrientation is
    /// .up (transformers' processors see files with their EXIF orientation applied).
    public init(cgImage: CGImage) throws {
        let (w, h) = (cgImage.width, cgImage.height)
        guard w > 0, h > 0 else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "the image is empty (\(w)x\(h) pixels)")
        }
        var pixels = [UInt8](repeating: 255, count: w * h * 4)
        func draw(in space: CGColorSpace) -> Bool {
            pixels.withUnsafeMutableBytes { buf in
                guard let ctx = CGContext(data: buf.baseAddress, width: w, height: h, bitsPerComponent: 8, bytesPerRow: w * 4,
                                          space: space, bitmapInfo: CGImageAlphaInfo.premultipliedLast.rawValue) else { return false }
                let all = CGRect(x: 0, y: 0, width: w, height: h)
                ctx.interpolationQuality = .none
                ctx.setFillColor(red: 1, green: 1, blue: 1, alpha: 1)
                ctx.fill(all)
                ctx.draw(cgImage, in: all)
                return true
            }
        }
        // The image's own RGB space when a bitmap context takes it, else sRGB.
        let own = cgImage.colorSpace.flatMap { $0.model == .rgb ? $0 : nil }
        let srgb = CGColorSpace(name: CGColorSpace.sRGB) ?? CGColorSpaceCreateDeviceRGB()
        guard (own.map(draw(in:)) ?? false) || draw(in: srgb) else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "could not draw the \(w)x\(h) image into an RGBA8 buffer")
        }
        self.init(rgba: pixels, width: w, height: h)
    }
}
#endif

/// Calls `body` with the images as edgerl_image structs whose pixels stay pinned for the call.
/// Sizes that do not fit edgerl_image's fields, or arrays shorter than their pixels, are
/// refused here (edgerl trusts the pointers it gets). Internal: Session.stepRows uses it too.
func withCImages<R>(_ images: [RgbaImage], _ body: ([edgerl_image]) throws -> R) throws -> R {
    for (i, im) in images.enumerated() {
        guard im.width >= 0, im.height >= 0, im.width <= Int(UInt32.max), im.height <= Int(UInt32.max) else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "images[\(i)]: \(im.width)x\(im.height) pixels is out of range")
        }
        let (need, overflow) = im.width.multipliedReportingOverflow(by: im.height)
        guard !overflow, need <= im.rgba.count / 4 else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT,
                              message: "images[\(i)]: \(im.width)x\(im.height) RGBA pixels need more than the array's \(im.rgba.count) bytes")
        }
    }
    func pin(_ i: Int, _ pinned: [edgerl_image]) throws -> R {
        if i == images.count { return try body(pinned) }
        let im = images[i]
        return try im.rgba.withUnsafeBufferPointer { p in
            try pin(i + 1, pinned + [edgerl_image(rgba: p.baseAddress, width: UInt32(im.width), height: UInt32(im.height), stride_bytes: 0)])
        }
    }
    return try pin(0, [])
}

/// generateText (Edgerl.swift) with images.
private func generateText(model: edgerl_model, session: edgerl_session, prompt: String, images: [RgbaImage], chat: Bool,
                          maxNewTokens: UInt32, temperature: Float, seed: UInt64) throws -> String {
    try withCImages(images) { cImages in
        try cImages.withUnsafeBufferPointer { ims in
            let flags = UInt32(chat ? EDGERL_PROMPT_CHAT : EDGERL_PROMPT_RAW)
            var needed = 0
            var buf = [CChar](repeating: 0, count: 4096)
            var st = edgerl_generate_images(model, session, prompt, ims.baseAddress, ims.count, flags, maxNewTokens,
                                            temperature, seed, &buf, buf.count, &needed)
            if st == EDGERL_ERR_BUFFER_TOO_SMALL {
                buf = [CChar](repeating: 0, count: needed + 1)
                st = edgerl_generate_images(model, session, prompt, ims.baseAddress, ims.count, flags, maxNewTokens,
                                            temperature, seed, &buf, buf.count, &needed)
            }
            try checkImages(st)
            return String(decoding: buf.prefix(needed).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}

/// scoreText (Edgerl.swift) with images: the count first, then the values edgerl kept.
private func scoreText(model: edgerl_model, session: edgerl_session, text: String, images: [RgbaImage]) throws -> [Float] {
    try withCImages(images) { cImages in
        try cImages.withUnsafeBufferPointer { ims in
            var n = 0
            let st = edgerl_score_images(model, session, text, ims.baseAddress, ims.count, nil, 0, &n)
            if st != EDGERL_ERR_BUFFER_TOO_SMALL {
                try checkImages(st)
                return []
            }
            var lp = [Float](repeating: 0, count: n)
            try checkImages(edgerl_score_images(model, session, text, ims.baseAddress, ims.count, &lp, lp.count, &n))
            return lp
        }
    }
}

/// check() of Edgerl.swift (file-private there).
private func checkImages(_ status: Int32) throws {
    guard status != EDGERL_OK else { return }
    let len = edgerl_last_error(nil, 0)
    var buf = [CChar](repeating: 0, count: len + 1)
    _ = edgerl_last_error(&buf, buf.count)
    throw EdgerlError(status: status, message: String(decoding: buf.prefix(len).map { UInt8(bitPattern: $0) }, as: UTF8.self))
}

extension Model {
    /// Generates after a prompt with images (a vision-language model): with chat the user turn
    /// is the images, then `prompt`; without, `prompt` holds one "<image>" per image, in order.
    /// A text model throws EDGERL_ERR_INVALID_ARGUMENT ("... no vision tower ...").
    public func generate(_ prompt: String, images: [RgbaImage], maxNewTokens: UInt32, chat: Bool = true,
                         temperature: Float = 0, seed: UInt64 = 0) throws -> String {
        try generateText(model: handle, session: 0, prompt: prompt, images: images, chat: chat,
                         maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
    }

    /// score(_:) of a text whose "<image>" places take `images`, in order.
    public func score(_ text: String, images: [RgbaImage]) throws -> [Float] {
        try scoreText(model: handle, session: 0, text: text, images: images)
    }
}

extension Session {
    /// Model.generate(_:images:...) with the session's adapter.
    public func generate(_ prompt: String, images: [RgbaImage], maxNewTokens: UInt32, chat: Bool = true,
                         temperature: Float = 0, seed: UInt64 = 0) throws -> String {
        try generateText(model: 0, session: handle, prompt: prompt, images: images, chat: chat,
                         maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
    }

    /// Model.score(_:images:) with the session's adapter.
    public func score(_ text: String, images: [RgbaImage]) throws -> [Float] {
        try scoreText(model: 0, session: handle, text: text, images: images)
    }
}
