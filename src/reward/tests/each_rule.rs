//! The rules one by one.

use super::*;

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
    let by_target = |p: [f64; 4], g: [f64; 4]| rules::box_size(p, g, [g[2] - g[0], g[3] - g[1]]);
    assert_eq!(by_target(g, g), 1.0);
    // Every edge 10 % of its dimension off: 4 / (4 / 0.9) = 0.9.
    assert!(close(by_target([80.0, 190.0, 320.0, 310.0], g), 0.9));
    assert!(close(by_target([120.0, 210.0, 280.0, 290.0], g), 0.9)); // shrunk alike
    // One edge a full width off: 0, not a division by zero or a negative term.
    assert_eq!(by_target([300.0, 200.0, 300.0, 300.0], g), 0.0);
    assert_eq!(by_target([-1e9, 200.0, 300.0, 300.0], g), 0.0);
    // Zero-height target: y edges must be exact.
    let flat = [0.0, 5.0, 10.0, 5.0];
    assert_eq!(by_target([0.0, 5.0, 10.0, 5.0], flat), 1.0);
    assert_eq!(by_target([0.0, 5.0, 10.0, 6.0], flat), 0.0);
    let r = "type = \"box_size\"\ntarget = \"b\"";
    assert_eq!(one(r, "(1, 2)", json!({"b": [0, 0, 2, 2]})), 0.0);
    assert_eq!(one(r, "(0, 0), (2, 2)", json!({"b": "[0, 0, 2, 2]"})), 1.0);
    // `normalize = "target"` is the default, spelt out.
    let t = "type = \"box_size\"\ntarget = \"b\"\nnormalize = \"target\"";
    assert!(close(one(t, "(80, 190), (320, 310)", json!({"b": [100, 200, 300, 300]})), 0.9));
}

/// GUI-G1's code: edge errors over the screen's width and height (the row's `image_width`,
/// `image_height`), values worked by hand.
#[test]
fn box_size_normalised_by_the_image() {
    let r = "type = \"box_size\"\ntarget = \"b\"\nnormalize = \"image\"";
    let g = json!([100, 200, 300, 300]);
    // Screen 1000 × 500; predicted 80,190 → 320,310: x edges 20/1000 off → 0.98,
    // y edges 10/500 off → 0.98: 4 / (4/0.98) = 0.98 (by the target it would be 0.9).
    let v = one(r, "(80, 190), (320, 310)", json!({"b": g, "image_width": 1000, "image_height": 500}));
    assert!(close(v, 0.98), "{v}");
    // Uneven: x1 off by 50 of 1000 (0.95), x2 exact (1), y1 off by 100 of 400 (0.75), y2 exact:
    // 4 / (1/0.95 + 1 + 1/0.75 + 1) = 4 / (20/19 + 4/3 + 2) = 4·57 / 250 = 0.912.
    let v = one(r, "(50, 100), (300, 300)", json!({"b": g, "image_width": 1000, "image_height": 400}));
    assert!(close(v, 228.0 / 250.0), "{v}");
    // Numeric strings are accepted, as for coordinates.
    let v = one(r, "(50, 100), (300, 300)", json!({"b": g, "image_width": "1000", "image_height": "400"}));
    assert!(close(v, 228.0 / 250.0), "{v}");
    // An edge the full screen width off scores 0; identical boxes 1.
    assert_eq!(one(r, "(100, 200), (1300, 300)", json!({"b": g, "image_width": 1000, "image_height": 500})), 0.0);
    assert_eq!(one(r, "(100, 200), (300, 300)", json!({"b": g, "image_width": 1000, "image_height": 500})), 1.0);
    // The rule reads the two columns (a dataset is checked for them up front).
    let s = set(&format!("[[rewards]]\n{r}"));
    assert_eq!(s.columns(), ["b", "image_width", "image_height"]);
    // Missing or unusable screen sizes are data errors naming the column, even when the
    // completion doesn't parse (so `RewardSet::read_dataset` finds them before a run starts).
    for (cols, needle) in [
        (json!({"b": g}), "`image_width` column"),
        (json!({"b": g, "image_width": 1000}), "`image_height` column"),
        (json!({"b": g, "image_width": 0, "image_height": 500}), "`image_width` must be a number > 0"),
        (json!({"b": g, "image_width": 1000, "image_height": -3}), "`image_height` must be a number > 0"),
        (json!({"b": g, "image_width": "wide", "image_height": 5}), "`image_width` must be a number > 0"),
    ] {
        for completion in ["(1, 2), (3, 4)", "no box"] {
            let e = s.score(completion, 0, &row(cols.clone())).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("box_size"), "{cols}: {e}");
        }
    }
    // `normalize` belongs to box_size only, and takes target or image.
    let e = set_err("[[rewards]]\ntype = \"iou\"\ntarget = \"b\"\nnormalize = \"image\"");
    assert!(e.contains("`normalize` does not apply"), "{e}");
    let e = set_err("[[rewards]]\ntype = \"box_size\"\ntarget = \"b\"\nnormalize = \"screen\"");
    assert!(e.contains("screen"), "{e}");
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
