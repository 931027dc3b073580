// Android Bitmaps as edgerl images. Kept apart from Edgerl.kt, which the host-JVM test compiles
// without android.jar (tests/android_host.rs); this file is compiled only in an app.
package dev.edgerl

import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import java.nio.ByteBuffer

/**
 * This bitmap's pixels as RGBA bytes for Model/Session.generate and score. An ARGB_8888
 * bitmap's memory holds R, G, B, A bytes in that order, but premultiplied by alpha; edgerl
 * takes straight alpha and composites onto white as transformers does. So a bitmap with
 * transparency is first drawn over white (then every pixel is opaque and premultiplied equals
 * straight); colours of partly transparent pixels may then differ from transformers'
 * compositing by a rounding step. Other configs (RGB_565, HARDWARE, ...) are copied to
 * ARGB_8888 first.
 */
fun Bitmap.toRgbaImage(): RgbaImage {
    var src = if (config == Bitmap.Config.ARGB_8888) this else copy(Bitmap.Config.ARGB_8888, false)
        ?: throw IllegalArgumentException("edgerl: this bitmap (config $config) cannot be copied to ARGB_8888")
    if (src.hasAlpha()) {
        val opaque = Bitmap.createBitmap(src.width, src.height, Bitmap.Config.ARGB_8888)
        Canvas(opaque).apply {
            drawColor(Color.WHITE)
            drawBitmap(src, 0f, 0f, null)
        }
        src = opaque
    }
    val buffer = ByteBuffer.allocate(src.rowBytes * src.height)
    src.copyPixelsToBuffer(buffer)
    return RgbaImage(buffer.array(), src.width, src.height, src.rowBytes)
}

/** Model.generate with bitmaps (see toRgbaImage for how their pixels are read). */
fun Model.generateWithBitmaps(prompt: String, images: List<Bitmap>, maxNewTokens: Int, chat: Boolean = true, temperature: Float = 0f, seed: Long = 0): String =
    generate(prompt, images.map { it.toRgbaImage() }, maxNewTokens, chat, temperature, seed)

/** Model.score with bitmaps. */
fun Model.scoreWithBitmaps(text: String, images: List<Bitmap>): FloatArray = score(text, images.map { it.toRgbaImage() })

/** Session.generate with bitmaps. */
fun Session.generateWithBitmaps(prompt: String, images: List<Bitmap>, maxNewTokens: Int, chat: Boolean = true, temperature: Float = 0f, seed: Long = 0): String =
    generate(prompt, images.map { it.toRgbaImage() }, maxNewTokens, chat, temperature, seed)

/** Session.score with bitmaps. */
fun Session.scoreWithBitmaps(text: String, images: List<Bitmap>): FloatArray = score(text, images.map { it.toRgbaImage() })
