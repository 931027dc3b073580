//! The rule set and config errors.

use super::*;
use super::actions::act;

// ---- the set ----

#[test]
fn weighted_sum_names_and_columns() {
    let s = set(r#"
        [[rewards]]
        type = "regex"
        weight = 0.2
        pattern = '<answer>.*</answer>'
        [[rewards]]
        type = "exact"
        weight = 0.8
        extract = "answer_tag"
        target = "answer"
        [[rewards]]
        type = "exact"
        extract = "answer_tag"
        target = "alt"
        [[rewards]]
        type = "length"
        max_length = 10
        cache = 5
    "#);
    assert_eq!(s.names(), ["regex", "exact", "exact_2", "length"]);
    assert_eq!(s.columns(), ["answer", "alt"]);
    let sc = s
        .score(
            "<answer>B</answer>",
            8,
            &row(json!({"answer": "b", "alt": "c"})),
        )
        .unwrap();
    assert_eq!(sc.per_rule, vec![1.0, 1.0, 0.0, -0.6]);
    assert!(close(sc.total, 0.2 + 0.8 - 0.6));
    let e = s
        .score("x", 0, &row(json!({"answer": "b"})))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "[[rewards]] #3 (exact_2): the dataset row has no column `alt`"
    );
    let empty = RewardSet::new(&[], true).unwrap();
    assert_eq!(
        empty.score("x", 3, &Map::new()).unwrap(),
        Scores {
            total: 0.0,
            per_rule: vec![]
        }
    );
}

#[test]
fn default_names_step_around_explicit_ones() {
    let s = set(r#"
        [[rewards]]
        type = "iou"
        target = "b"
        [[rewards]]
        type = "iou"
        name = "iou_2"
        target = "b"
        [[rewards]]
        type = "iou"
        target = "b"
    "#);
    assert_eq!(s.names(), ["iou", "iou_2", "iou_3"]);
    let e = set_err(
        "[[rewards]]\ntype = \"iou\"\nname = \"a\"\ntarget = \"b\"\n[[rewards]]\ntype = \"exact\"\nname = \"a\"\ntarget = \"b\"",
    );
    assert!(
        e.contains("#2 (a)") && e.contains("another rule has this `name`"),
        "{e}"
    );
    let e = set_err("[[rewards]]\ntype = \"iou\"\nname = \"a/b\"\ntarget = \"b\"");
    assert!(e.contains("#1 (a/b)"), "{e}");
}

#[test]
fn all_or_nothing() {
    let rules = r#"
        reward_all_or_nothing = true
        [[rewards]]
        type = "regex"
        weight = 0.2
        pattern = '.*<answer>.*</answer>'
        [[rewards]]
        type = "numeric"
        weight = 0.8
        extract = "answer_tag"
        target = "answer"
        on_fail = 5.0
        [[rewards]]
        type = "length"
        max_length = 10
        cache = 5
    "#;
    let s = set(rules);
    let r = row(json!({"answer": 3}));
    let sc = s.score("<answer>3</answer>", 2, &r).unwrap();
    assert_eq!((sc.total, sc.per_rule.clone()), (1.0, vec![1.0, 1.0, 0.0]));
    // One rule below its maximum: the non-length rules add nothing; the length penalty stays.
    let sc = s.score("<answer>4</answer>", 9, &r).unwrap();
    assert_eq!(sc.per_rule, vec![1.0, 0.0, -0.8]);
    assert!(close(sc.total, -0.8));
    // on_fail above 1 counts as at the maximum.
    let sc = s.score("<answer>x</answer>", 0, &r).unwrap();
    assert!(close(sc.total, 0.2 + 4.0));
    let sum = set(&rules.replace("reward_all_or_nothing = true", ""));
    assert!(close(
        sum.score("<answer>4</answer>", 9, &r).unwrap().total,
        0.2 - 0.8
    ));
}

#[test]
fn adversarial_completions_never_panic() {
    let s = set(r#"
        [[rewards]]
        type = "exact"
        extract = "answer_tag"
        target = "a"
        [[rewards]]
        type = "numeric"
        extract = "last_number"
        target = "n"
        [[rewards]]
        type = "numeric"
        extract = "boxed"
        target = "n"
        [[rewards]]
        type = "iou"
        extract = "json_path"
        path = "box"
        target = "b"
        [[rewards]]
        type = "point_in_box"
        extract = "regex"
        pattern = '\((-?\d+),(-?\d+)\)'
        target = "b"
        [[rewards]]
        type = "action"
        target = "act"
    "#);
    let r = row(
        json!({"a": "x", "n": 1, "b": [0, 0, 10, 10], "act": {"action": "click", "box": [0, 0, 10, 10]}}),
    );
    let inputs = [
        String::new(),
        "\u{0}\u{feff}\u{202e}".to_string(),
        "<answer>".repeat(10_000),
        "\\boxed{".repeat(10_000),
        "{".repeat(50_000) + &"}".repeat(50_000),
        "[".repeat(50_000),
        "9".repeat(100_000),
        "-".repeat(100_000) + "1",
        "1e".repeat(50_000),
        ",000".repeat(50_000),
        "(1,2)".repeat(20_000),
        "click(".repeat(20_000),
        "x([".repeat(80_000),
        "x(a".repeat(80_000),
        "{\"a\": \"".to_string() + &"x".repeat(200_000),
        "\"".repeat(100_000),
        "🙂(1,2)".repeat(5_000),
        "{\"box\": [NaN, Infinity, 1, 2]}".to_string(),
        "{\"box\": [1e400, 0, 1, 2]}".to_string(),
    ];
    let t = std::time::Instant::now();
    for s_in in &inputs {
        let sc = s.score(s_in, s_in.len(), &r).unwrap();
        assert!(
            sc.total.is_finite() && sc.per_rule.iter().all(|v| v.is_finite()),
            "{:?}",
            &s_in[..20.min(s_in.len())]
        );
    }
    assert!(t.elapsed().as_secs_f64() < 10.0, "{:?}", t.elapsed());
    // And at the size cap itself.
    let mut big = "(1,2) ".repeat(MAX_TEXT_BYTES / 6);
    assert_eq!(s.score(&big, 0, &r).unwrap().per_rule[4], 1.0);
    big.push_str(&"x".repeat(MAX_TEXT_BYTES + 1 - big.len()));
    assert_eq!(s.score(&big, 0, &r).unwrap().per_rule[4], 0.0);
}

// ---- config errors ----

#[test]
fn unknown_key_and_type_are_named() {
    let e = set_err("[[rewards]]\ntype = \"exact\"\ntarget = \"a\"\nlowercse = true");
    assert!(e.contains("unknown field `lowercse`"), "{e}");
    let e = set_err("[[rewards]]\ntype = \"exactly\"\ntarget = \"a\"");
    assert!(
        e.contains("unknown variant `exactly`") && e.contains("point_in_box"),
        "{e}"
    );
    let e = set_err("[[rewards]]\ntype = \"exact\"\ntarget = \"a\"\nextract = \"last\"");
    assert!(
        e.contains("unknown variant `last`") && e.contains("last_number"),
        "{e}"
    );
    let e = set_err("[[rewards]]\nweight = 1.0");
    assert!(e.contains("missing field `type`"), "{e}");
    let e = set_err("[[rewards]]\ntype = \"exact\"\ntarget = \"a\"\nweight = \"x\"");
    assert!(e.contains("weight"), "{e}");
}

#[test]
fn bad_regex_names_the_rule_and_the_error() {
    let e =
        set_err("[[rewards]]\ntype = \"regex\"\nname = \"fmt\"\npattern = '<think>(.*</think>'");
    assert!(
        e.starts_with("[[rewards]] #1 (fmt): bad regex `<think>(.*</think>`"),
        "{e}"
    );
    assert!(e.contains("unclosed group"), "{e}");
    // Balanced only once wrapped in `\A(?:…)\z`: still rejected.
    let e = set_err("[[rewards]]\ntype = \"regex\"\npattern = 'a)|(b'");
    assert!(e.contains("#1 (regex): bad regex"), "{e}");
    let e = set_err(
        "[[rewards]]\ntype = \"exact\"\ntarget = \"a\"\n[[rewards]]\ntype = \"point_in_box\"\nextract = \"regex\"\npattern = '(\\d+'\ntarget = \"b\"",
    );
    assert!(e.contains("#2 (point_in_box): bad regex"), "{e}");
}

#[test]
fn missing_and_misplaced_keys() {
    let cases = [
        (
            "type = \"point_in_box\"\nextract = \"regex\"\ntarget = \"b\"",
            "extract = \"regex\" needs `pattern`",
        ),
        ("type = \"regex\"", "type = \"regex\" needs `pattern`"),
        (
            "type = \"exact\"\nextract = \"json_path\"\ntarget = \"a\"",
            "needs `path`",
        ),
        (
            "type = \"exact\"\nextract = \"json_path\"\npath = \"a..b\"\ntarget = \"a\"",
            "empty segment",
        ),
        ("type = \"iou\"", "needs `target`"),
        ("type = \"iou\"\ntarget = \"\"", "`target` is empty"),
        (
            "type = \"exact\"\ntarget = \"a\"\natol = 0.1",
            "key `atol` does not apply to type = \"exact\"",
        ),
        (
            "type = \"exact\"\ntarget = \"a\"\npattern = 'x'",
            "key `pattern` does not apply",
        ),
        (
            "type = \"exact\"\ntarget = \"a\"\npath = 'x'",
            "key `path` does not apply",
        ),
        (
            "type = \"regex\"\npattern = 'x'\ntarget = \"a\"",
            "key `target` does not apply",
        ),
        (
            "type = \"regex\"\nextract = \"regex\"\npattern = 'x'",
            "one `pattern` can't be both",
        ),
        ("type = \"length\"\nmax_length = 10", "needs `cache`"),
        (
            "type = \"length\"\nmax_length = 10\ncache = 11",
            "cache <= max_length",
        ),
        (
            "type = \"length\"\nmax_length = 0\ncache = 0",
            "1 <= max_length",
        ),
        ("type = \"length\"", "needs either"),
        (
            "type = \"length\"\nmax_length = 10\ncache = 2\ntarget_length = 5",
            "needs either",
        ),
        ("type = \"length\"\ntarget_length = 0", ">= 1"),
        (
            "type = \"length\"\ntarget_length = 5\ntarget = \"a\"",
            "key `target` does not apply to type = \"length\"",
        ),
        (
            "type = \"length\"\ntarget_length = 5\non_fail = 1.0",
            "key `on_fail` does not apply",
        ),
        (
            "type = \"numeric\"\ntarget = \"a\"\natol = -1.0",
            "`atol` and `rtol`",
        ),
        (
            "type = \"numeric\"\ntarget = \"a\"\nrtol = nan",
            "`atol` and `rtol`",
        ),
        (
            "type = \"numeric\"\ntarget = \"a\"\nweight = inf",
            "must be finite",
        ),
        (
            "type = \"action\"\ntarget = \"a\"\ntext_f1_threshold = 0.0",
            "not in (0, 1]",
        ),
        (
            "type = \"action\"\ntarget = \"a\"\ntext_f1_threshold = 1.5",
            "not in (0, 1]",
        ),
        (
            "type = \"iou\"\ntarget = \"a\"\ntext_f1_threshold = 0.5",
            "key `text_f1_threshold` does not apply",
        ),
    ];
    for (rule, want) in cases {
        let e = set_err(&format!("[[rewards]]\n{rule}"));
        assert!(e.starts_with("[[rewards]] #1 ("), "{rule}: {e}");
        assert!(e.contains(want), "{rule}: {e}");
    }
}

#[test]
fn rule_config_is_plain_serde() {
    let f = parse("[[rewards]]\ntype = \"numeric\"\ntarget = \"a\"\natol = 0.5").unwrap();
    assert_eq!(f.rewards[0].kind, RuleType::Numeric);
    assert_eq!(f.rewards[0].atol, Some(0.5));
    assert_eq!(f.rewards[0].extract, None);
    let j: RuleConfig = serde_json::from_value(
        json!({"type": "iou", "target": "b", "extract": "json_path", "path": "box"}),
    )
    .unwrap();
    assert_eq!(j.extract, Some(ExtractKind::JsonPath));
    assert!(RewardSet::new(&[j], false).is_ok());
}

#[test]
fn readme_example_builds_and_scores() {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme
        .find("### Reward rules")
        .expect("README has the section")..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let toml_text = &section[start..start + section[start..].find("```").unwrap()];
    let s = set(toml_text);
    assert_eq!(s.names(), ["hit", "iou", "box_size", "format", "length"]);
    assert_eq!(s.columns(), ["target_box"]);
    let c = "<think>look</think>\n<answer>{\"bbox\": [110, 210, 290, 310]}</answer>";
    let sc = s
        .score(c, 250, &row(json!({"target_box": [100, 200, 300, 300]})))
        .unwrap();
    let want = 1.0 + 0.25 * 81.0 / 109.0 + 0.125 * 171.0 / 185.0 + 0.2 - (250.0 - 192.0) / 64.0;
    assert!(close(sc.total, want), "{sc:?}");
}

#[test]
fn action_prediction_as_a_box() {
    let t = json!({"action": "click", "box": [10, 20, 50, 40]});
    assert_eq!(
        act(
            r#"{"action": "click", "bbox": [20, 25, 40, 35]}"#,
            t.clone()
        ),
        1.0
    );
    assert_eq!(
        act(r#"{"action": "click", "box": [0, 0, 100, 100]}"#, t),
        0.0
    );
}
