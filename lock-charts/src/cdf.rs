//! Distributions of latencies: one line per series, the share of samples at
//! or below each duration.
//!
//! The x axis is logarithmic: waits range from microseconds to seconds. The y
//! axis is a percentile scale (0%, 50%, 90%, 99%, 99.9%, … equally apart), so
//! the slowest percent of the samples, where polling locks leave a task
//! starving, takes as much height as the fastest ninety.

use plotters::prelude::*;

use crate::error::ChartError;
use crate::frame::{self, Area, Heading, LegendEntry, MUTED, Swatch};

/// Samples below this many microseconds are drawn at it: the benchmarks'
/// resolution, and a log axis has no zero.
const FLOOR_US: f64 = 1.0;
/// Points per decade of the x axis at which a CDF is evaluated: a chart's
/// size does not grow with the number of samples.
const POINTS_PER_DECADE: f64 = 40.0;
/// The y axis reaches at most 99.9999%.
const MAX_NINES: f64 = 6.0;
const SIZE: (u32, u32) = (1400, 760);

/// One line of a CDF: what was measured, and its samples in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name in the legend (a library, an algorithm, a workload).
    pub label: String,
    /// One sample per event, in microseconds; at least one.
    pub micros: Vec<f64>,
}

/// The CDF of wait times, one line per library or algorithm, on a log x axis.
///
/// Refuses an empty `series` list and a series without samples.
pub fn wait_cdf(heading: &Heading, series: &[Series]) -> Result<String, ChartError> {
    if series.is_empty() {
        return Err(ChartError::Empty { what: "series" });
    }
    let lines: Vec<Line<'_>> = series.iter().enumerate().map(Line::measured).collect();
    cdf_chart(
        heading,
        "wait per acquisition: acquire called → lock held (log scale)",
        &lines,
    )
}

/// The CDF of handoff latencies against the PING round trip, drawn dashed
/// as the reference.
///
/// Refuses an empty `handoffs` list and a series without samples.
pub fn handoff_cdf(
    heading: &Heading,
    handoffs: &[Series],
    round_trip: &Series,
) -> Result<String, ChartError> {
    if handoffs.is_empty() {
        return Err(ChartError::Empty { what: "series" });
    }
    let mut lines: Vec<Line<'_>> = handoffs.iter().enumerate().map(Line::measured).collect();
    lines.push(Line {
        series: round_trip,
        swatch: Swatch::Dashed(MUTED),
    });
    cdf_chart(
        heading,
        "handoff: release started → next holder holds (log scale)",
        &lines,
    )
}

/// A series and how it is drawn.
struct Line<'a> {
    series: &'a Series,
    swatch: Swatch,
}

impl<'a> Line<'a> {
    fn measured((index, series): (usize, &'a Series)) -> Line<'a> {
        Line {
            series,
            swatch: Swatch::Line(frame::colour(index)),
        }
    }
}

/// A series reduced to what is drawn: points on the percentile scale, and
/// the figures of its legend entry.
struct Curve {
    points: Vec<(f64, f64)>,
    p50: f64,
    p99: f64,
    max: f64,
    count: usize,
}

fn cdf_chart(heading: &Heading, x_desc: &str, lines: &[Line<'_>]) -> Result<String, ChartError> {
    let curves = lines
        .iter()
        .map(|line| curve(line.series))
        .collect::<Result<Vec<_>, _>>()?;
    let (low, high) = decades(&curves);
    let top = nines_axis_top(&curves);
    frame::render(SIZE, |root| {
        let body = frame::headed(root, heading)?;
        let (plot, side) = frame::with_legend_column(&body, frame::LEGEND_WIDTH);
        draw_curves(&plot, x_desc, (low, high, top), lines, &curves)?;
        let entries: Vec<LegendEntry> = lines
            .iter()
            .zip(&curves)
            .map(|(line, curve)| LegendEntry {
                label: line.series.label.clone(),
                swatch: line.swatch,
                detail: Some(curve.summary()),
            })
            .collect();
        frame::legend(&side, "series", &entries)
    })
}

/// The axes, their grid and one line per curve.
fn draw_curves(
    plot: &Area<'_>,
    x_desc: &str,
    (low, high, top): (f64, f64, f64),
    lines: &[Line<'_>],
    curves: &[Curve],
) -> Result<(), ChartError> {
    let x = (low..high)
        .log_scale()
        .with_key_points(powers_of_ten(low, high))
        .with_light_points(light_points(low, high));
    let mut y_keys = vec![0.0, nines(0.5)];
    y_keys.extend((1..).map(f64::from).take_while(|y| *y <= top));
    let mut chart = ChartBuilder::on(plot)
        .margin(16)
        .x_label_area_size(64)
        .y_label_area_size(96)
        .build_cartesian_2d(x, frame::Ticked::new(0.0..top, y_keys))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("samples at or below (percentile scale)")
        .axis_desc_style((frame::FONT, frame::AXIS_SIZE))
        .label_style((frame::FONT, frame::TICK_SIZE))
        .x_label_formatter(&|micros| frame::duration_label(*micros))
        .y_label_formatter(&|y| percent_label(*y))
        .draw()?;
    for (line, curve) in lines.iter().zip(curves) {
        let points = curve.points.iter().copied();
        match line.swatch {
            Swatch::Dashed(colour) => {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, colour.stroke_width(2)))?;
            }
            Swatch::Line(colour) => {
                chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
            }
            Swatch::Fill(colour) => {
                chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
            }
        }
    }
    Ok(())
}

/// The empirical CDF of `series` at log-spaced durations from its fastest
/// sample to its slowest, starting from 0 at the fastest.
fn curve(series: &Series) -> Result<Curve, ChartError> {
    let mut sorted: Vec<f64> = series
        .micros
        .iter()
        .filter(|micros| micros.is_finite())
        .map(|micros| micros.max(FLOOR_US))
        .collect();
    sorted.sort_by(f64::total_cmp);
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return Err(ChartError::NoValues {
            label: series.label.clone(),
        });
    };
    // Plotting positions k / (n + 1): the slowest sample sits below 100%,
    // which the percentile scale cannot show.
    let positions = sorted.len() as f64 + 1.0;
    let step = 10_f64.powf(1.0 / POINTS_PER_DECADE);
    let mut points = vec![(first, 0.0)];
    let mut at = first;
    loop {
        let at_or_below = sorted.partition_point(|micros| *micros <= at);
        points.push((at, nines(at_or_below as f64 / positions)));
        if at >= last {
            break;
        }
        at = (at * step).min(last);
    }
    Ok(Curve {
        points,
        p50: nearest_rank(&sorted, 0.50),
        p99: nearest_rank(&sorted, 0.99),
        max: last,
        count: sorted.len(),
    })
}

impl Curve {
    /// `p50 120 µs · p99 1.2 ms · max 3 s · 12,345 samples`, for the legend.
    fn summary(&self) -> String {
        format!(
            "p50 {} · p99 {} · max {} · {} samples",
            frame::duration_label(self.p50),
            frame::duration_label(self.p99),
            frame::duration_label(self.max),
            frame::thousands(u64::try_from(self.count).unwrap_or(u64::MAX)),
        )
    }
}

/// The smallest sample with at least `quantile` of the samples at or below
/// it; `sorted` holds at least one sample.
fn nearest_rank(sorted: &[f64], quantile: f64) -> f64 {
    let wanted = quantile * sorted.len() as f64;
    let below = sorted
        .iter()
        .enumerate()
        .position(|(index, _)| (index + 1) as f64 >= wanted)
        .unwrap_or(0);
    sorted.get(below).copied().unwrap_or(FLOOR_US)
}

/// How many nines a cumulative share has: 0.9 → 1, 0.99 → 2.
fn nines(share: f64) -> f64 {
    (-(1.0 - share).log10()).clamp(0.0, MAX_NINES)
}

/// `99.9%` for 3 nines.
fn percent_label(nines: f64) -> String {
    let percent = (1.0 - 10_f64.powf(-nines)) * 100.0;
    let text = format!("{percent:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The whole decades (powers of ten, in µs) around every curve.
fn decades(curves: &[Curve]) -> (f64, f64) {
    let fastest = curves
        .iter()
        .filter_map(|curve| curve.points.first())
        .map(|point| point.0)
        .fold(f64::INFINITY, f64::min);
    let slowest = curves
        .iter()
        .map(|curve| curve.max)
        .fold(FLOOR_US, f64::max);
    let mut low = FLOOR_US;
    while low * 10.0 <= fastest {
        low *= 10.0;
    }
    let mut high = low * 10.0;
    while high < slowest {
        high *= 10.0;
    }
    (low, high)
}

/// The whole number of nines at or above every curve's top, at least 2.
fn nines_axis_top(curves: &[Curve]) -> f64 {
    let highest = curves
        .iter()
        .flat_map(|curve| curve.points.iter().map(|point| point.1))
        .fold(0.0, f64::max);
    let mut top = 2.0;
    while top < highest && top < MAX_NINES {
        top += 1.0;
    }
    top
}

/// 1, 10, 100, … from `low` to `high`, both powers of ten.
fn powers_of_ten(low: f64, high: f64) -> Vec<f64> {
    std::iter::successors(Some(low), |power| Some(power * 10.0))
        .take_while(|power| *power <= high)
        .collect()
}

/// 2, 3, … 9 times each power of ten below `high`: the light grid.
fn light_points(low: f64, high: f64) -> Vec<f64> {
    powers_of_ten(low, high)
        .into_iter()
        .flat_map(|power| (2..10).map(move |times| power * f64::from(times)))
        .filter(|micros| *micros < high)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_as_nines() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(nines(0.5)), "50%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(3.0), "99.9%");
    }

    #[test]
    fn a_curve_climbs_from_zero_to_its_slowest_sample() {
        let series = Series {
            label: "x".to_owned(),
            micros: vec![0.0, 5.0, 50.0, 5_000.0],
        };
        let curve = curve(&series).unwrap();
        assert_eq!(curve.points.first(), Some(&(FLOOR_US, 0.0)));
        assert_eq!(curve.points.last().map(|point| point.0), Some(5_000.0));
        assert!(curve.points.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        // 4 samples of 5 plotting positions: the top is 4/5, not 100%.
        let top = curve.points.last().map_or(0.0, |point| point.1);
        assert!((top - nines(0.8)).abs() < 1e-9);
        assert!((curve.p50 - 5.0).abs() < 1e-9);
        assert_eq!(decades(&[curve]), (1.0, 10_000.0));
    }

    #[test]
    fn a_curve_has_a_bounded_number_of_points() {
        let series = Series {
            label: "x".to_owned(),
            micros: (1..=1_000_000).map(f64::from).collect(),
        };
        let points = curve(&series).unwrap().points.len();
        assert!(points <= 6 * 40 + 2, "{points} points");
    }
}
