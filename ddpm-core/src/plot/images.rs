//! Figures of images: titled grids (rows of tiles, with row and column labels) and grids
//! animated over the reverse process. Tiles are blitted as bitmaps by plotters, which also
//! sets the text; [`png_bytes`] encodes the result with the `image` crate.

use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;

use super::{Animation, Chart, DrawResult, FAMILY};
use crate::data::ImageShape;
use crate::data::images::to_pixel;
use crate::display::Png;
use crate::error::{DdpmError, Result};

/// One image to show: pixels 0-255, channel-major (`[channels, height, width]`).
pub type Tile = Vec<u8>;

/// A tile from values in [-1, 1] (the model's range), clamped.
pub fn tile_from_unit(values: &[f32]) -> Tile {
    values.iter().map(|&v| to_pixel(v)).collect()
}

/// A grid of images with a title, a label per row and per column (either may be empty), and
/// optionally a wider gap after some column (to set real images apart from generated ones).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    /// Figure title.
    pub title: String,
    /// Rows of tiles; rows may be shorter than the longest.
    pub rows: Vec<Vec<Tile>>,
    /// One label per row, left of it (empty: none).
    pub row_labels: Vec<String>,
    /// One label per column, above it (empty: none).
    pub column_labels: Vec<String>,
    /// The shape of every tile.
    pub shape: ImageShape,
    /// Screen pixels per image pixel.
    pub scale: u32,
    /// A wide gap after this many columns.
    pub split_after: Option<usize>,
}

const GAP: u32 = 6;
const SPLIT_GAP: u32 = 16;
const TITLE_HEIGHT: u32 = 30;
const LABEL_HEIGHT: u32 = 18;
const MARGIN: u32 = 8;

impl ImageGrid {
    /// A grid of `rows` of `shape` images, each pixel drawn `scale` times as large.
    pub fn new(
        title: impl Into<String>,
        shape: ImageShape,
        rows: Vec<Vec<Tile>>,
        scale: u32,
    ) -> Self {
        Self {
            title: title.into(),
            rows,
            row_labels: Vec::new(),
            column_labels: Vec::new(),
            shape,
            scale: scale.max(1),
            split_after: None,
        }
    }

    /// With a label per row.
    pub fn with_row_labels(mut self, labels: Vec<String>) -> Self {
        self.row_labels = labels;
        self
    }

    /// With a label per column.
    pub fn with_column_labels(mut self, labels: Vec<String>) -> Self {
        self.column_labels = labels;
        self
    }

    /// With a wide gap after `columns` columns.
    pub fn with_split_after(mut self, columns: usize) -> Self {
        self.split_after = Some(columns);
        self
    }

    fn columns(&self) -> usize {
        self.rows.iter().map(Vec::len).max().unwrap_or(0)
    }

    fn tile_size(&self) -> (u32, u32) {
        (
            self.shape.width as u32 * self.scale,
            self.shape.height as u32 * self.scale,
        )
    }

    fn left(&self) -> u32 {
        let longest = self
            .row_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0);
        MARGIN
            + if longest > 0 {
                8 * longest as u32 + 8
            } else {
                0
            }
    }

    fn top(&self) -> u32 {
        TITLE_HEIGHT
            + if self.column_labels.is_empty() {
                0
            } else {
                LABEL_HEIGHT
            }
    }

    /// The x of column `c`'s left edge.
    fn column_x(&self, c: usize) -> u32 {
        let (w, _) = self.tile_size();
        let split = match self.split_after {
            Some(after) if c >= after => SPLIT_GAP,
            _ => 0,
        };
        self.left() + c as u32 * (w + GAP) + split
    }

    /// Check that every tile has the grid's shape (a malformed grid is an error, not a
    /// panic while drawing).
    pub fn validate(&self) -> Result<()> {
        let size = self.shape.size();
        if size == 0 || !matches!(self.shape.channels, 1 | 3) {
            return Err(DdpmError::InvalidInput {
                field: "shape",
                message: format!("tiles must be grey or RGB with pixels, got {}", self.shape),
            });
        }
        for (r, row) in self.rows.iter().enumerate() {
            if let Some(c) = row.iter().position(|t| t.len() != size) {
                return Err(DdpmError::InvalidInput {
                    field: "rows",
                    message: format!(
                        "tile ({r}, {c}) has {} values, the shape {} needs {size}",
                        row[c].len(),
                        self.shape
                    ),
                });
            }
        }
        Ok(())
    }

    /// Tile `tile` as an RGB buffer of the displayed size.
    fn tile_rgb(&self, tile: &[u8]) -> Vec<u8> {
        let ImageShape {
            channels,
            height,
            width,
        } = self.shape;
        let scale = self.scale as usize;
        let mut rgb = Vec::with_capacity(width * height * scale * scale * 3);
        for y in 0..height * scale {
            for x in 0..width * scale {
                let (py, px) = (y / scale, x / scale);
                let at = |c: usize| tile[c * height * width + py * width + px];
                if channels == 3 {
                    rgb.extend([at(0), at(1), at(2)]);
                } else {
                    // dark ink on white paper, as digits are usually shown
                    let v = 255 - at(0);
                    rgb.extend([v, v, v]);
                }
            }
        }
        rgb
    }

    /// The grid as a PNG image (encoded by the `image` crate), to save or show inline.
    pub fn to_png(&self) -> Result<Png> {
        self.validate()?;
        png_bytes(self).map(Png)
    }
}

impl Chart for ImageGrid {
    fn name(&self) -> &'static str {
        "image grid"
    }

    fn size(&self) -> (u32, u32) {
        let (w, h) = self.tile_size();
        let columns = self.columns().max(1);
        let width = self.column_x(columns - 1) + w + MARGIN;
        let width = width.max(8 * self.title.chars().count() as u32 + 2 * MARGIN);
        let height = self.top() + self.rows.len() as u32 * (h + GAP) + MARGIN;
        (width, height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, h) = self.tile_size();
        let title = (FAMILY, 17).into_font().color(&BLACK);
        root.draw(&Text::new(self.title.clone(), (MARGIN as i32, 7), title))?;
        let label = (FAMILY, 13).into_font().color(&RGBColor(60, 60, 60));
        for (c, text) in self.column_labels.iter().enumerate() {
            let x = self.column_x(c) as i32;
            root.draw(&Text::new(
                text.clone(),
                (x, TITLE_HEIGHT as i32),
                label.clone(),
            ))?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let y = (self.top() + r as u32 * (h + GAP)) as i32;
            if let Some(text) = self.row_labels.get(r) {
                root.draw(&Text::new(
                    text.clone(),
                    (MARGIN as i32, y + h as i32 / 2 - 7),
                    label.clone(),
                ))?;
            }
            for (c, tile) in row.iter().enumerate() {
                let x = self.column_x(c) as i32;
                if let Some(bitmap) =
                    BitMapElement::with_owned_buffer((x, y), (w, h), self.tile_rgb(tile))
                {
                    root.draw(&bitmap)?;
                }
                // a hairline frame, so that white paper stands apart from the page
                root.draw(&Rectangle::new(
                    [(x - 1, y - 1), (x + w as i32, y + h as i32)],
                    RGBColor(190, 190, 190).stroke_width(1),
                ))?;
            }
        }
        Ok(())
    }
}

/// One grid per recorded step of the reverse process, shown in turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAnimation {
    /// The frames, all of one size (same rows, columns and labels).
    pub frames: Vec<ImageGrid>,
}

impl Animation for ImageAnimation {
    fn name(&self) -> &'static str {
        "image animation"
    }

    fn size(&self) -> (u32, u32) {
        self.frames.first().map_or((1, 1), Chart::size)
    }

    fn frame_count(&self) -> usize {
        self.frames.len()
    }

    fn draw_frame<DB: DrawingBackend>(
        &self,
        index: usize,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        self.frames[index].draw(root)
    }
}

/// Any chart as PNG bytes: drawn into an RGB buffer by plotters, encoded by the `image` crate.
pub fn png_bytes<C: Chart>(chart: &C) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let (width, height) = chart.size();
    let rgb = super::to_rgb(chart)?;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&rgb, width, height, image::ColorType::Rgb8)
        .map_err(|e| DdpmError::Plot {
            chart: chart.name(),
            message: format!("PNG encoding failed: {e}"),
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> ImageGrid {
        let shape = ImageShape::new(1, 2, 2);
        // an all-ink tile and an empty one
        let rows = vec![vec![vec![255; 4], vec![0; 4]], vec![vec![255; 4]]];
        ImageGrid::new("t", shape, rows, 10)
            .with_row_labels(vec!["a".into(), "b".into()])
            .with_split_after(1)
    }

    #[test]
    fn tiles_land_where_the_layout_says_in_ink_on_paper() {
        let g = grid();
        let (width, _) = g.size();
        let rgb = crate::plot::to_rgb(&g).unwrap();
        let pixel = |x: u32, y: u32| {
            let i = ((y * width + x) * 3) as usize;
            [rgb[i], rgb[i + 1], rgb[i + 2]]
        };
        let centre = |r: u32, c: usize| (g.column_x(c) + 10, g.top() + r * (20 + GAP) + 10);
        let (x, y) = centre(0, 0);
        assert_eq!(pixel(x, y), [0, 0, 0], "full ink draws black");
        let (x, y) = centre(0, 1);
        assert_eq!(pixel(x, y), [255, 255, 255], "no ink draws white");
        let (x, y) = centre(1, 0);
        assert_eq!(pixel(x, y), [0, 0, 0]);
        // the split gap moves the second column right
        assert_eq!(g.column_x(1) - g.column_x(0), 20 + GAP + SPLIT_GAP);
    }

    #[test]
    fn png_decodes_to_the_grid_size_and_a_bad_tile_is_an_error() {
        let g = grid();
        let png = g.to_png().unwrap();
        let decoded = image::load_from_memory(png.bytes()).unwrap();
        assert_eq!((decoded.width(), decoded.height()), g.size());
        let mut bad = grid();
        bad.rows[1].push(vec![0; 3]);
        let err = bad.to_png().unwrap_err().to_string();
        assert!(err.contains("tile (1, 1)"), "{err}");
    }
}
