//! Bar charts: acquisitions per task (fairness) and uncontended throughput
//! with Redis's time per cycle.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ChartError;
use crate::frame::{self, Area, FONT, Heading, LegendEntry, Swatch};

/// Panels in a row of the acquisitions chart.
const PANELS_PER_ROW: usize = 5;
/// Height of one row of panels, in pixels.
const PANEL_HEIGHT: u32 = 340;
const TASKS_WIDTH: u32 = 2300;
const UNCONTENDED_SIZE: (u32, u32) = (1400, 860);

/// One algorithm's uncontended run: what the bars of [`uncontended`] show.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// The name in the legend.
    pub label: String,
    /// Lock+unlock cycles per second, all tasks together.
    pub cycles_per_second: f64,
    /// Microseconds Redis spent per cycle, if it was measured.
    pub redis_micros_per_cycle: Option<f64>,
}

/// Acquisitions per task, one panel per group (a library on a workload),
/// one bar per task, the tasks sorted from most to fewest acquisitions: a
/// fair lock draws a flat row, a barging one a cliff.
///
/// Refuses an empty `groups` list and a group without tasks.
pub fn acquisitions_per_task(
    heading: &Heading,
    groups: &[(String, Vec<u64>)],
) -> Result<String, ChartError> {
    if groups.is_empty() {
        return Err(ChartError::Empty { what: "groups" });
    }
    if let Some((label, _)) = groups.iter().find(|(_, tasks)| tasks.is_empty()) {
        return Err(ChartError::NoValues {
            label: label.clone(),
        });
    }
    let columns = groups.len().min(PANELS_PER_ROW);
    let rows = groups.len().div_ceil(columns);
    let height = PANEL_HEIGHT
        .saturating_mul(u32::try_from(rows).unwrap_or(u32::MAX))
        .saturating_add(160);
    frame::render((TASKS_WIDTH, height), |root| {
        let body = frame::headed(root, heading)?;
        let (plot, side) = frame::with_legend_column(&body, frame::LEGEND_WIDTH);
        let panels = plot.split_evenly((rows, columns));
        for (index, ((label, tasks), panel)) in groups.iter().zip(&panels).enumerate() {
            task_panel(panel, label, tasks, frame::colour(index))?;
        }
        let entries: Vec<LegendEntry> = groups
            .iter()
            .enumerate()
            .map(|(index, (label, tasks))| LegendEntry {
                label: label.clone(),
                swatch: Swatch::Fill(frame::colour(index).to_rgba()),
                detail: Some(spread(tasks)),
            })
            .collect();
        frame::legend(&side, "one bar per task", &entries)
    })
}

/// One group's panel: its tasks' acquisitions, most first.
fn task_panel(
    area: &Area<'_>,
    label: &str,
    tasks: &[u64],
    colour: RGBColor,
) -> Result<(), ChartError> {
    let mut sorted = tasks.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let most = sorted.first().copied().unwrap_or(0).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(label, (FONT, frame::AXIS_SIZE - 4))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d(0..sorted.len(), 0..most + most / 10 + 1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("tasks, most acquisitions first")
        .y_desc("acquisitions")
        .label_style((FONT, frame::TICK_SIZE))
        .axis_desc_style((FONT, frame::AXIS_SIZE))
        .draw()?;
    chart.draw_series(sorted.iter().enumerate().map(|(task, count)| {
        let mut bar = Rectangle::new([(task, 0), (task + 1, *count)], colour.filled());
        bar.set_margin(0, 0, 1, 1);
        bar
    }))?;
    Ok(())
}

/// `min 1,020 · max 1,100 per task`, for the legend.
fn spread(tasks: &[u64]) -> String {
    let min = tasks.iter().min().copied().unwrap_or(0);
    let max = tasks.iter().max().copied().unwrap_or(0);
    format!(
        "{} tasks · min {} · max {} per task",
        tasks.len(),
        frame::thousands(min),
        frame::thousands(max)
    )
}

/// Uncontended runs as bars, one per algorithm (distlock and its
/// baselines): lock+unlock cycles per second above, Redis's time per cycle
/// below.
///
/// Refuses an empty `bars` list and a figure that is negative or not a
/// number.
pub fn uncontended(heading: &Heading, bars: &[Throughput]) -> Result<String, ChartError> {
    if bars.is_empty() {
        return Err(ChartError::Empty { what: "bars" });
    }
    let valid = |value: f64| value.is_finite() && value >= 0.0;
    if let Some(bar) = bars.iter().find(|bar| {
        !valid(bar.cycles_per_second) || bar.redis_micros_per_cycle.is_some_and(|us| !valid(us))
    }) {
        return Err(ChartError::NoValues {
            label: bar.label.clone(),
        });
    }
    frame::render(UNCONTENDED_SIZE, |root| {
        let body = frame::headed(root, heading)?;
        let (plot, side) = frame::with_legend_column(&body, frame::LEGEND_WIDTH);
        let (upper, lower) = plot.split_vertically(plot.dim_in_pixel().1 / 2);
        let rates: Vec<Option<f64>> = bars.iter().map(|bar| Some(bar.cycles_per_second)).collect();
        let redis: Vec<Option<f64>> = bars.iter().map(|bar| bar.redis_micros_per_cycle).collect();
        let rate_label = |rate: f64| format!("{}/s", frame::rounded_thousands(rate));
        bar_panel(
            &upper,
            "lock+unlock cycles/s (higher is better)",
            &rates,
            &rate_label,
        )?;
        let usec_label = |usec: f64| format!("{} µs", frame::short_number(usec));
        bar_panel(
            &lower,
            "Redis µs per cycle (lower is better)",
            &redis,
            &usec_label,
        )?;
        let entries: Vec<LegendEntry> = bars
            .iter()
            .enumerate()
            .map(|(index, bar)| LegendEntry {
                label: bar.label.clone(),
                swatch: Swatch::Fill(frame::colour(index).to_rgba()),
                detail: Some(format!(
                    "{} · Redis {} per cycle",
                    rate_label(bar.cycles_per_second),
                    bar.redis_micros_per_cycle
                        .map_or("n/a".to_owned(), usec_label)
                )),
            })
            .collect();
        frame::legend(&side, "algorithm", &entries)
    })
}

/// One bar per value, left to right in the legend's order, each with its
/// figure above it; an absent value leaves its place empty.
fn bar_panel(
    area: &Area<'_>,
    y_desc: &str,
    values: &[Option<f64>],
    label: &dyn Fn(f64) -> String,
) -> Result<(), ChartError> {
    let highest = values.iter().flatten().copied().fold(0.0, f64::max);
    let top = if highest > 0.0 { highest * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(12)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..values.len() as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_desc)
        .label_style((FONT, frame::TICK_SIZE))
        .axis_desc_style((FONT, frame::AXIS_SIZE))
        .y_label_formatter(&|value| frame::short_number(*value))
        .draw()?;
    let above = TextStyle::from((FONT, frame::TICK_SIZE)).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (index, value) in values.iter().enumerate() {
        let Some(value) = *value else { continue };
        let x = index as f64;
        chart.draw_series([Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, value)],
            frame::colour(index).filled(),
        )])?;
        chart.draw_series([Text::new(label(value), (x + 0.5, value), above.clone())])?;
    }
    Ok(())
}
