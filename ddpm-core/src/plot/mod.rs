//! Charts with plotters. Each chart takes plain data (points, curves, losses), never a model or a
//! tensor, and one drawing function serves every target: SVG text for notebooks, PNG files, and
//! GIF animations.
//!
//! Text is laid out with an embedded DejaVu Sans font (see `assets/`), so charts render the same
//! on a machine without any system fonts.

mod charts;
mod field;
mod images;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use charts::{
    Bounds, CLASS_COLORS, GENERATED, LossCurve, Marginals, PALETTE, Panel, REAL, ScatterPanels,
    ScheduleChart, ScheduleCurve, TimestepCurves, TrajectoryAnimation, density, moving_average,
};
pub use field::{Arrow, FieldPanel, Heatmap, VectorField};
pub use images::{ImageAnimation, ImageGrid, Tile, png_bytes, tile_from_unit};

use crate::notebook::{Gif, Svg};
use crate::{DdpmError, Result};

/// The font every chart's text is drawn with.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Family name charts ask for.
pub(crate) const FAMILY: &str = "sans-serif";

fn ensure_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font shipped with the crate; failure is a build defect.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("embedded DejaVuSans.ttf is not a valid font");
        }
    });
}

/// Result of drawing on a backend `DB`.
pub type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A still chart that can draw itself on any plotters backend.
pub trait Chart {
    /// A short name for errors, e.g. `"training_curve"`.
    fn name(&self) -> &'static str;
    /// Size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draw on `root` (already cleared to white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;

    /// Render as SVG for inline display: a notebook cell ending in `chart.show()?` draws it.
    fn show(&self) -> Result<Svg>
    where
        Self: Sized,
    {
        to_svg(self).map(Svg)
    }
}

/// An animation: a fixed number of frames drawn one by one.
pub trait Animation {
    /// A short name for errors.
    fn name(&self) -> &'static str;
    /// Size in pixels.
    fn size(&self) -> (u32, u32);
    /// Number of frames.
    fn frame_count(&self) -> usize;
    /// Draw frame `index` on `root` (already cleared to white).
    fn draw_frame<DB: DrawingBackend>(
        &self,
        index: usize,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB>;

    /// Render as a GIF for inline display, each frame shown `frame_delay_ms`.
    fn show(&self, frame_delay_ms: u32) -> Result<Gif>
    where
        Self: Sized,
    {
        gif_bytes(self, frame_delay_ms).map(Gif)
    }
}

fn plot_error(chart: &'static str, e: impl std::fmt::Debug) -> DdpmError {
    DdpmError::Plot {
        chart,
        message: format!("{e:?}"),
    }
}

fn draw_on<DB: DrawingBackend, C: Chart>(chart: &C, root: DrawingArea<DB, Shift>) -> Result<()> {
    root.fill(&WHITE).map_err(|e| plot_error(chart.name(), e))?;
    chart.draw(&root).map_err(|e| plot_error(chart.name(), e))?;
    root.present().map_err(|e| plot_error(chart.name(), e))
}

/// Render a chart as an SVG document.
pub fn to_svg<C: Chart>(chart: &C) -> Result<String> {
    ensure_font();
    let mut svg = String::new();
    draw_on(
        chart,
        SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area(),
    )?;
    Ok(svg)
}

/// Render a chart into an RGB pixel buffer (row by row, 3 bytes per pixel, `chart.size()`):
/// what the PNG holds, for checking a figure's content or handing it to an image library.
pub fn to_rgb<C: Chart>(chart: &C) -> Result<Vec<u8>> {
    ensure_font();
    let (width, height) = chart.size();
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw_on(
        chart,
        BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area(),
    )?;
    Ok(rgb)
}

/// Render a chart to a PNG file, atomically (drawn beside `path`, then renamed over it).
pub fn save_png<C: Chart>(chart: &C, path: &Path) -> Result<()> {
    ensure_font();
    // The bitmap backend picks the encoder from the extension, so the temporary keeps `.png`.
    let tmp = crate::io::temp_path_for(path).with_extension("png");
    let result = draw_on(
        chart,
        BitMapBackend::new(&tmp, chart.size()).into_drawing_area(),
    )
    .and_then(|()| crate::io::commit(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Render a chart to `path`, choosing SVG or PNG by the extension.
pub fn save<C: Chart>(chart: &C, path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => crate::io::write_atomic(path, to_svg(chart)?.as_bytes()),
        Some("png") => save_png(chart, path),
        other => Err(DdpmError::InvalidInput {
            field: "path",
            message: format!("unsupported chart extension {other:?}; use .svg or .png"),
        }),
    }
}

/// Encode an animation as a looping GIF in memory, each frame shown `frame_delay_ms`
/// (GIF counts in hundredths of a second, so the delay is rounded to 10 ms).
pub fn gif_bytes<A: Animation>(animation: &A, frame_delay_ms: u32) -> Result<Vec<u8>> {
    ensure_font();
    let name = animation.name();
    let (width, height) = animation.size();
    let (w16, h16) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(plot_error(name, "a GIF side must be below 65536 pixels")),
    };
    let delay = u16::try_from(frame_delay_ms.div_ceil(10)).unwrap_or(u16::MAX);
    let mut bytes = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut bytes, w16, h16, &[]).map_err(|e| plot_error(name, e))?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(|e| plot_error(name, e))?;
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        for i in 0..animation.frame_count() {
            {
                let root =
                    BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
                root.fill(&WHITE).map_err(|e| plot_error(name, e))?;
                animation
                    .draw_frame(i, &root)
                    .map_err(|e| plot_error(name, e))?;
                root.present().map_err(|e| plot_error(name, e))?;
            }
            // Speed 10 is plotters' own choice: a good palette at a tenth of the slowest's cost.
            let mut frame = gif::Frame::from_rgb_speed(w16, h16, &rgb, 10);
            frame.delay = delay;
            encoder
                .write_frame(&frame)
                .map_err(|e| plot_error(name, e))?;
        }
    }
    Ok(bytes)
}

/// Render an animation to a GIF file (looping), atomically. `frame_delay_ms` is the time each
/// frame is shown.
pub fn save_gif<A: Animation>(animation: &A, path: &Path, frame_delay_ms: u32) -> Result<()> {
    crate::io::write_atomic(path, &gif_bytes(animation, frame_delay_ms)?)
}

/// Render a single frame of an animation as SVG (for a still in a notebook or a test).
pub fn frame_to_svg<A: Animation>(animation: &A, index: usize) -> Result<String> {
    ensure_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, animation.size()).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| plot_error(animation.name(), e))?;
        animation
            .draw_frame(index, &root)
            .map_err(|e| plot_error(animation.name(), e))?;
        root.present()
            .map_err(|e| plot_error(animation.name(), e))?;
    }
    Ok(svg)
}
