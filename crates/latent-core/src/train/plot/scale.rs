//! Axis ranges and ticks: the y scale (linear, or logarithmic when a positive curve spans more
//! than a decade), tick positions on a log axis, tick labels, and the emptiest corner for the
//! legend.

use std::ops::Range;

/// How the y axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YScale {
    /// Linear.
    #[default]
    Linear,
    /// Logarithmic (points with `y ≤ 0` are left out).
    Log,
    /// Logarithmic when every y is positive and the largest is more than 10× the smallest (a loss
    /// spanning more than a decade), linear otherwise.
    Auto,
}

impl YScale {
    /// Whether the axis is logarithmic for these (finite) y values.
    pub fn is_log(self, ys: impl Iterator<Item = f64>) -> bool {
        match self {
            Self::Linear => false,
            Self::Log => true,
            Self::Auto => {
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for y in ys {
                    (lo, hi) = (lo.min(y), hi.max(y));
                }
                lo > 0.0 && hi > 10.0 * lo
            }
        }
    }
}

/// The x and y ranges of the axes: the data's extent, the y range widened a little so no point
/// sits on the frame, and the x range too when `pad_x` (markers, which the frame would cut in
/// half); `None` when there is no point.
pub fn bounds(
    points: impl Iterator<Item = (f64, f64)>,
    log: bool,
    pad_x: bool,
) -> Option<(Range<f64>, Range<f64>)> {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return None;
    }
    let x = if x1 == x0 {
        x0 - 0.5..x1 + 0.5
    } else if pad_x {
        let pad = (x1 - x0) * 0.03;
        x0 - pad..x1 + pad
    } else {
        x0..x1
    };
    let y = if log {
        y0 / 1.15..y1 * 1.15
    } else {
        let pad = if y1 > y0 {
            (y1 - y0) * 0.05
        } else {
            (y0.abs() * 0.05).max(0.5)
        };
        y0 - pad..y1 + pad
    };
    Some((x, y))
}

/// Tick positions on a log axis over `y`: 1, 2 and 5 times each power of ten inside it; every
/// integer multiple when that gives fewer than three ticks, only the powers of ten when it gives
/// more than twelve.
pub fn log_ticks(y: &Range<f64>) -> Vec<f64> {
    let ticks = |multiples: &[f64]| -> Vec<f64> {
        let (first, last) = (y.start.log10().floor() as i32, y.end.log10().ceil() as i32);
        (first..=last)
            .flat_map(|k| multiples.iter().map(move |m| m * 10f64.powi(k)))
            .filter(|v| y.contains(v))
            .collect()
    };
    let standard = ticks(&[1.0, 2.0, 5.0]);
    if standard.len() < 3 {
        ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    } else if standard.len() > 12 {
        ticks(&[1.0])
    } else {
        standard
    }
}

/// A tick label with at most three significant digits and no trailing zeros (`0.05`, `1500`,
/// `2.5`), in exponent notation (`1e-4`, `2.5e6`) outside `[0.001, 100000)`.
pub fn tick_label(v: f64) -> String {
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').expect("exponent notation");
        return format!("{}e{exponent}", trim(mantissa.to_string()));
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = trim(format!("{v:.decimals$}"));
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// A corner of the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    /// Upper right.
    UpperRight,
    /// Lower right.
    LowerRight,
    /// Upper left.
    UpperLeft,
    /// Lower left.
    LowerLeft,
}

/// The corner (preferring upper right, then lower right, upper left, lower left) whose box — the
/// outer 45 % of the width and 40 % of the height — holds the fewest of the points, given as
/// fractions `(0..1, 0..1)` of the axes from the lower left.
pub fn emptiest_corner(points: impl Iterator<Item = (f64, f64)>) -> Corner {
    const ORDER: [Corner; 4] = [
        Corner::UpperRight,
        Corner::LowerRight,
        Corner::UpperLeft,
        Corner::LowerLeft,
    ];
    let mut counts = [0usize; 4];
    for (x, y) in points {
        let (right, left) = (x > 0.55, x < 0.45);
        let (top, bottom) = (y > 0.6, y < 0.4);
        for (i, inside) in [right && top, right && bottom, left && top, left && bottom]
            .into_iter()
            .enumerate()
        {
            counts[i] += usize::from(inside);
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).expect("four corners");
    ORDER[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_scale_is_log_only_for_positive_values_spanning_a_decade() {
        assert!(YScale::Auto.is_log([3.0, 1.0, 0.2].into_iter()));
        assert!(!YScale::Auto.is_log([3.0, 1.0, 0.5].into_iter()));
        assert!(!YScale::Auto.is_log([3.0, 0.1, 0.0].into_iter()));
        assert!(YScale::Log.is_log([1.0].into_iter()));
        assert!(!YScale::Linear.is_log([100.0, 1.0].into_iter()));
    }

    #[test]
    fn bounds_keep_points_off_the_frame() {
        let points = [(0.0, 1.0), (100.0, 3.0)];
        let (x, y) = bounds(points.into_iter(), false, false).unwrap();
        assert_eq!(x, 0.0..100.0);
        assert!((y.start - 0.9).abs() < 1e-12 && (y.end - 3.1).abs() < 1e-12);
        let (x, _) = bounds(points.into_iter(), false, true).unwrap();
        assert_eq!(x, -3.0..103.0);
        let (_, y) = bounds(points.into_iter(), true, false).unwrap();
        assert!((y.start - 1.0 / 1.15).abs() < 1e-12 && (y.end - 3.45).abs() < 1e-12);
        assert_eq!(bounds(std::iter::empty(), false, false), None);
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade() {
        assert_eq!(
            log_ticks(&(0.15..12.0)),
            vec![0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
        );
        // Fewer than three 1-2-5 ticks: every integer multiple.
        assert_eq!(log_ticks(&(1.5..4.5)), vec![2.0, 3.0, 4.0]);
        // Over twelve: powers of ten only.
        assert_eq!(log_ticks(&(2e-7..5e2)).len(), 9);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(1500.0), "1500");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(-0.0001), "-1e-4");
        assert_eq!(tick_label(2.5e6), "2.5e6");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn legend_goes_where_the_curves_are_not() {
        // A falling loss fills the upper left and lower right.
        let falling = (0..100).map(|i| (i as f64 / 99.0, 1.0 - i as f64 / 99.0));
        assert_eq!(emptiest_corner(falling), Corner::UpperRight);
        let rising = (0..100).map(|i| (i as f64 / 99.0, i as f64 / 99.0));
        assert_eq!(emptiest_corner(rising), Corner::LowerRight);
    }
}
