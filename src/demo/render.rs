//! The demo's screens as pictures, for vision-language models (issue 19's "screens as
//! pictures"): each [`Screen`] drawn as a 360×640 RGB screenshot — status bar, app bar, and every
//! element at its pixel bounds in a style that shows its role (a filled button, a switch with
//! its toggle, a chat row with an avatar, a text field, a checkbox, a link, an icon) with its
//! label in a bundled 8×8 bitmap font (font8x8, public-domain glyphs) drawn at twice its size.
//! The target boxes in the rows are these pixel bounds, so `point_in_box` scores taps on the
//! picture exactly as on the text description.

use std::path::Path;

use font8x8::UnicodeFonts;
use serde_json::{Value, json};

use super::screens::{Element, HEIGHT, Rng, Screen, WIDTH, screen};
use crate::error::{Error, Result};

type Rgb = [u8; 3];

pub const BACKGROUND: Rgb = [245, 245, 245];
/// Every element's outline, one pixel on its (inclusive) bounds.
pub const OUTLINE: Rgb = [112, 112, 112];
const STATUS_BAR: Rgb = [32, 32, 32];
const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [33, 33, 33];
const MUTED: Rgb = [150, 150, 150];
const BLUE: Rgb = [26, 115, 232];
/// Glyphs are 8×8, drawn at this scale.
const SCALE: u32 = 2;
const GLYPH: u32 = 8 * SCALE;

/// An RGB image, rows top to bottom, 3 bytes a pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Picture {
    fn new(width: u32, height: u32, fill: Rgb) -> Picture {
        let rgb = fill.repeat((width * height) as usize);
        Picture { width, height, rgb }
    }

    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        let i = 3 * (y * self.width + x) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Fills the inclusive rectangle, clipped to the picture (a box's right edge may be the
    /// screen width itself).
    fn fill(&mut self, [l, t, r, b]: [u32; 4], c: Rgb) {
        let (r, b) = (r.min(self.width - 1), b.min(self.height - 1));
        for y in t..=b {
            for x in l..=r {
                let i = 3 * (y * self.width + x) as usize;
                self.rgb[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    fn outline(&mut self, [l, t, r, b]: [u32; 4], c: Rgb) {
        self.fill([l, t, r, t], c);
        self.fill([l, b, r, b], c);
        self.fill([l, t, l, b], c);
        self.fill([r, t, r, b], c);
    }

    /// A filled circle of radius `rad` around (cx, cy).
    fn disc(&mut self, cx: u32, cy: u32, rad: u32, c: Rgb) {
        for y in cy.saturating_sub(rad)..=(cy + rad).min(self.height - 1) {
            for x in cx.saturating_sub(rad)..=(cx + rad).min(self.width - 1) {
                let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
                if dx * dx + dy * dy <= (rad * rad) as i64 {
                    let i = 3 * (y * self.width + x) as usize;
                    self.rgb[i..i + 3].copy_from_slice(&c);
                }
            }
        }
    }

    /// Text from (x, y), one glyph cell per char, stopping at `right` (exclusive); chars
    /// outside the font draw as blanks.
    fn text(&mut self, x: u32, y: u32, right: u32, s: &str, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let x0 = x + k as u32 * GLYPH;
            if x0 + GLYPH > right.min(self.width) || y + GLYPH > self.height {
                break;
            }
            let rows = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
            for (gy, bits) in rows.iter().enumerate() {
                for gx in 0..8 {
                    // Bit 0 is the leftmost pixel of the glyph's row.
                    if bits >> gx & 1 == 1 {
                        let (px, py) = (x0 + gx * SCALE, y + gy as u32 * SCALE);
                        self.fill([px, py, px + SCALE - 1, py + SCALE - 1], c);
                    }
                }
            }
        }
    }

    /// PNG bytes (8-bit RGB).
    pub fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Writing into a Vec with a consistent header and data length cannot fail.
        let mut w = enc.write_header().expect("PNG header into memory");
        w.write_image_data(&self.rgb).expect("PNG data into memory");
        w.finish().expect("PNG end into memory");
        out
    }
}

/// Width in pixels of `s` in the bundled font.
fn text_width(s: &str) -> u32 {
    s.chars().count() as u32 * GLYPH
}

/// The app bar's colour, one per app so screens of different apps look different.
fn app_colour(app: &str) -> Rgb {
    match app {
        "Settings" => [84, 110, 122],
        "Messages" => [0, 137, 123],
        "Shop" => [230, 81, 0],
        _ => [94, 53, 177],
    }
}

/// Draws a screen: 360×640, the elements at their bounds.
pub fn render(screen: &Screen) -> Picture {
    let mut p = Picture::new(WIDTH, HEIGHT, BACKGROUND);
    p.fill([0, 0, WIDTH - 1, 23], STATUS_BAR);
    p.text(8, 4, WIDTH, "12:00", WHITE);
    p.fill([0, 24, WIDTH - 1, 51], app_colour(screen.app));
    p.text(12, 30, WIDTH, screen.app, WHITE);
    for e in &screen.elements {
        element(&mut p, e);
    }
    p
}

fn element(p: &mut Picture, e: &Element) {
    let [l, t, r, b] = e.bounds;
    let r_in = r.min(p.width - 1);
    let mid = (t + b) / 2;
    let text_y = mid - GLYPH / 2;
    let fill = if e.role == "button" { BLUE } else { WHITE };
    p.fill([l, t, r, b], fill);
    match e.role {
        "button" => {
            let w = text_width(e.label);
            let x = (l + r_in + 1).saturating_sub(w) / 2;
            p.text(x.max(l + 4), text_y, r_in, e.label, WHITE);
        }
        "switch" => {
            // The toggle, off: a grey pill with its knob on the left.
            let (pr, pl) = (r_in - 12, r_in - 52);
            p.fill([pl + 8, mid - 8, pr - 8, mid + 8], MUTED);
            p.disc(pl + 8, mid, 8, MUTED);
            p.disc(pr - 8, mid, 8, MUTED);
            p.disc(pl + 8, mid, 6, WHITE);
            p.text(l + 12, text_y, pl - 4, e.label, INK);
        }
        "chat" => {
            let rad = (b - t) / 2 - 6;
            let cx = l + 12 + rad;
            p.disc(cx, mid, rad, app_colour("Messages"));
            let initial: String = e.label.chars().take(1).collect();
            p.text(cx - GLYPH / 2 + 1, text_y, r_in, &initial, WHITE);
            p.text(cx + rad + 12, text_y, r_in, e.label, INK);
        }
        "field" => {
            // A label, then an empty input line.
            p.text(l + 12, text_y, r_in, e.label, MUTED);
            p.fill([l + 12, b - 8, r_in - 12, b - 7], MUTED);
        }
        "checkbox" => {
            let s = 16;
            p.outline([l + 12, mid - s / 2, l + 12 + s, mid + s / 2], INK);
            p.text(l + 40, text_y, r_in, e.label, INK);
        }
        "link" => {
            p.text(l + 12, text_y, r_in, e.label, BLUE);
            let w = text_width(e.label).min(r_in.saturating_sub(l + 24));
            p.fill([l + 12, text_y + GLYPH + 1, l + 12 + w, text_y + GLYPH + 1], BLUE);
        }
        _ => {
            // An icon: a round badge with the label's initial, and the label beside it.
            let rad = (b - t) / 2 - 8;
            let cx = l + 12 + rad;
            p.disc(cx, mid, rad, INK);
            let initial: String = e.label.chars().take(1).collect();
            p.text(cx - GLYPH / 2 + 1, text_y, r_in, &initial, WHITE);
            p.text(cx + rad + 12, text_y, r_in, e.label, INK);
        }
    }
    p.outline([l, t, r, b], OUTLINE);
}

/// The user turn of a screenshot row, TRL's vision-dataset form: the image part, then the task.
fn vision_user_turn(s: &Screen) -> Value {
    json!({"role": "user", "content": [
        {"type": "image"},
        {"type": "text", "text": format!(
            "{} screen, {WIDTH}x{HEIGHT} pixels. Task: {}. Where do you tap?", s.app, s.instruction)},
    ]})
}

/// A GRPO row on the screenshot `image` (a path relative to the dataset file): the prompt's
/// assistant turn is started with "click(" as in [`Screen::row`], `target_box` is in the
/// screenshot's pixels, and `image_width`/`image_height` give its size (GUI-G1's
/// `normalize = "image"`).
pub fn vision_row(s: &Screen, image: &str) -> Value {
    json!({
        "images": [image],
        "prompt": [vision_user_turn(s), {"role": "assistant", "content": "click("}],
        "target_box": s.elements[s.target].bounds,
        "image_width": WIDTH,
        "image_height": HEIGHT,
        "app": s.app,
    })
}

/// An SFT row on the screenshot (conversational prompt/completion, as [`Screen::sft_row`]).
pub fn vision_sft_row(s: &Screen, image: &str) -> Value {
    json!({
        "images": [image],
        "prompt": [vision_user_turn(s)],
        "completion": [{"role": "assistant", "content": format!("click({}", s.answer())}],
        "target_box": s.elements[s.target].bounds,
        "image_width": WIDTH,
        "image_height": HEIGHT,
        "app": s.app,
    })
}

/// The screens `screens::dataset(seed, n, elements)` describes in text, drawn: each as
/// `dir/images/{name}-NNNNN.png` (written whole, then renamed), returned as JSON lines of
/// `row(screen, "images/{name}-NNNNN.png")` for `dir/{name}.jsonl`.
pub fn write_screenshots(
    dir: &Path,
    name: &str,
    seed: u64,
    n: usize,
    elements: usize,
    row: fn(&Screen, &str) -> Value,
) -> Result<String> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).map_err(|e| Error::file(&images, format!("cannot create: {e}")))?;
    let mut rng = Rng::new(seed);
    let mut lines = String::new();
    for i in 0..n {
        let s = screen(&mut rng, elements);
        let file = format!("{name}-{i:05}.png");
        crate::io::write_atomic(&images.join(&file), &render(&s).png())?;
        lines += &(row(&s, &format!("images/{file}")).to_string() + "\n");
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;
