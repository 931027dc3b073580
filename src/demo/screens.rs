//! Phone screens as text, for GUI grounding (in the spirit of GUI-G1 and Mobile-R1): an app's
//! elements with roles, labels and pixel bounds on a 360×640 screen, and an instruction that
//! names one of them. The answer is a tap, `click(x, y)`, scored by whether the point falls in
//! the target's box. Seeded, so a seed always gives the same screens.

use serde_json::{Value, json};

pub const WIDTH: u32 = 360;
pub const HEIGHT: u32 = 640;

/// (role, label, ways to ask for it)
type Spec = (&'static str, &'static str, &'static [&'static str]);

/// The app templates: settings, messaging, shopping, forms.
const APPS: &[(&str, &[Spec])] = &[
    (
        "Settings",
        &[
            ("switch", "Wi-Fi", &["Turn on Wi-Fi", "Enable Wi-Fi"]),
            (
                "switch",
                "Bluetooth",
                &["Turn on Bluetooth", "Enable Bluetooth"],
            ),
            (
                "switch",
                "Airplane mode",
                &["Turn on airplane mode", "Switch airplane mode on"],
            ),
            (
                "button",
                "Display",
                &["Open the display settings", "Change the brightness"],
            ),
            (
                "button",
                "Battery",
                &["Open the battery settings", "Check the battery"],
            ),
            (
                "button",
                "Sound",
                &["Open the sound settings", "Change the ringtone"],
            ),
        ],
    ),
    (
        "Messages",
        &[
            (
                "chat",
                "Anna",
                &["Open the chat with Anna", "Read Anna's messages"],
            ),
            ("chat", "Ben", &["Open the chat with Ben", "Reply to Ben"]),
            ("chat", "Mom", &["Open the chat with Mom", "Text Mom"]),
            (
                "chat",
                "Work group",
                &["Open the work group", "Read the work group chat"],
            ),
            (
                "button",
                "New message",
                &["Start a new message", "Write a new message"],
            ),
            (
                "button",
                "Search",
                &["Search the messages", "Find a message"],
            ),
        ],
    ),
    (
        "Shop",
        &[
            (
                "button",
                "Add to cart",
                &["Add this to the cart", "Put the item in the cart"],
            ),
            ("button", "Buy now", &["Buy it now", "Check out right away"]),
            (
                "link",
                "Reviews",
                &["Show the reviews", "Read what buyers say"],
            ),
            ("icon", "Cart", &["Open the cart", "Go to the cart"]),
            (
                "icon",
                "Share",
                &["Share this item", "Send the item to a friend"],
            ),
            (
                "button",
                "Size guide",
                &["Open the size guide", "Check the sizes"],
            ),
        ],
    ),
    (
        "Sign-up form",
        &[
            ("field", "Name", &["Fill in the name", "Type your name"]),
            (
                "field",
                "Email",
                &["Fill in the email", "Enter your email address"],
            ),
            (
                "field",
                "Phone",
                &["Fill in the phone number", "Enter your phone"],
            ),
            (
                "checkbox",
                "Accept terms",
                &["Accept the terms", "Agree to the terms"],
            ),
            ("button", "Submit", &["Submit the form", "Send the form"]),
            (
                "button",
                "Cancel",
                &["Cancel the sign-up", "Close the form"],
            ),
        ],
    ),
];

/// SplitMix64: small, seedable, the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub role: &'static str,
    pub label: &'static str,
    /// left, top, right, bottom in pixels (inclusive).
    pub bounds: [u32; 4],
}

#[derive(Clone, Debug, PartialEq)]
pub struct Screen {
    pub app: &'static str,
    pub elements: Vec<Element>,
    pub instruction: String,
    pub target: usize,
}

/// A screen of `n` elements (2..=6) of one app, stacked as list rows with varied heights,
/// margins and gaps, one of them the target.
pub fn screen(rng: &mut Rng, n: usize) -> Screen {
    let (app, specs) = *rng.pick(APPS);
    let n = n.clamp(2, specs.len());
    // n distinct elements, in a shuffled order.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut y = 56 + 8 * rng.below(8) as u32;
    let mut elements = Vec::with_capacity(n);
    for &i in &order[..n] {
        let (role, label, _) = specs[i];
        let h = *rng.pick(&[40u32, 48, 56, 64]);
        let margin = *rng.pick(&[0u32, 8, 16, 24]);
        elements.push(Element {
            role,
            label,
            bounds: [margin, y, WIDTH - margin, y + h],
        });
        y += h + *rng.pick(&[8u32, 16, 24, 32]);
    }
    debug_assert!(y < HEIGHT);
    let target = rng.below(n);
    let asks = specs[order[target]].2;
    Screen {
        app,
        elements,
        instruction: rng.pick(asks).to_string(),
        target,
    }
}

impl Screen {
    /// The user message: the element list, then the task.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} screen, {WIDTH}x{HEIGHT}. Boxes are (left,top,right,bottom).\n",
            self.app
        );
        for e in &self.elements {
            let [l, t, r, b] = e.bounds;
            s.push_str(&format!("{} ({}): ({l},{t},{r},{b})\n", e.label, e.role));
        }
        s.push_str(&format!("Task: {}. Where do you tap?", self.instruction));
        s
    }

    /// One dataset row: a chat prompt whose assistant turn is started with "click(" (continued,
    /// as TRL does), and the target box for the `point_in_box` rule.
    pub fn row(&self) -> Value {
        json!({
            "prompt": [
                {"role": "user", "content": self.describe()},
                {"role": "assistant", "content": "click("},
            ],
            "target_box": self.elements[self.target].bounds,
            "app": self.app,
        })
    }

    /// The right answer after the prompt's "click(": the centre of the target's box, `x,y)`
    /// (no space: SmolLM2 writes each digit as a token, so two 3-digit numbers, the comma and
    /// the ")" are exactly the demo's 8-token `max_completion_length`).
    pub fn answer(&self) -> String {
        let [l, t, r, b] = self.elements[self.target].bounds;
        format!("{},{})", (l + r) / 2, (t + b) / 2)
    }

    /// One SFT row (TRL's conversational prompt/completion): the user turn of [`Screen::row`]
    /// and the assistant turn "click(x,y)" with the target's centre. Rendered by the chat
    /// template, the completion starts exactly where the GRPO prompt (whose assistant turn is
    /// started with "click(" and continued) leaves off, so the model learns the same tokens in
    /// the same context; `target_box` rides along for scoring.
    pub fn sft_row(&self) -> Value {
        json!({
            "prompt": [{"role": "user", "content": self.describe()}],
            "completion": [{"role": "assistant", "content": format!("click({}", self.answer())}],
            "target_box": self.elements[self.target].bounds,
            "app": self.app,
        })
    }
}

/// `n` screens as JSON lines (a prompts dataset).
pub fn dataset(seed: u64, n: usize, elements: usize) -> String {
    lines(seed, n, elements, Screen::row)
}

/// `n` screens with their answers as JSON lines (an SFT dataset, see [`Screen::sft_row`]).
pub fn sft_dataset(seed: u64, n: usize, elements: usize) -> String {
    lines(seed, n, elements, Screen::sft_row)
}

fn lines(seed: u64, n: usize, elements: usize, row: fn(&Screen) -> Value) -> String {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| row(&screen(&mut rng, elements)).to_string() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens_are_well_formed() {
        let mut rng = Rng::new(7);
        for _ in 0..500 {
            let s = screen(&mut rng, 3);
            assert_eq!(s.elements.len(), 3);
            let labels: std::collections::HashSet<_> = s.elements.iter().map(|e| e.label).collect();
            assert_eq!(labels.len(), 3, "labels are distinct");
            for w in s.elements.windows(2) {
                assert!(w[0].bounds[3] < w[1].bounds[1], "rows don't overlap: {s:?}");
            }
            for e in &s.elements {
                let [l, t, r, b] = e.bounds;
                assert!(l < r && t < b && r <= WIDTH && b < HEIGHT, "{e:?}");
            }
            // The instruction asks for the target by one of its phrasings.
            let (_, specs) = APPS.iter().find(|(a, _)| *a == s.app).unwrap();
            let spec = specs
                .iter()
                .find(|sp| sp.1 == s.elements[s.target].label)
                .unwrap();
            assert!(spec.2.contains(&s.instruction.as_str()));
        }
    }

    #[test]
    fn seeded_and_varied() {
        assert_eq!(dataset(3, 20, 3), dataset(3, 20, 3));
        assert_ne!(dataset(3, 20, 3), dataset(4, 20, 3));
        let mut rng = Rng::new(1);
        let apps: std::collections::HashSet<_> =
            (0..200).map(|_| screen(&mut rng, 4).app).collect();
        assert_eq!(apps.len(), APPS.len(), "every app template shows up");
        let mut rng = Rng::new(2);
        let targets: std::collections::HashSet<_> =
            (0..200).map(|_| screen(&mut rng, 4).target).collect();
        assert_eq!(targets.len(), 4, "the target is at every position");
    }

    #[test]
    fn sft_rows_answer_with_the_targets_centre() {
        let text = sft_dataset(9, 50, 4);
        let mut rng = Rng::new(9);
        for line in text.lines() {
            let s = screen(&mut rng, 4);
            let r: Value = serde_json::from_str(line).unwrap();
            assert_eq!(r["prompt"][0]["content"], s.describe());
            assert_eq!(r["prompt"].as_array().unwrap().len(), 1);
            let c = r["completion"][0]["content"].as_str().unwrap();
            assert_eq!(r["completion"][0]["role"], "assistant");
            let (x, y) = c
                .strip_prefix("click(")
                .and_then(|a| a.strip_suffix(')'))
                .and_then(|a| a.split_once(','))
                .unwrap();
            let (x, y): (u32, u32) = (x.parse().unwrap(), y.parse().unwrap());
            let [l, t, rr, b] = s.elements[s.target].bounds;
            assert!(
                l <= x && x <= rr && t <= y && y <= b,
                "{c} in {:?}",
                [l, t, rr, b]
            );
            assert_eq!(r["target_box"], json!([l, t, rr, b]));
        }
    }

    #[test]
    fn row_has_continued_prompt_and_box() {
        let s = screen(&mut Rng::new(5), 3);
        let r = s.row();
        assert_eq!(r["prompt"][1]["content"], "click(");
        let b = &r["target_box"];
        assert_eq!(b.as_array().unwrap().len(), 4);
        assert!(
            r["prompt"][0]["content"]
                .as_str()
                .unwrap()
                .contains(s.elements[s.target].label)
        );
    }
}
