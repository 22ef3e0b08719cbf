//! The font every chart is drawn with, and SVG to PNG with it.
//!
//! A notebook shows a chart's SVG where it can, but an untrusted notebook (one that was
//! downloaded or cloned), VS Code, static renderers and GitHub show only bitmaps. Each inline
//! chart therefore also carries a PNG, rasterised by resvg from the very same SVG, so both views
//! show the same drawing. It is drawn at twice the SVG's size: scaled down into a notebook cell,
//! its text stays sharp on ordinary and high-density screens.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use crate::error::{DdpmError, Result};

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
    let (rgba, width, height) = render(svg, scale)?;
    encode_indexed(&rgba, width, height)
}

/// Rasterise an SVG document at `scale` times its size, on white: RGBA bytes, width, height.
pub(crate) fn render(svg: &str, scale: f32) -> Result<(Vec<u8>, u32, u32)> {
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
    Ok((pixmap.take(), size.width(), size.height()))
}

/// PNG with a palette of at most 256 colours: the exact colours when a chart has no more
/// (flat fills, lines and text mostly do), else NeuQuant's 256 (scatter plots, whose
/// translucent marks blend into many shades). On a white page alpha is always opaque. A chart
/// encoded so takes a third to a half of the bytes of RGBA, which matters in a notebook of
/// twenty charts; the quantisation error of a scatter's blended shades is not visible.
fn encode_indexed(rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut palette: Vec<[u8; 3]> = Vec::new();
    let mut index_of = std::collections::HashMap::new();
    let mut indices = Vec::with_capacity(rgba.len() / 4);
    for px in rgba.chunks_exact(4) {
        let rgb = [px[0], px[1], px[2]];
        let next = palette.len();
        let i = *index_of.entry(rgb).or_insert(next);
        if i == next {
            if next == 256 {
                break;
            }
            palette.push(rgb);
        }
        indices.push(i as u8);
    }
    let (palette, indices) = if indices.len() == rgba.len() / 4 {
        (palette.concat(), indices)
    } else {
        let quant = color_quant::NeuQuant::new(10, 256, rgba);
        let indices = rgba
            .chunks_exact(4)
            .map(|px| quant.index_of(px) as u8)
            .collect();
        (quant.color_map_rgb(), indices)
    };
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(palette);
        encoder.set_compression(png::Compression::Best);
        let mut writer = encoder.write_header().map_err(raster_error)?;
        writer.write_image_data(&indices).map_err(raster_error)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> Vec<u8> {
        let image = image::load_from_memory_with_format(png, image::ImageFormat::Png).unwrap();
        image.to_rgba8().into_raw()
    }

    #[test]
    fn few_colours_are_kept_exactly_and_many_are_quantised_closely() {
        // Two flat rectangles: three colours, kept exactly.
        let flat = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect x="0" y="0" width="20" height="20" fill="#1f77b4"/><rect x="20" y="5" width="10" height="10" fill="#ff7f0e"/></svg>"##;
        let (rgba, w, h) = render(flat, 2.0).unwrap();
        assert_eq!((w, h), (80, 40));
        assert_eq!(decode(&svg_to_png(flat, 2.0).unwrap()), rgba);
        // A smooth gradient has far more than 256 colours: NeuQuant's palette stays close.
        let gradient = r##"<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100"><defs><linearGradient id="g"><stop offset="0" stop-color="#2166ac"/><stop offset="0.5" stop-color="#f7f7f7"/><stop offset="1" stop-color="#b2182b"/></linearGradient></defs><rect width="300" height="100" fill="url(#g)"/></svg>"##;
        let (rgba, ..) = render(gradient, 2.0).unwrap();
        let quantised = decode(&svg_to_png(gradient, 2.0).unwrap());
        let mean_error = rgba
            .iter()
            .zip(&quantised)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / rgba.len() as f64;
        assert!(mean_error < 2.0, "mean error {mean_error} per channel");
    }
}
