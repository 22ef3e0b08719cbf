//! The font every chart is drawn with, and SVG to PNG with it.
//!
//! A notebook shows a chart's SVG where it can, but an untrusted notebook (one that was
//! downloaded or cloned), VS Code, static renderers and GitHub show only bitmaps. Each inline
//! chart therefore also carries a PNG, rasterised by resvg from the very same SVG, so both views
//! show the same drawing. It is drawn at twice the SVG's size: scaled down into a notebook cell,
//! its text stays sharp on ordinary and high-density screens.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use crate::{DdpmError, Result};

/// DejaVu Sans (Bitstream Vera licence, see `assets/`), embedded so that charts render the same
/// on a machine without any system fonts.
pub(crate) static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name charts ask for; it resolves to [`FONT`] in both renderers.
pub(crate) const FAMILY: &str = "sans-serif";

/// How much larger than the SVG the PNG beside it is drawn.
pub const PNG_SCALE: f32 = 2.0;

fn font_database() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        Arc::new(db)
    })
    .clone()
}

fn raster_error(message: impl std::fmt::Display) -> DdpmError {
    DdpmError::Plot {
        chart: "png",
        message: message.to_string(),
    }
}

/// Rasterise an SVG document to PNG bytes at `scale` times its size, on white.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(DdpmError::invalid(
            "scale",
            scale,
            "must be finite and above 0",
        ));
    }
    let options = usvg::Options {
        fontdb: font_database(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(raster_error)?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| raster_error("the scaled size is empty or too large"))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| raster_error(format!("cannot allocate {size:?} pixels")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(raster_error)
}
