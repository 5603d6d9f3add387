//! SVG charts of distlock's benchmarks and fault runs.
//!
//! A dev-only crate (`publish = false`): `cargo bench --bench locks --
//! --charts` draws the benchmark charts under `docs/charts/` with it, and the
//! fault checker its timelines. Every chart function takes plain data and
//! returns the whole SVG document as a `String`, with a title, axis labels and
//! a legend; nothing here reads or writes files, and nothing panics on bad
//! input: it is refused with a [`ChartError`].
//!
//! The SVG text is laid out by the viewer (plotters' SVG backend writes
//! `<text>` elements), so no font is read or bundled.

mod bars;
mod cdf;
mod error;
mod frame;
mod timeline;

pub use bars::{Throughput, acquisitions_per_task, uncontended};
pub use cdf::{Series, handoff_cdf, wait_cdf};
pub use error::ChartError;
pub use frame::Heading;
pub use timeline::{Body, FaultWindow, Overlap, timeline};

#[cfg(test)]
mod tests;
