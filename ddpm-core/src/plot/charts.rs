//! The tutorial's charts, each a plain-data struct implementing [`Chart`] or [`Animation`].

use plotters::coord::Shift;
use plotters::prelude::*;

use super::layout::{self, CAPTION_SIZE, LABEL_SIZE, PanelFigure};
use super::{Animation, Chart, DrawResult, FAMILY};

/// Colour of real data (matplotlib's first colour).
pub const REAL: RGBColor = RGBColor(31, 119, 180);
/// Colour of generated samples.
pub const GENERATED: RGBColor = RGBColor(255, 127, 14);
/// Colours of further series: the first six class colours.
pub const PALETTE: [RGBColor; 6] = [
    CLASS_COLORS[0],
    CLASS_COLORS[1],
    CLASS_COLORS[2],
    CLASS_COLORS[3],
    CLASS_COLORS[4],
    CLASS_COLORS[5],
];

/// A square plotting window `[-half, half]^2` shared by panels so they can be compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Half the side of the window.
    pub half: f32,
}

impl Bounds {
    /// A window that holds all of `points` with 10 % margin, and at least `[-min_half, min_half]^2`.
    pub fn covering(points: &[[f32; 2]], min_half: f32) -> Self {
        let extent = points
            .iter()
            .flat_map(|p| [p[0].abs(), p[1].abs()])
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max);
        Self {
            half: (extent * 1.1).max(min_half),
        }
    }

    fn range(&self) -> std::ops::Range<f32> {
        -self.half..self.half
    }
}

/// One scatter panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// The points.
    pub points: Vec<[f32; 2]>,
    /// Their colour.
    pub color: RGBColor,
    /// A class per point, to colour each by its class ([`CLASS_COLORS`]); empty: all in `color`.
    pub labels: Vec<usize>,
}

/// Colours of classes (matplotlib's tab10), by class index modulo 10.
pub const CLASS_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Scatter panels in a grid with shared axes: the forward process, the reverse process and real
/// vs generated are all this chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPanels {
    /// File-level name for errors (e.g. `"forward_process"`).
    pub name: &'static str,
    /// Title over the whole figure.
    pub title: String,
    /// The panels, row by row.
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
    /// The shared window.
    pub bounds: Bounds,
    /// Side of one panel in pixels.
    pub panel_size: u32,
}

impl Panel {
    /// A panel of `points` in `color`.
    pub fn new(title: impl Into<String>, points: Vec<[f32; 2]>, color: RGBColor) -> Self {
        Self {
            title: title.into(),
            points,
            color,
            labels: Vec::new(),
        }
    }

    /// A panel of `points`, each coloured by its class in `labels`.
    pub fn by_class(title: impl Into<String>, points: Vec<[f32; 2]>, labels: Vec<usize>) -> Self {
        Self {
            title: title.into(),
            points,
            color: REAL,
            labels,
        }
    }
}

impl ScatterPanels {
    /// Panels in rows of `columns`, 300 px each, in one window that covers every point.
    pub fn grid(
        title: impl Into<String>,
        panels: impl IntoIterator<Item = Panel>,
        columns: usize,
    ) -> Self {
        let panels: Vec<Panel> = panels.into_iter().collect();
        let all: Vec<[f32; 2]> = panels
            .iter()
            .flat_map(|p| p.points.iter().copied())
            .collect();
        Self {
            name: "scatter_panels",
            title: title.into(),
            bounds: Bounds::covering(&all, 1.0),
            panels,
            columns,
            panel_size: 300,
        }
    }
}

/// Points drawn per panel in figures of many panels (comparisons, guidance sweeps): enough to
/// see the shape and where it fails, while a figure of eight panels stays light in a notebook
/// (every mark is bytes in its SVG). The metrics always use every point.
pub const SHOWN_PER_PANEL: usize = 500;

/// The smallest side a scatter panel shrinks to before a grid wraps into more rows.
const MIN_PANEL: u32 = 200;

impl Panel {
    /// The panel with at most `max` of its points: every k-th, so the subset keeps the
    /// spread of the whole (samples come in no order; data may come sorted by class). For
    /// figures of many panels, whose every mark costs bytes in a notebook.
    pub fn with_at_most(mut self, max: usize) -> Self {
        let stride = self.points.len().div_ceil(max.max(1)).max(1);
        if stride > 1 {
            self.points = self.points.into_iter().step_by(stride).collect();
            if !self.labels.is_empty() {
                self.labels = self.labels.into_iter().step_by(stride).collect();
            }
        }
        self
    }

    /// How many of the points lie outside `bounds` (drawn clamped to the frame's edge).
    pub fn outside(&self, bounds: Bounds) -> usize {
        self.points.iter().filter(|p| !bounds.contains(**p)).count()
    }

    /// The caption as drawn: the title, and how many points lie outside the window when they
    /// are more than 1 % of them (a noise cloud's far tail is not worth a line; a run that
    /// scattered its samples is).
    pub fn caption(&self, bounds: Bounds) -> String {
        let n = self.outside(bounds);
        if n * 100 > self.points.len() {
            format!(
                "{} ({n} of {} outside, at the edge)",
                self.title,
                self.points.len()
            )
        } else {
            self.title.clone()
        }
    }
}

impl Bounds {
    /// Whether `p` lies in the window.
    pub fn contains(&self, p: [f32; 2]) -> bool {
        p[0].abs() <= self.half && p[1].abs() <= self.half
    }

    /// `p` moved onto the window's edge if it lies outside (a non-finite coordinate goes to 0).
    pub fn clamp(&self, p: [f32; 2]) -> [f32; 2] {
        let c = |v: f32| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(-self.half, self.half)
            }
        };
        [c(p[0]), c(p[1])]
    }
}

fn scatter_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    bounds: Bounds,
    caption_height: u32,
) -> DrawResult<DB> {
    let color_of = |i: usize| match panel.labels.get(i) {
        Some(&class) => CLASS_COLORS[class % CLASS_COLORS.len()],
        None => panel.color,
    };
    let plot = layout::draw_heading(area, &panel.caption(bounds), CAPTION_SIZE, caption_height)?;
    scatter(&plot, &panel.points, color_of, bounds)
}

/// One scatter plot of `points`, point `i` in `color_of(i)`. Points outside `bounds` are drawn
/// on the frame's edge, so that a run that scattered them is seen to have failed.
fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[[f32; 2]],
    color_of: impl Fn(usize) -> RGBColor,
    bounds: Bounds,
) -> DrawResult<DB> {
    let mut chart = ChartBuilder::on(area)
        .margin(layout::PANEL_MARGIN)
        .margin_top(0)
        .x_label_area_size(layout::X_LABEL_AREA)
        .y_label_area_size(layout::Y_LABEL_AREA)
        .build_cartesian_2d(bounds.range(), bounds.range())?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .label_style((FAMILY, LABEL_SIZE))
        .x_labels(layout::tick_count(area.dim_in_pixel().0))
        .y_labels(layout::tick_count(area.dim_in_pixel().0))
        .draw()?;
    chart.draw_series(points.iter().enumerate().map(|(i, &p)| {
        let [x, y] = bounds.clamp(p);
        Circle::new((x, y), 2, color_of(i).mix(0.45).filled())
    }))?;
    Ok(())
}

impl ScatterPanels {
    /// The figure's layout: at most [`layout::MAX_CHART_WIDTH`] wide, captions wrapped.
    pub fn layout(&self) -> PanelFigure {
        let captions: Vec<String> = self.panels.iter().map(|p| p.caption(self.bounds)).collect();
        PanelFigure::new(
            &self.title,
            &captions,
            self.columns,
            self.panel_size,
            MIN_PANEL.min(self.panel_size),
        )
    }
}

impl Chart for ScatterPanels {
    fn name(&self) -> &'static str {
        self.name
    }

    fn size(&self) -> (u32, u32) {
        self.layout().size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let cells = self.layout().cells(root, &self.title)?;
        for ((area, caption_height), panel) in cells.iter().zip(&self.panels) {
            scatter_panel(area, panel, self.bounds, *caption_height)?;
        }
        Ok(())
    }
}

/// The loss over training: every step (faint), a moving average, and each epoch's mean.
#[derive(Debug, Clone, PartialEq)]
pub struct LossCurve {
    /// Loss of every optimizer step.
    pub per_step: Vec<f32>,
    /// Mean loss of every epoch.
    pub per_epoch: Vec<f32>,
    /// Title of the chart.
    pub title: String,
}

/// Trailing moving average over `window` values.
pub fn moving_average(values: &[f32], window: usize) -> Vec<f32> {
    let window = window.max(1);
    let mut sum = 0.0f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            sum += f64::from(v);
            if i >= window {
                sum -= f64::from(values[i - window]);
            }
            (sum / (i + 1).min(window) as f64) as f32
        })
        .collect()
}

impl Chart for LossCurve {
    fn name(&self) -> &'static str {
        "training_curve"
    }

    fn size(&self) -> (u32, u32) {
        (900, 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let steps = self.per_step.len().max(1);
        let finite = || {
            self.per_step
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let lo = finite().fold(f32::INFINITY, f32::min).min(1.0) * 0.8;
        let hi = finite().fold(0.0f32, f32::max).max(lo * 10.0) * 1.2;
        let area = layout::titled(root, &self.title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(55)
            .y_label_area_size(105)
            .build_cartesian_2d(0f32..steps as f32, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc("training loss (log scale)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FAMILY, LABEL_SIZE))
            .axis_desc_style((FAMILY, CAPTION_SIZE))
            .draw()?;
        let raw = PALETTE[0].mix(0.25);
        chart
            .draw_series(LineSeries::new(
                self.per_step
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f32, v.max(lo))),
                raw,
            ))?
            .label("every step")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], raw));
        let steps_per_epoch = (self.per_step.len() / self.per_epoch.len().max(1)).max(1);
        let window = (self.per_step.len() / 50).max(10);
        let smooth = moving_average(&self.per_step, window);
        let smooth_color = PALETTE[0];
        chart
            .draw_series(LineSeries::new(
                smooth
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (i as f32, v.max(lo))),
                smooth_color.stroke_width(2),
            ))?
            .label(format!("moving average ({window} steps)"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], smooth_color.stroke_width(2))
            });
        let epoch_color = PALETTE[1];
        chart
            .draw_series(self.per_epoch.iter().enumerate().map(|(e, &v)| {
                Circle::new(
                    (((e + 1) * steps_per_epoch) as f32, v.max(lo)),
                    2,
                    epoch_color.filled(),
                )
            }))?
            .label("epoch mean")
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, epoch_color.filled()));
        chart
            .configure_series_labels()
            .label_font((FAMILY, LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    }
}

/// The curves of one noise schedule, as plain vectors indexed by t.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleCurve {
    /// Legend name, e.g. `"linear"`.
    pub name: String,
    /// beta_t.
    pub betas: Vec<f64>,
    /// alpha-bar_t.
    pub alpha_bar: Vec<f64>,
    /// log SNR(t).
    pub log_snr: Vec<f64>,
}

impl ScheduleCurve {
    /// The curves of a schedule.
    pub fn from_schedule(
        name: impl Into<String>,
        schedule: &crate::schedule::NoiseSchedule,
    ) -> Self {
        Self {
            name: name.into(),
            betas: schedule.betas.clone(),
            alpha_bar: schedule.alpha_bar.clone(),
            log_snr: schedule.log_snr(),
        }
    }
}

/// beta_t, alpha-bar_t and log SNR(t) of one or more schedules, side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleChart {
    /// The schedules to compare.
    pub curves: Vec<ScheduleCurve>,
}

/// One panel of curves over the timestep; value `i` of each curve is drawn at `t = first_t + i`.
/// The height of the caption block over curve panels `width` wide with these titles: the
/// tallest wrapped title, so panels side by side keep their plots aligned.
fn curve_caption_height<'a>(titles: impl IntoIterator<Item = &'a str>, width: u32) -> u32 {
    titles
        .into_iter()
        .map(|t| layout::wrapped_height(t, CAPTION_SIZE + 2, width))
        .max()
        .unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn curve_panel<DB: DrawingBackend, Y>(
    area: &DrawingArea<DB, Shift>,
    (title, caption_height): (&str, u32),
    y_desc: &str,
    curves: &[(String, &[f64])],
    first_t: usize,
    y_range: Y,
    legend: bool,
) -> DrawResult<DB>
where
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let t_max = (curves.iter().map(|(_, v)| v.len()).max().unwrap_or(1) + first_t) as f64;
    let plot = layout::draw_heading(area, title, CAPTION_SIZE + 2, caption_height)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .margin_top(0)
        .x_label_area_size(52)
        .y_label_area_size(95)
        .build_cartesian_2d(0f64..t_max, y_range)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("timestep t")
        .y_desc(y_desc)
        .label_style((FAMILY, LABEL_SIZE))
        .axis_desc_style((FAMILY, LABEL_SIZE + 1))
        .draw()?;
    for (i, (name, values)) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| ((first_t + i) as f64, v)),
                color.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if legend {
        chart
            .configure_series_labels()
            .label_font((FAMILY, LABEL_SIZE))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    Ok(())
}

fn range_of<'a>(series: impl Iterator<Item = &'a [f64]>) -> std::ops::Range<f64> {
    let (lo, hi) = series
        .flat_map(|s| s.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad)..(hi + pad)
    } else {
        0.0..1.0
    }
}

impl Chart for ScheduleChart {
    fn name(&self) -> &'static str {
        "noise_schedule"
    }

    fn size(&self) -> (u32, u32) {
        (layout::MAX_CHART_WIDTH, 460)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = layout::titled(root, "Noise schedules")?;
        let areas = root.split_evenly((1, 3));
        const TITLES: [&str; 3] = [
            "beta_t: noise added at step t (log)",
            "alpha-bar_t: signal kept in x_t",
            "log SNR(t) = log(alpha-bar / (1 - alpha-bar))",
        ];
        let caption = curve_caption_height(TITLES, areas[0].dim_in_pixel().0);
        let pick = |f: fn(&ScheduleCurve) -> &[f64]| -> Vec<(String, &[f64])> {
            self.curves.iter().map(|c| (c.name.clone(), f(c))).collect()
        };
        // Log scale: the cosine schedule's betas span 1e-5 to its 0.999 clip.
        let betas = pick(|c| &c.betas);
        let smallest = betas
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|b| *b > 0.0)
            .fold(1.0, f64::min);
        let beta_range = (smallest * 0.5..1.5).log_scale();
        curve_panel(
            &areas[0],
            (TITLES[0], caption),
            "beta_t",
            &betas,
            1,
            beta_range,
            true,
        )?;
        curve_panel(
            &areas[1],
            (TITLES[1], caption),
            "alpha-bar_t",
            &pick(|c| &c.alpha_bar),
            1,
            0.0..1.02,
            false,
        )?;
        let snr = pick(|c| &c.log_snr);
        let snr_range = range_of(snr.iter().map(|(_, v)| *v));
        curve_panel(
            &areas[2],
            (TITLES[2], caption),
            "log SNR",
            &snr,
            1,
            snr_range,
            false,
        )?;
        Ok(())
    }
}

/// Positive per-timestep curves on a log scale, e.g. the terms of the likelihood bound.
#[derive(Debug, Clone, PartialEq)]
pub struct TimestepCurves {
    /// Chart title.
    pub title: String,
    /// What the y axis measures.
    pub y_desc: String,
    /// Named curves; value `i` is drawn at timestep `first_t + i`.
    pub curves: Vec<(String, Vec<f64>)>,
    /// The timestep of each curve's first value.
    pub first_t: usize,
}

impl Chart for TimestepCurves {
    fn name(&self) -> &'static str {
        "timestep_curves"
    }

    fn size(&self) -> (u32, u32) {
        (760, 460)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let positive = self
            .curves
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = positive.fold((f64::INFINITY, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo < hi { (lo, hi) } else { (1e-3, 1.0) };
        // A log axis cannot show 0 or less: such values sit on the axis's floor.
        let curves: Vec<(String, Vec<f64>)> = self
            .curves
            .iter()
            .map(|(name, v)| (name.clone(), v.iter().map(|x| x.max(lo)).collect()))
            .collect();
        let refs: Vec<(String, &[f64])> = curves
            .iter()
            .map(|(n, v)| (n.clone(), v.as_slice()))
            .collect();
        let caption = curve_caption_height([self.title.as_str()], root.dim_in_pixel().0);
        curve_panel(
            root,
            (&self.title, caption),
            &self.y_desc,
            &refs,
            self.first_t,
            (lo * 0.8..hi * 1.25).log_scale(),
            true,
        )
    }
}

/// Histograms of each coordinate, real against generated.
#[derive(Debug, Clone, PartialEq)]
pub struct Marginals {
    /// Real points.
    pub real: Vec<[f32; 2]>,
    /// Generated points.
    pub generated: Vec<[f32; 2]>,
    /// Number of histogram bins.
    pub bins: usize,
}

/// Density histogram of `values` over `range` in `bins` bins: (bin centre, density).
pub fn density(
    values: impl Iterator<Item = f32>,
    range: (f32, f32),
    bins: usize,
) -> Vec<(f32, f32)> {
    let bins = bins.max(1);
    let width = (range.1 - range.0) / bins as f32;
    let mut counts = vec![0usize; bins];
    let mut total = 0usize;
    for v in values {
        total += 1;
        if v >= range.0 && v < range.1 {
            counts[(((v - range.0) / width) as usize).min(bins - 1)] += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            (
                range.0 + (i as f32 + 0.5) * width,
                c as f32 / (total.max(1) as f32 * width),
            )
        })
        .collect()
}

impl Chart for Marginals {
    fn name(&self) -> &'static str {
        "marginal_distributions"
    }

    fn size(&self) -> (u32, u32) {
        (layout::MAX_CHART_WIDTH, 460)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = layout::titled(root, "Marginal distributions: real vs generated")?;
        let bounds = Bounds::covering(&self.real, 1.0);
        let range = (-bounds.half, bounds.half);
        for (axis, area) in root.split_evenly((1, 2)).iter().enumerate() {
            let real = density(self.real.iter().map(|p| p[axis]), range, self.bins);
            let generated = density(self.generated.iter().map(|p| p[axis]), range, self.bins);
            let top = real
                .iter()
                .chain(&generated)
                .map(|p| p.1)
                .fold(0.0f32, f32::max)
                * 1.15;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    if axis == 0 {
                        "x coordinate"
                    } else {
                        "y coordinate"
                    },
                    (FAMILY, CAPTION_SIZE + 2),
                )
                .margin(10)
                .x_label_area_size(52)
                .y_label_area_size(68)
                .build_cartesian_2d(range.0..range.1, 0f32..top.max(1e-3))?;
            chart
                .configure_mesh()
                .x_desc(if axis == 0 { "x" } else { "y" })
                .y_desc("density")
                .label_style((FAMILY, LABEL_SIZE))
                .axis_desc_style((FAMILY, LABEL_SIZE + 1))
                .draw()?;
            for (label, hist, color) in
                [("real", &real, REAL), ("generated", &generated, GENERATED)]
            {
                chart
                    .draw_series(
                        AreaSeries::new(hist.iter().copied(), 0.0, color.mix(0.25))
                            .border_style(color.stroke_width(2)),
                    )?
                    .label(label)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.mix(0.5).filled())
                    });
            }
            chart
                .configure_series_labels()
                .label_font((FAMILY, LABEL_SIZE))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        Ok(())
    }
}

/// The reverse process as an animation: noise x_T turning into samples x_0.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryAnimation {
    /// `(t, points)` per frame, from x_T to x_0.
    pub frames: Vec<(usize, Vec<[f32; 2]>)>,
    /// The shared window.
    pub bounds: Bounds,
    /// Extra copies of the last frame, so the loop rests on the result.
    pub hold_last: usize,
}

impl Animation for TrajectoryAnimation {
    fn name(&self) -> &'static str {
        "sampling_animation"
    }

    fn size(&self) -> (u32, u32) {
        (480, 500)
    }

    fn frame_count(&self) -> usize {
        self.frames.len()
            + if self.frames.is_empty() {
                0
            } else {
                self.hold_last
            }
    }

    fn draw_frame<DB: DrawingBackend>(
        &self,
        index: usize,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let Some((t, points)) = self
            .frames
            .get(index.min(self.frames.len().saturating_sub(1)))
        else {
            return Ok(());
        };
        let title = format!("Reverse process: x_t at t = {t}");
        let plot = layout::titled(root, &title)?;
        scatter(&plot, points, |_| GENERATED, self.bounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_matches_hand_computation() {
        assert_eq!(
            moving_average(&[1.0, 3.0, 5.0, 7.0], 2),
            vec![1.0, 2.0, 4.0, 6.0]
        );
    }

    #[test]
    fn density_integrates_to_the_fraction_inside_the_range() {
        let values = [0.1f32, 0.2, 0.6, 0.9, 5.0];
        let d = density(values.iter().copied(), (0.0, 1.0), 4);
        let integral: f32 = d.iter().map(|(_, h)| h * 0.25).sum();
        assert!((integral - 0.8).abs() < 1e-6, "{integral}");
        assert_eq!(d[0].0, 0.125);
    }

    #[test]
    fn bounds_cover_every_point_with_margin() {
        let b = Bounds::covering(&[[0.5, -3.0], [1.0, 2.0]], 1.0);
        assert!((b.half - 3.3).abs() < 1e-6);
        assert_eq!(Bounds::covering(&[[0.1, 0.1]], 2.0).half, 2.0);
    }
}
