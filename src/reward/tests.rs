//! Every extractor and rule on normal and adversarial input; config errors.

use serde_json::{Map, Value, json};

use super::action::{Action, TargetAction};
use super::extract::{
    Answer, Extractor, MAX_TEXT_BYTES, answer_tag, boxed, json_pointer, last_number, parse_number,
};
use super::rules::{self, Shape};
use super::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    reward_all_or_nothing: bool,
    rewards: Vec<RuleConfig>,
}

fn parse(toml_text: &str) -> std::result::Result<File, String> {
    toml::from_str(toml_text).map_err(|e| e.to_string())
}

fn set(toml_text: &str) -> RewardSet {
    let f = parse(toml_text).unwrap();
    RewardSet::new(&f.rewards, f.reward_all_or_nothing).unwrap()
}

fn set_err(toml_text: &str) -> String {
    match parse(toml_text) {
        Err(e) => e,
        Ok(f) => RewardSet::new(&f.rewards, f.reward_all_or_nothing)
            .unwrap_err()
            .to_string(),
    }
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// One rule's score on one completion.
fn one(rule: &str, completion: &str, r: Value) -> f64 {
    let s = set(&format!("[[rewards]]\n{rule}"));
    let sc = s.score(completion, 0, &row(r)).unwrap();
    assert_eq!(sc.per_rule.len(), 1);
    sc.per_rule[0]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// ---- extractors ----

#[test]
fn answer_tag_takes_the_last_and_tolerates_a_cut_stop_string() {
    assert_eq!(
        answer_tag("<answer>1</answer> then <answer> 2 </answer>"),
        Some(" 2 ")
    );
    assert_eq!(
        answer_tag("<think>x</think><answer>click(1, 2)"),
        Some("click(1, 2)")
    );
    assert_eq!(answer_tag("<answer>αβγ 数</answer>"), Some("αβγ 数"));
    assert_eq!(
        answer_tag("<answer><answer>in</answer></answer>"),
        Some("in")
    );
    assert_eq!(answer_tag("<answer></answer>"), Some(""));
    assert_eq!(answer_tag("no tag </answer>"), None);
    assert_eq!(answer_tag(""), None);
    assert_eq!(answer_tag("<ANSWER>x</ANSWER>"), None);
}

#[test]
fn boxed_balances_braces() {
    assert_eq!(boxed(r"so \boxed{\frac{1}{2}}."), Some(r"\frac{1}{2}"));
    assert_eq!(boxed(r"\boxed{1} and finally \boxed{2}"), Some("2"));
    assert_eq!(boxed(r"\boxed{{a}{b{c}}}"), Some("{a}{b{c}}"));
    assert_eq!(boxed(r"\boxed{\{x\}}"), Some(r"\{x\}"));
    assert_eq!(boxed(r"\boxed{}"), Some(""));
    assert_eq!(boxed(r"\boxed{π≈3.14}"), Some("π≈3.14"));
    // The last one is unbalanced (a truncated completion): no fallback to the earlier one.
    assert_eq!(boxed(r"\boxed{1} \boxed{2"), None);
    assert_eq!(boxed(r"\boxed{\}"), None);
    assert_eq!(boxed(r"\boxed"), None);
    assert_eq!(boxed(""), None);
    // A backslash as the last byte must not step past the end.
    assert_eq!(boxed("\\boxed{\\"), None);
}

#[test]
fn last_number_signs_decimals_exponents_and_thousands() {
    assert_eq!(last_number("The answer is -3.5e2."), Some("-3.5e2"));
    assert_eq!(last_number("5-3"), Some("3"));
    assert_eq!(last_number("x = -7"), Some("-7"));
    assert_eq!(
        last_number("costs $1,234,567.50 total"),
        Some("1,234,567.50")
    );
    assert_eq!(last_number("1,23"), Some("23"));
    assert_eq!(last_number("+.5"), Some("+.5"));
    assert_eq!(last_number("12 then 2e"), Some("2"));
    assert_eq!(last_number("H2O and x1 and point_2d"), None);
    assert_eq!(last_number("no digits, ٣ is Arabic-Indic"), None);
    assert_eq!(last_number("NaN inf Infinity"), None);
    assert_eq!(last_number(""), None);
    assert_eq!(last_number("1e999"), Some("1e999")); // found, but not a finite number (below)
}

#[test]
fn numbers_parse_strictly_and_finitely() {
    assert_eq!(parse_number(" 42 "), Some(42.0));
    assert_eq!(parse_number("-3.5"), Some(-3.5));
    assert_eq!(parse_number("+1e3"), Some(1000.0));
    assert_eq!(parse_number("1,234.5"), Some(1234.5));
    assert_eq!(parse_number(".5"), Some(0.5));
    assert_eq!(parse_number("5."), Some(5.0));
    for bad in [
        "",
        "-",
        ".",
        "inf",
        "-inf",
        "NaN",
        "nan",
        "infinity",
        "1e999",
        "-1e400",
        "0x10",
        "12 apples",
        "1,23",
        "1.2.3",
        "--1",
        "١٢",
    ] {
        assert_eq!(parse_number(bad), None, "{bad:?}");
    }
    let huge = format!("1{}", "0".repeat(400));
    assert_eq!(parse_number(&huge), None);
    let long = "9".repeat(10_000);
    assert_eq!(parse_number(&long), None);
    assert_eq!(
        parse_number(&format!("0.{}", "1".repeat(300))),
        Some(0.1111111111111111)
    );
}

#[test]
fn json_path_finds_the_first_object_even_in_fences() {
    let ex = |path: &str| Extractor::JsonPath(json_pointer(path).unwrap());
    let text = "Sure.\n```json\n{\"action\": {\"x\": 35, \"y\": 30}, \"box\": [1, 2, 3, 4]}\n```\n{\"action\": 9}";
    assert_eq!(ex("action.x").apply(text), Some(Answer::Json(json!(35))));
    assert_eq!(ex("box.0").apply(text), Some(Answer::Json(json!(1))));
    assert_eq!(ex("box.9").apply(text), None);
    assert_eq!(ex("box.x").apply(text), None);
    assert_eq!(ex("missing").apply(text), None);
    assert_eq!(
        ex("").apply("{\"a\": 1}"),
        Some(Answer::Json(json!({"a": 1})))
    );
    // Keys with '/' and '~' are escaped in the pointer.
    assert_eq!(
        ex("a/b.c~d").apply(r#"{"a/b": {"c~d": "ok"}}"#),
        Some(Answer::Json(json!("ok")))
    );
    // Malformed objects are skipped; the next `{` is tried.
    assert_eq!(
        ex("a").apply("{bad} {'a': 1} {\"a\": 2}"),
        Some(Answer::Json(json!(2)))
    );
    assert_eq!(ex("a").apply("{\"a\": 1"), None);
    assert_eq!(ex("a").apply(""), None);
    assert_eq!(ex("a").apply("[{\"a\": 1}]"), Some(Answer::Json(json!(1))));
    // Deep nesting hits serde_json's recursion limit instead of the stack.
    let deep = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert_eq!(ex("a").apply(&deep), None);
    // Many `{` that never parse: bounded tries.
    assert_eq!(ex("a").apply(&"{".repeat(200_000)), None);
    assert_eq!(json_pointer("a..b"), None);
    assert_eq!(json_pointer(".a"), None);
}

#[test]
fn regex_extractor_groups() {
    let re = |p: &str| Extractor::Regex(regex::Regex::new(p).unwrap());
    let click = re(r"click\((\d+),\s*(\d+)\)");
    assert_eq!(
        click.apply("click(1, 2) no, click(35, 30)"),
        Some(Answer::Groups(["35", "30", "", ""], 2))
    );
    assert_eq!(click.apply("clack(1, 2)"), None);
    assert_eq!(
        re(r"answer: (\w+)").apply("answer: yes"),
        Some(Answer::Text("yes"))
    );
    assert_eq!(re(r"\d+").apply("a 12 b 34"), Some(Answer::Text("34")));
    // Only participating groups count.
    let alt = re(r"p\((\d+),(\d+)\)|b\((\d+),(\d+),(\d+),(\d+)\)");
    assert_eq!(
        alt.apply("b(1,2,3,4)"),
        Some(Answer::Groups(["1", "2", "3", "4"], 4))
    );
    assert_eq!(
        alt.apply("p(5,6)"),
        Some(Answer::Groups(["5", "6", "", ""], 2))
    );
    assert_eq!(re(r"(\d)(\d)(\d)(\d)(\d)").apply("12345"), None);
    assert_eq!(re(r"x").apply(""), None);
}

#[test]
fn raw_and_the_size_cap() {
    assert_eq!(Extractor::Raw.apply(""), Some(Answer::Text("")));
    let big = "a".repeat(MAX_TEXT_BYTES + 1);
    assert_eq!(Extractor::Raw.apply(&big), None);
    let s = set("[[rewards]]\ntype = \"regex\"\npattern = \"a*\"\non_fail = -1.0");
    assert_eq!(s.score(&big, 0, &Map::new()).unwrap().per_rule, vec![-1.0]);
}

// ---- shapes ----

#[test]
fn shapes_from_text_json_and_groups() {
    let t = |s: &str| Shape::from_text(s);
    assert_eq!(t("click(35, 30)"), Some(Shape::Point([35.0, 30.0])));
    assert_eq!(
        t("[10, 20, 30, 40]"),
        Some(Shape::Box([10.0, 20.0, 30.0, 40.0]))
    );
    assert_eq!(
        t("(30,40),(10,20)"),
        Some(Shape::Box([10.0, 20.0, 30.0, 40.0]))
    ); // x2<x1 sorted
    assert_eq!(
        t("<|box_start|>(-5,6)<|box_end|>"),
        Some(Shape::Point([-5.0, 6.0]))
    );
    assert_eq!(
        t("{\"point_2d\": [1.5, 2.5]}"),
        Some(Shape::Point([1.5, 2.5]))
    );
    assert_eq!(t("row 3 at (35, 30)"), None);
    assert_eq!(t("1 2 3 4 5"), None);
    assert_eq!(t("(1e10, 5)"), None); // beyond MAX_COORD
    assert_eq!(t("(1e999, 5)"), None);
    assert_eq!(t(""), None);
    let j = |v: Value| Shape::from_json(&v);
    assert_eq!(
        j(json!([1, 2, 3, 4])),
        Some(Shape::Box([1.0, 2.0, 3.0, 4.0]))
    );
    assert_eq!(
        j(json!(["1", "2", "3", "4"])),
        Some(Shape::Box([1.0, 2.0, 3.0, 4.0]))
    );
    assert_eq!(j(json!("1,2,3,4")), Some(Shape::Box([1.0, 2.0, 3.0, 4.0])));
    assert_eq!(
        j(json!([[3, 4], [1, 2]])),
        Some(Shape::Box([1.0, 2.0, 3.0, 4.0]))
    );
    assert_eq!(
        j(json!({"x1": 1, "y1": 2, "x2": 3, "y2": 4})),
        Some(Shape::Box([1.0, 2.0, 3.0, 4.0]))
    );
    assert_eq!(j(json!({"x": 7, "y": "8"})), Some(Shape::Point([7.0, 8.0])));
    assert_eq!(j(json!([1, 2, 3])), None);
    assert_eq!(j(json!(["NaN", "inf"])), None);
    assert_eq!(j(json!([1e300, 2])), None);
    assert_eq!(j(json!(null)), None);
    assert_eq!(j(json!({"x": 1})), None);
    let g = Answer::Groups(["1", "2", "x", ""], 3);
    assert_eq!(Shape::parse(&g), None);
}

// ---- rules ----

#[test]
fn exact_normalises_by_default() {
    let r = "type = \"exact\"\ntarget = \"answer\"";
    assert_eq!(
        one(r, "  Paris\n is  NICE ", json!({"answer": "paris is nice"})),
        1.0
    );
    assert_eq!(one(r, "Lyon", json!({"answer": "Paris"})), 0.0);
    assert_eq!(one(r, "42", json!({"answer": 42})), 1.0);
    assert_eq!(one(r, "true", json!({"answer": true})), 1.0);
    assert_eq!(one(r, "b", json!({"answer": ["a", "B"]})), 1.0);
    assert_eq!(one(r, "STRASSE", json!({"answer": "strasse"})), 1.0);
    assert_eq!(one(r, "ÉTÉ", json!({"answer": "été"})), 1.0);
    assert_eq!(one(r, "", json!({"answer": "  "})), 1.0);
    let strict = "type = \"exact\"\ntarget = \"answer\"\nlowercase = false\ntrim = false\ncollapse_spaces = false";
    assert_eq!(one(strict, "Paris ", json!({"answer": "Paris"})), 0.0);
    assert_eq!(one(strict, "paris", json!({"answer": "Paris"})), 0.0);
    assert_eq!(one(strict, "Paris", json!({"answer": "Paris"})), 1.0);
    let tagged = "type = \"exact\"\ntarget = \"answer\"\nextract = \"answer_tag\"\non_fail = -0.5";
    assert_eq!(
        one(tagged, "<answer> Yes </answer>", json!({"answer": "yes"})),
        1.0
    );
    assert_eq!(one(tagged, "Yes", json!({"answer": "yes"})), -0.5);
    // A JSON object isn't one string: on_fail.
    let json_path = "type = \"exact\"\ntarget = \"answer\"\nextract = \"json_path\"\npath = \"a\"";
    assert_eq!(
        one(json_path, r#"{"a": {"b": 1}}"#, json!({"answer": "x"})),
        0.0
    );
    assert_eq!(one(json_path, r#"{"a": 3}"#, json!({"answer": "3"})), 1.0);
}

#[test]
fn numeric_tolerances_and_failures() {
    let r = "type = \"numeric\"\ntarget = \"answer\"\nextract = \"last_number\"\non_fail = -1.0";
    assert_eq!(one(r, "so x = 1,000.", json!({"answer": 1000})), 1.0);
    assert_eq!(
        one(r, "so x = 1000.0000001", json!({"answer": "1000"})),
        1.0
    );
    assert_eq!(one(r, "so x = 1000.01", json!({"answer": 1000})), 0.0);
    assert_eq!(one(r, "-3", json!({"answer": [3, -3]})), 1.0);
    assert_eq!(one(r, "1e999", json!({"answer": 1})), -1.0);
    assert_eq!(one(r, "NaN", json!({"answer": 1})), -1.0);
    assert_eq!(one(r, "", json!({"answer": 1})), -1.0);
    let rel = "type = \"numeric\"\ntarget = \"answer\"\nrtol = 0.01\natol = 0.0";
    assert_eq!(one(rel, "101", json!({"answer": 100})), 1.0);
    assert_eq!(one(rel, "101.5", json!({"answer": 100})), 0.0);
    // raw extraction needs the whole text to be a number.
    assert_eq!(one(rel, "100 apples", json!({"answer": 100})), 0.0);
    assert_eq!(one(rel, "-1e308", json!({"answer": 1e308})), 0.0);
    let boxed = "type = \"numeric\"\ntarget = \"answer\"\nextract = \"boxed\"";
    assert_eq!(
        one(boxed, r"\boxed{\frac{1}{2}}", json!({"answer": 0.5})),
        0.0
    );
    assert_eq!(one(boxed, r"\boxed{0.5}", json!({"answer": 0.5})), 1.0);
    // Bad targets are data errors.
    let s = set(&format!("[[rewards]]\n{boxed}"));
    for bad in [
        json!("NaN"),
        json!("inf"),
        json!(null),
        json!([]),
        json!({"a": 1}),
        json!(["1", "x"]),
    ] {
        let e = s
            .score("1", 0, &row(json!({"answer": bad})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("column `answer` is not a number"), "{e}");
    }
}

#[test]
fn regex_is_a_full_match_with_dot_matching_newlines() {
    let r = "type = \"regex\"\npattern = '<think>.*</think>\\s*<answer>.*</answer>'";
    assert_eq!(
        one(
            r,
            "<think>\nstep 1\nstep 2\n</think>\n<answer>\n42\n</answer>",
            json!({})
        ),
        1.0
    );
    assert_eq!(
        one(r, "<think>x</think><answer>1</answer> trailing", json!({})),
        0.0
    );
    assert_eq!(
        one(r, "lead <think>x</think><answer>1</answer>", json!({})),
        0.0
    );
    assert_eq!(one(r, "", json!({})), 0.0);
    let single_line = "type = \"regex\"\npattern = '(?-s)<answer>.*</answer>'";
    assert_eq!(one(single_line, "<answer>a\nb</answer>", json!({})), 0.0);
    // An alternation is anchored as a whole.
    let alt = "type = \"regex\"\npattern = 'a|b'";
    assert_eq!(one(alt, "ab", json!({})), 0.0);
    assert_eq!(one(alt, "b", json!({})), 1.0);
    let tagged = "type = \"regex\"\nextract = \"answer_tag\"\npattern = '\\s*click\\(\\d+, \\d+\\)\\s*'\non_fail = -1.0";
    assert_eq!(
        one(tagged, "<answer> click(1, 2) </answer>", json!({})),
        1.0
    );
    assert_eq!(one(tagged, "click(1, 2)", json!({})), -1.0);
}

#[test]
fn point_in_box_is_inclusive_and_takes_box_centres() {
    let r = "type = \"point_in_box\"\nextract = \"regex\"\npattern = 'click\\((\\d+),\\s*(\\d+)\\)'\ntarget = \"target_box\"";
    let tb = json!({"target_box": [10, 20, 50, 40]});
    assert_eq!(one(r, "click(35, 30)", tb.clone()), 1.0);
    assert_eq!(one(r, "click(10, 40)", tb.clone()), 1.0); // corner, inclusive
    assert_eq!(one(r, "click(51, 30)", tb.clone()), 0.0);
    assert_eq!(one(r, "tap(35, 30)", tb.clone()), 0.0); // no match: on_fail
    assert_eq!(
        one(r, "click(35, 30)", json!({"target_box": [50, 40, 10, 20]})),
        1.0
    ); // x2<x1
    assert_eq!(
        one(
            r,
            "click(35, 30)",
            json!({"target_box": "[10, 20, 50, 40]"})
        ),
        1.0
    );
    assert_eq!(
        one(r, "click(35, 30)", json!({"target_box": [35, 30, 35, 30]})),
        1.0
    ); // zero-size
    assert_eq!(
        one(r, "click(35, 31)", json!({"target_box": [35, 30, 35, 30]})),
        0.0
    );
    let raw = "type = \"point_in_box\"\ntarget = \"b\"";
    assert_eq!(
        one(raw, "[20, 25, 40, 35]", json!({"b": [10, 20, 50, 40]})),
        1.0
    ); // centre (30, 30)
    assert_eq!(
        one(raw, "[0, 0, 100, 100]", json!({"b": [10, 20, 30, 40]})),
        0.0
    ); // centre (50, 50)
    assert_eq!(
        one(
            raw,
            "I'd click (35, 30) on row 2",
            json!({"b": [10, 20, 50, 40]})
        ),
        0.0
    );
    assert_eq!(
        one(raw, "(1e300, 1e300)", json!({"b": [10, 20, 50, 40]})),
        0.0
    );
    // A point target, or garbage, is a data error naming the column.
    let s = set(&format!("[[rewards]]\n{raw}"));
    for bad in [
        json!([1, 2]),
        json!("abc"),
        json!(null),
        json!([1, 2, 3, "x"]),
    ] {
        let e = s
            .score("(1, 2)", 0, &row(json!({"b": bad})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("column `b` is not a box"), "{e}");
    }
}

#[test]
fn iou_values() {
    assert_eq!(rules::iou([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]), 1.0);
    assert_eq!(rules::iou([0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]), 0.0);
    assert!(close(
        rules::iou([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
        1.0 / 7.0
    ));
    assert_eq!(rules::iou([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]), 1.0); // zero-size, equal
    assert_eq!(rules::iou([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]), 0.0);
    assert_eq!(rules::iou([0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 6.0]), 0.0);
    let r =
        "type = \"iou\"\nextract = \"json_path\"\npath = \"bbox\"\ntarget = \"b\"\non_fail = -0.1";
    assert!(close(
        one(r, r#"{"bbox": [3, 3, 1, 1]}"#, json!({"b": [0, 0, 2, 2]})),
        1.0 / 7.0
    )); // x2<x1
    assert_eq!(
        one(r, r#"{"bbox": [3, 3]}"#, json!({"b": [0, 0, 2, 2]})),
        -0.1
    ); // a point has no IoU
    assert_eq!(
        one(r, r#"{"bbox": "none"}"#, json!({"b": [0, 0, 2, 2]})),
        -0.1
    );
    assert_eq!(
        one(
            r,
            "{\"bbox\": [1e9, 1e9, -1e9, -1e9]}",
            json!({"b": [0, 0, 2, 2]})
        ),
        4.0 / 4e18
    );
}

#[test]
fn box_size_values() {
    let g = [100.0, 200.0, 300.0, 300.0]; // width 200, height 100
    assert_eq!(rules::box_size(g, g), 1.0);
    // Every edge 10 % of its dimension off: 4 / (4 / 0.9) = 0.9.
    assert!(close(rules::box_size([80.0, 190.0, 320.0, 310.0], g), 0.9));
    assert!(close(rules::box_size([120.0, 210.0, 280.0, 290.0], g), 0.9)); // shrunk alike
    // One edge a full width off: 0, not a division by zero or a negative term.
    assert_eq!(rules::box_size([300.0, 200.0, 300.0, 300.0], g), 0.0);
    assert_eq!(rules::box_size([-1e9, 200.0, 300.0, 300.0], g), 0.0);
    // Zero-height target: y edges must be exact.
    let flat = [0.0, 5.0, 10.0, 5.0];
    assert_eq!(rules::box_size([0.0, 5.0, 10.0, 5.0], flat), 1.0);
    assert_eq!(rules::box_size([0.0, 5.0, 10.0, 6.0], flat), 0.0);
    let r = "type = \"box_size\"\ntarget = \"b\"";
    assert_eq!(one(r, "(1, 2)", json!({"b": [0, 0, 2, 2]})), 0.0);
    assert_eq!(one(r, "(0, 0), (2, 2)", json!({"b": "[0, 0, 2, 2]"})), 1.0);
}

#[test]
fn gui_g1_combined_reward_by_hand() {
    // Target 200×100 at (100, 200); predicted box 110,210 → 290,310.
    // hit: centre (200, 260) is inside → 1.
    // IoU: inter 180 × 90 = 16200; union 18000 + 20000 − 16200 = 21800 → 81/109.
    // box_size: edge offsets 10/200, 10/100, 10/200, 10/100 → closeness 0.95, 0.9, 0.95, 0.9;
    //   4 / (2/0.95 + 2/0.9) = 4 / (740/171) = 171/185.
    let s = set(r#"
        [[rewards]]
        type = "point_in_box"
        name = "hit"
        extract = "json_path"
        path = "bbox"
        target = "target_box"
        [[rewards]]
        type = "iou"
        weight = 0.25
        extract = "json_path"
        path = "bbox"
        target = "target_box"
        [[rewards]]
        type = "box_size"
        weight = 0.125
        extract = "json_path"
        path = "bbox"
        target = "target_box"
    "#);
    assert_eq!(s.names(), ["hit", "iou", "box_size"]);
    assert_eq!(s.columns(), ["target_box"]);
    let sc = s
        .score(
            r#"{"bbox": [110, 210, 290, 310]}"#,
            12,
            &row(json!({"target_box": [100, 200, 300, 300]})),
        )
        .unwrap();
    assert_eq!(sc.per_rule[0], 1.0);
    assert!(close(sc.per_rule[1], 81.0 / 109.0));
    assert!(close(sc.per_rule[2], 171.0 / 185.0));
    assert!(close(
        sc.total,
        1.0 + 0.25 * 81.0 / 109.0 + 0.125 * 171.0 / 185.0
    ));
    assert!((sc.total - 1.301320357).abs() < 1e-9); // 1 + 0.185779817 + 0.115540541
}

#[test]
fn dapo_length_penalty_three_regions() {
    // L = 100, C = 20: 0 up to 80, −(len − 80)/20 up to 100, −1 beyond.
    let s = set("[[rewards]]\ntype = \"length\"\nmax_length = 100\ncache = 20");
    let at = |n| s.score("ignored", n, &Map::new()).unwrap().per_rule[0];
    assert_eq!(at(0), 0.0);
    assert_eq!(at(80), 0.0);
    assert_eq!(at(81), -0.05);
    assert_eq!(at(90), -0.5);
    assert_eq!(at(100), -1.0);
    assert_eq!(at(101), -1.0);
    assert_eq!(at(usize::MAX), -1.0);
    // cache = 0 is a hard limit.
    assert_eq!(rules::overlong(100, 100, 0), 0.0);
    assert_eq!(rules::overlong(101, 100, 0), -1.0);
    let t = set("[[rewards]]\ntype = \"length\"\ntarget_length = 50\nweight = 0.5");
    let at = |n| t.score("", n, &Map::new()).unwrap();
    assert_eq!(at(50).per_rule[0], 0.0);
    assert_eq!(at(25).per_rule[0], -0.5);
    assert_eq!(at(75).per_rule[0], -0.5);
    assert_eq!(at(75).total, -0.25);
    assert_eq!(at(500).per_rule[0], -1.0);
    assert_eq!(at(0).per_rule[0], -1.0);
}

// ---- actions ----

const ACTION: &str = "type = \"action\"\ntarget = \"action\"";

fn act(completion: &str, target: Value) -> f64 {
    one(ACTION, completion, json!({ "action": target }))
}

#[test]
fn action_clicks_in_json_and_call_syntax() {
    let t = json!({"action": "click", "box": [10, 20, 50, 40]});
    assert_eq!(
        act(r#"{"action": "click", "x": 35, "y": 30}"#, t.clone()),
        1.0
    );
    assert_eq!(
        act(
            r#"```json
{"action_type": "CLICK", "point": [35, 30]}
```"#,
            t.clone()
        ),
        1.0
    );
    assert_eq!(
        act(r#"{"action": "click", "x": 5, "y": 30}"#, t.clone()),
        0.0
    );
    assert_eq!(
        act(r#"{"action": "long_press", "x": 35, "y": 30}"#, t.clone()),
        0.0
    );
    assert_eq!(act(r#"{"action": "click"}"#, t.clone()), 0.0); // no point
    assert_eq!(act("click(35, 30)", t.clone()), 1.0);
    assert_eq!(
        act(
            "Thought: click(1, 1) is wrong.\nAction: click(35,30)",
            t.clone()
        ),
        1.0
    );
    assert_eq!(act("pyautogui.click(x=35, y=30)", t.clone()), 1.0);
    assert_eq!(
        act(
            "click(start_box='<|box_start|>(35,30)<|box_end|>')",
            t.clone()
        ),
        1.0
    );
    assert_eq!(act("click([30, 25, 40, 35])", t.clone()), 1.0); // a box's centre
    assert_eq!(act("Click(35, 30)", t.clone()), 1.0);
    assert_eq!(act("click(35)", t.clone()), 0.0);
    assert_eq!(act("click(35, 30", t.clone()), 0.0);
    assert_eq!(act("", t.clone()), 0.0);
    assert_eq!(act("click(1e999, 30)", t.clone()), 0.0);
    // Target as a JSON string, and long_press with a hyphen.
    let lp = json!(r#"{"action": "long-press", "box": [0, 0, 10, 10]}"#);
    assert_eq!(act("long_press(5, 5)", lp.clone()), 1.0);
    assert_eq!(act("LONG PRESS(5, 5)", lp), 0.0); // the call name is one identifier
}

#[test]
fn action_typed_text_exact_and_f1() {
    let t = json!({"action": "type", "text": "Ada Lovelace"});
    assert_eq!(
        act(
            r#"{"action": "type", "text": "  ada   LOVELACE "}"#,
            t.clone()
        ),
        1.0
    );
    assert_eq!(act(r#"type("Ada Lovelace")"#, t.clone()), 1.0);
    assert_eq!(act(r#"type(text='Ada Lovelace')"#, t.clone()), 1.0);
    assert_eq!(act(r#"type(content="Ada Lovelace")"#, t.clone()), 1.0);
    assert_eq!(act(r#"type("Ada")"#, t.clone()), 0.0);
    assert_eq!(act(r#"type()"#, t.clone()), 0.0);
    // Escapes and parentheses inside the string; a call inside the text isn't the action.
    let tricky = json!({"action": "type", "text": "say \"hi\" (f(x))"});
    assert_eq!(act(r#"type("say \"hi\" (f(x))")"#, tricky), 1.0);
    assert_eq!(
        act(
            r#"type("日本語 ✓")"#,
            json!({"action": "type", "text": "日本語 ✓"})
        ),
        1.0
    );
    let f1 = format!("{ACTION}\ntext_f1_threshold = 0.6");
    // "ada lovelace" vs "ada king lovelace": P = 1, R = 2/3, F1 = 0.8.
    assert_eq!(
        one(
            &f1,
            r#"type("Ada Lovelace")"#,
            json!({"action": {"action": "type", "text": "Ada King Lovelace"}})
        ),
        1.0
    );
    assert_eq!(
        one(
            &f1,
            r#"type("Ada")"#,
            json!({"action": {"action": "type", "text": "Ada King Lovelace"}})
        ),
        0.0
    ); // F1 0.5
    assert!(close(
        rules::token_f1("Ada Lovelace", "Ada King Lovelace"),
        0.8
    ));
    assert_eq!(rules::token_f1("", ""), 1.0);
    assert_eq!(rules::token_f1("a", ""), 0.0);
    assert_eq!(rules::token_f1("a a b", "a b b"), 2.0 / 3.0);
}

#[test]
fn action_swipes_scrolls_and_others() {
    let swipe = json!({"action": "swipe", "box": [0, 600, 100, 800], "end_box": [0, 0, 100, 300]});
    assert_eq!(act("swipe(50, 700, 50, 100)", swipe.clone()), 1.0);
    assert_eq!(
        act(
            r#"{"action": "swipe", "x1": 50, "y1": 700, "x2": 50, "y2": 100}"#,
            swipe.clone()
        ),
        1.0
    );
    assert_eq!(
        act(
            r#"{"action": "swipe", "start": [50, 700], "end": [50, 100]}"#,
            swipe.clone()
        ),
        1.0
    );
    assert_eq!(act("swipe(50, 700, 50, 500)", swipe.clone()), 0.0);
    assert_eq!(act("swipe(50, 700)", swipe.clone()), 0.0); // no end
    // Direction: explicit or from the swipe's dominant axis (y grows downward).
    let up = json!({"action": "swipe", "direction": "UP"});
    assert_eq!(act("swipe(50, 700, 60, 100)", up.clone()), 1.0);
    assert_eq!(act("swipe(50, 100, 60, 700)", up.clone()), 0.0);
    assert_eq!(act("swipe(50, 100, 50, 100)", up.clone()), 0.0);
    assert_eq!(act(r#"swipe(direction="up")"#, up.clone()), 1.0);
    let scroll = json!({"action": "scroll", "direction": "down"});
    assert_eq!(act("scroll(down)", scroll.clone()), 1.0);
    assert_eq!(act(r#"scroll("down")"#, scroll.clone()), 1.0);
    assert_eq!(
        act(r#"scroll(500, 500, direction='down')"#, scroll.clone()),
        1.0
    );
    assert_eq!(
        act(
            r#"{"action": "scroll", "direction": "Down "}"#,
            scroll.clone()
        ),
        1.0
    );
    assert_eq!(act("scroll(up)", scroll), 0.0);
    // Actions without arguments: the type is enough.
    assert_eq!(act("press_back()", json!({"action": "press_back"})), 1.0);
    assert_eq!(
        act(
            r#"{"action": "press-back"}"#,
            json!({"action": "press_back"})
        ),
        1.0
    );
    assert_eq!(act("home()", json!({"action": "press_back"})), 0.0);
    let open = json!({"action": "open_app", "text": "Settings"});
    assert_eq!(act(r#"open_app("settings")"#, open), 1.0);
}

#[test]
fn action_parsing_adversarial() {
    for s in [
        "(",
        ")(",
        "a(",
        "a(\"",
        "a('x",
        "a(,)",
        "a(1,,2)",
        "a(x=)",
        "a([1,2)",
        "a(1 2)",
        "{",
        "{\"action\": 1}",
        "()()()",
        "é(1,2)",
        "click(1,2,3)",
    ] {
        // Must not panic; none of these is a click at (1, 2).
        let got = Action::from_text(s);
        assert!(
            got.as_ref()
                .is_none_or(|a| a.kind != "click" || a.point.is_none()),
            "{s:?} → {got:?}"
        );
    }
    assert_eq!(Action::from_text("x(1,2)").unwrap().point, Some([1.0, 2.0]));
    // Multi-byte text right at the argument-length cap.
    let long = format!("type(\"{}\")", "é".repeat(3000));
    assert_eq!(Action::from_text(&long), None);
    let many = "f(".repeat(100_000);
    let t = std::time::Instant::now();
    assert_eq!(Action::from_text(&many), None);
    let quotes = "a(\"".repeat(60_000);
    assert_eq!(Action::from_text(&quotes), None);
    assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
}

#[test]
fn action_targets_are_validated() {
    let ok =
        TargetAction::parse(&json!({"action": "click", "box": [1, 2, 3, 4], "extra": "ignored"}));
    assert!(ok.is_ok());
    for (bad, why) in [
        (json!({"box": [1, 2, 3, 4]}), "no string `action`"),
        (json!({"action": "click"}), "needs `box`"),
        (
            json!({"action": "click", "box": [1, 2]}),
            "`box` is not a box",
        ),
        (json!({"action": "type"}), "needs `text`"),
        (json!("click(1, 2)"), "not a JSON object"),
        (json!(7), "not a JSON object"),
    ] {
        let e = TargetAction::parse(&bad).unwrap_err();
        assert!(e.contains(why), "{bad} → {e}");
    }
    let s = set(&format!("[[rewards]]\n{ACTION}\nname = \"act\""));
    let e = s
        .score(
            "click(1, 2)",
            0,
            &row(json!({"action": {"action": "click"}})),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("#1 (act)") && e.contains("column `action`") && e.contains("needs `box`"),
        "{e}"
    );
}

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
    let readme = include_str!("../../README.md");
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
