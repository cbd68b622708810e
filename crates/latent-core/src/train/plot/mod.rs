//! Figures of runs as PNG files (`loss.png` next to `metrics.jsonl`, reward and accuracy curves of
//! the method crates). A [`Plot`] describes the figure — title, axis labels, named [`Series`], y
//! scale — and [`Plot::save`] draws it with plotters' bitmap backend: a framed plotting area with
//! ticks and tick labels on both axes, the axis labels, the title above, and a legend naming each
//! series in the corner the curves leave free. Text is set in DejaVu Sans, embedded in the binary
//! (no system font is looked up). Noisy series ([`Style::Smoothed`]) are drawn faint, with their
//! exponential moving average over them; [`YScale::Auto`] switches to a log axis when a positive
//! curve spans more than a decade.

mod font;
pub mod scale;
pub mod smooth;

use std::ops::Range;
use std::path::Path;

use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

pub use scale::YScale;

use crate::{CoreError, Result};

/// Series colours, in order (the "tab10" palette; none is dark enough to pass for text).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A line through the points.
    Line,
    /// The raw points as a faint line, and their exponential moving average (span
    /// [`smooth::span`]) as a line over it; the legend names both.
    Smoothed,
    /// A dot at each point.
    Markers,
    /// A line through the points with a dot at each.
    LineMarkers,
}

/// One named curve of a [`Plot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(x, y)` points in drawing order; non-finite points are left out.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub style: Style,
}

impl Series {
    /// A series drawn in `style`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Self {
            name: name.into(),
            points,
            style,
        }
    }
}

/// A figure: what is plotted, against what, in which units, and how large.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// The title above the plotting area (name the run and what is plotted).
    pub title: String,
    /// The x axis label, with its unit (`optimizer update`).
    pub x_label: String,
    /// The y axis label, with its unit (`loss (nats)`).
    pub y_label: String,
    /// The curves, coloured in order.
    pub series: Vec<Series>,
    /// The y axis scale.
    pub y_scale: YScale,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

/// The pixel rectangle of the plotting area inside the image (for tests and annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotArea {
    /// Columns.
    pub x: Range<i32>,
    /// Rows.
    pub y: Range<i32>,
}

impl Plot {
    /// An 800 × 480 figure with a linear y axis and no series yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            y_scale: YScale::Linear,
            size: (800, 480),
        }
    }

    /// Adds a series.
    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Sets the y scale.
    pub fn y_scale(mut self, scale: YScale) -> Self {
        self.y_scale = scale;
        self
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Draws the figure into a PNG at `path`; fails when no series has a finite point.
    pub fn save(&self, path: &Path) -> Result<()> {
        let fail = |message: String| CoreError::Plot {
            path: path.to_path_buf(),
            message,
        };
        let root = BitMapBackend::new(path, self.size).into_drawing_area();
        self.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))
    }

    /// Draws the figure on `root`, returning where the plotting area is.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<PlotArea, String> {
        font::register()?;
        let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let all = || self.series.iter().flat_map(|s| s.points.iter().copied());
        let log = self.y_scale.is_log(all().filter(finite).map(|(_, y)| y));
        let keep = move |p: &(f64, f64)| finite(p) && (!log || p.1 > 0.0);
        let markers = self
            .series
            .iter()
            .any(|s| matches!(s.style, Style::Markers | Style::LineMarkers));
        let (x, y) = scale::bounds(all().filter(keep), log, markers).ok_or("nothing to plot")?;
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, (font::FAMILY, 22))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(84);
        if log {
            let ticks = scale::log_ticks(&y);
            let chart = builder
                .build_cartesian_2d(x, y.log_scale().with_key_points(ticks))
                .map_err(|e| e.to_string())?;
            self.fill(chart, keep)
        } else {
            let chart = builder
                .build_cartesian_2d(x, y)
                .map_err(|e| e.to_string())?;
            self.fill(chart, keep)
        }
    }

    /// Draws the mesh, frame, series and legend on a chart whose axes are set up.
    fn fill<'a, DB, Y>(
        &self,
        mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        keep: impl Fn(&(f64, f64)) -> bool,
    ) -> std::result::Result<PlotArea, String>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| scale::tick_label(*v))
            .y_label_formatter(&|v| scale::tick_label(*v))
            .label_style((font::FAMILY, 14))
            .axis_desc_style((font::FAMILY, 16))
            .bold_line_style(RGBColor(228, 228, 228))
            .light_line_style(WHITE)
            .axis_style(BLACK)
            .draw()
            .map_err(text)?;
        let (xs, ys) = (chart.x_range(), chart.y_range());
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(xs.start, ys.start), (xs.end, ys.end)],
                BLACK.stroke_width(1),
            )))
            .map_err(text)?;
        let area = chart.plotting_area().get_pixel_range();
        let area = PlotArea {
            x: area.0,
            y: area.1,
        };
        let kept: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().copied().filter(&keep).collect())
            .collect();
        // Faint raw curves first, so every line and marker is drawn over them.
        for (i, (s, points)) in self.series.iter().zip(&kept).enumerate() {
            if s.style == Style::Smoothed {
                let faint = faint(PALETTE[i % PALETTE.len()]);
                chart
                    .draw_series(LineSeries::new(points.clone(), faint.stroke_width(1)))
                    .map_err(text)?
                    .label(format!("{} (raw)", s.name))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], faint.stroke_width(2))
                    });
            }
        }
        for (i, (s, points)) in self.series.iter().zip(&kept).enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let line = colour.stroke_width(2);
            let dot = colour.filled();
            match s.style {
                Style::Line => {
                    chart
                        .draw_series(LineSeries::new(points.clone(), line))
                        .map_err(text)?
                        .label(&s.name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
                }
                Style::Smoothed => {
                    let span = smooth::span(points.len());
                    chart
                        .draw_series(LineSeries::new(smooth::ema(points, span), line))
                        .map_err(text)?
                        .label(format!("{} (EMA, span {span})", s.name))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
                }
                Style::Markers => {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 4, dot)))
                        .map_err(text)?
                        .label(&s.name)
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, dot));
                }
                Style::LineMarkers => {
                    chart
                        .draw_series(LineSeries::new(points.clone(), line))
                        .map_err(text)?;
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 4, dot)))
                        .map_err(text)?
                        .label(&s.name)
                        .legend(move |(x, y)| {
                            EmptyElement::at((x, y))
                                + PathElement::new(vec![(0, 0), (20, 0)], line)
                                + Circle::new((10, 0), 4, dot)
                        });
                }
            }
        }
        let (w, h) = (
            f64::from((area.x.end - area.x.start).max(1)),
            f64::from((area.y.end - area.y.start).max(1)),
        );
        let fractions: Vec<(f64, f64)> = kept
            .iter()
            .flatten()
            .map(|p| {
                let (px, py) = chart.backend_coord(p);
                (
                    f64::from(px - area.x.start) / w,
                    f64::from(area.y.end - py) / h,
                )
            })
            .collect();
        let position = match scale::emptiest_corner(fractions.into_iter()) {
            scale::Corner::UpperRight => SeriesLabelPosition::UpperRight,
            scale::Corner::LowerRight => SeriesLabelPosition::LowerRight,
            scale::Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            scale::Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        };
        chart
            .configure_series_labels()
            .position(position)
            .margin(10)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .label_font((font::FAMILY, 14))
            .draw()
            .map_err(text)?;
        Ok(area)
    }
}

/// `colour` blended two thirds of the way to white (the raw curve under a smoothed one).
fn faint(colour: RGBColor) -> RGBColor {
    let blend = |c: u8| 255 - ((255 - u16::from(c)) / 3) as u8;
    RGBColor(blend(colour.0), blend(colour.1), blend(colour.2))
}

#[cfg(test)]
mod tests;
