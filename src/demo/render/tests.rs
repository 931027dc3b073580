use super::*;
use crate::demo::screens::{Rng, screen};

fn screens(seed: u64, n: usize) -> Vec<Screen> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| screen(&mut rng, 2 + i % 5)).collect()
}

#[test]
fn outlines_sit_on_the_target_boxes() {
    for s in screens(11, 40) {
        let p = render(&s);
        assert_eq!((p.width, p.height), (WIDTH, HEIGHT));
        for e in &s.elements {
            let [l, t, r, b] = e.bounds;
            let mid = (t + b) / 2;
            for (x, y) in [(l, t), (l, b), (l, mid), ((l + r.min(WIDTH - 1)) / 2, t)] {
                assert_eq!(p.pixel(x, y), OUTLINE, "{e:?} at ({x},{y})");
            }
            // Just outside the box: the background (rows are apart, margins leave room).
            assert_eq!(p.pixel(l + 4, t - 1), BACKGROUND, "{e:?} above");
            assert_eq!(p.pixel(l + 4, b + 1), BACKGROUND, "{e:?} below");
            if l > 0 {
                assert_eq!(p.pixel(l - 1, mid), BACKGROUND, "{e:?} left");
            }
            if r < WIDTH - 1 {
                assert_eq!(p.pixel(r, mid), OUTLINE, "{e:?} right edge");
                assert_eq!(p.pixel(r + 1, mid), BACKGROUND, "{e:?} right");
            }
        }
        // Below the app bar, rows outside every element are background only.
        for y in 52..HEIGHT {
            if s.elements.iter().any(|e| e.bounds[1] <= y && y <= e.bounds[3]) {
                continue;
            }
            for x in 0..WIDTH {
                assert_eq!(p.pixel(x, y), BACKGROUND, "({x},{y}) on {s:?}");
            }
        }
    }
}

/// Set pixels of a label in the font, each glyph pixel drawn as SCALE×SCALE.
fn ink(label: &str) -> usize {
    let bits: u32 = label
        .chars()
        .map(|c| font8x8::BASIC_FONTS.get(c).unwrap().iter().map(|r| r.count_ones()).sum::<u32>())
        .sum();
    (bits * SCALE * SCALE) as usize
}

#[test]
fn button_labels_are_drawn_in_the_font() {
    let mut seen = 0;
    for s in screens(5, 60) {
        let p = render(&s);
        for e in s.elements.iter().filter(|e| e.role == "button") {
            let [l, t, r, b] = e.bounds;
            let white = (t..=b)
                .flat_map(|y| (l..=r.min(WIDTH - 1)).map(move |x| (x, y)))
                .filter(|&(x, y)| p.pixel(x, y) == WHITE)
                .count();
            assert!(ink(e.label) > 0);
            assert_eq!(white, ink(e.label), "{:?} on a blue button", e.label);
            seen += 1;
        }
    }
    assert!(seen > 20, "buttons seen: {seen}");
}

#[test]
fn every_role_and_label_leaves_a_mark() {
    // Two screens that differ only in one element's label render differently inside it.
    for s in screens(3, 30) {
        let p = render(&s);
        for (k, e) in s.elements.iter().enumerate() {
            let mut other = s.clone();
            other.elements[k].label = if e.label == "Zz" { "Yy" } else { "Zz" };
            let q = render(&other);
            let [l, t, r, b] = e.bounds;
            let differs = (t..=b).any(|y| (l..=r.min(WIDTH - 1)).any(|x| p.pixel(x, y) != q.pixel(x, y)));
            assert!(differs, "{}'s label is not visible", e.role);
            // ... and nowhere else.
            for y in (0..t).chain(b + 1..HEIGHT) {
                for x in (0..WIDTH).step_by(7) {
                    assert_eq!(p.pixel(x, y), q.pixel(x, y));
                }
            }
        }
    }
}

#[test]
fn seeded_and_varied() {
    let a: Vec<_> = screens(8, 6).iter().map(render).collect();
    let b: Vec<_> = screens(8, 6).iter().map(render).collect();
    let c: Vec<_> = screens(9, 6).iter().map(render).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn png_decodes_to_the_same_pixels() {
    let p = render(&screens(2, 1)[0]);
    let bytes = p.png();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(&buf[..info.buffer_size()], &p.rgb[..]);
}

#[test]
fn screenshot_rows_are_the_text_rows_drawn() {
    let dir = std::env::temp_dir().join(format!("edgerl-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let text = write_screenshots(&dir, "train", 21, 6, 4, vision_row).unwrap();
    let described = crate::demo::screens::dataset(21, 6, 4);
    let mut rng = Rng::new(21);
    for (k, (line, text_line)) in text.lines().zip(described.lines()).enumerate() {
        let (row, text_row): (Value, Value) =
            (serde_json::from_str(line).unwrap(), serde_json::from_str(text_line).unwrap());
        assert_eq!(row["target_box"], text_row["target_box"]);
        assert_eq!(row["app"], text_row["app"]);
        let image = format!("images/train-{k:05}.png");
        assert_eq!(row["images"], json!([image]));
        assert_eq!(row["prompt"][0]["content"][0], json!({"type": "image"}));
        assert_eq!(row["prompt"][1], json!({"role": "assistant", "content": "click("}));
        assert_eq!((row["image_width"].as_u64(), row["image_height"].as_u64()), (Some(360), Some(640)));
        // The file holds exactly this screen's picture.
        let s = screen(&mut rng, 4);
        assert!(row["prompt"][0]["content"][1]["text"].as_str().unwrap().contains(&s.instruction));
        assert_eq!(std::fs::read(dir.join(&image)).unwrap(), render(&s).png());
    }
    assert_eq!(text.lines().count(), 6);
    let sft = write_screenshots(&dir, "sft", 21, 2, 4, vision_sft_row).unwrap();
    let first: Value = serde_json::from_str(sft.lines().next().unwrap()).unwrap();
    let s = screen(&mut Rng::new(21), 4);
    assert_eq!(first["completion"][0]["content"], format!("click({}", s.answer()));
    std::fs::remove_dir_all(&dir).unwrap();
}
