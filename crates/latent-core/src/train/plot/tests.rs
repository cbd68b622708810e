use super::*;

/// A falling, noisy loss and a sparse validation curve, as `loss.png` shows them.
fn loss_plot() -> Plot {
    let loss: Vec<(f64, f64)> = (0..200)
        .map(|i| {
            let noise = if i % 2 == 0 { 1.15 } else { 0.87 };
            (i as f64 + 1.0, 5.0 / (1.0 + i as f64 * 0.3) * noise)
        })
        .collect();
    let valid: Vec<(f64, f64)> = (1..=5)
        .map(|i| (i as f64 * 40.0, 3.0 / (1.0 + i as f64)))
        .collect();
    Plot::new("run test: training loss", "optimizer update", "loss (nats)")
        .with(Series::new("train loss", loss, Style::Smoothed))
        .with(Series::new("valid/loss", valid, Style::LineMarkers))
        .y_scale(YScale::Auto)
}

/// Renders into an RGB buffer.
fn render(plot: &Plot) -> (Vec<u8>, PlotArea) {
    let (w, h) = plot.size;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    let area = {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let area = plot.draw(&root).unwrap();
        root.present().unwrap();
        area
    };
    (buf, area)
}

/// Pixels in `cols × rows` dark enough to be text (every channel below 100: no series colour,
/// grid line or faint curve is that dark; the frame and tick marks are kept out of the regions).
fn dark(buf: &[u8], width: u32, cols: Range<i32>, rows: Range<i32>) -> usize {
    let mut n = 0;
    for y in rows {
        for x in cols.clone() {
            let i = 3 * (y as usize * width as usize + x as usize);
            n += usize::from(buf[i] < 100 && buf[i + 1] < 100 && buf[i + 2] < 100);
        }
    }
    n
}

#[test]
fn text_is_drawn_around_and_inside_the_plotting_area() {
    let plot = loss_plot();
    let (w, h) = plot.size;
    let (w_px, h_px) = (w as i32, h as i32);
    let (buf, area) = render(&plot);
    // The plotting area leaves room for the title above and the labels left of and below it.
    assert!(area.y.start > 40 && area.x.start > 60 && area.y.end < h_px - 40);
    let title = dark(&buf, w, 0..w_px, 0..area.y.start - 12);
    // The y axis label (rotated, at the far left) and the tick labels next to the axis.
    let y_label = dark(&buf, w, 0..25, area.y.clone());
    let y_ticks = dark(&buf, w, 25..area.x.start - 8, area.y.clone());
    // The tick labels under the axis and the x axis label under them.
    let x_ticks = dark(&buf, w, area.x.clone(), area.y.end + 8..area.y.end + 28);
    let x_label = dark(&buf, w, area.x.clone(), area.y.end + 28..h_px);
    // The legend inside the frame.
    let legend = dark(
        &buf,
        w,
        area.x.start + 3..area.x.end - 3,
        area.y.start + 3..area.y.end - 3,
    );
    for (region, n) in [
        ("title", title),
        ("y axis label", y_label),
        ("y tick labels", y_ticks),
        ("x tick labels", x_ticks),
        ("x axis label", x_label),
        ("legend", legend),
    ] {
        assert!(n > 40, "{region}: {n} text pixels");
    }
}

#[test]
fn writes_a_png_and_refuses_an_empty_plot() {
    let path = std::env::temp_dir().join(format!("latent-core-plot-{}.png", std::process::id()));
    loss_plot().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    std::fs::remove_file(&path).ok();
    let empty = Plot::new("empty", "x", "y").with(Series::new("none", vec![], Style::Line));
    assert!(matches!(empty.save(&path), Err(CoreError::Plot { .. })));
}
