//! The timeline of a fault run: one lane per key, the bodies that held each
//! key as bars coloured by process, the fault windows shaded behind them,
//! and overlapping bodies, which mutual exclusion forbids, in red.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ChartError;
use crate::frame::{self, ALARM, Area, FONT, Heading, LegendEntry, MUTED, Swatch};

const WIDTH: u32 = 1500;
/// Height of one lane, in pixels.
const LANE_HEIGHT: u32 = 48;
/// Height of the heading, the axis and the margins around the lanes.
const FRAME_HEIGHT: u32 = 260;
/// Height of the band above the lanes where the fault labels are written,
/// in pixels: the longest label, written downwards.
const LABEL_BAND: u32 = 130;
/// Height of the title and the note above the legend, in pixels.
const HEADING_HEIGHT: u32 = 110;
/// The share of a lane's height a body's bar leaves empty above and below.
const BAR_INSET: f64 = 0.18;
/// Fault windows: light grey behind the bodies.
pub(crate) const SHADE: RGBAColor = RGBAColor(0x80, 0x80, 0x80, 0.22);

/// One run of a locked body: the key it held, the process it ran in, and
/// when, in microseconds since the run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// The lane: an index into the chart's lanes.
    pub key: usize,
    /// The process it ran in, from 0; it picks the bar's colour.
    pub process: usize,
    /// When the body started, in µs since the run started.
    pub start_us: u64,
    /// When the body ended, in µs since the run started.
    pub end_us: u64,
}

/// A span during which a fault was active, shaded across every lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultWindow {
    /// When the fault began, in µs since the run started.
    pub start_us: u64,
    /// When it was healed, in µs since the run started.
    pub end_us: u64,
    /// What the fault was (`kill redis`, `partition`), written in its shade.
    pub label: String,
}

/// A span during which two bodies held one key at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// The lane: an index into the chart's lanes.
    pub key: usize,
    /// When the second body started, in µs since the run started.
    pub start_us: u64,
    /// When the first of the two ended, in µs since the run started.
    pub end_us: u64,
}

/// A fault run's timeline: `lanes` names the keys (lane `i` is key `i`,
/// top to bottom); every body, fault window and overlap is drawn where it
/// happened, the x axis in seconds since the run started.
///
/// Refuses an empty `lanes` list, a body or overlap naming a lane that is not
/// there, and an interval that ends before it starts.
pub fn timeline(
    heading: &Heading,
    lanes: &[String],
    bodies: &[Body],
    faults: &[FaultWindow],
    overlaps: &[Overlap],
) -> Result<String, ChartError> {
    check(lanes, bodies, faults, overlaps)?;
    let entries = legend_entries(bodies, faults, overlaps);
    let rows = u32::try_from(lanes.len()).unwrap_or(u32::MAX);
    let height = FRAME_HEIGHT
        .saturating_add(LABEL_BAND)
        .saturating_add(LANE_HEIGHT.saturating_mul(rows))
        .max(HEADING_HEIGHT.saturating_add(frame::legend_height(&entries)));
    frame::render((WIDTH, height), |root| {
        let body = frame::headed(root, heading)?;
        let (plot, side) = frame::with_legend_column(&body, frame::NARROW_LEGEND_WIDTH);
        draw_lanes(&plot, lanes, bodies, faults, overlaps)?;
        frame::legend(&side, "bodies by process", &entries)
    })
}

/// One legend entry per process that ran a body, then the fault shade and
/// the overlap mark with their counts.
fn legend_entries(
    bodies: &[Body],
    faults: &[FaultWindow],
    overlaps: &[Overlap],
) -> Vec<LegendEntry> {
    let processes = bodies
        .iter()
        .map(|body| body.process + 1)
        .max()
        .unwrap_or(0);
    let mut entries: Vec<LegendEntry> = (0..processes)
        .map(|process| LegendEntry {
            label: format!("process {process}"),
            swatch: Swatch::Fill(frame::colour(process).to_rgba()),
            detail: None,
        })
        .collect();
    entries.push(LegendEntry {
        label: "fault window".to_owned(),
        swatch: Swatch::Fill(SHADE),
        detail: Some(format!("{} in this run", faults.len())),
    });
    entries.push(LegendEntry {
        label: "overlap".to_owned(),
        swatch: Swatch::Fill(ALARM.to_rgba()),
        detail: Some(format!("{} marked", overlaps.len())),
    });
    entries
}

/// Refuses what [`timeline`] cannot draw.
fn check(
    lanes: &[String],
    bodies: &[Body],
    faults: &[FaultWindow],
    overlaps: &[Overlap],
) -> Result<(), ChartError> {
    if lanes.is_empty() {
        return Err(ChartError::Empty { what: "lanes" });
    }
    let spans = bodies
        .iter()
        .map(|body| ("body", Some(body.key), body.start_us, body.end_us))
        .chain(
            faults
                .iter()
                .map(|fault| ("fault window", None, fault.start_us, fault.end_us)),
        )
        .chain(overlaps.iter().map(|overlap| {
            (
                "overlap",
                Some(overlap.key),
                overlap.start_us,
                overlap.end_us,
            )
        }));
    for (what, lane, start_us, end_us) in spans {
        if let Some(lane) = lane.filter(|lane| *lane >= lanes.len()) {
            return Err(ChartError::UnknownLane {
                lane,
                lanes: lanes.len(),
            });
        }
        if end_us < start_us {
            return Err(ChartError::Backwards {
                what,
                start_us,
                end_us,
            });
        }
    }
    Ok(())
}

/// The chart of a timeline: seconds across, the lanes down.
type LaneChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, frame::Ticked>>;

/// The axes, then the shades, the bodies and the overlaps, in that order so
/// that each is drawn over the one before.
fn draw_lanes(
    plot: &Area<'_>,
    lanes: &[String],
    bodies: &[Body],
    faults: &[FaultWindow],
    overlaps: &[Overlap],
) -> Result<(), ChartError> {
    let end = bodies
        .iter()
        .map(|body| body.end_us)
        .chain(faults.iter().map(|fault| fault.end_us))
        .chain(overlaps.iter().map(|overlap| overlap.end_us))
        .max()
        .map_or(1.0, |end_us| seconds(end_us).max(1e-3));
    let mut chart = lane_axes(plot, lanes, end)?;
    let count = lanes.len() as f64;
    shade_faults(&mut chart, faults, count)?;
    chart.draw_series(bodies.iter().map(|body| {
        let bottom = lane_bottom(body.key, count);
        Rectangle::new(
            [
                (seconds(body.start_us), bottom + BAR_INSET),
                (seconds(body.end_us), bottom + 1.0 - BAR_INSET),
            ],
            frame::colour(body.process).filled(),
        )
    }))?;
    mark_overlaps(&mut chart, overlaps, count)
}

/// The time axis up to `end` seconds and one named lane per key.
fn lane_axes<'a, 'b>(
    plot: &'a Area<'b>,
    lanes: &[String],
    end: f64,
) -> Result<LaneChart<'a, 'b>, ChartError> {
    let count = lanes.len() as f64;
    let top = count + band();
    let centres: Vec<f64> = (0..lanes.len())
        .map(|lane| lane_bottom(lane, count) + 0.5)
        .collect();
    let mut chart = ChartBuilder::on(plot)
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(160)
        .build_cartesian_2d(0.0..end, frame::Ticked::new(0.0..top, centres))?;
    let lane_name = |y: &f64| {
        (0..lanes.len())
            .find(|lane| (lane_bottom(*lane, count) + 0.5 - y).abs() < 0.25)
            .and_then(|lane| lanes.get(lane).cloned())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("seconds since the run started")
        .y_desc("key")
        .label_style((FONT, frame::TICK_SIZE))
        .axis_desc_style((FONT, frame::AXIS_SIZE))
        .y_label_formatter(&lane_name)
        .draw()?;
    Ok(chart)
}

/// Each fault window shaded across every lane, its label down its left edge.
fn shade_faults(
    chart: &mut LaneChart<'_, '_>,
    faults: &[FaultWindow],
    count: f64,
) -> Result<(), ChartError> {
    // Written downwards along the shade's left edge: faults a second apart
    // leave room for one line of text, not for a label across.
    let label_style = TextStyle::from((FONT, frame::TICK_SIZE))
        .color(&MUTED)
        .transform(FontTransform::Rotate90)
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    for fault in faults {
        let (start, stop) = (seconds(fault.start_us), seconds(fault.end_us));
        let top = count + band();
        let shade = Rectangle::new([(start, 0.0), (stop, top)], SHADE.filled());
        chart.draw_series([shade])?;
        let label = Text::new(fault.label.clone(), (start, top), label_style.clone());
        chart.draw_series([label])?;
    }
    Ok(())
}

/// Each overlap in red across its lane, filled and outlined 3 px wide: an
/// overlap of a few microseconds is narrower than a pixel and would not
/// show filled alone.
fn mark_overlaps(
    chart: &mut LaneChart<'_, '_>,
    overlaps: &[Overlap],
    count: f64,
) -> Result<(), ChartError> {
    let corners = |overlap: &Overlap| {
        let bottom = lane_bottom(overlap.key, count);
        let (start, end) = (seconds(overlap.start_us), seconds(overlap.end_us));
        ((start, bottom + 0.04), (end, bottom + 0.96))
    };
    chart.draw_series(overlaps.iter().map(|overlap| {
        let (low, high) = corners(overlap);
        Rectangle::new([low, high], ALARM.filled())
    }))?;
    chart.draw_series(overlaps.iter().map(|overlap| {
        let ((start, low), (end, high)) = corners(overlap);
        let outline = [
            (start, low),
            (start, high),
            (end, high),
            (end, low),
            (start, low),
        ];
        PathElement::new(outline, ALARM.stroke_width(3))
    }))?;
    Ok(())
}

/// The label band's height in lanes.
fn band() -> f64 {
    f64::from(LABEL_BAND) / f64::from(LANE_HEIGHT)
}

/// Lane 0 at the top: the y of lane `lane`'s lower edge among `count` lanes.
fn lane_bottom(lane: usize, count: f64) -> f64 {
    count - 1.0 - lane as f64
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}
