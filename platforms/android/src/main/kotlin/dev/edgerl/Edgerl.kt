// edgerl for Android: Kotlin classes over the C ABI (platforms/c/edgerl.h) through a small JNI
// shim (platforms/android/jni/edgerl_jni.c, built into libedgerl_jni.so by build.sh).
//
// Every call that fails throws EdgerlException with the C status code and edgerl's message.
// Objects are Closeable: use `use { }` or call close(); closing twice is harmless. The
// thread-safety rules are the header's: any thread may call, a session's calls must not
// overlap (EDGERL_ERR_BUSY otherwise), cancel() is safe from anywhere.
package dev.edgerl

/** A failed edgerl call: `status` is one of the EDGERL_ERR_* codes of edgerl.h. */
class EdgerlException(val status: Int, message: String) : Exception(message) {
    companion object {
        const val INVALID_ARGUMENT = -1
        const val UNKNOWN_HANDLE = -2
        const val IO = -3
        const val MODEL = -4
        const val GPU = -5
        const val CANCELLED = -6
        const val CALLBACK = -7
        const val PANIC = -8
        const val BUFFER_TOO_SMALL = -9
        const val BUSY = -10
        /** A step's update was skipped: NaN or infinite loss or gradients (metrics still given). */
        const val NONFINITE = -11
        /**
         * Dynamic sampling: an episode step kept too few groups with signal and trained nothing;
         * run Session.episodeGroupsNeeded() more groups and step on them.
         */
        const val MORE_GROUPS = -12
    }
}

/** One training step's metrics (TRL's names: reward, reward_std, grad_norm, ...). */
class StepMetrics(
    val step: Long,
    val loss: Double,
    val rewardMean: Double,
    val rewardStd: Double,
    val gradNorm: Double,
    val learningRate: Double,
    val completionMeanLength: Double,
    val clippedRatio: Double,
    val seconds: Double
) {
    override fun toString() =
        "step $step: reward $rewardMean (std $rewardStd), loss $loss, grad_norm $gradNorm, " +
            "lr $learningRate, mean length $completionMeanLength, ${seconds}s"
}

/** One supervised (SFT) step's metrics (TRL SFTTrainer's names: loss, num_tokens, ...). */
class SftMetrics(
    val step: Long,
    val loss: Double,
    val gradNorm: Double,
    val learningRate: Double,
    val numTokens: Long,
    val trainedTokens: Long,
    val meanTokenAccuracy: Double,
    val entropy: Double,
    val seconds: Double
) {
    override fun toString() =
        "sft step $step: loss $loss, grad_norm $gradNorm, lr $learningRate, accuracy $meanTokenAccuracy, " +
            "$trainedTokens trained tokens ($numTokens so far), ${seconds}s"
}

/**
 * An image for a vision-language model (SmolVLM / Idefics3): `height` rows of `width` RGBA
 * pixels, 8 bits a channel, straight (not premultiplied) alpha, rows top to bottom, each
 * `rowStride` bytes after the one before (0: `width * 4`). Transparent pixels are composited
 * onto white, as transformers does. On Android, `Bitmap.toRgbaImage()` (EdgerlBitmap.kt)
 * makes one. The array is read during each call that takes the image, not copied before.
 */
class RgbaImage(val rgba: ByteArray, val width: Int, val height: Int, val rowStride: Int = 0)

/**
 * A GPU device. `backend`: "vulkan", "gl", or null for the best available, optionally with
 * ":ADAPTER" (part of the adapter's name, e.g. "vulkan:adreno"). A non-zero `memoryBudget`
 * (bytes) caps all device memory edgerl allocates on it, and each training step is planned to
 * fit (see README's C section).
 */
class Runtime(backend: String? = null, memoryBudget: Long = 0) : java.io.Closeable {
    internal var handle: Long = Native.runtimeCreate(backend?.let(::cString), memoryBudget)
        private set

    /** Device bytes held now, the most held, and the budget given at creation. */
    fun memory(): LongArray = Native.runtimeMemory(handle)

    override fun close() {
        if (handle != 0L) Native.runtimeFree(handle)
        handle = 0
    }
}

/** A model (Hugging Face directory or .gguf file) on a runtime. */
class Model(runtime: Runtime, path: String) : java.io.Closeable {
    internal var handle: Long = Native.modelLoad(runtime.handle, cString(path))
        private set

    /** Generates with the base model; temperature 0 is greedy. */
    fun generate(prompt: String, maxNewTokens: Int, chat: Boolean = true, temperature: Float = 0f, seed: Long = 0): String =
        utf8(Native.generate(handle, 0, cString(prompt), flags(chat), maxNewTokens, temperature, seed))

    /** log p(token i+1 | tokens ..= i) for each token of `text` under the base model. */
    fun score(text: String): FloatArray = Native.score(handle, 0, cString(text))

    /**
     * Generates after a prompt with images (a vision-language model): with chat = true the user
     * turn is the images, then `prompt`; with chat = false `prompt` holds one "<image>" per image,
     * in order. A text model throws EdgerlException(INVALID_ARGUMENT, "... no vision tower ...").
     */
    fun generate(prompt: String, images: List<RgbaImage>, maxNewTokens: Int, chat: Boolean = true, temperature: Float = 0f, seed: Long = 0): String =
        utf8(Native.generateImages(handle, 0, cString(prompt), pixels(images), dims(images), flags(chat), maxNewTokens, temperature, seed))

    /** `score` of a text whose "<image>" places take `images`, in order. */
    fun score(text: String, images: List<RgbaImage>): FloatArray =
        Native.scoreImages(handle, 0, cString(text), pixels(images), dims(images))

    override fun close() {
        if (handle != 0L) Native.modelFree(handle)
        handle = 0
    }
}

/**
 * A training session on `model` (which it borrows until closed): `configToml` uses edgerl's
 * TRL-named keys (num_generations, max_completion_length, learning_rate, [lora] r, ...).
 */
class Session(model: Model, configToml: String? = null) : java.io.Closeable {
    internal var handle: Long = Native.sessionCreate(model.handle, configToml?.let(::cString))
        private set

    companion object {
        /** Progress phases (see `progress`). */
        const val PHASE_SAMPLE = 1
        const val PHASE_UPDATE = 2
    }

    /** Serializes this session's steps: the progress listener is set for the length of one. */
    private val stepLock = Any()

    /**
     * Called on the stepping thread as a step goes: phase PHASE_SAMPLE (prompts sampled so
     * far, of all) or PHASE_UPDATE (optimizer updates taken, of num_iterations). Call cancel()
     * in it to stop the step; an exception thrown in it cancels the step and is rethrown.
     * Except at the final report (PHASE_UPDATE, done == total), which comes after the last
     * update is applied: nothing is left to stop there, so the step returns its metrics; an
     * exception thrown there is dropped, and a cancel() made there (or from another thread
     * during the last update) is dropped too: it does not stop the next step.
     */
    var progress: ((phase: Int, done: Long, total: Long) -> Unit)? = null

    /**
     * One GRPO step: samples num_generations completions per prompt, asks `reward` to score
     * each (null: the config's [[rewards]] rules, which see no data columns here: `stepRows`
     * gives them their targets), then updates the adapter. An exception
     * thrown by `reward` aborts the step (the adapter stays unchanged) and is rethrown here.
     */
    fun step(prompts: List<String>, chat: Boolean = true, reward: ((promptIndex: Int, completionIndex: Int, completion: String) -> Double)?): StepMetrics =
        synchronized(stepLock) {
            Native.sessionStep(handle, prompts.map(::cString).toTypedArray(), flags(chat), reward?.let(::RewardBridge), progress?.let(::ProgressBridge))
        }

    /**
     * One GRPO step on dataset rows: `rowsJson` is a JSON array with one object per prompt,
     * each what a line of a TRL prompt dataset would be: "prompt" (a string, tokenized as is,
     * or a list of {"role", "content"} messages, rendered with the chat template) and the row's
     * data columns, which the config's [[rewards]] rules read as targets, e.g.
     * `[{"prompt": [{"role": "user", "content": "Tap Send."}], "target_box": [40, 300, 120, 340]}]`.
     * Rows are checked first (a row lacking a column a rule reads throws
     * EdgerlException(INVALID_ARGUMENT) naming it; nothing is trained). Each completion's
     * reward is the rules' total plus `reward`'s value when given: the callback adds to the
     * rules, it does not replace them (unlike `step`). An exception thrown by `reward` aborts
     * the step and is rethrown here.
     */
    fun stepRows(rowsJson: String, reward: ((rowIndex: Int, completionIndex: Int, completion: String) -> Double)? = null): StepMetrics =
        stepRows(rowsJson, emptyList(), reward)

    /**
     * `stepRows` on a vision-language model with images: the rows' image places
     * ({"type": "image"} content parts, or "<image>" in text) take `images` in order across the
     * rows, e.g. `[{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text",
     * "text": "Tap Send."}]}], "target_box": [40, 300, 120, 340]}]` with one image. A row may
     * name image files in an "images" column instead (it takes none of `images`). Each
     * prompt's images go through the vision tower once; a count that does not match the
     * places, a bad image or a text model throws EdgerlException(INVALID_ARGUMENT), nothing
     * trained.
     */
    fun stepRows(rowsJson: String, images: List<RgbaImage>, reward: ((rowIndex: Int, completionIndex: Int, completion: String) -> Double)? = null): StepMetrics =
        synchronized(stepLock) {
            Native.sessionStepRows(handle, cString(rowsJson), pixels(images), dims(images), reward?.let(::RewardBridge), progress?.let(::ProgressBridge))
        }

    /**
     * One supervised step (TRL SFTTrainer's loss, as `edgerl sft`) with this session's adapter
     * and optimizer: `rowsJson` is a JSON array of TRL SFT rows of one format, e.g.
     * `[{"messages": [{"role": "user", "content": "Tap Send."}, {"role": "assistant", "content": "click(60, 320)"}]}]`,
     * or `{"prompt": ..., "completion": ...}`, or `{"text": ...}` objects; the loss is the mean
     * negative log-likelihood over the trained tokens of all rows (the config's
     * assistant_only_loss, completion_only_loss and max_length say which). A bad row throws
     * EdgerlException(INVALID_ARGUMENT) naming it; nothing is trained. Warm-start with a few,
     * then go on with `stepRows` in the same session.
     */
    fun sftStep(rowsJson: String): SftMetrics =
        synchronized(stepLock) {
            Native.sessionSftStep(handle, cString(rowsJson), progress?.let(::ProgressBridge))
        }

    /**
     * One GRPO step on finished episodes of this session: every run of `groupSize` episodes is
     * one group (the same task: prompt or row). Only the model's acts carry loss; observations
     * are attended to but masked out. The episodes stay open.
     *
     * `rewards`: one per episode, or null to let the config's [[rewards]] rules score each
     * episode's last act (the text `act` returned) against the data columns of the row it began
     * from (`Episode.fromRow`), as `edgerl train` scores a completion of that row. With both, an
     * episode from a row gets the rules' total plus its reward; one from a prompt gets its
     * reward alone.
     *
     * With dynamic_sampling = true in the config, groups whose rewards are all equal are
     * dropped; when fewer than the round's first step's groups are left, nothing is trained
     * and this throws EdgerlException(MORE_GROUPS): the session keeps the informative groups,
     * so run `episodeGroupsNeeded()` more groups and call again with just those (at most
     * max_refill times; then the kept groups train).
     */
    fun stepEpisodes(episodes: List<Episode>, rewards: DoubleArray?, groupSize: Int): StepMetrics {
        require(rewards == null || episodes.size == rewards.size) { "one reward per episode (${episodes.size} episodes, ${rewards?.size} rewards)" }
        return synchronized(stepLock) {
            Native.stepEpisodes(handle, LongArray(episodes.size) { episodes[it].handle }, rewards, groupSize, progress?.let(::ProgressBridge))
        }
    }

    /**
     * How many more groups the open dynamic-sampling round of `stepEpisodes` needs (0: none is
     * open).
     */
    fun episodeGroupsNeeded(): Int = Native.episodeGroupsNeeded(handle).toInt()

    /**
     * Stops the running step at its next check (or, with none running, the next step or act)
     * with EdgerlException(CANCELLED); also a chat template being rendered for this session.
     * A step that has applied its last update drops it (see `progress`).
     */
    fun cancel() = Native.cancel(handle)

    /** Generates with the session's adapter (a text too long for the shim's first buffer is
     * handed over from the first run, not generated again). */
    fun generate(prompt: String, maxNewTokens: Int, chat: Boolean = true, temperature: Float = 0f, seed: Long = 0): String =
        utf8(Native.generate(0, handle, cString(prompt), flags(chat), maxNewTokens, temperature, seed))

    fun score(text: String): FloatArray = Native.score(0, handle, cString(text))

    /** Model.generate with images, with the session's adapter. */
    fun generate(prompt: String, images: List<RgbaImage>, maxNewTokens: Int, chat: Boolean = true, temperature: Float = 0f, seed: Long = 0): String =
        utf8(Native.generateImages(0, handle, cString(prompt), pixels(images), dims(images), flags(chat), maxNewTokens, temperature, seed))

    /** Model.score with images, with the session's adapter. */
    fun score(text: String, images: List<RgbaImage>): FloatArray =
        Native.scoreImages(0, handle, cString(text), pixels(images), dims(images))

    /** Writes the adapter in PEFT format (adapter_config.json, adapter_model.safetensors). */
    fun saveAdapter(dir: String) = Native.saveAdapter(handle, cString(dir))

    fun loadAdapter(dir: String) = Native.loadAdapter(handle, cString(dir))

    override fun close() {
        if (handle != 0L) Native.sessionFree(handle)
        handle = 0
    }
}

/**
 * A multi-turn trajectory of `session`: the prompt, then the model's acts and the
 * environment's observations in turn; train groups of them with Session.stepEpisodes.
 * With chat = true the prompt is a user turn and each observation becomes one.
 */
class Episode private constructor(handle: Long) : java.io.Closeable {
    constructor(session: Session, prompt: String, chat: Boolean = true) :
        this(Native.episodeBegin(session.handle, cString(prompt), flags(chat)))

    internal var handle: Long = handle
        private set

    companion object {
        /**
         * An episode from a dataset row: `rowJson` is one JSON object, what a row of
         * `Session.stepRows` would be: "prompt" (a string, tokenized as is, or a list of
         * {"role", "content"} messages: a chat episode) and the row's data columns, which the
         * config's [[rewards]] rules read when `stepEpisodes` gets no rewards, e.g.
         * `{"prompt": [{"role": "user", "content": "Tap Send."}], "target_box": [40, 300, 120, 340]}`.
         * A row lacking a column a rule reads throws EdgerlException(INVALID_ARGUMENT) naming it.
         */
        fun fromRow(session: Session, rowJson: String): Episode = Episode(Native.episodeBeginRow(session.handle, cString(rowJson)))
    }

    /** The model acts: samples up to maxNewTokens (0: max_completion_length) and returns the text. */
    fun act(maxNewTokens: Int = 0): String = utf8(Native.episodeAct(handle, maxNewTokens))

    /** Appends what the environment wrote (masked out of the loss). */
    fun observe(text: String) = Native.episodeObserve(handle, cString(text))

    override fun close() {
        if (handle != 0L) Native.episodeFree(handle)
        handle = 0
    }
}

/** Where edgerl's log records go: logcat (tag "edgerl") on Android, stderr elsewhere. */
object EdgerlLog {
    const val OFF = 0
    const val ERROR = 1
    const val WARN = 2
    const val INFO = 3
    const val DEBUG = 4
    const val TRACE = 5

    /** Passes records at `level` or more severe (OFF: none). Process-wide. */
    fun setLevel(level: Int) = Native.setLogLevel(level)
}

/** What the JNI shim calls per progress report. */
internal class ProgressBridge(private val f: (Int, Long, Long) -> Unit) {
    fun call(phase: Int, done: Long, total: Long) = f(phase, done, total)
}

/** What the JNI shim calls per completion: text as UTF-8 bytes, decoded here. */
internal class RewardBridge(private val f: (Int, Int, String) -> Double) {
    fun call(promptIndex: Int, completionIndex: Int, completion: ByteArray): Double =
        f(promptIndex, completionIndex, utf8(completion))
}

private fun flags(chat: Boolean) = if (chat) 1 else 0

/** The images as the JNI shim takes them: the pixel arrays, and width, height, rowStride each. */
private fun pixels(images: List<RgbaImage>): Array<ByteArray> = Array(images.size) { images[it].rgba }

private fun dims(images: List<RgbaImage>): IntArray =
    IntArray(3 * images.size) { images[it / 3].let { im -> when (it % 3) { 0 -> im.width; 1 -> im.height; else -> im.rowStride } } }

/** NUL-terminated UTF-8 (JNI's own strings are "modified UTF-8", wrong for emoji). */
internal fun cString(s: String): ByteArray {
    require(s.indexOf('\u0000') < 0) { "strings passed to edgerl must not contain NUL" }
    return (s + "\u0000").toByteArray(Charsets.UTF_8)
}

internal fun utf8(b: ByteArray) = String(b, Charsets.UTF_8)

/** The JNI shim; handles are the C ABI's uint64 ids as Long. Failures throw EdgerlException. */
internal object Native {
    init {
        System.loadLibrary("edgerl_jni")
    }

    @JvmStatic external fun runtimeCreate(backend: ByteArray?, memoryBudget: Long): Long
    @JvmStatic external fun runtimeFree(runtime: Long)
    @JvmStatic external fun runtimeMemory(runtime: Long): LongArray
    @JvmStatic external fun modelLoad(runtime: Long, path: ByteArray): Long
    @JvmStatic external fun modelFree(model: Long)
    @JvmStatic external fun generate(model: Long, session: Long, prompt: ByteArray, flags: Int, maxNewTokens: Int, temperature: Float, seed: Long): ByteArray
    @JvmStatic external fun score(model: Long, session: Long, text: ByteArray): FloatArray
    @JvmStatic external fun generateImages(model: Long, session: Long, prompt: ByteArray, pixels: Array<ByteArray>, dims: IntArray, flags: Int, maxNewTokens: Int, temperature: Float, seed: Long): ByteArray
    @JvmStatic external fun scoreImages(model: Long, session: Long, text: ByteArray, pixels: Array<ByteArray>, dims: IntArray): FloatArray
    @JvmStatic external fun sessionCreate(model: Long, config: ByteArray?): Long
    @JvmStatic external fun sessionFree(session: Long)
    @JvmStatic external fun sessionStep(session: Long, prompts: Array<ByteArray>, flags: Int, reward: RewardBridge?, progress: ProgressBridge?): StepMetrics
    @JvmStatic external fun sessionStepRows(session: Long, rowsJson: ByteArray, pixels: Array<ByteArray>, dims: IntArray, reward: RewardBridge?, progress: ProgressBridge?): StepMetrics
    @JvmStatic external fun sessionSftStep(session: Long, rowsJson: ByteArray, progress: ProgressBridge?): SftMetrics
    @JvmStatic external fun stepEpisodes(session: Long, episodes: LongArray, rewards: DoubleArray?, groupSize: Int, progress: ProgressBridge?): StepMetrics
    @JvmStatic external fun episodeGroupsNeeded(session: Long): Long
    @JvmStatic external fun episodeBegin(session: Long, prompt: ByteArray, flags: Int): Long
    @JvmStatic external fun episodeBeginRow(session: Long, rowJson: ByteArray): Long
    @JvmStatic external fun episodeAct(episode: Long, maxNewTokens: Int): ByteArray
    @JvmStatic external fun episodeObserve(episode: Long, text: ByteArray)
    @JvmStatic external fun episodeFree(episode: Long)
    @JvmStatic external fun setLogLevel(level: Int)
    @JvmStatic external fun cancel(session: Long)
    @JvmStatic external fun saveAdapter(session: Long, dir: ByteArray)
    @JvmStatic external fun loadAdapter(session: Long, dir: ByteArray)
}
