//! Extractors and shapes.

use super::*;

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
