// Runs the Kotlin wrapper and the JNI shim on a desktop JVM (the shim built for the host, see
// host-test.sh): two training steps with a Kotlin reward, steps on rows with rule rewards, an
// SFT step (sftStep) then GRPO in one session, generate, score, adapter round trip, and the
// errors an app would meet. Exits non-zero on the first failed check.
import dev.edgerl.EdgerlException
import dev.edgerl.EdgerlLog
import dev.edgerl.Episode
import dev.edgerl.Model
import dev.edgerl.Runtime
import dev.edgerl.Session
import java.io.File
import kotlin.system.exitProcess

fun check(ok: Boolean, what: String) {
    if (!ok) {
        System.err.println("FAILED: $what")
        exitProcess(1)
    }
    println("ok: $what")
}

fun expectStatus(status: Int, what: String, f: () -> Unit) {
    try {
        f()
        check(false, "$what: no exception")
    } catch (e: EdgerlException) {
        check(e.status == status && !e.message.isNullOrEmpty(), "$what -> status ${e.status}: ${e.message}")
    }
}

class AppFailure : RuntimeException("the app's reward failed")

fun main(args: Array<String>) {
    val modelDir = args[0]
    val out = File(args[1])
    Runtime().use { rt ->
        expectStatus(EdgerlException.IO, "a wrong model path") { Model(rt, "$modelDir/missing") }
        Model(rt, modelDir).use { model ->
            val greedy = model.generate("Say hello.", 6)
            check(greedy == model.generate("Say hello.", 6), "greedy generation repeats: \"$greedy\"")
            val lp = model.score("hello world \u00e9\u00e8 \uD83D\uDE00")
            check(lp.isNotEmpty() && lp.all { it <= 0f && it.isFinite() }, "score gives ${lp.size} log-probs")
            val config = """
                num_generations = 4
                max_completion_length = 8
                temperature = 1.0
                learning_rate = 0.05
                seed = 7
                [lora]
                r = 4
                alpha = 8
            """.trimIndent()
            Session(model, config).use { s ->
                expectStatus(EdgerlException.BUSY, "a second session on the same model") { Session(model, config) }
                val before = File(out, "before")
                s.saveAdapter(before.path)
                var calls = 0
                val texts = ArrayList<String>()
                for (step in 0 until 2) {
                    val m = s.step(listOf("Name a fruit.", "Say hello.")) { _, _, text ->
                        calls++
                        texts.add(text)
                        text.count { it == 'e' || it == 'a' }.toDouble() / maxOf(1, text.length)
                    }
                    println(m)
                    check(m.step == (step + 1).toLong() && m.rewardMean.isFinite(), "step ${step + 1} metrics")
                }
                check(calls == 2 * 2 * 4, "the reward ran once per completion ($calls)")
                val after = File(out, "after")
                s.saveAdapter(after.path)
                val a = File(before, "adapter_model.safetensors").readBytes()
                val b = File(after, "adapter_model.safetensors").readBytes()
                check(a.size == b.size && !a.contentEquals(b), "two steps changed the adapter")

                // An exception in the reward aborts the step, comes back as itself, and leaves
                // the adapter as it was.
                try {
                    s.step(listOf("Say hello.")) { _, _, _ -> throw AppFailure() }
                    check(false, "a throwing reward: no exception")
                } catch (e: AppFailure) {
                    check(true, "a throwing reward rethrows the app's exception")
                }
                expectStatus(EdgerlException.CALLBACK, "a NaN reward") { s.step(listOf("Say hello.")) { _, _, _ -> Double.NaN } }
                val same = File(out, "same")
                s.saveAdapter(same.path)
                check(File(same, "adapter_model.safetensors").readBytes().contentEquals(b), "failed steps left the adapter unchanged")

                s.loadAdapter(before.path)
                check(s.generate("Say hello.", 6) == greedy, "the initial adapter (B = 0) generates like the base model")

                // Multi-turn episodes: two tasks, two episodes each, act / observe / act.
                EdgerlLog.setLevel(EdgerlLog.INFO)
                val reports = ArrayList<String>()
                s.progress = { phase, done, total -> reports.add("$phase:$done/$total") }
                val tasks = listOf("Open the settings.", "Turn on wifi.")
                val episodes = ArrayList<Episode>()
                val acts = ArrayList<String>()
                for (task in tasks) for (k in 0 until 2) {
                    val ep = Episode(s, task)
                    val first = ep.act(4)
                    ep.observe("The screen shows: ${first.length} characters \uD83D\uDE00")
                    val second = ep.act(4)
                    acts.add(first + "|" + second)
                    episodes.add(ep)
                }
                val beforeEpisodes = File(out, "before-episodes")
                s.saveAdapter(beforeEpisodes.path)
                val em = s.stepEpisodes(episodes, doubleArrayOf(1.0, 0.0, 0.0, 1.0), 2)
                println(em)
                check(acts.toSet().size > 1, "sampled episodes differ: $acts")
                check(em.step == 3L && em.rewardMean == 0.5 && em.gradNorm > 1e-4, "an episode step: step ${em.step}, reward ${em.rewardMean}, grad_norm ${em.gradNorm}")
                check(reports.isNotEmpty() && reports.last() == "${Session.PHASE_UPDATE}:1/1", "progress reports $reports")
                val afterEpisodes = File(out, "after-episodes")
                s.saveAdapter(afterEpisodes.path)
                check(!File(beforeEpisodes, "adapter_model.safetensors").readBytes().contentEquals(File(afterEpisodes, "adapter_model.safetensors").readBytes()), "the episode step changed the adapter")
                expectStatus(EdgerlException.INVALID_ARGUMENT, "a group size that does not divide") { s.stepEpisodes(episodes.subList(0, 3), doubleArrayOf(1.0, 0.0, 1.0), 2) }
                s.progress = { _, _, _ -> s.cancel() }
                expectStatus(EdgerlException.CANCELLED, "a progress listener that cancels") { s.stepEpisodes(episodes, doubleArrayOf(1.0, 0.0, 0.0, 1.0), 2) }
                // The final report comes after the update: an exception or a cancel there
                // fails neither that step nor the next one.
                val last = { phase: Int, done: Long, total: Long -> phase == Session.PHASE_UPDATE && done == total }
                s.progress = { phase, done, total -> if (last(phase, done, total)) throw AppFailure() }
                val late = s.stepEpisodes(episodes, doubleArrayOf(1.0, 0.0, 0.0, 1.0), 2)
                check(late.step == em.step + 1, "an exception at the final report: the step is taken (step ${late.step})")
                s.progress = { phase, done, total -> if (last(phase, done, total)) s.cancel() }
                val cancelledLate = s.stepEpisodes(episodes, doubleArrayOf(1.0, 0.0, 0.0, 1.0), 2)
                check(cancelledLate.step == late.step + 1, "a cancel at the final report: the step is taken")
                s.progress = null
                val next = s.stepEpisodes(episodes, doubleArrayOf(1.0, 0.0, 0.0, 1.0), 2)
                check(next.step == cancelledLate.step + 1, "a cancel at the final report does not stop the next step")
                EdgerlLog.setLevel(EdgerlLog.OFF)
                episodes.forEach { it.close() }
                expectStatus(EdgerlException.UNKNOWN_HANDLE, "a closed episode") { s.stepEpisodes(episodes, doubleArrayOf(1.0, 0.0, 0.0, 1.0), 2) }

                s.cancel()
                expectStatus(EdgerlException.CANCELLED, "a cancelled step") { s.step(listOf("Say hello.")) { _, _, _ -> 1.0 } }
                expectStatus(EdgerlException.INVALID_ARGUMENT, "a step without reward or rules") { s.step(listOf("Say hello."), reward = null) }
            }

            // Rule rewards on per-prompt data, no Kotlin reward: each row carries its own
            // target_box, which the point_in_box rule reads (as a line of a TRL dataset).
            val rulesConfig = """
                num_generations = 4
                max_completion_length = 12
                temperature = 1.0
                top_k = 50
                stop = ["\n\n"]
                learning_rate = 5e-3
                optimizer = "adamw"
                loss_type = "dapo"
                seed = 1
                [lora]
                r = 8
                alpha = 16

                [[rewards]]
                type = "point_in_box"
                name = "hit"
                extract = "regex"
                pattern = 'click\((\d+),\s*(\d+)\)'
                target = "target_box"
                weight = 0.8

                [[rewards]]
                type = "regex"
                name = "has_e"
                pattern = '.*e.*'
                weight = 0.1
            """.trimIndent()
            Session(model, rulesConfig).use { s ->
                val rows = """[{"prompt": [{"role": "user", "content": "Tap the Send button. Screen: [Send (10,20,60,40)] [Back (0,0,8,8)]. Answer with click(x, y)."}], "target_box": [10, 20, 60, 40]},
                    {"prompt": "Screen: [OK (100,200,180,240)]. Instruction: press OK. Action:", "target_box": [100, 200, 180, 240]}]"""
                val before = File(out, "rows-before")
                s.saveAdapter(before.path)
                for (step in 0 until 2) {
                    val m = s.stepRows(rows)
                    println(m)
                    check(m.step == (step + 1).toLong() && m.rewardMean.isFinite() && m.rewardMean >= 0.0, "rows step ${step + 1} with a point_in_box rule and no Kotlin reward")
                }
                val after = File(out, "rows-after")
                s.saveAdapter(after.path)
                val a = File(before, "adapter_model.safetensors").readBytes()
                val b = File(after, "adapter_model.safetensors").readBytes()
                check(!a.contentEquals(b), "rule rewards on rows changed the adapter")
                expectStatus(EdgerlException.INVALID_ARGUMENT, "a row without its target_box") {
                    s.stepRows("""[{"prompt": "Press OK.", "target_box": [1, 2, 3, 4]}, {"prompt": "no box"}]""")
                }
                // A Kotlin reward adds to the rules' reward.
                var calls = 0
                val m = s.stepRows(rows) { _, _, _ -> calls++; 2.0 }
                check(calls == 2 * 4 && m.rewardMean >= 2.0, "a Kotlin reward adds to the rules (${m.rewardMean})")
                try {
                    s.stepRows(rows) { _, _, _ -> throw AppFailure() }
                    check(false, "a throwing reward on rows: no exception")
                } catch (e: AppFailure) {
                    check(true, "a throwing reward on rows rethrows the app's exception")
                }
            }
            // A supervised warm start (TRL SFT rows, the assistant's turn trained), then GRPO
            // on rows in the same session.
            val sftConfig = "assistant_only_loss = true\nmax_length = 96\n" + rulesConfig
            Session(model, sftConfig).use { s ->
                val before = File(out, "sft-before")
                s.saveAdapter(before.path)
                val sftRows = """[{"messages": [{"role": "user", "content": "Tap Send. Screen: [Send (10,20,60,40)]"}, {"role": "assistant", "content": "click(35, 30)"}]}]"""
                val phases = ArrayList<String>()
                s.progress = { phase, done, total -> phases.add("$phase:$done/$total") }
                val m = s.sftStep(sftRows)
                s.progress = null
                println(m)
                check(m.step == 1L && m.loss.isFinite() && m.loss > 0.0 && m.trainedTokens > 0 && m.gradNorm > 0.0, "an SFT step: $m")
                check(phases == listOf("${Session.PHASE_UPDATE}:0/1", "${Session.PHASE_UPDATE}:1/1"), "SFT progress reports $phases")
                val after = File(out, "sft-after")
                s.saveAdapter(after.path)
                check(!File(before, "adapter_model.safetensors").readBytes().contentEquals(File(after, "adapter_model.safetensors").readBytes()), "the SFT step changed the adapter")
                expectStatus(EdgerlException.INVALID_ARGUMENT, "an SFT row without a completion") {
                    s.sftStep("""[{"prompt": "Press OK."}]""")
                }
                val g = s.stepRows("""[{"prompt": "Press OK.", "target_box": [1, 2, 3, 4]}]""")
                check(g.step == 2L && g.rewardMean.isFinite(), "a GRPO step after the SFT step: step ${g.step}")
            }
        }
        val model = Model(rt, modelDir)
        model.close()
        model.close()
        check(true, "closing twice is harmless")
        expectStatus(EdgerlException.UNKNOWN_HANDLE, "a closed model") { model.generate("Say hello.", 2) }
        // An argument the JNI shim refuses itself carries its own message, not the last error's.
        Model(rt, modelDir).use { m ->
            try {
                m.generate("Say hello.", -1)
                check(false, "a negative maxNewTokens: no exception")
            } catch (e: EdgerlException) {
                check(e.status == EdgerlException.INVALID_ARGUMENT && e.message!!.contains("maxNewTokens"), "a negative maxNewTokens -> ${e.status}: ${e.message}")
            }
        }
    }
    println("all Kotlin host checks passed")
}
