//! Toy 2-D datasets, each seeded and normalised to roughly zero mean and unit spread.
//!
//! Every generator draws from a fixed, known distribution and applies a fixed affine map, so two
//! draws with different seeds come from the same distribution: one can be the training set and the
//! other a held-out set for metrics.

use std::f64::consts::PI;

use burn::prelude::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal, StandardNormal};

use crate::choice::choice_enum;

choice_enum! {
    /// The toy distributions.
    pub enum DatasetKind ("dataset") {
        /// Two interleaving half circles (scikit-learn's `make_moons`, noise 0.05).
        Moons = "moons",
        /// Two concentric circles, radii 1 and 0.5 (`make_circles`, noise 0.05).
        Circles = "circles",
        /// A 2-D Swiss roll: a spiral with radius growing with its angle.
        SwissRoll = "swiss_roll",
        /// Eight Gaussians on a circle of radius 2 (std 0.1).
        EightGaussians = "eight_gaussians",
        /// Uniform points on the dark squares of a 4x4 checkerboard.
        Checkerboard = "checkerboard",
        /// Two interleaved spiral arms.
        Spirals = "spirals",
    }
}

/// Every toy dataset lies inside `[-DATA_RANGE, DATA_RANGE]^2` after normalisation (a test
/// checks it); the sampler's default x_0 clipping uses this bound.
pub const DATA_RANGE: f32 = 4.0;

/// A labelled 2-D point cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset2d {
    /// Which distribution the points come from.
    pub kind: DatasetKind,
    /// The points, normalised.
    pub points: Vec<[f32; 2]>,
    /// A class per point (moon, ring, arm, mode or square), for conditioning and colouring.
    pub labels: Vec<usize>,
}

impl Dataset2d {
    /// Draw `n` points of `kind` with `seed`.
    pub fn generate(kind: DatasetKind, n: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let (raw, labels): (Vec<[f64; 2]>, Vec<usize>) =
            (0..n).map(|i| sample_one(kind, i, n, &mut rng)).unzip();
        let (center, scale) = normalisation(kind);
        let points = raw
            .into_iter()
            .map(|[x, y]| {
                [
                    ((x - center[0]) * scale) as f32,
                    ((y - center[1]) * scale) as f32,
                ]
            })
            .collect();
        Self {
            kind,
            points,
            labels,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Number of distinct classes of this distribution.
    pub fn num_classes(&self) -> usize {
        num_classes(self.kind)
    }

    /// The points with their classes, as the class metrics take them.
    pub fn labelled(&self) -> Labelled<'_> {
        Labelled {
            points: &self.points,
            labels: &self.labels,
        }
    }

    /// The points at `indices` as a `[indices.len(), 2]` tensor: one mini-batch.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let points: Vec<[f32; 2]> = indices.iter().map(|&i| self.points[i]).collect();
        crate::points::from_points(&points, device)
    }

    /// The points as one flat row-major `[n * 2]` vector (what a tensor is built from).
    pub fn flat(&self) -> Vec<f32> {
        self.points.iter().flatten().copied().collect()
    }
}

/// Real labelled points.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    /// The points.
    pub points: &'a [[f32; 2]],
    /// One class per point.
    pub labels: &'a [usize],
}

impl Labelled<'_> {
    /// The points of `class`.
    pub fn of_class(&self, class: usize) -> Vec<[f32; 2]> {
        self.points
            .iter()
            .zip(self.labels)
            .filter(|&(_, &l)| l == class)
            .map(|(&p, _)| p)
            .collect()
    }
}

/// Number of classes each distribution labels its points with.
pub fn num_classes(kind: DatasetKind) -> usize {
    match kind {
        DatasetKind::Moons | DatasetKind::Circles | DatasetKind::Spirals => 2,
        DatasetKind::SwissRoll => 4,
        DatasetKind::EightGaussians | DatasetKind::Checkerboard => 8,
    }
}

/// Fixed centre and isotropic scale that bring each raw distribution to roughly zero mean and
/// unit per-coordinate standard deviation, without distorting its shape.
fn normalisation(kind: DatasetKind) -> ([f64; 2], f64) {
    match kind {
        DatasetKind::Moons => ([0.5, 0.25], 1.0 / 0.7),
        DatasetKind::Circles => ([0.0, 0.0], 1.0 / 0.56),
        DatasetKind::SwissRoll => ([0.0, 0.0], 1.0 / 7.0),
        DatasetKind::EightGaussians => ([0.0, 0.0], 1.0 / 1.42),
        DatasetKind::Checkerboard => ([0.0, 0.0], 1.0 / 1.15),
        DatasetKind::Spirals => ([0.0, 0.0], 1.0 / 0.5),
    }
}

fn gaussian(rng: &mut StdRng, std: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    z * std
}

/// One raw point and its label. `i` and `n` balance the classes the way scikit-learn does.
fn sample_one(kind: DatasetKind, i: usize, n: usize, rng: &mut StdRng) -> ([f64; 2], usize) {
    match kind {
        DatasetKind::Moons => {
            let label = usize::from(i >= n / 2);
            let theta = rng.random_range(0.0..PI);
            let (x, y) = if label == 0 {
                (theta.cos(), theta.sin())
            } else {
                (1.0 - theta.cos(), 0.5 - theta.sin())
            };
            ([x + gaussian(rng, 0.05), y + gaussian(rng, 0.05)], label)
        }
        DatasetKind::Circles => {
            let label = usize::from(i >= n / 2);
            let radius = if label == 0 { 1.0 } else { 0.5 };
            let theta = rng.random_range(0.0..2.0 * PI);
            (
                [
                    radius * theta.cos() + gaussian(rng, 0.05),
                    radius * theta.sin() + gaussian(rng, 0.05),
                ],
                label,
            )
        }
        DatasetKind::SwissRoll => {
            // Angle in [1.5 pi, 4.5 pi], as scikit-learn's make_swiss_roll; the label is the
            // quarter of the roll the point lies on.
            let u: f64 = rng.random();
            let theta = 1.5 * PI * (1.0 + 2.0 * u);
            let label = ((u * 4.0) as usize).min(3);
            (
                [
                    theta * theta.cos() + gaussian(rng, 0.3),
                    theta * theta.sin() + gaussian(rng, 0.3),
                ],
                label,
            )
        }
        DatasetKind::EightGaussians => {
            let label = rng.random_range(0..8usize);
            let angle = label as f64 * PI / 4.0;
            (
                [
                    2.0 * angle.cos() + gaussian(rng, 0.1),
                    2.0 * angle.sin() + gaussian(rng, 0.1),
                ],
                label,
            )
        }
        DatasetKind::Checkerboard => {
            // 4x4 board on [-2, 2]^2; the 8 squares where (col + row) is even hold the mass.
            let label = rng.random_range(0..8usize);
            let row = label / 2;
            let col = 2 * (label % 2) + row % 2;
            let x = -2.0 + col as f64 + rng.random::<f64>();
            let y = -2.0 + row as f64 + rng.random::<f64>();
            ([x, y], label)
        }
        DatasetKind::Spirals => {
            let label = usize::from(i >= n / 2);
            // Radius grows linearly with the angle; the second arm is the first rotated by pi.
            let u: f64 = rng.random::<f64>().sqrt();
            let theta = 0.25 * PI + u * 3.0 * PI;
            let radius = theta / (3.25 * PI);
            let sign = if label == 0 { 1.0 } else { -1.0 };
            let noise = Normal::new(0.0, 0.02).expect("constant std is valid");
            (
                [
                    sign * radius * theta.cos() + noise.sample(rng),
                    sign * radius * theta.sin() + noise.sample(rng),
                ],
                label,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_std(points: &[[f32; 2]], axis: usize) -> (f64, f64) {
        let n = points.len() as f64;
        let mean = points.iter().map(|p| p[axis] as f64).sum::<f64>() / n;
        let var = points
            .iter()
            .map(|p| (p[axis] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    #[test]
    fn every_dataset_is_normalised_to_a_sensible_range() {
        for &kind in DatasetKind::ALL {
            let data = Dataset2d::generate(kind, 20_000, 3);
            assert_eq!(data.len(), 20_000);
            for axis in 0..2 {
                let (mean, std) = mean_std(&data.points, axis);
                assert!(mean.abs() < 0.3, "{kind} axis {axis}: mean {mean}");
                assert!((0.5..1.5).contains(&std), "{kind} axis {axis}: std {std}");
            }
            assert!(
                data.points
                    .iter()
                    .flatten()
                    .all(|v| v.is_finite() && v.abs() < DATA_RANGE),
                "{kind} leaves [-{DATA_RANGE}, {DATA_RANGE}]"
            );
        }
    }

    #[test]
    fn same_seed_same_points_and_other_seed_other_points() {
        for &kind in DatasetKind::ALL {
            let a = Dataset2d::generate(kind, 500, 7);
            let b = Dataset2d::generate(kind, 500, 7);
            let c = Dataset2d::generate(kind, 500, 8);
            assert_eq!(a, b, "{kind}");
            assert_ne!(a.points, c.points, "{kind}");
        }
    }

    #[test]
    fn labels_cover_every_class_in_balance() {
        for &kind in DatasetKind::ALL {
            let data = Dataset2d::generate(kind, 8000, 1);
            let classes = data.num_classes();
            let mut counts = vec![0usize; classes];
            for &l in &data.labels {
                counts[l] += 1;
            }
            let expected = 8000 / classes;
            for (class, &c) in counts.iter().enumerate() {
                assert!(
                    c as f64 > 0.8 * expected as f64 && (c as f64) < 1.2 * expected as f64,
                    "{kind} class {class}: {c} of 8000"
                );
            }
        }
    }

    #[test]
    fn moons_labels_match_their_half_circle() {
        let data = Dataset2d::generate(DatasetKind::Moons, 2000, 5);
        // Undo the normalisation: the upper moon (label 0) has y >= -0.2, the lower one y <= 0.7.
        for (p, &l) in data.points.iter().zip(&data.labels) {
            let y = p[1] as f64 * 0.7 + 0.25;
            if l == 0 {
                assert!(y > -0.25, "{y}");
            } else {
                assert!(y < 0.75, "{y}");
            }
        }
    }

    #[test]
    fn unknown_dataset_name_lists_the_choices() {
        let err = "moon".parse::<DatasetKind>().unwrap_err().to_string();
        assert!(
            err.contains("moon") && err.contains("swiss_roll") && err.contains("moons"),
            "{err}"
        );
        assert_eq!(
            "Swiss-Roll".parse::<DatasetKind>().unwrap(),
            DatasetKind::SwissRoll
        );
    }
}
