//! Sizes that keep every chart legible where learners read it, and text that wraps instead of
//! running off the edge.
//!
//! A notebook scales a chart down to its cell's width. The narrowest cell readers meet is
//! JupyterLab's at a 1024 px window with the file browser open, about [`NARROW_CELL_PX`] wide; a
//! chart `w` px wide is shown there at `590 / w` of its size. Every chart is therefore at most
//! [`MAX_CHART_WIDTH`] wide, so that its smallest text ([`LABEL_SIZE`]) still shows at
//! [`MIN_SCREEN_TEXT_PX`] or more. Panel grids get there by shrinking panels down to a minimum
//! and then wrapping into more rows; titles and captions wrap onto more lines when they would
//! not fit.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FAMILY, ensure_font};

/// Width of the narrowest notebook cell charts are read in, in screen pixels (JupyterLab 4 at a
/// 1024 px window with the file browser open, measured).
pub const NARROW_CELL_PX: u32 = 590;
/// The smallest text a reader should have to read there, in screen pixels.
pub const MIN_SCREEN_TEXT_PX: u32 = 9;

/// Size of a figure's title, as plotters counts font sizes.
pub const TITLE_SIZE: u32 = 28;
/// Size of a panel's caption.
pub const CAPTION_SIZE: u32 = 23;
/// Size of tick labels and legends: the smallest text of any chart.
pub const LABEL_SIZE: u32 = 20;

/// plotters' SVG backend writes a font of size `s` as `font-size = s / 1.24` (its
/// `draw_text`): the em a browser draws is that much smaller than the nominal size. In
/// hundredths, for integer constants.
const SVG_EM_PERCENT: u32 = 100 * 100 / 124;

/// The widest a chart is drawn: [`LABEL_SIZE`] text, as the SVG draws it, scaled into
/// [`NARROW_CELL_PX`], stays at [`MIN_SCREEN_TEXT_PX`] or more (1045 px).
pub const MAX_CHART_WIDTH: u32 =
    LABEL_SIZE * SVG_EM_PERCENT * NARROW_CELL_PX / (100 * MIN_SCREEN_TEXT_PX);

/// Margin around a panel's plot (none above it: its caption is there).
pub const PANEL_MARGIN: u32 = 8;
/// Room for a panel's x tick labels.
pub const X_LABEL_AREA: u32 = 36;
/// Room for a panel's y tick labels.
pub const Y_LABEL_AREA: u32 = 54;

/// Height of a grid cell `panel` wide whose caption block is `caption_height` high, so that the
/// plot below the caption, inside its margins and label areas, is square: one data unit spans
/// the same pixels across and up.
pub fn square_cell_height(panel: u32, caption_height: u32) -> u32 {
    let plot = panel.saturating_sub(Y_LABEL_AREA + 2 * PANEL_MARGIN);
    caption_height + plot + X_LABEL_AREA + PANEL_MARGIN
}

/// How many tick labels an axis of a panel `width` px wide gets: five where they fit side by
/// side at [`LABEL_SIZE`] ("-2.0" is about 40 px), three in a narrow panel.
pub fn tick_count(width: u32) -> usize {
    if width < 270 { 3 } else { 5 }
}

/// Space above and below a block of text.
const TEXT_PAD: u32 = 5;
/// Space kept clear at the sides of a line of text.
const SIDE_MARGIN: u32 = 6;

/// How a figure's panels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Panels per row.
    pub columns: usize,
    /// Rows.
    pub rows: usize,
    /// Side of one panel's plot, in pixels.
    pub panel: u32,
}

impl Grid {
    /// `panels` panels in rows of `columns` of side `panel`, within [`MAX_CHART_WIDTH`]: panels
    /// shrink (down to `min_panel`) so the row fits, and rows wrap when even that is too wide.
    pub fn fit(panels: usize, columns: usize, panel: u32, min_panel: u32) -> Self {
        let columns = columns.clamp(1, panels.max(1));
        let shrunk = (MAX_CHART_WIDTH / columns as u32).clamp(min_panel.min(panel), panel);
        let columns = columns.min((MAX_CHART_WIDTH / shrunk).max(1) as usize);
        Self {
            columns,
            rows: panels.div_ceil(columns).max(1),
            // after wrapping, the panels take up the width the fewer columns leave
            panel: (MAX_CHART_WIDTH / columns as u32).min(panel),
        }
    }

    /// The width of the whole grid.
    pub fn width(&self) -> u32 {
        self.columns as u32 * self.panel
    }
}

/// A figure of captioned, square panels under a title: the [`Grid`], the wrapped title's
/// height, and each row's caption height (the tallest caption of the row, so the plots of a row
/// line up while a row of short captions stays compact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelFigure {
    /// The panels' grid.
    pub grid: Grid,
    title_height: u32,
    caption_heights: Vec<u32>,
}

impl PanelFigure {
    /// The layout of `captions.len()` panels in rows of `columns`, each `panel` px (shrinking
    /// to `min_panel` before wrapping, see [`Grid::fit`]), under `title`.
    pub fn new(
        title: &str,
        captions: &[String],
        columns: usize,
        panel: u32,
        min_panel: u32,
    ) -> Self {
        let grid = Grid::fit(captions.len(), columns, panel, min_panel);
        let caption_heights = (0..grid.rows)
            .map(|row| {
                captions
                    .iter()
                    .skip(row * grid.columns)
                    .take(grid.columns)
                    .map(|c| wrapped_height(c, CAPTION_SIZE, grid.panel))
                    .max()
                    .unwrap_or_else(|| text_height(1, CAPTION_SIZE))
            })
            .collect();
        Self {
            grid,
            title_height: wrapped_height(title, TITLE_SIZE, grid.width()),
            caption_heights,
        }
    }

    /// Width and height of the whole figure.
    pub fn size(&self) -> (u32, u32) {
        let rows: u32 = self
            .caption_heights
            .iter()
            .map(|&c| square_cell_height(self.grid.panel, c))
            .sum();
        (self.grid.width(), self.title_height + rows)
    }

    /// Draw `title` and return each panel's area with the height of its caption block, row by
    /// row.
    #[allow(clippy::type_complexity)]
    pub fn cells<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<Vec<(DrawingArea<DB, Shift>, u32)>, DrawingAreaErrorKind<DB::ErrorType>> {
        let body = draw_heading(root, title, TITLE_SIZE, self.title_height)?;
        let xs: Vec<i32> = (1..self.grid.columns)
            .map(|c| (c as u32 * self.grid.panel) as i32)
            .collect();
        let mut ys = Vec::new();
        let mut y = 0;
        for &c in &self.caption_heights[..self.caption_heights.len().saturating_sub(1)] {
            y += square_cell_height(self.grid.panel, c);
            ys.push(y as i32);
        }
        let areas = body.split_by_breakpoints(xs, ys);
        Ok(areas
            .into_iter()
            .enumerate()
            .map(|(i, area)| (area, self.caption_heights[i / self.grid.columns]))
            .collect())
    }
}

/// `text` broken into lines of at most `width` pixels at `size` (at spaces; a single word longer
/// than the line keeps its own line).
pub fn wrap(text: &str, size: u32, width: u32) -> Vec<String> {
    ensure_font();
    let font = (FAMILY, size).into_font();
    let fits = |s: &str| font.box_size(s).map_or(true, |(w, _)| w <= width);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if line.is_empty() || fits(&candidate) {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn line_height(size: u32) -> u32 {
    size * 6 / 5
}

/// Height of `lines` lines of text at `size`, with their padding.
pub fn text_height(lines: usize, size: u32) -> u32 {
    lines as u32 * line_height(size) + 2 * TEXT_PAD
}

/// Height of `text` wrapped into `width` at `size`, with padding.
pub fn wrapped_height(text: &str, size: u32, width: u32) -> u32 {
    text_height(
        wrap(text, size, width.saturating_sub(2 * SIDE_MARGIN)).len(),
        size,
    )
}

/// Draw `text` centred at the top of `area`, wrapped to its width, in a block `height` pixels
/// high (from [`wrapped_height`], so that panels side by side keep their plots aligned); returns
/// the area below the block.
pub fn draw_heading<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    size: u32,
    height: u32,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, _) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, size).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    let lines = wrap(text, size, width.saturating_sub(2 * SIDE_MARGIN));
    for (i, line) in lines.iter().enumerate() {
        let y = TEXT_PAD + i as u32 * line_height(size);
        area.draw_text(line, &style, ((width / 2) as i32, y as i32))?;
    }
    Ok(area.split_vertically(height).1)
}

/// [`draw_heading`] for a figure's title over the whole of `root`.
pub fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, _) = root.dim_in_pixel();
    draw_heading(
        root,
        title,
        TITLE_SIZE,
        wrapped_height(title, TITLE_SIZE, width),
    )
}

/// The smallest text of an SVG chart as a reader sees it in a cell `cell_px` wide: the smallest
/// `font-size` times the scale the cell shows the chart at (never above 1: a chart narrower
/// than the cell is shown at its own size). `None` for a document without text.
pub fn smallest_text_on_screen(svg: &str, cell_px: u32) -> Option<f64> {
    let width: f64 = attribute(svg.get(svg.find("<svg")?..)?, "width")?
        .parse()
        .ok()?;
    let smallest = svg
        .match_indices("font-size=\"")
        .filter_map(|(at, key)| {
            let rest = &svg[at + key.len()..];
            rest[..rest.find('"')?]
                .trim_end_matches("px")
                .parse::<f64>()
                .ok()
        })
        .fold(f64::INFINITY, f64::min);
    smallest
        .is_finite()
        .then(|| smallest * (f64::from(cell_px) / width).min(1.0))
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let from = tag.find(&key)? + key.len();
    Some(&tag[from..from + tag[from..].find('"')?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{
        Arrow, Bounds, Chart, FieldPanel, Panel, REAL, ScatterPanels, VectorField, to_svg,
    };

    #[test]
    fn grids_shrink_panels_then_wrap_rows_to_stay_within_the_width() {
        // Two panels of 420 fit as they are.
        assert_eq!(
            Grid::fit(2, 2, 420, 200),
            Grid {
                columns: 2,
                rows: 1,
                panel: 420
            }
        );
        // Four of 300 would be 1200 px: they shrink to fit one row.
        let four = Grid::fit(4, 4, 300, 200);
        assert_eq!((four.columns, four.rows), (4, 1));
        assert!(
            four.width() <= MAX_CHART_WIDTH && four.panel >= 260,
            "{four:?}"
        );
        // Ten in a row would need 104 px panels: they stop at 200 and wrap into two rows.
        assert_eq!(
            Grid::fit(10, 10, 300, 200),
            Grid {
                columns: 5,
                rows: 2,
                panel: 209
            }
        );
        // More columns than panels asks for no empty columns.
        assert_eq!(Grid::fit(1, 4, 300, 200).columns, 1);
    }

    #[test]
    fn wrapped_lines_fit_their_width_and_keep_every_word() {
        let text = "Real vs generated: 1-NN acc. 0.53 (real 0.50), ED 1.2x floor; untrained: 1-NN acc. 1.00, ED 480x floor";
        let lines = wrap(text, TITLE_SIZE, 400);
        assert!(lines.len() >= 3, "{lines:?}");
        let font = (FAMILY, TITLE_SIZE).into_font();
        for line in &lines {
            assert!(font.box_size(line).unwrap().0 <= 400, "{line}");
        }
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("short", TITLE_SIZE, 400), ["short"]);
        assert_eq!(wrap("", TITLE_SIZE, 400), [""]);
    }

    fn ring(n: usize, r: f32) -> Vec<[f32; 2]> {
        (0..n)
            .map(|i| {
                let a = i as f32 * 0.37;
                [r * a.cos(), r * a.sin()]
            })
            .collect()
    }

    /// The widest charts the tutorial draws, each with a long title, read in the narrowest cell.
    #[test]
    fn wide_charts_keep_their_text_legible_in_a_590_px_cell() {
        let long = "Forward process q(x_t | x_0): spirals dissolving into noise (cosine schedule), ten steps";
        let panels = (0..10).map(|i| {
            Panel::new(
                format!("t = {}  alpha-bar = 0.{i}21", i * 100),
                ring(200, 1.0),
                REAL,
            )
        });
        let scatter = ScatterPanels::grid(long, panels, 10);
        let field = VectorField {
            title: long.into(),
            panels: (0..4)
                .map(|i| FieldPanel {
                    title: format!("score at t = {}", i * 250),
                    arrows: vec![
                        Arrow {
                            at: [0.0, 0.0],
                            direction: [1.0, 0.5],
                        },
                        Arrow {
                            at: [0.5, 0.0],
                            direction: [0.1, 0.0],
                        },
                    ],
                })
                .collect(),
            background: ring(100, 1.0),
            bounds: Bounds { half: 2.0 },
            columns: 4,
        };
        let svgs = [
            (scatter.size(), to_svg(&scatter).unwrap()),
            (field.size(), to_svg(&field).unwrap()),
        ];
        for ((width, _), svg) in &svgs {
            assert!(*width <= MAX_CHART_WIDTH, "{width}");
            let px = smallest_text_on_screen(svg, NARROW_CELL_PX).unwrap();
            assert!(px >= f64::from(MIN_SCREEN_TEXT_PX), "{px:.1} px");
        }
        // The check itself: the same chart drawn 1500 px wide would fail it.
        let (w, _) = svgs[0].0;
        let wide = svgs[0]
            .1
            .replacen(&format!("width=\"{w}\""), "width=\"1500\"", 1);
        assert!(smallest_text_on_screen(&wide, NARROW_CELL_PX).unwrap() < 9.0);
    }

    #[test]
    fn a_thinned_panel_keeps_every_kth_point_with_its_label() {
        let points: Vec<[f32; 2]> = (0..1000).map(|i| [i as f32, 0.0]).collect();
        let labels: Vec<usize> = (0..1000).map(|i| i % 7).collect();
        let thin = Panel::by_class("p", points.clone(), labels).with_at_most(500);
        assert_eq!(thin.points.len(), 500);
        assert_eq!(thin.points[1], [2.0, 0.0]);
        assert_eq!(thin.labels[1], 2);
        // Spread over the whole range, not the first half.
        assert_eq!(thin.points[499], [998.0, 0.0]);
        let untouched = Panel::new("q", points[..300].to_vec(), REAL).with_at_most(500);
        assert_eq!(untouched.points.len(), 300);
        assert_eq!(
            Panel::new("r", points.clone(), REAL)
                .with_at_most(300)
                .points
                .len(),
            250
        );
    }

    #[test]
    fn points_outside_the_window_are_counted_in_the_caption() {
        let bounds = Bounds { half: 1.0 };
        let panel = Panel::new("samples", vec![[0.0, 0.0], [5.0, 0.0], [0.0, -3.0]], REAL);
        assert_eq!(panel.outside(bounds), 2);
        assert_eq!(
            panel.caption(bounds),
            "samples (2 of 3 outside, at the edge)"
        );
        assert_eq!(bounds.clamp([5.0, -0.5]), [1.0, -0.5]);
        assert_eq!(
            Panel::new("in", vec![[0.5, 0.5]], REAL).caption(bounds),
            "in"
        );
    }
}
