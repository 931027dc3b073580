// Episodes from dataset rows on a desktop JVM (see host-test.sh): the config's rule reads each
// episode's own target (no Kotlin reward), and the step's reward is what that rule gives the
// last acts, worked out here from the texts `act` returned; then dynamic sampling, where the
// session asks for more groups. Uses `check` and `expectStatus` of HostSmoke.kt. Exits
// non-zero on the first failed check.
import dev.edgerl.EdgerlException
import dev.edgerl.Episode
import dev.edgerl.Model
import dev.edgerl.Runtime
import dev.edgerl.Session
import kotlin.math.abs

/** The rule's extraction: the first lowercase vowel of the text (Rust's regex, `.` matching newlines). */
fun firstVowel(text: String): String? = Regex("^.*?([aeiou])", RegexOption.DOT_MATCHES_ALL).find(text)?.groupValues?.get(1)

fun main(args: Array<String>) {
    val modelDir = args[0]
    val base = """
        max_completion_length = 12
        temperature = 1.0
        learning_rate = 0.05
        seed = 7
    """.trimIndent()
    val lora = "[lora]\nr = 4\nalpha = 8"
    // exact: the act's first lowercase vowel equals the row's `vowel` (1, else 0).
    val rules = """
        $lora
        [[rewards]]
        type = "exact"
        extract = "regex"
        pattern = '^.*?([aeiou])'
        target = "vowel"
    """.trimIndent()
    Runtime().use { rt ->
        Model(rt, modelDir).use { model ->
            Session(model, "$base\n$rules").use { s ->
                expectStatus(EdgerlException.INVALID_ARGUMENT, "a row without the rule's target") {
                    Episode.fromRow(s, """{"prompt": "Tap OK."}""")
                }
                val episodes = ArrayList<Episode>()
                val want = ArrayList<Double>()
                for (vowel in listOf("e", "a")) {
                    val row = """{"prompt": [{"role": "user", "content": "Tap the button."}], "vowel": "$vowel"}"""
                    repeat(3) {
                        val ep = Episode.fromRow(s, row)
                        val first = ep.act()
                        ep.observe("Screen after \"$first\": unchanged.")
                        val last = ep.act()
                        want.add(if (firstVowel(last) == vowel) 1.0 else 0.0)
                        episodes.add(ep)
                    }
                }
                check(want.toSet().size > 1, "the rule's rewards differ: $want")
                val m = s.stepEpisodes(episodes, null, 3)
                val mean = want.sum() / want.size
                check(m.step == 1L && abs(m.rewardMean - mean) < 1e-12, "rule rewards on each episode's row: ${m.rewardMean} vs $mean from $want")
                // The app's rewards add to the rules on episodes from rows.
                val plus = s.stepEpisodes(episodes, DoubleArray(6) { 1.0 }, 3)
                check(abs(plus.rewardMean - (mean + 1.0)) < 1e-12, "the app's rewards add to the rules: ${plus.rewardMean}")
                episodes.forEach { it.close() }
            }
            Session(model, "$base\ndynamic_sampling = true\nmax_refill = 2\n$lora").use { s ->
                val eps = List(6) { Episode(s, if (it < 2) "Open the settings." else "Find the clock.") }
                eps.forEach { it.act(3) }
                check(s.episodeGroupsNeeded() == 0, "no round open yet")
                expectStatus(EdgerlException.MORE_GROUPS, "one of two groups without signal") {
                    s.stepEpisodes(eps.subList(0, 4), doubleArrayOf(1.0, 0.0, 0.5, 0.5), 2)
                }
                check(s.episodeGroupsNeeded() == 1, "one more group needed")
                val m = s.stepEpisodes(eps.subList(4, 6), doubleArrayOf(0.0, 1.0), 2)
                check(m.step == 1L && m.rewardMean == 0.5 && s.episodeGroupsNeeded() == 0, "trained on the two groups with signal: step ${m.step}, reward ${m.rewardMean}")
                expectStatus(EdgerlException.INVALID_ARGUMENT, "no rewards and no rules") { s.stepEpisodes(eps.subList(0, 2), null, 2) }
                eps.forEach { it.close() }
            }
        }
    }
    println("all Kotlin episode checks passed")
}
