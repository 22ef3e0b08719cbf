//! Charts with plotters. Each chart takes plain data (points, curves, losses), never a model or a
//! tensor, and one drawing function serves every target: SVG text for notebooks, PNG files, and
//! GIF animations.
//!
//! Text is laid out with an embedded DejaVu Sans font (see `assets/`), so charts render the same
//! on a machine without any system fonts.

mod charts;
mod field;
mod images;
pub mod layout;

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use charts::{
    Bounds, CLASS_COLORS, GENERATED, LossCurve, Marginals, PALETTE, Panel, REAL, SHOWN_PER_PANEL,
    ScatterPanels, ScheduleChart, ScheduleCurve, TimestepCurves, TrajectoryAnimation, density,
    moving_average,
};
pub use field::{Arrow, FieldPanel, Heatmap, VectorField};
pub use images::{ImageAnimation, ImageGrid, Tile, png_bytes, tile_from_unit};

use crate::display::{Gif, Svg};
use crate::error::{DdpmError, Result};

pub(crate) use crate::raster::FAMILY;
use crate::raster::FONT;

static REGISTER: Once = Once::new();

pub(crate) fn ensure_font() {
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
    // plotters labels an embedded bitmap `data:png;base64`, which is not a media type: browsers
    // may refuse it. `image/png` is what the data URI scheme expects.
    Ok(group_circles(&svg).replace("\"data:png;base64,", "\"data:image/png;base64,"))
}

/// plotters writes every filled circle of a scatter with its full style
/// (`<circle cx cy r opacity fill stroke stroke-width/>`), and a notebook holds tens of thousands
/// of them. Runs of circles that share a style become one `<g>` with that style (the opacity as
/// `fill-opacity`, which applies to each circle as `opacity` did, overlaps included) around bare
/// `<circle cx cy r/>`: the same picture in about a third of the bytes.
pub(crate) fn group_circles(svg: &str) -> String {
    /// `(cx cy r, style)` of a filled, unstroked circle line; `None` for anything else.
    fn split(line: &str) -> Option<(&str, &str)> {
        let body = line.strip_prefix("<circle ")?.strip_suffix("/>")?;
        let at = body.find(" opacity=\"")?;
        let (geometry, style) = body.split_at(at);
        style
            .contains(" stroke=\"none\"")
            .then(|| (geometry, style.trim_start()))
    }
    let mut out = String::with_capacity(svg.len() / 2);
    let mut open: Option<&str> = None;
    for line in svg.lines() {
        let circle = split(line);
        if open.is_some() && circle.map(|c| c.1) != open {
            out.push_str("</g>\n");
            open = None;
        }
        match circle {
            Some((geometry, style)) => {
                if open.is_none() {
                    out.push_str(&format!(
                        "<g {}>\n",
                        style.replacen("opacity=", "fill-opacity=", 1)
                    ));
                    open = Some(style);
                }
                out.push_str(&format!("<circle {geometry}/>\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if open.is_some() {
        out.push_str("</g>\n");
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_circles_draw_the_same_picture_in_fewer_bytes() {
        let points: Vec<[f32; 2]> = (0..400)
            .map(|i| {
                let a = i as f32 * 0.1;
                [a.cos() * (1.0 + a / 40.0), a.sin()]
            })
            .collect();
        let chart = ScatterPanels::grid(
            "scatter",
            [
                Panel::new("real", points.clone(), REAL),
                Panel::new("generated", points, GENERATED),
            ],
            2,
        );
        let mut plain = String::new();
        draw_on(
            &chart,
            SVGBackend::with_string(&mut plain, chart.size()).into_drawing_area(),
        )
        .unwrap();
        let grouped = group_circles(&plain);
        assert_eq!(
            plain.matches("<circle").count(),
            grouped.matches("<circle").count()
        );
        assert!(
            grouped.len() * 2 < plain.len(),
            "{} vs {}",
            grouped.len(),
            plain.len()
        );
        assert_eq!(
            grouped.matches("<g ").count(),
            grouped.matches("</g>").count()
        );
        // Rasterised, every pixel is the same: fill-opacity on the group is the circles' opacity.
        let (a, ..) = crate::raster::render(&plain, 1.0).unwrap();
        let (b, ..) = crate::raster::render(&grouped, 1.0).unwrap();
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        let differing = a.chunks(4).zip(b.chunks(4)).filter(|(x, y)| x != y).count();
        // Only rounding: a group's fill-opacity and each circle's opacity blend in different
        // orders at 8 bits per channel.
        assert!(
            worst <= 4,
            "largest channel difference {worst}, {differing} pixels differ"
        );
    }

    fn decode(png: &[u8]) -> Vec<u8> {
        let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap();
        image.to_rgba8().into_raw()
    }

    #[test]
    fn the_png_beside_a_chart_is_its_svg_at_twice_the_size_with_text() {
        let chart = LossCurve {
            per_step: vec![1.0, 0.5, 0.25],
            per_epoch: vec![0.6],
            title: "loss".into(),
        };
        let svg = chart.show().unwrap();
        let png = decode(&svg.to_png().unwrap());
        let (w, h) = chart.size();
        assert_eq!(png.len(), (4 * w * h * 4) as usize);
        // Text and lines drawn: a good share of dark pixels, on a white page.
        let dark = png
            .chunks(4)
            .filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100)
            .count();
        assert!(dark > 2000, "{dark} dark pixels");
        assert!(crate::raster::svg_to_png("<svg", 2.0).is_err());
        assert!(crate::raster::svg_to_png(svg.as_str(), 0.0).is_err());
    }
}
