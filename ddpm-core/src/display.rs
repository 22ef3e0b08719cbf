//! What a chart or a results table shows as: [`Svg`] (with a PNG beside it), [`Gif`] and
//! [`Table`], and their rich display in Jupyter notebooks run by the evcxr Rust kernel. The
//! charts (`plot`), the metrics and the samplers' step tables produce these; nothing here
//! depends on them.
//!
//! evcxr shows a cell's final value by calling its `evcxr_display` method, if it has one. That
//! method prints a block `EVCXR_BEGIN_CONTENT <mime type>` ... `EVCXR_END_CONTENT` on stdout,
//! which the kernel turns into a display bundle. The types here wrap what a chart renders to
//! (SVG text, GIF bytes) or a results table, so a notebook cell ends with `chart.show()?`.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use base64::Engine as _;

/// Print one display block, in a single write with stdout locked so that nothing interleaves.
fn emit(blocks: &[(&str, &str)]) {
    let mut text = String::new();
    for (mime, content) in blocks {
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT\n"
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// An SVG document, shown inline as `image/svg+xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svg(pub String);

impl Svg {
    /// Called by evcxr when a cell ends with an `Svg`: the SVG scaled to the cell's width
    /// ([`Svg::responsive`]), and beside it the same drawing as a PNG at twice the size
    /// ([`Svg::to_png`]). JupyterLab shows the SVG in a trusted notebook and the PNG in an
    /// untrusted one (a downloaded or cloned notebook shows no SVG at all); VS Code, static
    /// renderers and GitHub show the PNG.
    pub fn evcxr_display(&self) {
        let mut blocks = vec![("image/svg+xml", self.responsive())];
        match self.to_png() {
            Ok(png) => blocks.push((
                "image/png",
                base64::engine::general_purpose::STANDARD.encode(png),
            )),
            // The SVG alone still shows in a trusted notebook; say why the bitmap is missing.
            Err(e) => eprintln!("no PNG beside this chart: {e}"),
        }
        let blocks: Vec<(&str, &str)> = blocks.iter().map(|(m, c)| (*m, c.as_str())).collect();
        emit(&blocks);
    }

    /// The drawing as PNG bytes at [`crate::raster::PNG_SCALE`] times its size.
    pub fn to_png(&self) -> crate::error::Result<Vec<u8>> {
        crate::raster::svg_to_png(&self.0, crate::raster::PNG_SCALE)
    }

    /// The SVG with its fixed pixel size replaced by `width="100%"` and a `viewBox`, so that a
    /// notebook scales it down to the cell's width, keeping its aspect ratio, instead of
    /// cutting it off behind a scrollbar; `max-width` keeps it from growing past its drawn size.
    pub fn responsive(&self) -> String {
        let svg = &self.0;
        let Some(start) = svg.find("<svg") else {
            return svg.clone();
        };
        let Some(len) = svg[start..].find('>') else {
            return svg.clone();
        };
        let tag = &svg[start..start + len];
        let attr = |name: &str| -> Option<&str> {
            let key = format!(" {name}=\"");
            let from = tag.find(&key)? + key.len();
            Some(&tag[from..from + tag[from..].find('"')?])
        };
        let (Some(width), Some(height)) = (attr("width"), attr("height")) else {
            return svg.clone();
        };
        let (Ok(w), Ok(h)) = (width.parse::<f64>(), height.parse::<f64>()) else {
            return svg.clone();
        };
        let mut new_tag = tag
            .replacen(&format!(" width=\"{width}\""), " width=\"100%\"", 1)
            .replacen(&format!(" height=\"{height}\""), "", 1);
        if attr("viewBox").is_none() {
            new_tag.push_str(&format!(" viewBox=\"0 0 {w} {h}\""));
        }
        new_tag.push_str(&format!(
            " preserveAspectRatio=\"xMinYMin meet\" style=\"max-width: {w}px; height: auto\""
        ));
        format!("{}{new_tag}{}", &svg[..start], &svg[start + len..])
    }

    /// The SVG text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A GIF animation, shown inline as an HTML `<img>` with the GIF in a data URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gif(pub Vec<u8>);

impl Gif {
    /// Called by evcxr when a cell ends with a `Gif`. The animation travels as `text/html`
    /// rather than `image/gif`: JupyterLab shows it trusted or not, and static renderers
    /// (nbconvert, and the tools built on it) animate it too, where a bare `image/gif` output
    /// shows as the words "GIF animation" (jupyter/nbconvert#2270).
    pub fn evcxr_display(&self) {
        let summary = format!("GIF animation, {} bytes", self.0.len());
        emit(&[("text/html", &self.to_html()), ("text/plain", &summary)]);
    }

    /// An `<img>` tag that shows the animation at its own size, or narrower in a narrow cell.
    pub fn to_html(&self) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.0);
        format!(
            "<img src=\"data:image/gif;base64,{encoded}\" alt=\"animation\" style=\"max-width: 100%\">"
        )
    }

    /// The encoded GIF.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A PNG image, shown inline as `image/png` (image grids, whose pixels SVG would not keep
/// sharp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Png(pub Vec<u8>);

impl Png {
    /// Called by evcxr when a cell ends with a `Png`.
    pub fn evcxr_display(&self) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.0);
        let summary = format!("PNG image, {} bytes", self.0.len());
        emit(&[("image/png", &encoded), ("text/plain", &summary)]);
    }

    /// The encoded PNG.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A small table of results, shown as HTML in a notebook and as aligned text elsewhere
/// (`Display`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells, each as long as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row (padded or cut to the number of columns).
    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = row.into_iter().map(Into::into).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// The table as an HTML `<table>`, text escaped.
    pub fn to_html(&self) -> String {
        let cells = |tag: &str, row: &[String]| -> String {
            row.iter()
                .map(|c| format!("<{tag}>{}</{tag}>", escape_html(c)))
                .collect()
        };
        let mut html = format!(
            "<table><thead><tr>{}</tr></thead><tbody>",
            cells("th", &self.headers)
        );
        for row in &self.rows {
            html.push_str(&format!("<tr>{}</tr>", cells("td", row)));
        }
        html.push_str("</tbody></table>");
        html
    }

    /// The table as GitHub-flavoured markdown.
    pub fn to_markdown(&self) -> String {
        let line = |row: &[String]| format!("| {} |\n", row.join(" | "));
        let mut md = line(&self.headers);
        md.push_str(&line(&vec!["---".to_string(); self.headers.len()]));
        for row in &self.rows {
            md.push_str(&line(row));
        }
        md
    }

    /// Called by evcxr when a cell ends with a `Table`.
    pub fn evcxr_display(&self) {
        emit(&[
            ("text/html", &self.to_html()),
            ("text/plain", &self.to_string()),
        ]);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                std::iter::once(&self.headers[c])
                    .chain(self.rows.iter().map(|r| &r[c]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let write_row = |f: &mut fmt::Formatter<'_>, row: &[String]| -> fmt::Result {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            writeln!(f, "{}", cells.join("  ").trim_end())
        };
        write_row(f, &self.headers)?;
        write_row(
            f,
            &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
        )?;
        for row in &self.rows {
            write_row(f, row)?;
        }
        Ok(())
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_renders_html_markdown_and_text() {
        let mut table = Table::new(["run", "energy distance"]);
        table.push(["a<b", "0.0030"]);
        table.push(["short"]);
        assert!(table.to_html().contains("<td>a&lt;b</td>"));
        assert!(
            table
                .to_markdown()
                .starts_with("| run | energy distance |\n| --- | --- |\n")
        );
        let text = table.to_string();
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(2).unwrap().starts_with("a<b    0.0030"));
        // A short row is padded to the number of columns.
        assert_eq!(table.rows[1].len(), 2);
    }

    #[test]
    fn inline_svg_scales_to_the_cell_keeping_its_aspect_ratio() {
        let chart = crate::plot::LossCurve {
            per_step: vec![1.0, 0.5, 0.25],
            per_epoch: vec![0.6],
            title: "loss".into(),
        };
        use crate::plot::Chart as _;
        let (w, h) = chart.size();
        let svg = chart.show().unwrap();
        let shown = svg.responsive();
        let tag = &shown[shown.find("<svg").unwrap()..];
        let tag = &tag[..tag.find('>').unwrap()];
        assert!(tag.contains(r#" width="100%""#), "{tag}");
        assert!(!tag.contains(&format!(r#"width="{w}""#)), "{tag}");
        assert!(!tag.contains(" height="), "{tag}");
        assert!(tag.contains(&format!(r#"viewBox="0 0 {w} {h}""#)), "{tag}");
        assert!(tag.contains(&format!("max-width: {w}px")), "{tag}");
        // Only the root tag changes: the drawing itself is the same.
        let body = |s: &str| {
            s[s.find("<svg").unwrap()..]
                .split_once('>')
                .unwrap()
                .1
                .to_string()
        };
        assert_eq!(body(&shown), body(svg.as_str()));
        // Text without a sized root is passed through as it is.
        assert_eq!(Svg("<p>no svg</p>".into()).responsive(), "<p>no svg</p>");
    }
}
