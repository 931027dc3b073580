// Just enough of android.graphics for EdgerlBitmap.kt to compile and run on a desktop JVM
// (host-test.sh; an app compiles it against android.jar instead). The stub keeps straight
// ARGB pixels and copies them out as Android does for ARGB_8888: R, G, B, A bytes,
// premultiplied, `rowBytes` apart (padded here, so the row stride is exercised).
package android.graphics

import java.nio.ByteBuffer

class Bitmap private constructor(private val width_: Int, private val height_: Int, val pixels: IntArray, val config: Config) {
    enum class Config { ARGB_8888, RGB_565 }

    val width get() = width_
    val height get() = height_
    val rowBytes get() = width_ * 4 + 8

    fun hasAlpha() = pixels.any { (it ushr 24) != 255 }

    fun copy(config: Config, @Suppress("UNUSED_PARAMETER") mutable: Boolean): Bitmap? = Bitmap(width_, height_, pixels.copyOf(), config)

    fun copyPixelsToBuffer(dst: ByteBuffer) {
        for (y in 0 until height_) for (x in 0 until width_) {
            val p = pixels[y * width_ + x]
            val a = p ushr 24
            val pre = { c: Int -> ((c and 0xFF) * a + 127) / 255 }
            val at = y * rowBytes + 4 * x
            dst.put(at, pre(p shr 16).toByte()).put(at + 1, pre(p shr 8).toByte()).put(at + 2, pre(p).toByte()).put(at + 3, a.toByte())
        }
    }

    companion object {
        fun createBitmap(width: Int, height: Int, config: Config) = Bitmap(width, height, IntArray(width * height), config)

        /** A bitmap of straight ARGB pixels, as `Bitmap.createBitmap(int[], ...)` takes them. */
        fun createBitmap(colors: IntArray, width: Int, height: Int, config: Config) = Bitmap(width, height, colors.copyOf(), config)
    }
}

class Canvas(private val target: Bitmap) {
    fun drawColor(color: Int) = target.pixels.fill(color)

    /** Source-over at (0, 0) on an opaque target, the way the test needs it. */
    fun drawBitmap(src: Bitmap, @Suppress("UNUSED_PARAMETER") left: Float, @Suppress("UNUSED_PARAMETER") top: Float, @Suppress("UNUSED_PARAMETER") paint: Any?) {
        for (i in src.pixels.indices) {
            val s = src.pixels[i]
            val d = target.pixels[i]
            val a = s ushr 24
            val mix = { sh: Int -> (((s shr sh) and 0xFF) * a + ((d shr sh) and 0xFF) * (255 - a) + 127) / 255 }
            target.pixels[i] = (0xFF shl 24) or (mix(16) shl 16) or (mix(8) shl 8) or mix(0)
        }
    }
}

object Color {
    const val WHITE = -1
}
