//! Why a chart was not drawn.

use std::fmt;

/// Input a chart cannot show, or a failure of the drawing itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartError {
    /// The chart was given none of what it draws (`what`: "series", "groups",
    /// "lanes", ...).
    Empty {
        /// What was missing.
        what: &'static str,
    },
    /// A series, group or bar of the chart holds no value to draw.
    NoValues {
        /// The label of the empty series.
        label: String,
    },
    /// An item names a lane that the chart was not given.
    UnknownLane {
        /// The lane (key index) named.
        lane: usize,
        /// How many lanes there are.
        lanes: usize,
    },
    /// An interval ends before it starts.
    Backwards {
        /// Which kind of interval ("body", "fault window", "overlap").
        what: &'static str,
        /// Its start, in microseconds.
        start_us: u64,
        /// Its end, in microseconds.
        end_us: u64,
    },
    /// plotters refused to draw (its error, as text).
    Draw(String),
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartError::Empty { what } => write!(f, "the chart was given no {what}"),
            ChartError::NoValues { label } => write!(f, "{label:?} has no value to draw"),
            ChartError::UnknownLane { lane, lanes } => {
                write!(f, "lane {lane} named, but the chart has {lanes} lanes")
            }
            ChartError::Backwards {
                what,
                start_us,
                end_us,
            } => write!(
                f,
                "a {what} ends ({end_us} µs) before it starts ({start_us} µs)"
            ),
            ChartError::Draw(error) => write!(f, "drawing failed: {error}"),
        }
    }
}

impl std::error::Error for ChartError {}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for ChartError
{
    fn from(error: plotters::drawing::DrawingAreaErrorKind<E>) -> ChartError {
        ChartError::Draw(error.to_string())
    }
}
