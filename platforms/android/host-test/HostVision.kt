// Images through the Kotlin wrapper on a desktop JVM (host-test.sh): Model.score / generate
// with RgbaImage lists on a vision-language model, the cases of a spec file that
// tests/android_host.rs writes from the transformers fixture (tests/fixtures/vision_e2e), one
// a line, tab-separated, "\n" and "\\" escaped in texts:
//   score <TAB> TEXT <TAB> PNG...     -> OUT/case<i>.f32 (log-probs, little-endian floats)
//   chat <TAB> TEXT <TAB> MAX_NEW <TAB> PNG...  -> OUT/case<i>.txt (the greedy text)
// The PNGs are decoded with javax.imageio (what Bitmap pixels are on Android: RGBA bytes).
// Also: a row stride, a session's adapter, and the errors an app would meet. With STEP_CONFIG
// STEP_ROWS STEP_PNG, one training step (Session.stepRows with the PNG's pixels) whose adapter
// goes to OUT/step-adapter, for tests/android_host.rs to compare with `edgerl train`'s.
//   java ... HostVisionKt OUT VISION_MODEL TEXT_MODEL SPEC [STEP_CONFIG STEP_ROWS STEP_PNG]
import android.graphics.Bitmap
import dev.edgerl.EdgerlException
import dev.edgerl.Model
import dev.edgerl.RgbaImage
import dev.edgerl.Runtime
import dev.edgerl.Session
import dev.edgerl.scoreWithBitmaps
import dev.edgerl.toRgbaImage
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import javax.imageio.ImageIO
import kotlin.math.abs

/** A PNG's pixels as straight-alpha RGBA bytes, rows packed. */
fun readRgba(path: String): RgbaImage {
    val im = ImageIO.read(File(path)) ?: throw IllegalArgumentException("$path: not an image")
    val argb = im.getRGB(0, 0, im.width, im.height, null, 0, im.width)
    val rgba = ByteArray(argb.size * 4)
    for ((i, p) in argb.withIndex()) {
        rgba[4 * i] = (p shr 16).toByte()
        rgba[4 * i + 1] = (p shr 8).toByte()
        rgba[4 * i + 2] = p.toByte()
        rgba[4 * i + 3] = (p ushr 24).toByte()
    }
    return RgbaImage(rgba, im.width, im.height)
}

/** The same pixels with `pad` bytes of junk after each row. */
fun padded(im: RgbaImage, pad: Int): RgbaImage {
    val row = im.width * 4
    val out = ByteArray((row + pad) * im.height) { 0x5A }
    for (y in 0 until im.height) System.arraycopy(im.rgba, y * row, out, y * (row + pad), row)
    return RgbaImage(out, im.width, im.height, row + pad)
}

fun unescape(s: String): String {
    val b = StringBuilder()
    var i = 0
    while (i < s.length) {
        if (s[i] == '\\' && i + 1 < s.length) {
            b.append(if (s[i + 1] == 'n') '\n' else s[i + 1])
            i += 2
        } else b.append(s[i++])
    }
    return b.toString()
}

fun floatsLe(v: FloatArray): ByteArray {
    val b = ByteBuffer.allocate(4 * v.size).order(ByteOrder.LITTLE_ENDIAN)
    v.forEach { b.putFloat(it) }
    return b.array()
}

fun expectMessage(status: Int, needle: String, what: String, f: () -> Unit) {
    try {
        f()
        check(false, "$what: no exception")
    } catch (e: EdgerlException) {
        check(e.status == status && e.message!!.contains(needle), "$what -> status ${e.status}: ${e.message}")
    }
}

fun main(args: Array<String>) {
    val (out, modelDir, textModelDir, spec) = args
    val cases = File(spec).readLines().filter { it.isNotEmpty() }.map { it.split('\t') }
    Runtime().use { rt ->
        Model(rt, modelDir).use { model ->
            for ((i, c) in cases.withIndex()) {
                val text = unescape(c[1])
                if (c[0] == "score") {
                    val lp = model.score(text, c.drop(2).map(::readRgba))
                    check(lp.isNotEmpty() && lp.all { it.isFinite() }, "case $i: ${lp.size} log-probs with ${c.size - 2} images")
                    File(out, "case$i.f32").writeBytes(floatsLe(lp))
                } else {
                    val g = model.generate(text, c.drop(3).map(::readRgba), c[2].toInt(), chat = true)
                    check(true, "case $i: generated \"$g\"")
                    File(out, "case$i.txt").writeText(g)
                }
            }
            val first = cases.first { it[0] == "score" }
            val text = unescape(first[1])
            val images = first.drop(2).map(::readRgba)
            val lp = model.score(text, images)
            check(model.score(text, images.map { padded(it, 20) }).contentEquals(lp), "a row stride reads the same pixels")
            check(!model.score(text, images.map { padded(it, 20).let { p -> RgbaImage(p.rgba, p.width, p.height) } }).contentEquals(lp), "a wrong stride reads other pixels")

            // EdgerlBitmap.kt over the android.graphics stubs: rows rowBytes apart, and a
            // bitmap with transparency drawn over white first.
            val png = ImageIO.read(File(first[2]))
            val argb = png.getRGB(0, 0, png.width, png.height, null, 0, png.width)
            val bitmap = Bitmap.createBitmap(argb, png.width, png.height, Bitmap.Config.ARGB_8888)
            check(model.scoreWithBitmaps(text, listOf(bitmap)).contentEquals(lp), "a Bitmap scores as its pixels")
            val clear = Bitmap.createBitmap(IntArray(6) { 0x40FF0000 }, 3, 2, Bitmap.Config.ARGB_8888).toRgbaImage()
            val at = (0 until 6).map { (it / 3) * clear.rowStride + (it % 3) * 4 }
            check(clear.rowStride > 12 && at.all { clear.rgba[it + 3] == 255.toByte() && clear.rgba[it + 1] != 0.toByte() }, "a transparent Bitmap is drawn over white")

            val im = images[0]
            expectMessage(EdgerlException.INVALID_ARGUMENT, "the array has", "an array shorter than its pixels") {
                model.score(text, listOf(RgbaImage(im.rgba.copyOf(im.rgba.size - 1), im.width, im.height)))
            }
            expectMessage(EdgerlException.INVALID_ARGUMENT, "negative", "a negative width") {
                model.score(text, listOf(RgbaImage(im.rgba, -im.width, im.height)))
            }
            expectMessage(EdgerlException.INVALID_ARGUMENT, "stride_bytes", "a stride shorter than a row") {
                model.score(text, listOf(RgbaImage(im.rgba, im.width, im.height, im.width * 4 - 4)))
            }
            expectMessage(EdgerlException.INVALID_ARGUMENT, "empty", "an empty image") {
                model.generate("Hi", listOf(RgbaImage(ByteArray(0), 0, 0)), 2)
            }
            expectMessage(EdgerlException.INVALID_ARGUMENT, "placeholder", "more <image> places than images") {
                model.score("<image> and <image>", listOf(im))
            }

            val base = model.generate("Describe it.", images.take(1), 4)
            Session(model, "[lora]\nr = 2\n").use { s ->
                val ls = s.score(text, images)
                check(ls.size == lp.size && ls.indices.all { abs(ls[it] - lp[it]) < 1e-5f }, "a fresh adapter scores the images as the base model")
                check(s.generate("Describe it.", images.take(1), 4) == base, "a fresh adapter generates after an image as the base model: \"$base\"")
            }
            check(model.score(text, images).contentEquals(lp), "the model handed back by the session still takes images")
            if (args.size >= 7) trainStep(model, File(args[4]).readText(), File(args[5]).readText(), readRgba(args[6]), out)
        }
        Model(rt, textModelDir).use { m ->
            val im = readRgba(cases.first { it[0] == "score" }[2])
            expectMessage(EdgerlException.INVALID_ARGUMENT, "no vision tower", "images on a text model") {
                m.score("<image> hi", listOf(im))
            }
            Session(m, "[lora]\nr = 2\n").use { s ->
                expectMessage(EdgerlException.INVALID_ARGUMENT, "no vision tower", "a step with an image on a text model") {
                    s.stepRows("""[{"prompt": "<image> hi"}]""", listOf(im)) { _, _, _ -> 1.0 }
                }
            }
        }
    }
    println("all Kotlin vision checks passed")
}

/** One GRPO step on `rows` whose image place takes `image` (the config's point_in_box rule
 * reads each row's target_box); the adapter goes to OUT/step-adapter. Then the mistakes: no
 * image for the place, two images for it, and the reward callback on top of the rules. */
fun trainStep(model: Model, config: String, rows: String, image: RgbaImage, out: String) {
    Session(model, config).use { s ->
        val m = s.stepRows(rows, listOf(image))
        check(m.step == 1L && m.gradNorm.isFinite() && m.gradNorm > 0.0, "a step with an image: $m")
        s.saveAdapter(File(out, "step-adapter").path)
        expectMessage(EdgerlException.INVALID_ARGUMENT, "0 images for 1 image places", "a row's image place without an image") {
            s.stepRows(rows)
        }
        expectMessage(EdgerlException.INVALID_ARGUMENT, "2 images for 1 image places", "more images than places") {
            s.stepRows(rows, listOf(image, image))
        }
        expectMessage(EdgerlException.INVALID_ARGUMENT, "images[0]", "a bad image in a step") {
            s.stepRows(rows, listOf(RgbaImage(image.rgba, image.width, image.height, image.width * 4 - 4)))
        }
        // A Kotlin reward on top of the rules, on the same row and image.
        var calls = 0
        val m2 = s.stepRows(rows, listOf(image)) { row, _, _ -> check(row == 0, "row index $row"); calls++; 0.0 }
        check(m2.step == 2L && calls > 0, "a second step with a Kotlin reward: $calls calls, $m2")
    }
}
