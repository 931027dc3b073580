//! The rules' definitions (ALGORITHMS.md, "Reward rules"): turning an extracted answer and a
//! target column into a score. Scores are 1/0 except iou and box_size (in [0, 1]) and length
//! (in [-1, 0]); nothing here returns NaN.

use regex::Regex;
use serde_json::Value;

use super::extract::{Answer, numbers_in, parse_number};

/// Coordinates beyond this are treated as unparseable: keeps areas and differences finite.
const MAX_COORD: f64 = 1e9;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    Point([f64; 2]),
    /// Corners sorted: x1 <= x2, y1 <= y2 (either order is accepted on input).
    Box([f64; 4]),
}

impl Shape {
    /// Two numbers are a point, four a box; non-finite or huge coordinates are not.
    pub(crate) fn from_numbers(v: &[f64]) -> Option<Shape> {
        if v.iter().any(|x| !x.is_finite() || x.abs() > MAX_COORD) {
            return None;
        }
        match *v {
            [x, y] => Some(Shape::Point([x, y])),
            [a, b, c, d] => Some(Shape::Box([a.min(c), b.min(d), a.max(c), b.max(d)])),
            _ => None,
        }
    }

    /// Two numbers are a point, four a box: in text (`(35, 30)`, `[1,2,3,4]`), in JSON
    /// (`[x, y]`, `[x1, y1, x2, y2]`, `[[x1, y1], [x2, y2]]`, `{"x","y"}`,
    /// `{"x1","y1","x2","y2"}`, numbers as JSON numbers or numeric strings), or regex groups.
    pub(crate) fn parse(a: &Answer) -> Option<Shape> {
        match a {
            Answer::Text(s) => Shape::from_text(s),
            Answer::Json(v) => Shape::from_json(v),
            Answer::Groups(g, n) => {
                let mut v = [0.0; 4];
                for (o, s) in v.iter_mut().zip(&g[..*n]) {
                    *o = parse_number(s)?;
                }
                Shape::from_numbers(&v[..*n])
            }
        }
    }

    pub(crate) fn from_text(s: &str) -> Option<Shape> {
        let (v, n) = numbers_in::<4>(s)?;
        Shape::from_numbers(&v[..n])
    }

    pub(crate) fn from_json(v: &Value) -> Option<Shape> {
        let num = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_number(s),
            _ => None,
        };
        match v {
            Value::String(s) => Shape::from_text(s),
            Value::Array(a) if a.len() == 2 && a.iter().all(Value::is_array) => {
                match (Shape::from_json(&a[0])?, Shape::from_json(&a[1])?) {
                    (Shape::Point([a, b]), Shape::Point([c, d])) => {
                        Shape::from_numbers(&[a, b, c, d])
                    }
                    _ => None,
                }
            }
            Value::Array(a) if a.len() == 2 || a.len() == 4 => {
                let mut v = [0.0; 4];
                for (o, x) in v.iter_mut().zip(a) {
                    *o = num(x)?;
                }
                Shape::from_numbers(&v[..a.len()])
            }
            Value::Object(m) => {
                let get = |k: &str| m.get(k).and_then(num);
                if let (Some(a), Some(b), Some(c), Some(d)) =
                    (get("x1"), get("y1"), get("x2"), get("y2"))
                {
                    Shape::from_numbers(&[a, b, c, d])
                } else {
                    Shape::from_numbers(&[get("x")?, get("y")?])
                }
            }
            _ => None,
        }
    }

    /// A point, or a box's centre.
    pub(crate) fn point(self) -> [f64; 2] {
        match self {
            Shape::Point(p) => p,
            Shape::Box([x1, y1, x2, y2]) => [(x1 + x2) / 2.0, (y1 + y2) / 2.0],
        }
    }
}

/// Inclusive on all four edges.
pub(crate) fn inside(p: [f64; 2], b: [f64; 4]) -> bool {
    b[0] <= p[0] && p[0] <= b[2] && b[1] <= p[1] && p[1] <= b[3]
}

fn one_if(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

pub(crate) fn point_in_box(pred: Shape, target: [f64; 4]) -> f64 {
    one_if(inside(pred.point(), target))
}

/// Zero-area boxes have no IoU: identical ones score 1, others 0.
pub(crate) fn iou(p: [f64; 4], g: [f64; 4]) -> f64 {
    let area = |b: [f64; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let iw = (p[2].min(g[2]) - p[0].max(g[0])).max(0.0);
    let ih = (p[3].min(g[3]) - p[1].max(g[1])).max(0.0);
    let inter = iw * ih;
    let union = area(p) + area(g) - inter;
    if union <= 0.0 {
        return one_if(p == g);
    }
    (inter / union).clamp(0.0, 1.0)
}

/// GUI-G1's box-size reward (Zhou et al. 2025, "GUI-G1: Understanding R1-Zero-Like Training
/// for Visual Grounding in GUI Agents", arXiv 2505.15810; `box_reward` in their `grpo_rec.py`):
///
/// ```text
///   c_x1 = 1 − |p_x1 − g_x1| / W      c_y1 = 1 − |p_y1 − g_y1| / H
///   c_x2 = 1 − |p_x2 − g_x2| / W      c_y2 = 1 − |p_y2 − g_y2| / H
///   R_box = 4 / (1/c_x1 + 1/c_x2 + 1/c_y1 + 1/c_y2)
/// ```
///
/// the harmonic mean of each edge's closeness. `scale` = [W, H]: the screen's width and height
/// in the paper's code (`normalize = "image"`, W = img.width, H = img.height), or the target
/// box's own width and height (`normalize = "target"`, edgerl's default, which makes the
/// reward independent of the screen size). The paper's code multiplies R_box by β = 0.125 when
/// summing rewards; here that is the rule's `weight`. Where the paper's code would divide by
/// zero or go negative (an edge a full W or H off, or more), this scores 0; a zero-size
/// dimension only tolerates an exact edge.
pub(crate) fn box_size(p: [f64; 4], g: [f64; 4], scale: [f64; 2]) -> f64 {
    let mut sum = 0.0;
    for c in 0..4 {
        let (diff, dim) = ((p[c] - g[c]).abs(), scale[c % 2]);
        let closeness = if dim > 0.0 {
            1.0 - diff / dim
        } else {
            one_if(diff == 0.0)
        };
        if closeness <= 0.0 {
            return 0.0;
        }
        sum += 1.0 / closeness;
    }
    (4.0 / sum).clamp(0.0, 1.0)
}

/// Options of the `exact` rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Normalise {
    pub lowercase: bool,
    pub trim: bool,
    pub collapse_spaces: bool,
}

impl Normalise {
    pub(crate) fn apply(self, s: &str) -> String {
        let s = if self.trim { s.trim() } else { s };
        let mut out = if self.collapse_spaces {
            let mut o = String::with_capacity(s.len());
            let mut in_space = false;
            for c in s.chars() {
                if c.is_whitespace() {
                    if !in_space {
                        o.push(' ');
                    }
                    in_space = true;
                } else {
                    o.push(c);
                    in_space = false;
                }
            }
            o
        } else {
            s.to_string()
        };
        if self.lowercase {
            out = out.to_lowercase();
        }
        out
    }
}

/// The answer as a string: text, or a JSON string/number/bool. Several regex groups, JSON
/// arrays/objects and null are not one string.
pub(crate) fn answer_text<'a>(a: &'a Answer) -> Option<std::borrow::Cow<'a, str>> {
    match a {
        Answer::Text(s) => Some((*s).into()),
        Answer::Json(Value::String(s)) => Some(s.as_str().into()),
        Answer::Json(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string().into()),
        _ => None,
    }
}

pub(crate) fn answer_number(a: &Answer) -> Option<f64> {
    match a {
        Answer::Text(s) => parse_number(s),
        Answer::Json(Value::String(s)) => parse_number(s),
        Answer::Json(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        _ => None,
    }
}

pub(crate) fn exact(answer: &str, targets: &[String], norm: Normalise) -> f64 {
    let a = norm.apply(answer);
    one_if(targets.iter().any(|t| norm.apply(t) == a))
}

/// |a − b| ≤ atol + rtol·|b| for any accepted b. Written so a NaN comparison can only fail.
pub(crate) fn numeric(a: f64, targets: &[f64], atol: f64, rtol: f64) -> f64 {
    one_if(
        targets
            .iter()
            .any(|&b| (a - b).abs() <= atol + rtol * b.abs()),
    )
}

/// Full match (the pattern was compiled as `\A(?:…)\z`).
pub(crate) fn full_match(re: &Regex, answer: &str) -> f64 {
    one_if(re.is_match(answer))
}

/// DAPO's soft overlong penalty: 0 up to L − C tokens, then linearly down to −1 at L, −1 past L.
pub(crate) fn overlong(len: usize, max_length: usize, cache: usize) -> f64 {
    let soft = max_length - cache;
    if len <= soft {
        0.0
    } else if len <= max_length {
        -((len - soft) as f64) / cache as f64
    } else {
        -1.0
    }
}

/// Linear penalty towards a target length: −|len − T|/T, floored at −1.
pub(crate) fn towards_length(len: usize, target: usize) -> f64 {
    -((len.abs_diff(target) as f64) / target as f64).min(1.0)
}

/// Token F1 (SQuAD-style bag of lowercase alphanumeric words).
pub(crate) fn token_f1(a: &str, b: &str) -> f64 {
    use std::collections::HashMap;
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (wa, wb) = (words(a), words(b));
    if wa.is_empty() || wb.is_empty() {
        return one_if(wa.is_empty() && wb.is_empty());
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &wb {
        *counts.entry(w).or_default() += 1;
    }
    let mut common = 0usize;
    for w in &wa {
        if let Some(c) = counts.get_mut(w.as_str()).filter(|c| **c > 0) {
            *c -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let (p, r) = (
        common as f64 / wa.len() as f64,
        common as f64 / wb.len() as f64,
    );
    2.0 * p * r / (p + r)
}
