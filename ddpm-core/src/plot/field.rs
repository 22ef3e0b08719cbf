//! Charts of functions over the plane and over time: a vector field and a heatmap.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::charts::{Bounds, REAL};
use super::layout::{self, CAPTION_SIZE, LABEL_SIZE, PanelFigure};
use super::{Chart, DrawResult, FAMILY};

/// One arrow of a vector field: where it starts and where it points (in data units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrow {
    /// The base point.
    pub at: [f32; 2],
    /// The vector.
    pub direction: [f32; 2],
}

/// One panel of a [`VectorField`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPanel {
    /// Title above the panel.
    pub title: String,
    /// The arrows.
    pub arrows: Vec<Arrow>,
}

/// Vector fields over the plane, one panel each, over faint background points (e.g. the data).
/// Arrows are scaled per panel so that the median length spans half a grid cell, and capped at
/// one cell: fields like a score, huge far from the data and small on it, keep their directions
/// readable everywhere. The magnitude the cap hides is shown by colour: from light (a tenth of
/// the panel's median or less) to dark (ten times it or more), on a log scale.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorField {
    /// Title over the figure.
    pub title: String,
    /// The panels, row by row.
    pub panels: Vec<FieldPanel>,
    /// Points drawn faintly under every panel.
    pub background: Vec<[f32; 2]>,
    /// The shared window.
    pub bounds: Bounds,
    /// Panels per row.
    pub columns: usize,
}

const PANEL: u32 = 380;
/// The smallest side a field panel shrinks to before the grid wraps.
const MIN_PANEL: u32 = 300;

/// The arrow colour for a length `ratio` times the panel's median: light orange at 1/10 or less
/// through to dark red at 10x or more, on a log scale.
fn magnitude_color(ratio: f32) -> RGBColor {
    let f = ((ratio.max(1e-6).log10() + 1.0) / 2.0).clamp(0.0, 1.0);
    let mix = |a: f32, b: f32| (a + (b - a) * f).round() as u8;
    RGBColor(mix(253.0, 127.0), mix(174.0, 0.0), mix(97.0, 0.0))
}

/// Spacing of a regular grid of arrows (the smallest gap between distinct bases).
fn grid_spacing(arrows: &[Arrow], fallback: f32) -> f32 {
    let mut xs: Vec<f32> = arrows.iter().map(|a| a.at[0]).collect();
    xs.sort_by(f32::total_cmp);
    xs.dedup();
    xs.windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f32::INFINITY, f32::min)
        .min(fallback)
}

fn field_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &FieldPanel,
    background: &[[f32; 2]],
    bounds: Bounds,
    caption_height: u32,
) -> DrawResult<DB> {
    let range = -bounds.half..bounds.half;
    let plot = layout::draw_heading(area, &panel.title, CAPTION_SIZE, caption_height)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(layout::PANEL_MARGIN)
        .margin_top(0)
        .x_label_area_size(layout::X_LABEL_AREA)
        .y_label_area_size(layout::Y_LABEL_AREA)
        .build_cartesian_2d(range.clone(), range)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .label_style((FAMILY, LABEL_SIZE))
        .x_labels(layout::tick_count(area.dim_in_pixel().0))
        .y_labels(layout::tick_count(area.dim_in_pixel().0))
        .draw()?;
    chart.draw_series(
        background
            .iter()
            .map(|p| Circle::new((p[0], p[1]), 1, REAL.mix(0.25).filled())),
    )?;
    let mut lengths: Vec<f32> = panel
        .arrows
        .iter()
        .map(|a| a.direction[0].hypot(a.direction[1]))
        .filter(|l| l.is_finite() && *l > 0.0)
        .collect();
    if lengths.is_empty() {
        return Ok(());
    }
    lengths.sort_by(f32::total_cmp);
    let median = lengths[lengths.len() / 2];
    let cell = grid_spacing(&panel.arrows, bounds.half / 5.0);
    let scale = 0.5 * cell / median;
    for a in &panel.arrows {
        let length = a.direction[0].hypot(a.direction[1]);
        if !(length.is_finite() && length > 0.0) {
            continue;
        }
        let style = magnitude_color(length / median).stroke_width(2);
        let shrink = (length * scale).min(0.9 * cell) / length;
        let (dx, dy) = (a.direction[0] * shrink, a.direction[1] * shrink);
        let tip = (a.at[0] + dx, a.at[1] + dy);
        // The head: two strokes at +-28 degrees back from the tip, 40 % of the shaft long.
        let (c, s) = (0.883f32, 0.469f32);
        let (bx, by) = (-dx * 0.4, -dy * 0.4);
        let left = (tip.0 + c * bx - s * by, tip.1 + s * bx + c * by);
        let right = (tip.0 + c * bx + s * by, tip.1 - s * bx + c * by);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(a.at[0], a.at[1]), tip],
            style,
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![left, tip, right],
            style,
        )))?;
    }
    Ok(())
}

impl VectorField {
    /// The figure's layout: at most [`layout::MAX_CHART_WIDTH`] wide, captions wrapped.
    pub fn layout(&self) -> PanelFigure {
        let captions: Vec<String> = self.panels.iter().map(|p| p.title.clone()).collect();
        PanelFigure::new(&self.title, &captions, self.columns, PANEL, MIN_PANEL)
    }
}

impl Chart for VectorField {
    fn name(&self) -> &'static str {
        "vector_field"
    }

    fn size(&self) -> (u32, u32) {
        self.layout().size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let cells = self.layout().cells(root, &self.title)?;
        for ((area, caption_height), panel) in cells.iter().zip(&self.panels) {
            field_panel(area, panel, &self.background, self.bounds, *caption_height)?;
        }
        Ok(())
    }
}

/// A matrix of values as coloured cells (blue negative, white zero, red positive), row 0 at the
/// top: e.g. the sinusoidal time embedding, one row per timestep.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Title over the chart.
    pub title: String,
    /// The rows; all as long as the first.
    pub values: Vec<Vec<f32>>,
    /// What the columns are.
    pub x_desc: String,
    /// What the rows are.
    pub y_desc: String,
    /// Label of each row's position (e.g. its timestep), for the y axis; empty for indices.
    pub row_labels: Vec<f32>,
}

/// A diverging colour for `v` in `[-1, 1]`: blue, white, red.
fn diverging(v: f32) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, f: f32| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    let (end, f) = if v < 0.0 {
        ((33u8, 102u8, 172u8), -v)
    } else {
        ((178u8, 24u8, 43u8), v)
    };
    RGBColor(mix(247, end.0, f), mix(247, end.1, f), mix(247, end.2, f))
}

impl Chart for Heatmap {
    fn name(&self) -> &'static str {
        "heatmap"
    }

    fn size(&self) -> (u32, u32) {
        (900, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let rows = self.values.len();
        let columns = self.values.first().map_or(0, Vec::len);
        let peak = self
            .values
            .iter()
            .flatten()
            .map(|v| v.abs())
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max)
            .max(1e-12);
        let labels = self.row_labels.clone();
        let area = layout::titled(root, &self.title)?;
        let (width, _) = area.dim_in_pixel();
        let (main, bar) = area.split_horizontally(width.saturating_sub(COLOUR_BAR_WIDTH));
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .x_label_area_size(52)
            .y_label_area_size(75)
            .build_cartesian_2d(0f32..columns.max(1) as f32, rows.max(1) as f32..0f32)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .y_label_formatter(&|v| {
                let i = (*v as usize).min(labels.len().saturating_sub(1));
                match labels.get(i) {
                    Some(label) => format!("{label:.0}"),
                    None => format!("{v:.0}"),
                }
            })
            .label_style((FAMILY, LABEL_SIZE))
            .axis_desc_style((FAMILY, CAPTION_SIZE))
            .draw()?;
        // One pixel of the plot shows the cell under it: every row is drawn, however many there
        // are (a strided subset of a fast-oscillating feature would alias into false stripes),
        // as one bitmap rather than a rectangle per cell.
        let (w, h) = chart.plotting_area().dim_in_pixel();
        if rows > 0 && columns > 0 && w > 0 && h > 0 {
            let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
            for y in 0..h as usize {
                let row = &self.values[y * rows / h as usize];
                for x in 0..w as usize {
                    let c = diverging(row[(x * columns / w as usize).min(row.len() - 1)] / peak);
                    rgb.extend_from_slice(&[c.0, c.1, c.2]);
                }
            }
            if let Some(image) = BitMapElement::with_owned_buffer((0.0, 0.0), (w, h), rgb) {
                chart.draw_series(std::iter::once(image))?;
            }
        }
        colour_bar(&bar, peak)
    }
}

/// Width of the colour bar beside a heatmap, its labels included.
const COLOUR_BAR_WIDTH: u32 = 110;

/// The diverging scale from -peak (blue) through 0 (white) to +peak (red), as a vertical bar.
fn colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, peak: f32) -> DrawResult<DB> {
    // The labels go right of the bar, clear of the heatmap.
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .margin_left(6)
        .x_label_area_size(52)
        .right_y_label_area_size(66)
        .build_cartesian_2d(0f32..1f32, -peak..peak)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style((FAMILY, LABEL_SIZE))
        .draw()?;
    let (w, h) = chart.plotting_area().dim_in_pixel();
    if w > 0 && h > 1 {
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h {
            let c = diverging(1.0 - 2.0 * y as f32 / (h - 1) as f32);
            for _ in 0..w {
                rgb.extend_from_slice(&[c.0, c.1, c.2]);
            }
        }
        if let Some(image) = BitMapElement::with_owned_buffer((0.0, peak), (w, h), rgb) {
            chart.draw_series(std::iter::once(image))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_colours_run_blue_white_red() {
        assert_eq!(diverging(0.0), RGBColor(247, 247, 247));
        assert_eq!(diverging(-1.0), RGBColor(33, 102, 172));
        assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(7.0), diverging(1.0));
    }

    #[test]
    fn grid_spacing_is_the_smallest_gap() {
        let arrows: Vec<Arrow> = [0.0f32, 0.5, 1.0]
            .iter()
            .map(|&x| Arrow {
                at: [x, 0.0],
                direction: [1.0, 0.0],
            })
            .collect();
        assert_eq!(grid_spacing(&arrows, 10.0), 0.5);
        assert_eq!(grid_spacing(&arrows[..1], 10.0), 10.0);
    }

    #[test]
    fn a_heatmap_is_one_bitmap_of_every_row_with_its_colour_scale() {
        // 1000 rows of a feature that flips sign every row: drawn cell by cell it would be
        // 64000 rectangles; as one bitmap the SVG stays small.
        let values: Vec<Vec<f32>> = (0..1000)
            .map(|r| {
                (0..64)
                    .map(|c| if (r + c) % 2 == 0 { 1.0 } else { -1.0 })
                    .collect()
            })
            .collect();
        let heatmap = Heatmap {
            title: "checks".into(),
            values,
            x_desc: "feature".into(),
            y_desc: "row".into(),
            row_labels: Vec::new(),
        };
        let svg = crate::plot::to_svg(&heatmap).unwrap();
        assert_eq!(
            svg.matches("<image").count(),
            2,
            "the cells and the colour bar"
        );
        assert_eq!(svg.matches("\"data:image/png;base64,").count(), 2);
        assert!(svg.matches("<rect").count() < 20);
        assert!(svg.len() < 400_000, "{} bytes", svg.len());
        let rgb = crate::plot::to_rgb(&heatmap).unwrap();
        let red = rgb.chunks(3).filter(|p| p[0] > 150 && p[1] < 60).count();
        let blue = rgb.chunks(3).filter(|p| p[2] > 150 && p[0] < 60).count();
        assert!(
            red > 10_000 && blue > 10_000,
            "{red} red, {blue} blue pixels"
        );
        // The PNG beside the SVG (rasterised by resvg, which must decode the embedded bitmap).
        let (rgba, ..) = crate::raster::render(&svg, 1.0).unwrap();
        let red = rgba.chunks(4).filter(|p| p[0] > 150 && p[1] < 60).count();
        assert!(red > 10_000, "{red} red pixels in the rasterised SVG");
    }
}
