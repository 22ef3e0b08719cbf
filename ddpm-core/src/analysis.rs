//! Looking inside a trained model: what its noise prediction does over the plane, and what its
//! time embedding looks like.

use burn::prelude::*;

use crate::error::{DdpmError, Result};
use crate::model::{Denoise, sinusoidal_embedding};
use crate::plot::{Arrow, Bounds};
use crate::points::{from_points, read_floats, to_points};
use crate::schedule::NoiseSchedule;

/// The model's score estimate `-eps_theta(x, t) / sqrt(1 - alpha-bar_t)` (eps converted from
/// x_0 or v for models that predict those) on a `grid` x `grid`
/// lattice over `bounds`, at the 0-based timestep `t`.
///
/// eps_theta estimates the noise in x_t, so this estimates the score grad log q(x_t): the arrows
/// point from noise towards the data, and each reverse step moves along them.
pub fn score_field<M: Denoise + ?Sized>(
    model: &M,
    schedule: &NoiseSchedule,
    t: usize,
    bounds: Bounds,
    grid: usize,
    device: &Device,
) -> Result<Vec<Arrow>> {
    if !(2..=200).contains(&grid) {
        return Err(DdpmError::invalid("grid", grid, "must be in 2..=200"));
    }
    let limit = schedule.timesteps();
    if t >= limit {
        return Err(DdpmError::invalid(
            "t",
            t,
            format!("must be a 0-based timestep in 0..{limit}"),
        ));
    }
    let step = 2.0 * bounds.half / grid as f32;
    let bases: Vec<[f32; 2]> = (0..grid * grid)
        .map(|i| {
            let (row, col) = (i / grid, i % grid);
            [
                -bounds.half + (col as f32 + 0.5) * step,
                -bounds.half + (row as f32 + 0.5) * step,
            ]
        })
        .collect();
    let x = from_points(&bases, device);
    let output = model.denoise_at(x.clone(), t, None);
    let (_, eps) = output.target.to_x0_and_eps(schedule, x, &[t], output.value);
    let eps = to_points(eps)?;
    let scale = -1.0 / schedule.sqrt_one_minus_alpha_bar[t] as f32;
    Ok(bases
        .into_iter()
        .zip(eps)
        .map(|(at, e)| Arrow {
            at,
            direction: [scale * e[0], scale * e[1]],
        })
        .collect())
}

/// The sinusoidal embedding (as the denoiser uses for t) of each of `positions`, `size` features
/// per position: one row per position, for a heatmap.
pub fn sinusoidal_table(positions: &[f32], size: usize, device: &Device) -> Result<Vec<Vec<f32>>> {
    if size < 2 || !size.is_multiple_of(2) {
        return Err(DdpmError::invalid("size", size, "must be even and >= 2"));
    }
    let x = Tensor::<1>::from_floats(positions, device).reshape([positions.len(), 1]);
    let flat = read_floats(sinusoidal_embedding(x, size, 1.0))?;
    Ok(flat.chunks_exact(size).map(<[f32]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Head, MlpConfig};

    #[test]
    fn score_field_covers_the_grid_and_rejects_bad_input() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let model = crate::rng::seeded(&device, 0, || {
            MlpConfig::default().init(Head::default(), 100, &device)
        });
        let schedule = crate::schedule::ScheduleConfig {
            timesteps: 100,
            ..Default::default()
        }
        .init()
        .unwrap();
        let bounds = Bounds { half: 2.0 };
        let arrows = score_field(&model, &schedule, 10, bounds, 5, &device).unwrap();
        assert_eq!(arrows.len(), 25);
        let close =
            |a: [f32; 2], b: [f32; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
        // Cell centres: the first at the bottom left, the last at the top right.
        assert!(close(arrows[0].at, [-1.6, -1.6]), "{:?}", arrows[0].at);
        assert!(close(arrows[4].at, [1.6, -1.6]), "{:?}", arrows[4].at);
        assert!(close(arrows[24].at, [1.6, 1.6]), "{:?}", arrows[24].at);
        assert!(
            arrows
                .iter()
                .all(|a| a.direction.iter().all(|d| d.is_finite()))
        );
        let err = score_field(&model, &schedule, 100, bounds, 5, &device).unwrap_err();
        assert!(err.to_string().contains("0..100"), "{err}");
        assert!(score_field(&model, &schedule, 0, bounds, 1, &device).is_err());
    }

    #[test]
    fn sinusoidal_table_starts_with_sin_zero_and_cos_one() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let table = sinusoidal_table(&[0.0, 3.0], 8, &device).unwrap();
        assert_eq!(table.len(), 2);
        assert_eq!(table[0], vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        assert!((table[1][0] - 3f32.sin()).abs() < 1e-6);
        assert!(sinusoidal_table(&[1.0], 7, &device).is_err());
    }
}
