//! Every chart parses as XML and holds what it was given: one line per
//! series, one bar per task, the legend naming each series. No pixel is
//! compared.

use plotters::style::{RGBAColor, RGBColor};
use roxmltree::{Document, Node};

use crate::frame::{ALARM, MUTED, colour};
use crate::*;

/// Parses `svg`, failing the test if it is not well-formed, and checks that
/// its root is an `<svg>` element.
fn parse(svg: &str) -> Document<'_> {
    let document = Document::parse(svg).unwrap_or_else(|error| panic!("not XML: {error}"));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
}

fn elements<'a, 'input>(document: &'a Document<'input>, tag: &str) -> Vec<Node<'a, 'input>> {
    document
        .descendants()
        .filter(|node| node.tag_name().name() == tag)
        .collect()
}

/// The text of every `<text>` element, trimmed.
fn texts(document: &Document<'_>) -> Vec<String> {
    elements(document, "text")
        .iter()
        .map(|node| node.text().unwrap_or_default().trim().to_owned())
        .collect()
}

fn hex(colour: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
}

/// `<rect>` elements filled with `colour`.
fn rects_filled(document: &Document<'_>, colour: &str) -> usize {
    elements(document, "rect")
        .iter()
        .filter(|node| node.attribute("fill") == Some(colour))
        .count()
}

/// `<polyline>` elements stroked with `colour`, `width` pixels wide.
fn polylines<'a, 'input>(
    document: &'a Document<'input>,
    colour: &str,
    width: &str,
) -> Vec<Node<'a, 'input>> {
    elements(document, "polyline")
        .into_iter()
        .filter(|node| {
            node.attribute("stroke") == Some(colour)
                && node.attribute("stroke-width") == Some(width)
        })
        .collect()
}

/// The x of a polyline's last point.
fn last_x(node: Node<'_, '_>) -> f64 {
    let points = node.attribute("points").unwrap_or_default();
    let last = points.split_whitespace().last().unwrap_or_default();
    last.split(',')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(f64::NAN)
}

fn series(label: &str, micros: impl IntoIterator<Item = f64>) -> Series {
    Series {
        label: label.to_owned(),
        micros: micros.into_iter().collect(),
    }
}

/// Waits like a hot key's: a fair lock's narrow spread, and a polling lock's
/// mostly instant re-takes with a tail of seconds.
fn hot_key_waits() -> Vec<Series> {
    let fair = series("distlock", (0..5_000).map(|i| 200.0 + f64::from(i % 300)));
    let mut polling: Vec<f64> = (0..5_000).map(|i| 40.0 + f64::from(i % 60)).collect();
    polling.extend((1..=50).map(|i| 100_000.0 * f64::from(i)));
    let backoff = series("backoff", (1..=2_000).map(|i| f64::from(i) * 25.0));
    vec![fair, series("fixed poll", polling), backoff]
}

#[test]
fn a_wait_cdf_draws_one_line_per_series_and_names_each() {
    let heading = Heading::new("Hot key").with_note("2 cores, redis-server 7.0.15");
    let given = hot_key_waits();
    let svg = wait_cdf(&heading, &given).unwrap();
    let document = &parse(&svg);
    let texts = texts(document);
    for (index, series) in given.iter().enumerate() {
        assert_eq!(
            polylines(document, &hex(colour(index)), "2").len(),
            1,
            "{}",
            series.label
        );
        assert!(
            texts.contains(&series.label),
            "legend lacks {}",
            series.label
        );
    }
    let drawn = elements(document, "polyline")
        .iter()
        .filter(|node| node.attribute("stroke-width") == Some("2"))
        .count();
    assert_eq!(drawn, given.len());
    for text in [
        "Hot key",
        "2 cores, redis-server 7.0.15",
        "10 µs",
        "10 s",
        "99%",
        "99.9%",
    ] {
        assert!(texts.iter().any(|t| t == text), "no {text:?} in {texts:?}");
    }
    // The polling lock's tail reaches seconds: its line ends far right of
    // the fair lock's.
    let fair = polylines(document, &hex(colour(0)), "2")[0];
    let polling = polylines(document, &hex(colour(1)), "2")[0];
    assert!(last_x(polling) > last_x(fair) + 200.0);
}

#[test]
fn a_wait_cdf_refuses_no_series_and_a_series_without_samples() {
    let heading = Heading::new("Hot key");
    assert_eq!(
        wait_cdf(&heading, &[]),
        Err(ChartError::Empty { what: "series" })
    );
    let mut given = hot_key_waits();
    given.push(series("silent", []));
    assert_eq!(
        wait_cdf(&heading, &given),
        Err(ChartError::NoValues {
            label: "silent".to_owned()
        })
    );
    let not_numbers = series("nan", [f64::NAN, f64::INFINITY]);
    assert!(matches!(
        wait_cdf(&heading, &[not_numbers]),
        Err(ChartError::NoValues { .. })
    ));
}

#[test]
fn a_handoff_cdf_draws_the_round_trip_dashed_beside_the_handoffs() {
    let handoffs = [
        series(
            "distlock, across processes",
            (1..=1_000).map(|i| 60.0 + f64::from(i) / 10.0),
        ),
        series(
            "distlock, in one process",
            (1..=1_000).map(|i| 20.0 + f64::from(i) / 20.0),
        ),
    ];
    let ping = series(
        "PING round trip",
        (1..=1_000).map(|i| 30.0 + f64::from(i) / 50.0),
    );
    let svg = handoff_cdf(&Heading::new("L1"), &handoffs, &ping).unwrap();
    let document = &parse(&svg);
    let texts = texts(document);
    for (index, series) in handoffs.iter().enumerate() {
        assert_eq!(polylines(document, &hex(colour(index)), "2").len(), 1);
        assert!(texts.contains(&series.label));
    }
    assert!(polylines(document, &hex(MUTED), "2").len() > 1, "no dashes");
    assert!(texts.contains(&ping.label));
    assert_eq!(
        handoff_cdf(&Heading::new("L1"), &[], &ping),
        Err(ChartError::Empty { what: "series" })
    );
}

#[test]
fn acquisitions_per_task_draws_one_bar_per_task() {
    let groups = vec![
        (
            "distlock".to_owned(),
            (0..32).map(|task| 1_000 + task).collect(),
        ),
        ("fixed poll".to_owned(), vec![30_000, 2, 0, 0, 1, 0, 0, 5]),
        ("rslock".to_owned(), vec![7; 4]),
    ];
    let svg = acquisitions_per_task(&Heading::new("Acquisitions per task"), &groups).unwrap();
    let document = &parse(&svg);
    let texts = texts(document);
    for (index, (label, tasks)) in groups.iter().enumerate() {
        // One bar per task (tasks with none draw a bar of no height), and
        // the legend's swatch.
        assert_eq!(
            rects_filled(document, &hex(colour(index))),
            tasks.len() + 1,
            "{label}"
        );
        assert!(texts.contains(label), "no {label}");
    }
}

#[test]
fn acquisitions_per_task_refuses_no_groups_and_a_group_without_tasks() {
    let heading = Heading::new("Acquisitions per task");
    assert_eq!(
        acquisitions_per_task(&heading, &[]),
        Err(ChartError::Empty { what: "groups" })
    );
    let groups = vec![
        ("distlock".to_owned(), vec![1, 2]),
        ("none".to_owned(), vec![]),
    ];
    assert_eq!(
        acquisitions_per_task(&heading, &groups),
        Err(ChartError::NoValues {
            label: "none".to_owned()
        })
    );
}

fn throughput(label: &str, cycles_per_second: f64, redis: Option<f64>) -> Throughput {
    Throughput {
        label: label.to_owned(),
        cycles_per_second,
        redis_micros_per_cycle: redis,
    }
}

#[test]
fn uncontended_draws_a_throughput_bar_and_a_redis_bar_per_algorithm() {
    let bars = [
        throughput("distlock", 25_000.0, Some(5.25)),
        throughput("seed protocol", 26_000.0, Some(4.5)),
        throughput("rslock", 9_000.0, None),
        throughput("SET NX PX + DEL", 31_000.0, Some(3.0)),
    ];
    let svg = uncontended(&Heading::new("U1"), &bars).unwrap();
    let document = &parse(&svg);
    let texts = texts(document);
    for (index, bar) in bars.iter().enumerate() {
        let expected = 1 + usize::from(bar.redis_micros_per_cycle.is_some()) + 1;
        assert_eq!(
            rects_filled(document, &hex(colour(index))),
            expected,
            "{}",
            bar.label
        );
        assert!(texts.contains(&bar.label));
    }
    for figure in ["25,000/s", "9,000/s", "5.25 µs", "3 µs"] {
        assert!(texts.iter().any(|t| t == figure), "no {figure}");
    }
    assert_eq!(
        uncontended(&Heading::new("U1"), &[]),
        Err(ChartError::Empty { what: "bars" })
    );
    let broken = [throughput("broken", f64::NAN, None)];
    assert!(matches!(
        uncontended(&Heading::new("U1"), &broken),
        Err(ChartError::NoValues { .. })
    ));
}

fn body(key: usize, process: usize, start_us: u64, end_us: u64) -> Body {
    Body {
        key,
        process,
        start_us,
        end_us,
    }
}

fn lanes(count: usize) -> Vec<String> {
    (0..count).map(|key| format!("order:{key}")).collect()
}

fn rgba_hex(colour: RGBAColor) -> String {
    hex(RGBColor(colour.0, colour.1, colour.2))
}

#[test]
fn a_timeline_draws_every_body_fault_and_overlap() {
    let bodies = [
        body(0, 0, 0, 100_000),
        body(0, 1, 100_500, 200_000),
        body(1, 1, 10_000, 90_000),
        body(2, 0, 0, 400_000),
        body(2, 2, 400_100, 500_000),
    ];
    let faults = [FaultWindow {
        start_us: 150_000,
        end_us: 350_000,
        label: "redis paused".to_owned(),
    }];
    let overlaps = [Overlap {
        key: 0,
        start_us: 150_000,
        end_us: 150_004,
    }];
    let svg = timeline(
        &Heading::new("nemesis"),
        &lanes(3),
        &bodies,
        &faults,
        &overlaps,
    )
    .unwrap();
    let document = &parse(&svg);
    for process in 0..3 {
        let drawn = bodies.iter().filter(|body| body.process == process).count();
        assert_eq!(rects_filled(document, &hex(colour(process))), drawn + 1);
    }
    // The shade, and the legend's swatch of it.
    assert_eq!(rects_filled(document, &rgba_hex(timeline::SHADE)), 2);
    // The overlap, filled and outlined, and the legend's swatch.
    assert_eq!(rects_filled(document, &hex(ALARM)), 2);
    assert_eq!(polylines(document, &hex(ALARM), "3").len(), 1);
    let texts = texts(document);
    for text in [
        "order:0",
        "order:1",
        "order:2",
        "redis paused",
        "process 2",
        "overlap",
    ] {
        assert!(texts.iter().any(|t| t == text), "no {text:?} in {texts:?}");
    }
}

#[test]
fn a_timeline_without_overlaps_has_no_red_but_its_legend() {
    let bodies = [body(0, 0, 0, 10), body(0, 1, 20, 30)];
    let svg = timeline(&Heading::new("clean"), &lanes(1), &bodies, &[], &[]).unwrap();
    let document = &parse(&svg);
    assert_eq!(rects_filled(document, &hex(ALARM)), 1);
    assert!(polylines(document, &hex(ALARM), "3").is_empty());
}

#[test]
fn a_timeline_refuses_what_it_cannot_place() {
    let heading = Heading::new("nemesis");
    assert_eq!(
        timeline(&heading, &[], &[], &[], &[]),
        Err(ChartError::Empty { what: "lanes" })
    );
    assert_eq!(
        timeline(&heading, &lanes(2), &[body(2, 0, 0, 1)], &[], &[]),
        Err(ChartError::UnknownLane { lane: 2, lanes: 2 })
    );
    let overlap = Overlap {
        key: 5,
        start_us: 0,
        end_us: 1,
    };
    assert!(matches!(
        timeline(&heading, &lanes(2), &[], &[], &[overlap]),
        Err(ChartError::UnknownLane { lane: 5, .. })
    ));
    assert_eq!(
        timeline(&heading, &lanes(2), &[body(0, 0, 10, 5)], &[], &[]),
        Err(ChartError::Backwards {
            what: "body",
            start_us: 10,
            end_us: 5
        })
    );
}
