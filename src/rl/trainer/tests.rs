use super::*;

fn item(targets: Vec<u32>, truncated: bool, active: bool) -> Item {
    Item { group: 0, targets, advantage: 1.0, weight: 1.0, active, truncated, lp_old: None, lp_ref: None, loss_mask: None }
}

/// Toy decoder: id n is the letter 'a' + n.
fn letters(ids: &[u32]) -> Result<String> {
    Ok(ids.iter().map(|&i| char::from(b'a' + i as u8)).collect())
}

fn items(cfg: &TrainConfig) -> Vec<Item> {
    // Completions: "ab" + EOS-like (not truncated), "xyz" (ends by completing "yz"),
    // "yzq" (stop completed earlier: truncated), "qqqq" (truncated).
    let items = vec![
        item(vec![0, 1], false, true),
        item(vec![23, 24, 25], true, !cfg.mask_truncated_completions),
        item(vec![24, 25, 16], true, !cfg.mask_truncated_completions),
        item(vec![16, 16, 16, 16], true, !cfg.mask_truncated_completions),
    ];
    items
}

fn cfg(extra: &str) -> TrainConfig {
    TrainConfig::from_toml(&format!("model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r\"\nmax_completion_length = 8\n{extra}")).unwrap()
}

#[test]
fn a_stop_string_ending_is_finished_not_truncated() {
    let c = cfg("mask_truncated_completions = true\nloss_type = \"dapo\"\nstop = [\"yz\"]");
    let mut b = items(&c);
    let (norms, total) = settle(&c, Some(&letters), &mut b);
    let flags: Vec<(bool, bool)> = b.iter().map(|it| (it.truncated, it.active)).collect();
    assert_eq!(flags, [(false, true), (false, true), (true, false), (true, false)]);
    // clipped_ratio counts `truncated`: 2 of 4; the loss covers 2 + 3 tokens.
    assert_eq!(total, 5);
    assert_eq!(norms, vec![5.0; 4]);
    // Without stop strings (or a tokenizer) the trainer's verdict stands.
    for (c, decode) in [
        (cfg("mask_truncated_completions = true"), Some(&letters as Decode)),
        (cfg("mask_truncated_completions = true\nstop = [\"yz\"]"), None),
    ] {
        let mut b = items(&c);
        let (_, total) = settle(&c, decode, &mut b);
        assert_eq!(b.iter().filter(|it| it.truncated).count(), 3);
        assert_eq!(total, 2);
    }
}

#[test]
fn batches_use_the_dr_grpo_divisor() {
    let c = cfg("loss_type = \"dr_grpo\"\nloss_divisor = 64.0");
    let mut b = items(&c);
    assert_eq!(settle(&c, None, &mut b).0, vec![4.0 * 64.0; 4]);
    let c = cfg("loss_type = \"dr_grpo\"");
    let mut b = items(&c);
    assert_eq!(settle(&c, None, &mut b).0, vec![4.0 * 8.0; 4]);
}
