//! What every chart shares: the SVG document, its heading, the legend at its
//! side, the colours and the labels of durations.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::ChartError;

/// The font family every text is drawn in; the viewer picks the face.
pub(crate) const FONT: &str = "sans-serif";
/// Type size of tick labels (plotters draws a size of `n` at `n / 1.24`
/// pixels).
pub(crate) const TICK_SIZE: u32 = 20;
/// Type size of axis descriptions and panel captions.
pub(crate) const AXIS_SIZE: u32 = 22;
/// Width of the legend beside the plot, in pixels: room for the names of
/// the benchmarks' algorithms.
pub(crate) const LEGEND_WIDTH: u32 = 540;
/// Width of a legend of short labels (a timeline's processes), in pixels.
pub(crate) const NARROW_LEGEND_WIDTH: u32 = 260;
/// Height of one legend entry, in pixels.
const LEGEND_ROW: i32 = 32;
/// Colours of series, bars and processes, told apart by most readers with
/// colour-blindness too (the Tableau 10 palette), red left out: red marks
/// overlaps in a timeline.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0x6B, 0x6B, 0x6B),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0xBA, 0xB0, 0xAC),
];
/// Overlapping bodies in a timeline: the one red of the charts.
pub(crate) const ALARM: RGBColor = RGBColor(0xD6, 0x27, 0x28);
/// Notes and reference lines.
pub(crate) const MUTED: RGBColor = RGBColor(0x40, 0x40, 0x40);

/// The drawing area of a chart's SVG document.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A chart's title, and an optional note under it (the machine it ran on,
/// the command that regenerates it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// The first line, in large type.
    pub title: String,
    /// A second line in small type, if any.
    pub note: Option<String>,
}

impl Heading {
    /// A heading of one line.
    pub fn new(title: impl Into<String>) -> Heading {
        Heading {
            title: title.into(),
            note: None,
        }
    }

    /// The same heading with `note` under the title.
    #[must_use]
    pub fn with_note(self, note: impl Into<String>) -> Heading {
        Heading {
            note: Some(note.into()),
            ..self
        }
    }
}

/// The colour of the `index`th series, bar group or process.
pub(crate) fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Draws a white document of `size` pixels with `draw` and returns its text.
pub(crate) fn render(
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Draws the heading at the top of `area`; returns the area below it.
pub(crate) fn headed<'a>(area: &Area<'a>, heading: &Heading) -> Result<Area<'a>, ChartError> {
    let body = area.titled(&heading.title, (FONT, 32))?;
    match &heading.note {
        Some(note) => Ok(body.titled(note, TextStyle::from((FONT, 20)).color(&MUTED))?),
        None => Ok(body),
    }
}

/// Splits `area` into the plot (left) and the legend's column (right),
/// `legend_width` pixels wide.
pub(crate) fn with_legend_column<'a>(area: &Area<'a>, legend_width: u32) -> (Area<'a>, Area<'a>) {
    let width = area.dim_in_pixel().0;
    area.split_horizontally(width.saturating_sub(legend_width))
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    /// A solid line, for a measured CDF.
    Line(RGBColor),
    /// A dashed line, for a reference CDF.
    Dashed(RGBColor),
    /// A filled box, for bars and shading.
    Fill(RGBAColor),
}

/// One entry of a legend: its swatch and label, and a line of detail under
/// them if any.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub(crate) label: String,
    pub(crate) swatch: Swatch,
    pub(crate) detail: Option<String>,
}

/// The first legend row's height from the legend's top, in pixels.
const LEGEND_TOP: i32 = 30 + 2 * LEGEND_ROW;

/// How tall [`legend`] draws `entries`, in pixels, with a row to spare.
pub(crate) fn legend_height(entries: &[LegendEntry]) -> u32 {
    let rows: i32 = entries
        .iter()
        .map(|entry| LEGEND_ROW + entry.detail.as_ref().map_or(0, |_| LEGEND_ROW * 3 / 4))
        .sum();
    u32::try_from(LEGEND_TOP + rows + LEGEND_ROW).unwrap_or(0)
}

/// Draws `entries` one under the other in `area`, under a bold `title`.
pub(crate) fn legend(
    area: &Area<'_>,
    title: &str,
    entries: &[LegendEntry],
) -> Result<(), ChartError> {
    let text = TextStyle::from((FONT, 20)).color(&BLACK);
    let detail = TextStyle::from((FONT, 17)).color(&MUTED);
    area.draw(&Text::new(
        title.to_owned(),
        (10, 30),
        TextStyle::from((FONT, 20, FontStyle::Bold)).color(&BLACK),
    ))?;
    let mut y = LEGEND_TOP;
    for entry in entries {
        draw_swatch(area, entry.swatch, y)?;
        area.draw(&Text::new(entry.label.clone(), (48, y - 11), text.clone()))?;
        if let Some(line) = &entry.detail {
            area.draw(&Text::new(line.clone(), (48, y + 12), detail.clone()))?;
            y += LEGEND_ROW * 3 / 4;
        }
        y += LEGEND_ROW;
    }
    Ok(())
}

/// The swatch of one legend entry, centred on the height `y`.
fn draw_swatch(area: &Area<'_>, swatch: Swatch, y: i32) -> Result<(), ChartError> {
    match swatch {
        Swatch::Line(colour) => {
            area.draw(&PathElement::new(
                [(10, y), (40, y)],
                colour.stroke_width(3),
            ))?;
        }
        Swatch::Dashed(colour) => {
            for x in [10, 22, 34] {
                area.draw(&PathElement::new(
                    [(x, y), (x + 6, y)],
                    colour.stroke_width(3),
                ))?;
            }
        }
        Swatch::Fill(colour) => {
            area.draw(&Rectangle::new([(12, y - 8), (38, y + 8)], colour.filled()))?;
        }
    }
    Ok(())
}

/// A linear axis whose ticks are given: the percentile scale's 50%, 90%,
/// 99%, …, the timeline's lanes. (plotters' own `with_key_points` leaves a
/// linear `f64` axis without a label formatter.)
#[derive(Debug, Clone)]
pub(crate) struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ticked {
    /// The axis over `range`, ticked at `ticks`.
    pub(crate) fn new(range: Range<f64>, ticks: Vec<f64>) -> Ticked {
        Ticked { range, ticks }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A duration given in microseconds, in the unit that reads best: `250 µs`,
/// `1.5 ms`, `10 s`.
pub(crate) fn duration_label(micros: f64) -> String {
    let (value, unit) = if micros < 1e3 {
        (micros, "µs")
    } else if micros < 1e6 {
        (micros / 1e3, "ms")
    } else {
        (micros / 1e6, "s")
    };
    format!("{} {unit}", short_number(value))
}

/// `value` to about three significant digits, trailing zeros dropped:
/// `1.5`, `16.8`, `232`, `20`, `12,346`.
pub(crate) fn short_number(value: f64) -> String {
    let decimals = match value.abs() {
        1_000.0.. => return rounded_thousands(value),
        100.0.. => 0,
        10.0.. => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// `value` with a comma every three digits: `12,345`.
pub(crate) fn thousands(value: u64) -> String {
    grouped(&value.to_string())
}

/// A rate, rounded to a whole number: `12,346`.
pub(crate) fn rounded_thousands(value: f64) -> String {
    grouped(&format!("{:.0}", value.max(0.0)))
}

/// `digits` with a comma every three of them.
fn grouped(digits: &str) -> String {
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration_label(1.0), "1 µs");
        assert_eq!(duration_label(250.0), "250 µs");
        assert_eq!(duration_label(1_500.0), "1.5 ms");
        assert_eq!(duration_label(100_000.0), "100 ms");
        assert_eq!(duration_label(10_000_000.0), "10 s");
        assert_eq!(duration_label(232_254.0), "232 ms");
        assert_eq!(duration_label(16_750.0), "16.8 ms");
        assert_eq!(duration_label(100.0), "100 µs");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rounded_thousands(12_345.6), "12,346");
        assert_eq!(short_number(60_000.0), "60,000");
    }
}
