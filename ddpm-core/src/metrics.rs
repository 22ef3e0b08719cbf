//! Sample-quality metrics between two 2-D point clouds, with their floors.
//!
//! Two kinds, because each has a blind spot the other covers:
//! - **Global shape**: the energy distance and the RBF MMD. Both are V-statistics (all pairs,
//!   the diagonal included), so they are never negative and two finite samples of the *same*
//!   distribution still score above zero. But they compare the clouds as wholes: a featureless
//!   blob with the data's extent can score close to real data (spirals that came out as a square
//!   blob scored 1.0x the floor on energy distance).
//! - **Local structure**: the leave-one-out 1-nearest-neighbour two-sample accuracy
//!   ([`nn1_accuracy`], Lopez-Paz & Oquab 2017) and k-NN precision and recall
//!   ([`knn_precision_recall`], Kynkäänniemi et al. 2019). They ask whether each generated point
//!   sits where real points sit, which a blob cannot fake.
//!
//! Every value comes with its **floor**: what a second real draw of the same size scores, the best
//! a perfect generator can do at this sample size. Report a metric next to its floor, never alone.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::data::Labelled;
use crate::display::Table;
use crate::error::{DdpmError, Result};

/// Bandwidths of the multi-scale RBF kernel, for data normalised to unit spread.
pub const RBF_BANDWIDTHS: [f64; 5] = [0.05, 0.1, 0.2, 0.5, 1.0];

fn check(field: &'static str, points: &[[f32; 2]]) -> Result<()> {
    if points.is_empty() {
        return Err(DdpmError::InvalidInput {
            field,
            message: "the point cloud is empty".into(),
        });
    }
    if let Some(i) = points
        .iter()
        .position(|p| !(p[0].is_finite() && p[1].is_finite()))
    {
        return Err(DdpmError::InvalidInput {
            field,
            message: format!("point {i} is not finite: {:?}", points[i]),
        });
    }
    Ok(())
}

fn dist2(a: [f32; 2], b: [f32; 2]) -> f64 {
    let dx = f64::from(a[0]) - f64::from(b[0]);
    let dy = f64::from(a[1]) - f64::from(b[1]);
    dx * dx + dy * dy
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f64 {
    dist2(a, b).sqrt()
}

/// Mean of `k(a_i, b_j)` over all pairs.
fn mean_pairwise(a: &[[f32; 2]], b: &[[f32; 2]], k: impl Fn([f32; 2], [f32; 2]) -> f64) -> f64 {
    let total: f64 = a
        .iter()
        .map(|&x| b.iter().map(|&y| k(x, y)).sum::<f64>())
        .sum();
    total / (a.len() * b.len()) as f64
}

/// Energy distance (Székely & Rizzo): `2 E|X - Y| - E|X - X'| - E|Y - Y'|`.
///
/// Zero only when the distributions are equal; it is the MMD with the kernel `-|x - y|`.
pub fn energy_distance(x: &[[f32; 2]], y: &[[f32; 2]]) -> Result<f64> {
    check("x", x)?;
    check("y", y)?;
    let xy = mean_pairwise(x, y, dist);
    let xx = mean_pairwise(x, x, dist);
    let yy = mean_pairwise(y, y, dist);
    Ok((2.0 * xy - xx - yy).max(0.0))
}

/// Squared maximum mean discrepancy with a sum of Gaussian kernels
/// `k(x, y) = sum_s exp(-|x - y|^2 / (2 s^2))` over [`RBF_BANDWIDTHS`] (Gretton et al. 2012).
pub fn mmd_rbf(x: &[[f32; 2]], y: &[[f32; 2]]) -> Result<f64> {
    check("x", x)?;
    check("y", y)?;
    let gammas: Vec<f64> = RBF_BANDWIDTHS.iter().map(|s| 1.0 / (2.0 * s * s)).collect();
    let kernel = |a: [f32; 2], b: [f32; 2]| {
        let d2 = dist(a, b).powi(2);
        gammas.iter().map(|g| (-g * d2).exp()).sum::<f64>()
    };
    let xy = mean_pairwise(x, y, kernel);
    let xx = mean_pairwise(x, x, kernel);
    let yy = mean_pairwise(y, y, kernel);
    Ok((xx + yy - 2.0 * xy).max(0.0))
}

/// A metric beside its floor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricWithFloor {
    /// Generated samples against a held-out draw of the data.
    pub value: f64,
    /// A second held-out draw against the first, at the same size: the best a model can score.
    pub floor: f64,
}

impl MetricWithFloor {
    /// `value / floor`: 1 is as good as real data.
    pub fn ratio_to_floor(&self) -> f64 {
        self.value / self.floor.max(f64::MIN_POSITIVE)
    }
}

/// The leave-one-out 1-nearest-neighbour two-sample accuracy (Lopez-Paz & Oquab 2017): pool
/// `x` and `y`, label each point by the cloud it came from, and classify every point by its
/// nearest neighbour among all the others. The share classified right is 0.5 when the clouds
/// cannot be told apart (for equal sizes) and 1.0 when they are separated; above 0.5 means that
/// points of one cloud sit nearer their own kind than the other's.
pub fn nn1_accuracy(x: &[[f32; 2]], y: &[[f32; 2]]) -> Result<f64> {
    check("x", x)?;
    check("y", y)?;
    let pool: Vec<[f32; 2]> = x.iter().chain(y).copied().collect();
    let n_x = x.len();
    let correct = (0..pool.len())
        .into_par_iter()
        .filter(|&i| {
            let nearest = (0..pool.len())
                .filter(|&j| j != i)
                .map(|j| (j, dist2(pool[i], pool[j])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(i, |(j, _)| j);
            (i < n_x) == (nearest < n_x)
        })
        .count();
    Ok(correct as f64 / pool.len() as f64)
}

/// k-NN precision and recall (Kynkäänniemi et al. 2019), as shares in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// Fidelity: the share of generated points inside the real data's manifold (the union of
    /// the balls around each real point reaching to its k-th nearest real neighbour).
    pub precision: f64,
    /// Coverage: the share of real points inside the generated points' manifold, built the
    /// same way.
    pub recall: f64,
}

/// The neighbourhood size of [`knn_precision_recall`] used in reports (the paper's choice).
pub const KNN_K: usize = 3;

/// Squared distance to the `k`-th nearest other point of `points`, for each point.
fn kth_neighbour_radii2(points: &[[f32; 2]], k: usize) -> Vec<f64> {
    points
        .par_iter()
        .enumerate()
        .map(|(i, &p)| {
            let mut d: Vec<f64> = points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &q)| dist2(p, q))
                .collect();
            let k = k.min(d.len()).max(1) - 1;
            d.select_nth_unstable_by(k, f64::total_cmp);
            d[k]
        })
        .collect()
}

/// The share of `points` within the k-NN ball of at least one point of `manifold`.
fn share_inside(points: &[[f32; 2]], manifold: &[[f32; 2]], radii2: &[f64]) -> f64 {
    let inside = points
        .par_iter()
        .filter(|&&p| {
            manifold
                .iter()
                .zip(radii2)
                .any(|(&m, &r2)| dist2(p, m) <= r2)
        })
        .count();
    inside as f64 / points.len() as f64
}

/// k-NN precision and recall of `generated` against `real`: each cloud's manifold is the union
/// of balls around its points, each reaching to that point's `k`-th nearest neighbour in its own
/// cloud. A featureless blob over the data has low precision; a model that draws only part of
/// the data (mode collapse) has low recall.
pub fn knn_precision_recall(
    generated: &[[f32; 2]],
    real: &[[f32; 2]],
    k: usize,
) -> Result<PrecisionRecall> {
    check("generated", generated)?;
    check("real", real)?;
    let smallest = generated.len().min(real.len());
    if k == 0 || k >= smallest {
        return Err(DdpmError::InvalidInput {
            field: "k",
            message: format!(
                "k must be in 1..={} (below the size of the smaller cloud, {smallest}); got {k}",
                smallest.saturating_sub(1)
            ),
        });
    }
    Ok(PrecisionRecall {
        precision: share_inside(generated, real, &kth_neighbour_radii2(real, k)),
        recall: share_inside(real, generated, &kth_neighbour_radii2(generated, k)),
    })
}

/// The 1-NN accuracy below which samples count as close to real data: two real draws of 1000
/// points each score 0.50 with a standard deviation of about 0.011, so this is about four of
/// them above.
pub const NN1_CLOSE_BELOW: f64 = 0.55;

/// The 1-NN accuracy above which samples have missed the data's local structure. Measured at the
/// tutorial's 1000 points (notebook part 5's quick budget): moons and checkerboard drawn with
/// some strays between their parts score 0.56; blurred moons (a learned time embedding, DDIM
/// in 50 steps) 0.63-0.64; spirals that came out as a featureless blob 0.71 while their energy
/// distance read 1.0x its floor; no time embedding 0.79; a Gaussian with the spirals' mean and
/// covariance 0.79.
pub const NN1_FAILED_ABOVE: f64 = 0.65;

/// What the 1-NN accuracy says of a sample, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Below [`NN1_CLOSE_BELOW`]: hard to tell from real data.
    Close,
    /// Between the two thresholds: the shape is there, with strays or blurred edges.
    Rough,
    /// Above [`NN1_FAILED_ABOVE`]: the local structure is missing, whatever the global metrics say.
    Failed,
}

impl Verdict {
    /// The verdict of a 1-NN accuracy.
    pub fn of_nn1_accuracy(accuracy: f64) -> Self {
        if accuracy > NN1_FAILED_ABOVE {
            Self::Failed
        } else if accuracy < NN1_CLOSE_BELOW {
            Self::Close
        } else {
            Self::Rough
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Close => "close to real",
            Self::Rough => "rough",
            Self::Failed => "FAILED",
        })
    }
}

/// Sample quality of generated points, each metric with its floor: two of global shape (energy
/// distance, MMD) and three of local structure (1-NN accuracy, precision, recall).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Energy distance.
    pub energy_distance: MetricWithFloor,
    /// Multi-bandwidth RBF MMD^2.
    pub mmd_rbf: MetricWithFloor,
    /// Leave-one-out 1-NN two-sample accuracy against the reference ([`nn1_accuracy`]): 0.5 is
    /// indistinguishable; the floor is a second real draw's.
    pub nn1_accuracy: MetricWithFloor,
    /// k-NN precision ([`knn_precision_recall`], k = [`KNN_K`]): the share of samples where real
    /// data lies.
    pub precision: MetricWithFloor,
    /// k-NN recall: the share of real data the samples cover.
    pub recall: MetricWithFloor,
}

impl QualityReport {
    /// Score `generated` against `reference`; `floor_reference` is a second independent draw of
    /// the data, the same size as `generated`, for the floor.
    pub fn compute(
        generated: &[[f32; 2]],
        reference: &[[f32; 2]],
        floor_reference: &[[f32; 2]],
    ) -> Result<Self> {
        // k = 3 as in the paper, fewer for clouds too small to have three neighbours.
        let smallest = generated
            .len()
            .min(reference.len())
            .min(floor_reference.len());
        let k = KNN_K.min(smallest.saturating_sub(1)).max(1);
        let pr = knn_precision_recall(generated, reference, k)?;
        let pr_floor = knn_precision_recall(floor_reference, reference, k)?;
        Ok(Self {
            energy_distance: MetricWithFloor {
                value: energy_distance(generated, reference)?,
                floor: energy_distance(floor_reference, reference)?,
            },
            mmd_rbf: MetricWithFloor {
                value: mmd_rbf(generated, reference)?,
                floor: mmd_rbf(floor_reference, reference)?,
            },
            nn1_accuracy: MetricWithFloor {
                value: nn1_accuracy(generated, reference)?,
                floor: nn1_accuracy(floor_reference, reference)?,
            },
            precision: MetricWithFloor {
                value: pr.precision,
                floor: pr_floor.precision,
            },
            recall: MetricWithFloor {
                value: pr.recall,
                floor: pr_floor.recall,
            },
        })
    }

    /// What the 1-NN accuracy says of the samples ([`Verdict`]).
    pub fn verdict(&self) -> Verdict {
        Verdict::of_nn1_accuracy(self.nn1_accuracy.value)
    }

    /// Whether the samples failed to reproduce the data's local structure: a 1-NN accuracy above
    /// [`NN1_FAILED_ABOVE`], whatever the global-shape metrics say.
    pub fn failed(&self) -> bool {
        self.verdict() == Verdict::Failed
    }

    /// Each metric beside its floor, with what it measures: local structure first, then global
    /// shape; the verdict in the last row.
    pub fn table(&self) -> Table {
        let mut table = Table::new(["metric", "samples", "floor (real vs real)", "reads as"]);
        let rows = [
            (
                "1-NN accuracy",
                &self.nn1_accuracy,
                3,
                "0.5: indistinguishable from real; 1: separated",
            ),
            (
                "precision (k = 3)",
                &self.precision,
                3,
                "share of samples where real data lies",
            ),
            (
                "recall (k = 3)",
                &self.recall,
                3,
                "share of real data the samples cover",
            ),
            (
                "energy distance",
                &self.energy_distance,
                5,
                "global shape; compare with the floor",
            ),
            (
                "MMD^2 (RBF)",
                &self.mmd_rbf,
                5,
                "global shape; compare with the floor",
            ),
        ];
        for (name, m, digits, meaning) in rows {
            table.push([
                name.to_string(),
                format!("{:.digits$}", m.value),
                format!("{:.digits$}", m.floor),
                meaning.to_string(),
            ]);
        }
        table.push([
            "verdict".to_string(),
            self.verdict().to_string(),
            String::new(),
            format!(
                "1-NN accuracy below {NN1_CLOSE_BELOW}: close to real; above {NN1_FAILED_ABOVE}: failed"
            ),
        ]);
        table
    }

    /// One line for chart titles and logs: the 1-NN accuracy against its floor with its
    /// verdict, and the energy distance in floors, e.g.
    /// `1-NN acc. 0.56 (real 0.51): rough, ED 1.3x floor`.
    pub fn summary(&self) -> String {
        format!(
            "1-NN acc. {:.2} (real {:.2}): {}, ED {:.1}x floor",
            self.nn1_accuracy.value,
            self.nn1_accuracy.floor,
            self.verdict(),
            self.energy_distance.ratio_to_floor(),
        )
    }
}

/// The label of the nearest point of `reference` (labelled by `labels`) for each of `points`:
/// a 1-nearest-neighbour classifier fitted on real labelled data.
pub fn nearest_labels(points: &[[f32; 2]], reference: &[[f32; 2]], labels: &[usize]) -> Vec<usize> {
    points
        .iter()
        .map(|&p| {
            let nearest = reference
                .iter()
                .map(|&r| dist(p, r))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(i, _)| i);
            labels[nearest]
        })
        .collect()
}

/// The share of `points` whose [`nearest_labels`] class is the one in `wanted`.
pub fn class_accuracy(
    points: &[[f32; 2]],
    wanted: &[usize],
    reference: &[[f32; 2]],
    labels: &[usize],
) -> Result<f64> {
    check("points", points)?;
    check("reference", reference)?;
    if wanted.len() != points.len() || labels.len() != reference.len() {
        return Err(DdpmError::InvalidInput {
            field: "labels",
            message: "need one label per point".into(),
        });
    }
    let predicted = nearest_labels(points, reference, labels);
    let hits = predicted.iter().zip(wanted).filter(|(p, w)| p == w).count();
    Ok(hits as f64 / points.len() as f64)
}

/// How one class of a conditional model's samples turned out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// The class asked for.
    pub class: usize,
    /// Samples generated for it.
    pub samples: usize,
    /// The share of them a nearest-neighbour classifier on real data assigns to this class.
    pub accuracy: f64,
    /// Energy distance to the real points of this class, with the floor of a second real draw.
    pub energy_distance: MetricWithFloor,
}

/// Quality of class-conditional samples: do they land in the class asked for, and do they
/// look like it?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionalReport {
    /// The guidance scale w they were drawn with.
    pub guidance_scale: f64,
    /// The share of all samples classified as the class asked for.
    pub accuracy: f64,
    /// The same classifier's accuracy on a second real draw: the best a model can score (below
    /// 1 where classes overlap).
    pub accuracy_floor: f64,
    /// Each class on its own.
    pub per_class: Vec<ClassReport>,
}

impl ConditionalReport {
    /// Score `generated` (point i asked for class `wanted[i]`) against `reference`, with a second
    /// real draw `floor` for the floors.
    pub fn compute(
        generated: &[[f32; 2]],
        wanted: &[usize],
        guidance_scale: f64,
        reference: Labelled<'_>,
        floor: Labelled<'_>,
    ) -> Result<Self> {
        let accuracy = class_accuracy(generated, wanted, reference.points, reference.labels)?;
        let accuracy_floor = class_accuracy(
            floor.points,
            floor.labels,
            reference.points,
            reference.labels,
        )?;
        let mut classes: Vec<usize> = wanted.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let per_class = classes
            .into_iter()
            .map(|class| {
                let (points, asked): (Vec<[f32; 2]>, Vec<usize>) = generated
                    .iter()
                    .zip(wanted)
                    .filter(|&(_, &w)| w == class)
                    .map(|(&p, &w)| (p, w))
                    .unzip();
                let real = reference.of_class(class);
                Ok(ClassReport {
                    class,
                    samples: points.len(),
                    accuracy: class_accuracy(&points, &asked, reference.points, reference.labels)?,
                    energy_distance: MetricWithFloor {
                        value: energy_distance(&points, &real)?,
                        floor: energy_distance(&floor.of_class(class), &real)?,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            guidance_scale,
            accuracy,
            accuracy_floor,
            per_class,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian_cloud(n: usize, shift: f32, seed: u64) -> Vec<[f32; 2]> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let x: f32 = StandardNormal.sample(&mut rng);
                let y: f32 = StandardNormal.sample(&mut rng);
                [x + shift, y]
            })
            .collect()
    }

    #[test]
    fn energy_distance_of_two_points_is_closed_form() {
        // X = {0}, Y = {(3, 4)}: 2 * 5 - 0 - 0.
        let d = energy_distance(&[[0.0, 0.0]], &[[3.0, 4.0]]).unwrap();
        assert!((d - 10.0).abs() < 1e-12);
    }

    /// E|W| for W ~ N(nu, sigma^2 I) in 2-D: the mean of a Rice distribution,
    /// `sigma sqrt(pi / 2) L_(1/2)(-nu^2 / 2 sigma^2)`, with the Laguerre function
    /// `L_(1/2)(x) = e^(x/2) ((1 - x) I0(-x/2) - x I1(-x/2))` and the Bessel functions summed
    /// from their power series.
    fn rice_mean(nu: f64, sigma: f64) -> f64 {
        let bessel = |order: i32, z: f64| {
            let mut term = (z / 2.0).powi(order) / (1..=order).map(f64::from).product::<f64>();
            let mut sum = 0.0;
            for k in 1..60 {
                sum += term;
                term *= (z / 2.0).powi(2) / (f64::from(k) * f64::from(k + order));
            }
            sum
        };
        let x = -nu * nu / (2.0 * sigma * sigma);
        let laguerre =
            (x / 2.0).exp() * ((1.0 - x) * bessel(0, -x / 2.0) - x * bessel(1, -x / 2.0));
        sigma * (std::f64::consts::PI / 2.0).sqrt() * laguerre
    }

    #[test]
    fn energy_distance_of_shifted_gaussians_matches_theory() {
        // N(0, I) against N(mu, I): X - Y ~ N(-mu, 2 I) and X - X' ~ N(0, 2 I), so the energy
        // distance is 2 E|N(mu, 2I)| - 2 E|N(0, 2I)|, from the Rice mean: 1.5827 for |mu| = 2,
        // 0.1099 for |mu| = 0.5. Our estimate keeps the zero diagonal of E|X - X'| (a
        // V-statistic), which adds 2 sqrt(pi) / n. Its Monte Carlo sd with 2000 points a side,
        // measured over 60 pairs: 0.046 at |mu| = 2, 0.012 at 0.5 (and the mean of those 60
        // within 0.006 of the theory). The test averages 10 pairs and allows four sds of that
        // mean: 0.06 (4 %) and 0.016. A wrong pairwise sum or a missing factor 2 is off by far
        // more.
        let n = 2000;
        let expected = |shift: f64| {
            2.0 * rice_mean(shift, 2f64.sqrt()) - 2.0 * rice_mean(0.0, 2f64.sqrt())
                + 2.0 * std::f64::consts::PI.sqrt() / n as f64
        };
        assert!((rice_mean(0.0, 2f64.sqrt()) - std::f64::consts::PI.sqrt()).abs() < 1e-12);
        for (shift, tol) in [(2.0, 0.06), (0.5, 0.016)] {
            let mean = (0..10u64)
                .map(|k| {
                    let base = gaussian_cloud(n, 0.0, 100 + k);
                    energy_distance(&base, &gaussian_cloud(n, shift as f32, 200 + k)).unwrap()
                })
                .sum::<f64>()
                / 10.0;
            assert!(
                (mean - expected(shift)).abs() < tol,
                "shift {shift}: {mean} vs {}",
                expected(shift)
            );
        }
        let floor =
            energy_distance(&gaussian_cloud(n, 0.0, 1), &gaussian_cloud(n, 0.0, 2)).unwrap();
        assert!(floor < 0.01, "{floor}");
    }

    /// MMD^2 of N(0, I) against N(mu, I) in 2-D, in closed form: for W ~ N(m, 2 I),
    /// `E exp(-|W|^2 / 2s^2) = s^2 / (s^2 + 2) exp(-|m|^2 / 2(s^2 + 2))`, so each bandwidth adds
    /// `s^2 / (s^2 + 2) (2 - 2 exp(-|mu|^2 / 2(s^2 + 2)))`; our V-statistic keeps the diagonal
    /// (k = 1 per bandwidth), adding `(1 - s^2 / (s^2 + 2)) / n` twice.
    #[test]
    fn mmd_of_shifted_gaussians_matches_theory() {
        let n = 1000;
        let expected = |shift: f64| {
            RBF_BANDWIDTHS
                .iter()
                .map(|s| {
                    let c = s * s / (s * s + 2.0);
                    c * (2.0 - 2.0 * (-shift * shift / (2.0 * (s * s + 2.0))).exp())
                        + 2.0 * (1.0 - c) / n as f64
                })
                .sum::<f64>()
        };
        for shift in [1.0, 2.0] {
            let values: Vec<f64> = (0..10u64)
                .map(|k| {
                    let base = gaussian_cloud(n, 0.0, 300 + k);
                    mmd_rbf(&base, &gaussian_cloud(n, shift as f32, 400 + k)).unwrap()
                })
                .collect();
            let mean = values.iter().sum::<f64>() / 10.0;
            let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0).sqrt();
            // Four standard errors of the mean of 10, from the values themselves: 15 % of the
            // value at |mu| = 1 (the estimator is noisy), where the measured mean lands within
            // 0.4 %. A wrong bandwidth (s^2 for 1 / 2s^2) changes it several-fold.
            let tol = 4.0 * sd / 10f64.sqrt();
            eprintln!(
                "shift {shift}: {mean:.5} (sd {sd:.5}) vs theory {:.5}",
                expected(shift)
            );
            assert!(
                (mean - expected(shift)).abs() < tol && tol < 0.2 * expected(shift),
                "shift {shift}: {mean} vs {} (tolerance {tol})",
                expected(shift)
            );
        }
    }

    #[test]
    fn mmd_is_zero_for_identical_clouds_and_grows_with_shift() {
        let a = gaussian_cloud(500, 0.0, 1);
        assert!(mmd_rbf(&a, &a).unwrap() < 1e-12);
        let near = mmd_rbf(&a, &gaussian_cloud(500, 0.5, 2)).unwrap();
        let far = mmd_rbf(&a, &gaussian_cloud(500, 3.0, 3)).unwrap();
        let floor = mmd_rbf(&a, &gaussian_cloud(500, 0.0, 4)).unwrap();
        assert!(floor < near && near < far, "{floor} {near} {far}");
    }

    #[test]
    fn empty_or_non_finite_input_is_a_clear_error() {
        let err = energy_distance(&[], &[[0.0, 0.0]]).unwrap_err().to_string();
        assert!(err.contains("`x`") && err.contains("empty"), "{err}");
        let err = mmd_rbf(&[[0.0, 0.0]], &[[f32::NAN, 0.0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`y`") && err.contains("not finite"), "{err}");
    }

    #[test]
    fn per_class_quality_compares_each_class_with_its_own_real_points() {
        // Two classes far apart; the samples of each class are a fresh draw of that class.
        let class = |shift: f32, seed: u64| gaussian_cloud(300, shift, seed);
        let labels: Vec<usize> = (0..600).map(|i| i / 300).collect();
        let real: Vec<[f32; 2]> = [class(-5.0, 1), class(5.0, 2)].concat();
        let second: Vec<[f32; 2]> = [class(-5.0, 3), class(5.0, 4)].concat();
        let generated: Vec<[f32; 2]> = [class(-5.0, 5), class(5.0, 6)].concat();
        let report = ConditionalReport::compute(
            &generated,
            &labels,
            1.0,
            Labelled {
                points: &real,
                labels: &labels,
            },
            Labelled {
                points: &second,
                labels: &labels,
            },
        )
        .unwrap();
        assert_eq!(report.accuracy, 1.0);
        assert_eq!(report.per_class.len(), 2);
        for c in &report.per_class {
            assert_eq!(c.samples, 300);
            // Against its own class: as close as a second real draw (against the other class,
            // 10 apart, it would be about 20).
            assert!(
                c.energy_distance.value < 0.1 && c.energy_distance.floor < 0.1,
                "{c:?}"
            );
        }
    }

    #[test]
    fn nearest_neighbour_accuracy_counts_points_in_the_wanted_class() {
        let reference = [[-1.0f32, 0.0], [-1.1, 0.1], [1.0, 0.0], [1.1, -0.1]];
        let labels = [0, 0, 1, 1];
        let points = [[-0.9f32, 0.0], [0.9, 0.1], [1.2, 0.0], [-2.0, 0.0]];
        assert_eq!(nearest_labels(&points, &reference, &labels), [0, 1, 1, 0]);
        // Asked for 0, 1, 0, 1: the first two land in their class, the last two do not.
        let acc = class_accuracy(&points, &[0, 1, 0, 1], &reference, &labels).unwrap();
        assert_eq!(acc, 0.5);
        let report = ConditionalReport::compute(
            &points,
            &[0, 1, 0, 1],
            2.0,
            Labelled {
                points: &reference,
                labels: &labels,
            },
            Labelled {
                points: &reference,
                labels: &labels,
            },
        )
        .unwrap();
        assert_eq!(report.accuracy_floor, 1.0);
        assert_eq!(report.per_class.len(), 2);
        assert_eq!(report.per_class[0].samples, 2);
        assert_eq!(report.per_class[0].accuracy, 0.5);
        assert!(class_accuracy(&points, &[0], &reference, &labels).is_err());
    }

    #[test]
    fn nn1_accuracy_is_one_for_separated_clouds_and_zero_for_interleaved_pairs() {
        // Each point's nearest neighbour is of its own cloud: all classified right.
        let x = [[0.0f32, 0.0], [1.0, 0.0]];
        let y = [[10.0f32, 0.0], [11.0, 0.0]];
        assert_eq!(nn1_accuracy(&x, &y).unwrap(), 1.0);
        // Pairs (0, 1), (10, 11), (20, 21) with one point of each pair in each cloud: every
        // point's nearest neighbour is its partner, of the other cloud: none classified right.
        let x = [[0.0f32, 0.0], [10.0, 0.0], [20.0, 0.0]];
        let y = [[1.0f32, 0.0], [11.0, 0.0], [21.0, 0.0]];
        assert_eq!(nn1_accuracy(&x, &y).unwrap(), 0.0);
        assert!(nn1_accuracy(&[], &y).is_err());
        assert!(nn1_accuracy(&x, &[[f32::NAN, 0.0]]).is_err());
    }

    #[test]
    fn nn1_accuracy_is_one_half_for_two_draws_of_one_distribution() {
        // The expected accuracy of a 1-NN classifier on two equal samples of one distribution
        // is 1/2 - 1/(2(2n - 1)) (the neighbour is one of the 2n - 1 others, n - 1 of them of
        // the point's own kind); its spread over 10 pairs of 1000 + 1000 points is about 0.004.
        let mean: f64 = (0..10)
            .map(|s| {
                nn1_accuracy(
                    &gaussian_cloud(1000, 0.0, 2 * s),
                    &gaussian_cloud(1000, 0.0, 2 * s + 1),
                )
                .unwrap()
            })
            .sum::<f64>()
            / 10.0;
        let expected = 0.5 - 1.0 / (2.0 * 1999.0);
        assert!((mean - expected).abs() < 0.015, "{mean} vs {expected}");
        // Shifted by 4 standard deviations the clouds barely overlap: nearly all right.
        let far = nn1_accuracy(&gaussian_cloud(1000, 4.0, 1), &gaussian_cloud(1000, 0.0, 2));
        assert!(far.unwrap() > 0.95);
    }

    #[test]
    fn precision_and_recall_separate_fidelity_from_coverage() {
        let real = gaussian_cloud(1000, 0.0, 3);
        // The real points themselves: every one inside the other's manifold.
        let same = knn_precision_recall(&real, &real, 3).unwrap();
        assert_eq!((same.precision, same.recall), (1.0, 1.0));
        // Far away: nothing inside either way.
        let far = knn_precision_recall(&gaussian_cloud(1000, 30.0, 4), &real, 3).unwrap();
        assert_eq!((far.precision, far.recall), (0.0, 0.0));
        // Mode collapse: copies of the real points with x < 0 only. Every sample is real
        // (precision 1), but the half with x > 0 is covered only near the boundary.
        let half: Vec<[f32; 2]> = real.iter().copied().filter(|p| p[0] < 0.0).collect();
        let collapsed = knn_precision_recall(&half, &real, 3).unwrap();
        assert_eq!(collapsed.precision, 1.0);
        assert!(collapsed.recall < 0.6, "{}", collapsed.recall);
        assert!(collapsed.recall >= half.len() as f64 / real.len() as f64);
        // k is checked against the smaller cloud.
        assert!(knn_precision_recall(&real[..3], &real, 3).is_err());
        assert!(knn_precision_recall(&real, &real, 0).is_err());
    }

    #[test]
    fn local_metrics_fail_a_blob_that_global_metrics_let_pass() {
        // The blind spot: a Gaussian with the spirals' mean and covariance has their extent and
        // scores within a few floors on energy distance, but no spiral arm. The 1-NN accuracy
        // and precision must tell it from a second real draw by a wide margin.
        use crate::data::{Dataset2d, DatasetKind};
        let reference = Dataset2d::generate(DatasetKind::Spirals, 1000, 1).points;
        let real = Dataset2d::generate(DatasetKind::Spirals, 1000, 2).points;
        let blob = matched_gaussian(&reference, 1000, 5);
        let report = QualityReport::compute(&blob, &reference, &real).unwrap();
        eprintln!("{report:#?}");
        assert!(report.nn1_accuracy.floor < 0.56, "{report:?}");
        assert!(report.nn1_accuracy.value > NN1_FAILED_ABOVE, "{report:?}");
        assert!(report.failed());
        assert_eq!(report.verdict(), Verdict::Failed);
        assert!(
            report.precision.value < report.precision.floor - 0.2,
            "{report:?}"
        );
        // A real draw passes.
        let again = Dataset2d::generate(DatasetKind::Spirals, 1000, 3).points;
        let report = QualityReport::compute(&again, &reference, &real).unwrap();
        assert_eq!(report.verdict(), Verdict::Close, "{report:?}");
    }

    /// `n` points of the Gaussian with the mean and covariance of `points` (Cholesky).
    fn matched_gaussian(points: &[[f32; 2]], n: usize, seed: u64) -> Vec<[f32; 2]> {
        let m = points.len() as f64;
        let mean = |k: usize| points.iter().map(|p| f64::from(p[k])).sum::<f64>() / m;
        let (mx, my) = (mean(0), mean(1));
        let cov = |a: usize, b: usize, ma: f64, mb: f64| {
            points
                .iter()
                .map(|p| (f64::from(p[a]) - ma) * (f64::from(p[b]) - mb))
                .sum::<f64>()
                / m
        };
        let (sxx, sxy, syy) = (cov(0, 0, mx, mx), cov(0, 1, mx, my), cov(1, 1, my, my));
        let l11 = sxx.sqrt();
        let l21 = sxy / l11;
        let l22 = (syy - l21 * l21).sqrt();
        gaussian_cloud(n, 0.0, seed)
            .into_iter()
            .map(|[a, b]| {
                let (a, b) = (f64::from(a), f64::from(b));
                [(mx + l11 * a) as f32, (my + l21 * a + l22 * b) as f32]
            })
            .collect()
    }
}
