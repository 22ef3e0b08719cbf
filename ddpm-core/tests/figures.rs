//! Figures show what they are given, where they should: known points are drawn, and the marks
//! are found back in the rendered pixels at the places the data puts them, and nowhere else.

use ddpm_core::plot::{
    Bounds, CLASS_COLORS, Chart, Panel, ScatterPanels, TrajectoryAnimation, gif_bytes, to_rgb,
};

/// Pixels whose colour is `hue`'s, as (x, y): a mark is its class colour blended over white,
/// so compare the direction of (255 - rgb), which blending only scales.
fn pixels_of(rgb: &[u8], width: u32, hue: [u8; 3]) -> Vec<(f64, f64)> {
    let ink = |c: [u8; 3]| c.map(|v| 255.0 - f64::from(v));
    let want = ink(hue);
    let norm = |v: [f64; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    rgb.chunks(3)
        .enumerate()
        .filter_map(|(i, px)| {
            let got = ink([px[0], px[1], px[2]]);
            let (a, b) = (norm(got), norm(want));
            // Faint antialiased edges (< 40 of ink) carry too little colour to judge.
            let cos = (got[0] * want[0] + got[1] * want[1] + got[2] * want[2]) / (a * b);
            (a > 40.0 && cos > 0.995)
                .then(|| ((i as u32 % width) as f64, (i as u32 / width) as f64))
        })
        .collect()
}

fn centroid(pixels: &[(f64, f64)]) -> (f64, f64) {
    let n = pixels.len() as f64;
    (
        pixels.iter().map(|p| p.0).sum::<f64>() / n,
        pixels.iter().map(|p| p.1).sum::<f64>() / n,
    )
}

#[test]
fn scatter_marks_land_where_the_data_puts_them_and_nowhere_else() {
    // Class 0: two calibration points on a diagonal, to find the axes in pixels. Class 1: a
    // small square of points around (1.5, -1), which must be drawn there and only there.
    let corners = [[-3.0f32, -3.0], [3.0, 3.0]];
    let cluster: Vec<[f32; 2]> = (0..25)
        .map(|i| [1.4 + 0.05 * (i % 5) as f32, -1.1 + 0.05 * (i / 5) as f32])
        .collect();
    let points: Vec<[f32; 2]> = corners.iter().copied().chain(cluster.clone()).collect();
    let labels: Vec<usize> = (0..points.len()).map(|i| usize::from(i >= 2)).collect();
    let mut chart = ScatterPanels::grid(
        "known points",
        [Panel::by_class("panel", points, labels)],
        1,
    );
    chart.bounds = Bounds { half: 4.0 };
    let (width, height) = chart.size();
    let rgb = to_rgb(&chart).unwrap();
    assert_eq!(rgb.len(), (width * height * 3) as usize);

    let hue = |c: usize| [CLASS_COLORS[c].0, CLASS_COLORS[c].1, CLASS_COLORS[c].2];
    let (blue, orange) = (
        pixels_of(&rgb, width, hue(0)),
        pixels_of(&rgb, width, hue(1)),
    );
    assert!(!blue.is_empty() && !orange.is_empty());
    // The two calibration marks: left of the middle is (-3, -3), right is (3, 3).
    let middle = centroid(&blue).0;
    let low: Vec<_> = blue.iter().copied().filter(|p| p.0 < middle).collect();
    let high: Vec<_> = blue.iter().copied().filter(|p| p.0 >= middle).collect();
    let (lo, hi) = (centroid(&low), centroid(&high));
    // Each calibration mark is one small disc (radius 2 px): no stray blue anywhere else.
    for (group, c) in [(&low, lo), (&high, hi)] {
        assert!(
            group
                .iter()
                .all(|p| (p.0 - c.0).abs() <= 3.0 && (p.1 - c.1).abs() <= 3.0),
            "{group:?}"
        );
    }
    // y grows upwards in the data and downwards in pixels.
    assert!(hi.0 > lo.0 + 100.0 && hi.1 < lo.1 - 100.0, "{lo:?} {hi:?}");
    // Pixels per data unit, and the data point of a pixel.
    let (sx, sy) = ((hi.0 - lo.0) / 6.0, (lo.1 - hi.1) / 6.0);
    assert!((sx / sy - 1.0).abs() < 0.05, "square panel: {sx} vs {sy}");
    let data = |p: (f64, f64)| ((p.0 - lo.0) / sx - 3.0, 3.0 - (p.1 - lo.1) / sy - 6.0);
    // Every orange pixel lies on the cluster, [1.4, 1.6] x [-1.1, -0.9], give or take a
    // mark's radius (2 px, under 0.1 data units here).
    let margin = 3.0 / sx;
    for &p in &orange {
        let (x, y) = data(p);
        assert!(
            (1.4 - margin..=1.6 + margin).contains(&x)
                && (-1.1 - margin..=-0.9 + margin).contains(&y),
            "orange pixel {p:?} is at data ({x:.2}, {y:.2}), off the cluster"
        );
    }
    let (cx, cy) = data(centroid(&orange));
    assert!(
        (cx - 1.5).abs() < 0.05 && (cy + 1.0).abs() < 0.05,
        "({cx}, {cy})"
    );
}

#[test]
fn the_sampling_gif_has_a_frame_per_state_and_they_differ() {
    let frames: Vec<(usize, Vec<[f32; 2]>)> = (0..3)
        .map(|k| {
            let shift = k as f32 - 1.0;
            (
                100 - 50 * k,
                vec![[shift, shift], [shift + 0.5, -shift], [-shift, 0.3]],
            )
        })
        .collect();
    let animation = TrajectoryAnimation {
        frames,
        bounds: Bounds { half: 2.0 },
        hold_last: 2,
    };
    let bytes = gif_bytes(&animation, 100).unwrap();
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(bytes.as_slice()).unwrap();
    let mut decoded = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        assert_eq!(frame.delay, 10, "100 ms");
        decoded.push(frame.buffer.to_vec());
    }
    // Three states, then the last one held twice.
    assert_eq!(decoded.len(), 5);
    for i in 0..3 {
        for j in i + 1..3 {
            let differing = decoded[i]
                .chunks(4)
                .zip(decoded[j].chunks(4))
                .filter(|(a, b)| a != b)
                .count();
            assert!(
                differing > 50,
                "frames {i} and {j} differ in {differing} pixels"
            );
        }
    }
    assert_eq!(decoded[2], decoded[3]);
    assert_eq!(decoded[3], decoded[4]);
}
