//! Moving points between the host and tensors: the one place that reads tensors back.
//!
//! A bottom-level module: the forward process, the samplers, the losses and the analysis all use
//! it, and it uses none of them.

use burn::prelude::*;
use serde::Serialize;

use crate::{DdpmError, Result};

/// One recorded state of the reverse chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    /// The paper's time index: `T` for pure noise x_T, `0` for the final samples x_0.
    pub t: usize,
    /// The points x_t.
    pub points: Vec<[f32; 2]>,
}

/// Read a `[n, 2]` tensor back as points, refusing non-finite values.
pub fn to_points(x: Tensor<2>) -> Result<Vec<[f32; 2]>> {
    let values = read_floats(x)?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(DdpmError::InvalidInput {
            field: "x",
            message: "tensor holds non-finite values".into(),
        });
    }
    Ok(values.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
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
