//! What a run leaves for people: metrics.csv (the metrics.jsonl lines as a table) and
//! reward.svg (the reward curve, per-rule means beside it), rewritten at every checkpoint.

use std::collections::BTreeSet;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};

fn read_lines(jsonl: &Path) -> Result<Vec<serde_json::Map<String, Value>>> {
    let text = std::fs::read_to_string(jsonl).map_err(|e| Error::file(jsonl, e))?;
    Ok(text
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect())
}

/// metrics.csv from metrics.jsonl: one column per metric ("step" first), one row per step.
pub fn write_csv(jsonl: &Path, csv: &Path) -> Result<()> {
    let rows = read_lines(jsonl)?;
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for r in &rows {
        keys.extend(r.keys().map(String::as_str));
    }
    keys.remove("step");
    let mut out = String::from("step");
    for k in &keys {
        out.push(',');
        out.push_str(k);
    }
    out.push('\n');
    for r in &rows {
        out.push_str(&r.get("step").map(|v| v.to_string()).unwrap_or_default());
        for k in &keys {
            out.push(',');
            if let Some(v) = r.get(*k).filter(|v| !v.is_null()) {
                out.push_str(&v.to_string());
            }
        }
        out.push('\n');
    }
    crate::io::write_atomic(csv, out.as_bytes())
}

/// reward.svg: `reward` per step, and each `rewards/<rule>/mean`.
pub fn plot_rewards(jsonl: &Path, svg: &Path) -> Result<()> {
    let rows = read_lines(jsonl)?;
    let series_names: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.keys())
        .filter(|k| *k == "reward" || (k.starts_with("rewards/") && k.ends_with("/mean")))
        .cloned()
        .collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = series_names
        .into_iter()
        .map(|name| {
            let pts = rows
                .iter()
                .filter_map(|r| Some((r.get("step")?.as_f64()?, r.get(&name)?.as_f64()?)))
                .filter(|(_, y)| y.is_finite())
                .collect();
            (name, pts)
        })
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let (x0, x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x0, x1) = if all.is_empty() { (0.0, 1.0) } else { (x0, x1.max(x0 + 1.0)) };
    let (y0, y1) = if all.is_empty() { (0.0, 1.0) } else { (y0.min(0.0), y1.max(y0 + 1e-6)) };
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (800, 480)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| Error::Invalid(format!("plotting rewards: {e}"));
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("reward per step", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1 + 0.05 * (y1 - y0))
            .map_err(|e| err(&e))?;
        chart.configure_mesh().x_desc("step").y_desc("reward").draw().map_err(|e| err(&e))?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let width = if name == "reward" { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(width)))
                .map_err(|e| err(&e))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(width)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    crate::io::write_atomic(svg, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_svg_from_metrics() {
        let dir = std::env::temp_dir().join(format!("edgerl-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jsonl = dir.join("metrics.jsonl");
        std::fs::write(
            &jsonl,
            "{\"step\":1,\"reward\":0.25,\"rewards/hit/mean\":0.5,\"loss\":0.0}\n{\"step\":2,\"reward\":0.75,\"rewards/hit/mean\":1.0,\"kl\":0.1}\n",
        )
        .unwrap();
        write_csv(&jsonl, &dir.join("metrics.csv")).unwrap();
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        assert_eq!(csv, "step,kl,loss,reward,rewards/hit/mean\n1,,0.0,0.25,0.5\n2,0.1,,0.75,1.0\n");
        plot_rewards(&jsonl, &dir.join("reward.svg")).unwrap();
        let svg = std::fs::read_to_string(dir.join("reward.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("rewards/hit/mean") && svg.contains("polyline"));
    }
}
