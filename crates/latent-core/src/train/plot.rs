//! The loss curve of a run as a PNG (`loss.png` next to `metrics.jsonl`): one line per series,
//! drawn with plotters' bitmap backend. No text is rendered (no font files needed); the values are
//! in `metrics.jsonl` and `training_stats.json`.

use std::path::Path;

use plotters::prelude::*;

use crate::{CoreError, Result};

/// Series colours, in order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Draws each series (`(step, value)` points) into a `width × height` PNG at `path`.
pub fn plot_curves(path: &Path, series: &[Vec<(f64, f64)>], width: u32, height: u32) -> Result<()> {
    let fail = |e: String| CoreError::io(path, std::io::Error::other(e));
    let points = series
        .iter()
        .flatten()
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return Err(fail("nothing to plot".into()));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let (x1, y0, y1) = (x1.max(x0 + 1.0), y0 - pad, y1 + pad);
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .plotting_area()
        .draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.stroke_width(1)))
        .map_err(|e| fail(e.to_string()))?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                s.iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite()),
                colour.stroke_width(2),
            ))
            .map_err(|e| fail(e.to_string()))?;
    }
    root.present().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let path =
            std::env::temp_dir().join(format!("latent-core-plot-{}.png", std::process::id()));
        let loss: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, 3.0 / (1.0 + i as f64 * 0.2)))
            .collect();
        let valid: Vec<(f64, f64)> = (0..5)
            .map(|i| (i as f64 * 10.0, 2.0 / (1.0 + i as f64)))
            .collect();
        plot_curves(&path, &[loss, valid], 320, 200).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(plot_curves(&path, &[vec![]], 10, 10).is_err());
        std::fs::remove_file(path).ok();
    }
}
