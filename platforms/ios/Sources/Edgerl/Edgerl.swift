// edgerl for iOS and macOS: Swift classes over the C ABI (platforms/c/edgerl.h).
//
// Every failed call throws EdgerlError with the C status code and edgerl's message. Handles
// are freed when the Swift object goes away; the C side counts references, so the order does
// not matter. The thread-safety rules are the header's: any thread may call, a session's calls
// must not overlap (EDGERL_ERR_BUSY otherwise), cancel() is safe from anywhere.
import EdgerlFFI
import Foundation

/// A failed edgerl call: `status` is one of the EDGERL_ERR_* codes of edgerl.h.
public struct EdgerlError: Error, CustomStringConvertible {
    public let status: Int32
    public let message: String
    public var description: String { "\(String(cString: edgerl_status_name(status))): \(message)" }
}

/// One training step's metrics (TRL's names: reward, reward_std, grad_norm, ...).
public struct StepMetrics {
    public let step: UInt64
    public let loss, rewardMean, rewardStd, gradNorm, learningRate: Double
    public let completionMeanLength, clippedRatio, seconds: Double

    init(_ m: edgerl_step_metrics) {
        step = m.step
        loss = m.loss
        rewardMean = m.reward_mean
        rewardStd = m.reward_std
        gradNorm = m.grad_norm
        learningRate = m.learning_rate
        completionMeanLength = m.completion_mean_length
        clippedRatio = m.clipped_ratio
        seconds = m.seconds
    }
}

/// One supervised (SFT) step's metrics (TRL SFTTrainer's names: loss, num_tokens, ...).
public struct SftMetrics {
    public let step: UInt64
    public let loss, gradNorm, learningRate: Double
    public let numTokens, trainedTokens: UInt64
    public let meanTokenAccuracy, entropy, seconds: Double

    init(_ m: edgerl_sft_metrics) {
        step = m.step
        loss = m.loss
        gradNorm = m.grad_norm
        learningRate = m.learning_rate
        numTokens = m.num_tokens
        trainedTokens = m.trained_tokens
        meanTokenAccuracy = m.mean_token_accuracy
        entropy = m.entropy
        seconds = m.seconds
    }
}

/// The calling thread's last error message (edgerl keeps one per thread).
private func lastError() -> String {
    let len = edgerl_last_error(nil, 0)
    var buf = [CChar](repeating: 0, count: len + 1)
    _ = edgerl_last_error(&buf, buf.count)
    return String(decoding: buf.prefix(len).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func check(_ status: Int32) throws {
    if status != EDGERL_OK { throw EdgerlError(status: status, message: lastError()) }
}

private func flags(_ chat: Bool) -> UInt32 { UInt32(chat ? EDGERL_PROMPT_CHAT : EDGERL_PROMPT_RAW) }

/// A GPU device. `backend`: "metal", or nil for the best available, optionally with ":ADAPTER"
/// (part of the adapter's name). A non-zero `memoryBudget` (bytes) caps all device memory edgerl
/// allocates on it, and each training step is planned to fit (see README's C section).
public final class Runtime {
    let handle: edgerl_runtime

    public init(backend: String? = nil, memoryBudget: UInt64 = 0) throws {
        var h: edgerl_runtime = 0
        if let backend {
            try check(edgerl_runtime_create(backend, memoryBudget, &h))
        } else {
            try check(edgerl_runtime_create(nil, memoryBudget, &h))
        }
        handle = h
    }

    deinit { _ = edgerl_runtime_free(handle) }

    /// Device bytes held now, the most held, and the budget given at creation.
    public func memory() throws -> (live: UInt64, peak: UInt64, budget: UInt64) {
        var live: UInt64 = 0, peak: UInt64 = 0, budget: UInt64 = 0
        try check(edgerl_runtime_memory(handle, &live, &peak, &budget))
        return (live, peak, budget)
    }
}

/// Generates with the base model (session 0) or a session's adapter (model 0). A text longer
/// than the first buffer is kept by edgerl and handed over by the retry (the same arguments,
/// no edgerl call in between), not generated again.
private func generateText(model: edgerl_model, session: edgerl_session, prompt: String, chat: Bool,
                          maxNewTokens: UInt32, temperature: Float, seed: UInt64) throws -> String {
    var needed = 0
    var buf = [CChar](repeating: 0, count: 4096)
    var st = edgerl_generate(model, session, prompt, flags(chat), maxNewTokens, temperature, seed, &buf, buf.count, &needed)
    if st == EDGERL_ERR_BUFFER_TOO_SMALL {
        buf = [CChar](repeating: 0, count: needed + 1)
        st = edgerl_generate(model, session, prompt, flags(chat), maxNewTokens, temperature, seed, &buf, buf.count, &needed)
    }
    try check(st)
    return String(decoding: buf.prefix(needed).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Asks for the count first; edgerl keeps the values for the second call (not computed again).
private func scoreText(model: edgerl_model, session: edgerl_session, text: String) throws -> [Float] {
    var n = 0
    let st = edgerl_score(model, session, text, nil, 0, &n)
    if st != EDGERL_ERR_BUFFER_TOO_SMALL {
        try check(st)
        return []
    }
    var lp = [Float](repeating: 0, count: n)
    try check(edgerl_score(model, session, text, &lp, lp.count, &n))
    return lp
}

/// A model (Hugging Face directory or .gguf file) on a runtime.
public final class Model {
    let handle: edgerl_model
    let runtime: Runtime

    public init(runtime: Runtime, path: String) throws {
        var h: edgerl_model = 0
        try check(edgerl_model_load(runtime.handle, path, &h))
        handle = h
        self.runtime = runtime
    }

    deinit { _ = edgerl_model_free(handle) }

    /// Generates with the base model; temperature 0 is greedy.
    public func generate(_ prompt: String, maxNewTokens: UInt32, chat: Bool = true, temperature: Float = 0, seed: UInt64 = 0) throws -> String {
        try generateText(model: handle, session: 0, prompt: prompt, chat: chat, maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
    }

    /// log p(token i+1 | tokens ..= i) for each token of `text` under the base model.
    public func score(_ text: String) throws -> [Float] {
        try scoreText(model: handle, session: 0, text: text)
    }
}

/// Holds the app's reward closure and what it threw, for the C callback.
private final class RewardBox {
    let f: (Int, Int, String) throws -> Double
    var error: Error?
    init(_ f: @escaping (Int, Int, String) throws -> Double) { self.f = f }
}

private let rewardTrampoline: edgerl_reward_fn = { user, promptIndex, completionIndex, completion, out in
    guard let user, let completion, let out else { return 1 }
    let box = Unmanaged<RewardBox>.fromOpaque(user).takeUnretainedValue()
    do {
        out.pointee = try box.f(promptIndex, completionIndex, String(cString: completion))
        return 0
    } catch {
        box.error = error
        return 1
    }
}

/// Holds the app's progress closure and what it threw, for the C callback.
private final class ProgressBox {
    let f: (Int32, Int, Int) throws -> Void
    var error: Error?
    init(_ f: @escaping (Int32, Int, Int) throws -> Void) { self.f = f }
}

private let progressTrampoline: edgerl_progress_fn = { user, phase, done, total in
    guard let user else { return 1 }
    let box = Unmanaged<ProgressBox>.fromOpaque(user).takeUnretainedValue()
    do {
        try box.f(phase, done, total)
        return 0
    } catch {
        // The final report comes after the last update is applied and the step succeeds: an
        // error there cannot fail it, so it is dropped (as the Kotlin wrapper does).
        if phase == EDGERL_PHASE_UPDATE && done == total { return 0 }
        box.error = error
        return 1
    }
}

/// A training session on a model (which it borrows while it lives): `config` uses edgerl's
/// TRL-named keys (num_generations, max_completion_length, learning_rate, [lora] r, ...).
public final class Session {
    let handle: edgerl_session
    let model: Model
    /// Serializes this session's steps: the progress closure is set for the length of one.
    private let stepLock = NSLock()

    /// Called on the stepping thread as a step goes: phase EDGERL_PHASE_SAMPLE (completions
    /// sampled so far, of all) or EDGERL_PHASE_UPDATE (optimizer updates taken, of
    /// num_iterations). Call cancel() in it to stop the step; an error thrown in it cancels the
    /// step and is rethrown by the step. Except at the final report (EDGERL_PHASE_UPDATE,
    /// done == total), which comes after the last update is applied: nothing is left to stop,
    /// so the step returns its metrics; an error thrown there is dropped, and a cancel() made
    /// there (or from another thread during the last update) is dropped too: it does not stop
    /// the next step.
    public var progress: ((_ phase: Int32, _ done: Int, _ total: Int) throws -> Void)?

    /// Runs `body` (a step) with `progress` installed as the session's progress callback and
    /// returns its status with its error message (read before clearing the callback resets it).
    private func withProgress(_ body: () -> Int32) throws -> (Int32, String) {
        stepLock.lock()
        defer { stepLock.unlock() }
        guard let progress else {
            _ = edgerl_session_set_progress(handle, nil, nil)
            let st = body()
            return (st, st == EDGERL_OK ? "" : lastError())
        }
        let box = ProgressBox(progress)
        return try withExtendedLifetime(box) {
            try check(edgerl_session_set_progress(handle, progressTrampoline, Unmanaged.passUnretained(box).toOpaque()))
            let st = body()
            let message = st == EDGERL_OK ? "" : lastError()
            _ = edgerl_session_set_progress(handle, nil, nil)
            // Only a failed step reports the closure's error: a step that succeeded applied its update.
            if st != EDGERL_OK, let e = box.error { throw e }
            return (st, message)
        }
    }

    public init(model: Model, config: String? = nil) throws {
        var h: edgerl_session = 0
        if let config {
            try check(edgerl_session_create(model.handle, config, &h))
        } else {
            try check(edgerl_session_create(model.handle, nil, &h))
        }
        handle = h
        self.model = model
    }

    deinit { _ = edgerl_session_free(handle) }

    /// One GRPO step: samples num_generations completions per prompt, asks `reward` to score
    /// each (nil: the config's [[rewards]] rules, which see no data columns here: `stepRows`
    /// gives them their targets), then updates the adapter. An error thrown by
    /// `reward` aborts the step (the adapter stays unchanged) and is rethrown here.
    public func step(_ prompts: [String], chat: Bool = true, reward: ((_ promptIndex: Int, _ completionIndex: Int, _ completion: String) throws -> Double)?) throws -> StepMetrics {
        let owned = prompts.map { strdup($0) }
        defer { owned.forEach { free($0) } }
        let ptrs: [UnsafePointer<CChar>?] = owned.map { $0.map { UnsafePointer($0) } }
        var m = edgerl_step_metrics()
        let box = reward.map(RewardBox.init)
        let (st, message) = try withExtendedLifetime(box) {
            try withProgress {
                if let box {
                    return edgerl_session_step(handle, ptrs, ptrs.count, flags(chat), rewardTrampoline, Unmanaged.passUnretained(box).toOpaque(), &m)
                }
                return edgerl_session_step(handle, ptrs, ptrs.count, flags(chat), nil, nil, &m)
            }
        }
        if let e = box?.error { throw e }
        if st != EDGERL_OK { throw EdgerlError(status: st, message: message) }
        return StepMetrics(m)
    }

    /// One GRPO step on dataset rows: `rowsJSON` is a JSON array with one object per prompt,
    /// each what a line of a TRL prompt dataset would be: "prompt" (a string, tokenized as is,
    /// or a list of {"role", "content"} messages, rendered with the chat template) and the
    /// row's data columns, which the config's [[rewards]] rules read as targets (e.g.
    /// "target_box" for point_in_box). Rows are checked first: a row lacking a column a rule
    /// reads throws EdgerlError(INVALID_ARGUMENT) naming it, and nothing is trained. Each
    /// completion's reward is the rules' total plus `reward`'s value when given: the callback
    /// adds to the rules, it does not replace them (unlike `step`). An error thrown by
    /// `reward` aborts the step and is rethrown here.
    public func stepRows(_ rowsJSON: String, reward: ((_ rowIndex: Int, _ completionIndex: Int, _ completion: String) throws -> Double)? = nil) throws -> StepMetrics {
        try stepRows(rowsJSON, images: [], reward: reward)
    }

    /// `stepRows` on a vision-language model with images: the rows' image places
    /// ({"type": "image"} content parts, or "<image>" in text) take `images` in order across the
    /// rows (`RgbaImage(cgImage:)` gives them); a row may name image files in an "images"
    /// column instead (it takes none of `images`). A count that does not match the places, a
    /// bad image or a text model throws EdgerlError(INVALID_ARGUMENT); nothing is trained.
    public func stepRows(_ rowsJSON: String, images: [RgbaImage], reward: ((_ rowIndex: Int, _ completionIndex: Int, _ completion: String) throws -> Double)? = nil) throws -> StepMetrics {
        var m = edgerl_step_metrics()
        let box = reward.map(RewardBox.init)
        let (st, message) = try withCImages(images) { cImages in
            try cImages.withUnsafeBufferPointer { ims in
                try withExtendedLifetime(box) {
                    try withProgress {
                        if let box {
                            return edgerl_session_step_rows_images(handle, rowsJSON, ims.baseAddress, ims.count, rewardTrampoline,
                                                                   Unmanaged.passUnretained(box).toOpaque(), &m)
                        }
                        return edgerl_session_step_rows_images(handle, rowsJSON, ims.baseAddress, ims.count, nil, nil, &m)
                    }
                }
            }
        }
        if let e = box?.error { throw e }
        if st != EDGERL_OK { throw EdgerlError(status: st, message: message) }
        return StepMetrics(m)
    }

    /// `stepRows` with the rows as JSON-serializable dictionaries (JSONSerialization), e.g.
    /// `[["prompt": "Press OK.", "target_box": [100, 200, 180, 240]]]`.
    public func stepRows(_ rows: [[String: Any]], reward: ((_ rowIndex: Int, _ completionIndex: Int, _ completion: String) throws -> Double)? = nil) throws -> StepMetrics {
        guard JSONSerialization.isValidJSONObject(rows),
              let data = try? JSONSerialization.data(withJSONObject: rows),
              let json = String(data: data, encoding: .utf8)
        else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "rows: not JSON-serializable")
        }
        return try stepRows(json, reward: reward)
    }

    /// One supervised step (TRL SFTTrainer's loss, as `edgerl sft`) with this session's
    /// adapter and optimizer: `rowsJSON` is a JSON array of TRL SFT rows of one format
    /// (`{"messages": [...]}`, `{"prompt": ..., "completion": ...}` or `{"text": ...}`); the
    /// loss is the mean negative log-likelihood over the trained tokens of all rows (the
    /// config's assistant_only_loss, completion_only_loss and max_length say which). A bad row
    /// throws EdgerlError(INVALID_ARGUMENT) naming it, and nothing is trained. Warm-start with
    /// a few, then go on with `stepRows` in the same session.
    public func sftStep(_ rowsJSON: String) throws -> SftMetrics {
        var m = edgerl_sft_metrics()
        let (st, message) = try withProgress {
            edgerl_session_sft_step(handle, rowsJSON, &m)
        }
        if st != EDGERL_OK { throw EdgerlError(status: st, message: message) }
        return SftMetrics(m)
    }

    /// `sftStep` with the rows as JSON-serializable dictionaries (JSONSerialization), e.g.
    /// `[["messages": [["role": "user", "content": "Tap Send."], ["role": "assistant", "content": "click(60, 320)"]]]]`.
    public func sftStep(_ rows: [[String: Any]]) throws -> SftMetrics {
        guard JSONSerialization.isValidJSONObject(rows),
              let data = try? JSONSerialization.data(withJSONObject: rows),
              let json = String(data: data, encoding: .utf8)
        else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "rows: not JSON-serializable")
        }
        return try sftStep(json)
    }

    /// One GRPO step on finished episodes of this session: every run of `groupSize` episodes is
    /// one group (the same task: prompt or row). Only the model's acts carry loss; observations
    /// are attended to but masked out. The episodes stay open.
    ///
    /// `rewards`: one per episode, or nil to let the config's [[rewards]] rules score each
    /// episode's last act (the text `act` returned) against the data columns of the row it began
    /// from (`Episode(session:row:)`), as `edgerl train` scores a completion of that row. With
    /// both, an episode from a row gets the rules' total plus its reward; one from a prompt gets
    /// its reward alone.
    ///
    /// With dynamic_sampling = true in the config, groups whose rewards are all equal are
    /// dropped; when fewer than the round's first step's groups are left, nothing is trained and
    /// this throws EdgerlError(status: EDGERL_ERR_MORE_GROUPS): the session keeps the
    /// informative groups, so run `episodeGroupsNeeded()` more groups and call again with just
    /// those (at most max_refill times; then the kept groups train).
    public func stepEpisodes(_ episodes: [Episode], rewards: [Double]?, groupSize: Int) throws -> StepMetrics {
        if let rewards, episodes.count != rewards.count {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "one reward per episode (\(episodes.count) episodes, \(rewards.count) rewards)")
        }
        let ids = episodes.map { $0.handle }
        var m = edgerl_step_metrics()
        let (st, message) = try withProgress {
            if let rewards {
                return edgerl_session_step_episodes(handle, ids, rewards, ids.count, groupSize, &m)
            }
            return edgerl_session_step_episodes(handle, ids, nil, ids.count, groupSize, &m)
        }
        if st != EDGERL_OK { throw EdgerlError(status: st, message: message) }
        return StepMetrics(m)
    }

    /// How many more groups the open dynamic-sampling round of `stepEpisodes` needs (0: none is
    /// open).
    public func episodeGroupsNeeded() throws -> Int {
        var needed = 0
        try check(edgerl_session_episode_groups_needed(handle, &needed))
        return needed
    }

    /// Stops the running step at its next check (or, with none running, the next step or act)
    /// with EDGERL_ERR_CANCELLED; also a chat template being rendered for this session. A step
    /// that has applied its last update drops it (see `progress`). Safe from any thread.
    public func cancel() throws { try check(edgerl_cancel(handle)) }

    /// Generates with the session's adapter.
    public func generate(_ prompt: String, maxNewTokens: UInt32, chat: Bool = true, temperature: Float = 0, seed: UInt64 = 0) throws -> String {
        try generateText(model: 0, session: handle, prompt: prompt, chat: chat, maxNewTokens: maxNewTokens, temperature: temperature, seed: seed)
    }

    public func score(_ text: String) throws -> [Float] {
        try scoreText(model: 0, session: handle, text: text)
    }

    /// Writes the adapter in PEFT format (adapter_config.json, adapter_model.safetensors).
    public func saveAdapter(to dir: String) throws { try check(edgerl_session_save_adapter(handle, dir)) }

    /// Replaces the adapter with the PEFT adapter in `dir`; optimizer state restarts.
    public func loadAdapter(from dir: String) throws { try check(edgerl_session_load_adapter(handle, dir)) }
}

/// A multi-turn trajectory of a session: the prompt, then the model's acts and the
/// environment's observations in turn; train groups of them with Session.stepEpisodes. With
/// chat = true the prompt is a user turn and each observation becomes one.
public final class Episode {
    let handle: edgerl_episode
    let session: Session

    public init(session: Session, prompt: String, chat: Bool = true) throws {
        var h: edgerl_episode = 0
        try check(edgerl_episode_begin(session.handle, prompt, flags(chat), &h))
        handle = h
        self.session = session
    }

    /// An episode from a dataset row: `rowJSON` is one JSON object, what a row of
    /// `Session.stepRows` would be: "prompt" (a string, tokenized as is, or a list of
    /// {"role", "content"} messages: a chat episode) and the row's data columns, which the
    /// config's [[rewards]] rules read when `stepEpisodes` gets no rewards, e.g.
    /// `{"prompt": [{"role": "user", "content": "Tap Send."}], "target_box": [40, 300, 120, 340]}`.
    /// A row lacking a column a rule reads throws EdgerlError(INVALID_ARGUMENT) naming it.
    public init(session: Session, row rowJSON: String) throws {
        var h: edgerl_episode = 0
        try check(edgerl_episode_begin_row(session.handle, rowJSON, &h))
        handle = h
        self.session = session
    }

    /// `init(session:row:)` with the row as a JSON-serializable dictionary (JSONSerialization),
    /// e.g. `["prompt": "Press OK.", "target_box": [100, 200, 180, 240]]`.
    public convenience init(session: Session, row: [String: Any]) throws {
        guard JSONSerialization.isValidJSONObject(row),
              let data = try? JSONSerialization.data(withJSONObject: row),
              let json = String(data: data, encoding: .utf8)
        else {
            throw EdgerlError(status: EDGERL_ERR_INVALID_ARGUMENT, message: "row: not JSON-serializable")
        }
        try self.init(session: session, row: json)
    }

    deinit { _ = edgerl_episode_free(handle) }

    /// The model acts: samples up to maxNewTokens (0: max_completion_length), returns the text.
    /// A text longer than the first buffer is kept aside by edgerl and handed over in full.
    public func act(maxNewTokens: UInt32 = 0) throws -> String {
        var needed = 0
        var buf = [CChar](repeating: 0, count: 4096)
        var st = edgerl_episode_act(handle, maxNewTokens, &buf, buf.count, &needed)
        if st == EDGERL_ERR_BUFFER_TOO_SMALL {
            buf = [CChar](repeating: 0, count: needed + 1)
            st = edgerl_episode_act(handle, maxNewTokens, &buf, buf.count, &needed)
        }
        try check(st)
        return String(decoding: buf.prefix(needed).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Appends what the environment wrote (masked out of the loss).
    public func observe(_ text: String) throws { try check(edgerl_episode_observe(handle, text)) }
}

/// Holds the app's log closure; records may come from any thread, also concurrently.
private final class LogBox {
    let f: @Sendable (Int32, String) -> Void
    init(_ f: @escaping @Sendable (Int32, String) -> Void) { self.f = f }
}

private let logTrampoline: edgerl_log_fn = { user, level, message in
    guard let user, let message else { return }
    Unmanaged<LogBox>.fromOpaque(user).takeUnretainedValue().f(level, String(cString: message))
}

/// edgerl's log records (and wgpu's).
public enum EdgerlLog {
    private static let lock = NSLock()
    private static var installed: Unmanaged<LogBox>?

    /// Routes records at `maxLevel` (EDGERL_LOG_*) or more severe to `handler`, process-wide;
    /// nil stops routing. The handler may be called from any thread and must not call edgerl.
    public static func setHandler(maxLevel: Int32 = EDGERL_LOG_INFO, _ handler: (@Sendable (_ level: Int32, _ message: String) -> Void)?) throws {
        lock.lock()
        defer { lock.unlock() }
        let box = handler.map { Unmanaged.passRetained(LogBox($0)) }
        let cb: edgerl_log_fn? = box == nil ? nil : logTrampoline
        let st = edgerl_set_log_callback(cb, box?.toOpaque(), maxLevel)
        guard st == EDGERL_OK else {
            box?.release()
            throw EdgerlError(status: st, message: lastError())
        }
        // Once edgerl_set_log_callback returns, the previous handler is not running any more.
        installed?.release()
        installed = box
    }
}
