//! GELU, SiLU, sine and cosine as fused kernels on flex, in training as well as in sampling.
//!
//! burn's flex evaluates GELU one element at a time on one core (a scalar `erf` per value), and
//! under autodiff it keeps the input and, in the backward pass, evaluates `erf` and `exp` again
//! in a second scalar pass; SiLU is three tensor ops forward and more backward; `sin` and `cos`
//! (the sinusoidal features) are a scalar libm call per value. Here each is one
//! operation of its own, added to burn through its backend-extension mechanism
//! (`#[backend_extension]`):
//! - forward, the values are computed in SIMD lanes (`wide::f32x8`) across the cores (rayon),
//!   in place when the input's buffer is not shared;
//! - under autodiff, the forward pass computes the derivative in the same sweep and keeps it, so
//!   the backward pass is one multiplication, `grad * f'(x)`.
//!
//! GELU is the exact `x Phi(x)` form (not the tanh approximation), with `erf` as the rational
//! function in [`super::host`]; SiLU is `x sigma(x)` with `wide`'s `exp`. Both are tested against
//! burn's own ops, forward and gradient, and against f64 (below). Only flex takes this path:
//! ndarray and wgpu keep burn's
//! ops, which are also the reference the tests compare with.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{Bytes, DType};
use rayon::prelude::*;
use wide::f32x8;

use super::host::{CHUNK, in_lanes, normal_cdf8};

/// The fused element-wise operations, on flex and on flex under autodiff.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FusedKernels: burn::backend::Backend {
    /// GELU, `x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// SiLU, `x sigma(x) = x / (1 + exp(-x))`.
    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Sine (the sinusoidal features' half).
    fn fused_sin(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Cosine (the other half).
    fn fused_cos(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Whether `x` can take the fused path: an f32 tensor on flex, with or without autodiff.
pub(crate) fn fusable<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

/// GELU of a [`fusable`] tensor.
pub(crate) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::fused_gelu(x.into_dispatch()))
}

/// SiLU of a [`fusable`] tensor.
pub(crate) fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::fused_silu(x.into_dispatch()))
}

/// Sine of a [`fusable`] tensor.
pub(crate) fn sin<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::fused_sin(x.into_dispatch()))
}

/// Cosine of a [`fusable`] tensor.
pub(crate) fn cos<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedKernels>::fused_cos(x.into_dispatch()))
}

impl FusedKernels for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        map(x, gelu_lanes)
    }

    fn fused_silu(x: FlexTensor) -> FlexTensor {
        map(x, silu_lanes)
    }

    fn fused_sin(x: FlexTensor) -> FlexTensor {
        map(x, sin_lanes)
    }

    fn fused_cos(x: FlexTensor) -> FlexTensor {
        map(x, cos_lanes)
    }
}

impl<C: CheckpointStrategy> FusedKernels for Autodiff<Flex, C> {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C, _>(x, gelu_lanes)
    }

    fn fused_silu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C, _>(x, silu_lanes)
    }

    fn fused_sin(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C, _>(x, sin_lanes)
    }

    fn fused_cos(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked::<C, _>(x, cos_lanes)
    }
}

/// The element-wise `f` (its value and derivative, eight lanes at a time) under autodiff:
/// where a gradient is wanted, the derivative is computed in the same sweep and kept for
/// [`ByDerivative`]; where none is, only the values.
fn tracked<C: CheckpointStrategy, K: Lanes>(
    x: FloatTensor<Autodiff<Flex, C>>,
    f: K,
) -> FloatTensor<Autodiff<Flex, C>> {
    let (x, guard) = x.into_parts();
    match ByDerivative
        .prepare::<C>([guard])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, dy) = map_with_derivative(x, f);
            prep.finish(dy, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(map(x, f)),
    }
}

/// An element-wise function of eight lanes: `x -> (f(x), f'(x))`. Where only the values are
/// wanted the derivative is dropped, and the compiler drops the work for it.
trait Lanes: Fn(f32x8) -> (f32x8, f32x8) + Copy + Send + Sync {}
impl<K: Fn(f32x8) -> (f32x8, f32x8) + Copy + Send + Sync> Lanes for K {}

/// The backward pass of an element-wise `y = f(x)` whose derivative `f'(x)` the forward pass
/// kept: `dL/dx = dL/dy * f'(x)`, a tensor of x's own shape.
#[derive(Debug)]
struct ByDerivative;

impl Backward<Flex, 1> for ByDerivative {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let derivative = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            Flex::float_mul(grad, derivative)
        });
    }
}

/// `x`'s values as one contiguous f32 tensor that this code owns: `x` itself when its buffer is
/// not shared, a copy otherwise.
fn owned_contiguous(mut x: FlexTensor) -> FlexTensor {
    assert_eq!(x.dtype(), DType::F32, "the fused kernels take f32");
    let n = x.layout().num_elements();
    let in_place = x.is_contiguous() && x.layout().start_offset() == 0;
    if in_place && x.try_storage_mut::<f32>().is_some_and(|b| b.len() >= n) {
        return x;
    }
    let x = x.to_contiguous();
    let values = x.as_slice::<f32>().expect("a contiguous f32 tensor")[..n].to_vec();
    f32_tensor(values, x.layout().shape().clone())
}

/// A contiguous f32 flex tensor of `shape` holding `values`.
pub(super) fn f32_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// `f` applied to every value of `x`, in place where `x` owns its buffer.
fn map(x: FlexTensor, f: impl Lanes) -> FlexTensor {
    let mut y = owned_contiguous(x);
    let n = y.layout().num_elements();
    let values = &mut y.try_storage_mut::<f32>().expect("owned")[..n];
    values
        .par_chunks_mut(CHUNK)
        .for_each(|v| in_lanes(v, |x| f(x).0));
    y
}

/// `(f(x), f'(x))` in one sweep: each value becomes `f(x)`, and `f'(x)` goes to a new tensor.
fn map_with_derivative(x: FlexTensor, f: impl Lanes) -> (FlexTensor, FlexTensor) {
    let mut y = owned_contiguous(x);
    let n = y.layout().num_elements();
    let shape = y.layout().shape().clone();
    let mut derivative = vec![0f32; n];
    let values = &mut y.try_storage_mut::<f32>().expect("owned")[..n];
    values
        .par_chunks_mut(CHUNK)
        .zip(derivative.par_chunks_mut(CHUNK))
        .for_each(|(v, d)| with_derivative_in_lanes(v, d, f));
    let derivative = f32_tensor(derivative, shape);
    (y, derivative)
}

/// [`in_lanes`] for a function and its derivative: `values` become `f(x)`, `out` gets `f'(x)`.
fn with_derivative_in_lanes(values: &mut [f32], out: &mut [f32], f: impl Lanes) {
    let full = values.len() / 8 * 8;
    for (v, o) in values[..full]
        .chunks_exact_mut(8)
        .zip(out[..full].chunks_exact_mut(8))
    {
        let (y, d) = f(f32x8::new((&*v).try_into().expect("8 lanes")));
        v.copy_from_slice(&y.to_array());
        o.copy_from_slice(&d.to_array());
    }
    let tail = values.len() - full;
    if tail > 0 {
        let mut x = [0f32; 8];
        x[..tail].copy_from_slice(&values[full..]);
        let (y, d) = f(f32x8::new(x));
        values[full..].copy_from_slice(&y.to_array()[..tail]);
        out[full..].copy_from_slice(&d.to_array()[..tail]);
    }
}

/// GELU and its derivative: `Phi(x) = 0.5 (1 + erf(x / sqrt 2))`, `y = x Phi(x)`,
/// `y' = Phi(x) + x phi(x)` with `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`.
fn gelu_lanes(x: f32x8) -> (f32x8, f32x8) {
    let cdf = normal_cdf8(x);
    // 1 / sqrt(2 pi)
    let pdf = f32x8::splat(0.398_942_3) * (f32x8::splat(-0.5) * x * x).exp();
    (x * cdf, cdf + x * pdf)
}

/// SiLU and its derivative: `s = sigma(x)`, `y = x s`, `y' = s (1 + x (1 - s))`.
fn silu_lanes(x: f32x8) -> (f32x8, f32x8) {
    let s = f32x8::ONE / (f32x8::ONE + (-x).exp());
    (x * s, s * (f32x8::ONE + x * (f32x8::ONE - s)))
}

/// Sine and its derivative, the cosine (`wide`'s `sin_cos`).
fn sin_lanes(x: f32x8) -> (f32x8, f32x8) {
    x.sin_cos()
}

/// Cosine and its derivative, minus the sine.
fn cos_lanes(x: f32x8) -> (f32x8, f32x8) {
    let (s, c) = x.sin_cos();
    (c, -s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::testing::{max_gap, vec_of};
    use crate::rng::NoiseSource;
    use burn::tensor::TensorData;

    fn flex() -> Device {
        Device::flex()
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        // normal values spread to +-12, and the special points
        let mut v: Vec<f32> = NoiseSource::new(seed)
            .normal_vec(n)
            .into_iter()
            .map(|x| x * 4.0)
            .collect();
        v.extend([
            0.0, -0.0, 1e-8, -1e-8, 9.0, -9.0, 30.0, -30.0, 100.0, -100.0,
        ]);
        v
    }

    type Op = fn(Tensor<2>) -> Tensor<2>;
    fn burn_sin(x: Tensor<2>) -> Tensor<2> {
        x.sin()
    }
    fn burn_cos(x: Tensor<2>) -> Tensor<2> {
        x.cos()
    }
    const OPS: [(&str, Op, Op, f32); 4] = [
        ("gelu", gelu, burn::tensor::activation::gelu, 2e-6),
        ("silu", silu, burn::tensor::activation::silu, 2e-6),
        ("sin", sin, burn_sin, 2e-6),
        ("cos", cos, burn_cos, 2e-6),
    ];

    /// f64 references: GELU (with erf by its series and continued fraction) and SiLU, and
    /// their derivatives.
    fn reference(name: &str, x: f64) -> (f64, f64) {
        match name {
            "gelu" => {
                let erf = crate::backend::host::tests::reference_erf;
                let cdf = 0.5 * (1.0 + erf(x / 2f64.sqrt()));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (x * cdf, cdf + x * pdf)
            }
            "silu" => {
                let s = 1.0 / (1.0 + (-x).exp());
                (x * s, s * (1.0 + x * (1.0 - s)))
            }
            "sin" => (x.sin(), x.cos()),
            "cos" => (x.cos(), -x.sin()),
            _ => unreachable!("no reference for {name}"),
        }
    }

    #[test]
    fn fused_values_and_derivatives_match_f64() {
        let xs = values(50_000, 1);
        for (name, lanes) in [
            ("gelu", gelu_lanes as fn(f32x8) -> (f32x8, f32x8)),
            ("silu", silu_lanes),
            ("sin", sin_lanes),
            ("cos", cos_lanes),
        ] {
            let (mut worst_y, mut worst_d) = (0f64, 0f64);
            for chunk in xs.chunks(8) {
                let mut x = [0f32; 8];
                x[..chunk.len()].copy_from_slice(chunk);
                let (y, d) = lanes(f32x8::new(x));
                for i in 0..chunk.len() {
                    let (ry, rd) = reference(name, f64::from(x[i]));
                    worst_y =
                        worst_y.max((f64::from(y.to_array()[i]) - ry).abs() / (1.0 + ry.abs()));
                    worst_d =
                        worst_d.max((f64::from(d.to_array()[i]) - rd).abs() / (1.0 + rd.abs()));
                }
            }
            assert!(worst_y < 1.5e-6, "{name}: value error {worst_y:e}");
            assert!(worst_d < 2e-6, "{name}: derivative error {worst_d:e}");
        }
    }

    #[test]
    fn fused_forward_matches_burns_ops_in_place_shared_and_strided() {
        let xs = values(3 * CHUNK + 5, 2);
        let n = xs.len();
        for (name, fused, burns, tol) in OPS {
            let make = || Tensor::<2>::from_data(TensorData::new(xs.clone(), [1, n]), &flex());
            let expected = vec_of(burns(make()));
            // a buffer no one else holds: computed in place
            assert!(
                max_gap(&vec_of(fused(make())), &expected) < tol,
                "{name} in place"
            );
            // a shared buffer: the input must be left as it was
            let shared = make();
            let out = fused(shared.clone());
            assert!(max_gap(&vec_of(out), &expected) < tol, "{name} shared");
            assert_eq!(vec_of(shared), xs, "{name} wrote into a shared input");
            // a strided view (a transpose) and a narrowed one
            let square = Tensor::<2>::from_data(
                TensorData::new(xs[..100 * 120].to_vec(), [100, 120]),
                &flex(),
            );
            let t = square.clone().transpose();
            assert!(max_gap(&vec_of(fused(t.clone())), &vec_of(burns(t))) < tol);
            let narrow = square.narrow(1, 7, 50);
            assert!(max_gap(&vec_of(fused(narrow.clone())), &vec_of(burns(narrow))) < tol);
        }
    }

    #[test]
    fn fused_gradients_match_burns_under_autodiff() {
        let device = flex().autodiff();
        let xs = values(2 * CHUNK + 3, 3);
        let n = xs.len();
        let weights = NoiseSource::new(4).normal_vec(n);
        for (name, fused, burns, tol) in OPS {
            let run = |op: Op| {
                let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [1, n]), &device)
                    .require_grad();
                let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [1, n]), &device);
                // the op's output used twice downstream, and its input once more beside it
                let y = op(x.clone());
                let loss =
                    (y.clone() * w).sum() + y.powf_scalar(2.0).sum() * 0.01 + x.clone().sum();
                let grads = loss.backward();
                let g = x.grad(&grads).expect("x has a gradient");
                (vec_of(op(x.inner())), vec_of(g))
            };
            let (y_f, g_f) = run(fused);
            let (y_b, g_b) = run(burns);
            assert!(max_gap(&y_f, &y_b) < tol, "{name} forward");
            let gap = max_gap(&g_f, &g_b);
            assert!(gap < 1e-5, "{name} gradient: {gap:e}");
        }
    }

    #[test]
    fn nothing_tracked_gives_the_values_and_no_graph() {
        let device = flex().autodiff();
        let x = Tensor::<2>::from_floats([[-1.0, 0.5], [2.0, -3.0]], &device);
        for (name, fused, burns, tol) in OPS {
            assert!(
                max_gap(&vec_of(fused(x.clone())), &vec_of(burns(x.clone()))) < tol,
                "{name}"
            );
        }
    }

    #[test]
    fn special_values() {
        let x =
            Tensor::<1>::from_floats([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0], &flex());
        let g = vec_of(gelu(x.clone()));
        assert!(
            g[0].is_nan() && g[1] == f32::INFINITY && g[3] == 0.0,
            "{g:?}"
        );
        let s = vec_of(silu(x));
        assert!(
            s[0].is_nan() && s[1] == f32::INFINITY && s[3] == 0.0,
            "{s:?}"
        );
    }
}
