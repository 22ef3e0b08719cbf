//! Moving points (and rows of any width) between the host and tensors: the one place that
//! reads tensors back.
//!
//! A bottom-level module: the forward process, the samplers, the losses and the analysis all use
//! it, and it uses none of them.

use burn::prelude::*;
use serde::Serialize;

use crate::error::{DdpmError, Result};
use crate::time::PaperTime;

/// One recorded state of the reverse chain: points by default, rows of any width (such as
/// flattened images) as `Frame<Vec<f32>>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame<P = [f32; 2]> {
    /// The state's time: `T` for pure noise x_T, `0` for the final samples x_0.
    pub t: PaperTime,
    /// The examples x_t.
    pub points: Vec<P>,
}

/// An example as the host reads it back from a `[n, width]` tensor: a 2-D point, or a row of
/// any width.
pub trait Readout: Sized {
    /// Read the rows of `x`, refusing non-finite values and a width this type cannot hold.
    fn read(x: Tensor<2>) -> Result<Vec<Self>>;
}

impl Readout for [f32; 2] {
    fn read(x: Tensor<2>) -> Result<Vec<Self>> {
        to_points(x)
    }
}

impl Readout for Vec<f32> {
    fn read(x: Tensor<2>) -> Result<Vec<Self>> {
        to_rows(x)
    }
}

/// Read a `[n, 2]` tensor back as points, refusing non-finite values and any other width.
pub fn to_points(x: Tensor<2>) -> Result<Vec<[f32; 2]>> {
    let [_, width] = x.dims();
    if width != 2 {
        return Err(DdpmError::InvalidInput {
            field: "x",
            message: format!("points have 2 coordinates, this tensor has {width} per row"),
        });
    }
    Ok(to_rows(x)?.into_iter().map(|r| [r[0], r[1]]).collect())
}

/// Read a `[n, width]` tensor back as `n` rows, refusing non-finite values.
pub fn to_rows(x: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, width] = x.dims();
    let values = read_floats(x)?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(DdpmError::InvalidInput {
            field: "x",
            message: "tensor holds non-finite values".into(),
        });
    }
    Ok(values
        .chunks_exact(width.max(1))
        .map(<[f32]>::to_vec)
        .collect())
}

/// Read a float tensor back to the host, row-major.
pub(crate) fn read_floats<const D: usize>(x: Tensor<D>) -> Result<Vec<f32>> {
    x.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| DdpmError::InvalidInput {
            field: "x",
            message: format!("cannot read tensor: {e:?}"),
        })
}

/// Build a `[n, 2]` tensor from points.
pub fn from_points(points: &[[f32; 2]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = points.iter().flatten().copied().collect();
    Tensor::<1>::from_floats(flat.as_slice(), device).reshape([points.len(), 2])
}

/// Build a `[n, width]` tensor from rows of equal width.
pub fn from_rows(rows: &[Vec<f32>], device: &Device) -> Result<Tensor<2>> {
    let width = rows.first().map_or(0, Vec::len);
    if let Some(bad) = rows.iter().position(|r| r.len() != width) {
        return Err(DdpmError::InvalidInput {
            field: "rows",
            message: format!(
                "row {bad} has {} values, row 0 has {width}",
                rows[bad].len()
            ),
        });
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Ok(Tensor::<1>::from_floats(flat.as_slice(), device).reshape([rows.len(), width]))
}
