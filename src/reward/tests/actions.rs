//! GUI actions.

use super::*;

// ---- actions ----

const ACTION: &str = "type = \"action\"\ntarget = \"action\"";

pub(super) fn act(completion: &str, target: Value) -> f64 {
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
