//! The convolution's input gradient as a convolution, on flex under autodiff.
//!
//! burn computes the gradient of `conv2d` with respect to its input as a transposed convolution,
//! and burn-flex's transposed convolution is a scalar loop on one core: in a U-Net training step
//! it took a quarter of the time (`perf`, see README "Speed"), while the forward convolution
//! runs as im2col and a matrix product across the cores. The input gradient *is* a forward
//! convolution, so this module computes it as one.
//!
//! For `y = conv(x, w)` with stride `s`, padding `p` and a `k x k` kernel,
//! `dL/dx[u] = sum_kh dL/dy_s[u + p - kh] w[kh]`, where `dL/dy_s` is the output gradient with
//! `s - 1` zeros between its rows and columns (nothing to insert when `s = 1`). That is a
//! convolution of `dL/dy_s`, padded by `k - 1 - p`, with the kernel turned by 180 degrees and its
//! input and output channels swapped. The weight's and the bias's gradients stay burn's.
//!
//! The operation is added to burn through its backend-extension mechanism, like the element-wise
//! kernels in [`super::fused`]; the forward pass is burn-flex's own convolution. It serves the
//! common case (no dilation, one group, the same padding on both sides of each axis, at most
//! `k - 1`); every other convolution, and every other backend, keeps burn's `Conv2d::forward`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

use super::fused::f32_tensor;

/// A 2-D convolution without bias whose input gradient is computed as a convolution.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait ConvKernels: burn::backend::Backend {
    /// `conv2d(x, weight)` with `options`; under autodiff, its backward pass is
    /// [`ConvBackward`].
    fn conv2d_by_convolutions(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// `conv`'s output for `x` when this module serves it: an f32 tensor on flex under autodiff
/// (training), and a convolution of the common case (see the module documentation). `None`
/// otherwise: the caller runs burn's `Conv2d::forward`.
pub(crate) fn conv2d(conv: &Conv2d, x: &Tensor<4>) -> Option<Tensor<4>> {
    let device = x.device();
    if !(device.is_autodiff() && device.inner() == Device::flex() && x.dtype() == DType::F32) {
        return None;
    }
    let [kh, kw] = conv.kernel_size;
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return None,
    };
    if conv.dilation != [1, 1] || conv.groups != 1 || padding[0] >= kh || padding[1] >= kw {
        return None;
    }
    let options = ConvOptions::new(conv.stride, padding, [1, 1], 1);
    let y = Tensor::from_dispatch(<Dispatch as ConvKernels>::conv2d_by_convolutions(
        x.clone().into_dispatch(),
        conv.weight.val().into_dispatch(),
        options,
    ));
    Some(match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.val().reshape([1, channels, 1, 1])
        }
        None => y,
    })
}

impl ConvKernels for Flex {
    fn conv2d_by_convolutions(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        Flex::conv2d(x, weight, None, options)
    }
}

impl<C: CheckpointStrategy> ConvKernels for Autodiff<Flex, C> {
    fn conv2d_by_convolutions(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, weight_node) = weight.into_parts();
        match ConvBackward
            .prepare::<C>([x_node, weight_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = Flex::conv2d(x.clone(), weight.clone(), None, options.clone());
                prep.finish((x, weight, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d(x, weight, None, options)),
        }
    }
}

/// The backward pass of `y = conv2d(x, w)`: the input gradient by [`input_gradient`], the
/// weight's by burn (a convolution of the input with the output gradient).
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (FlexTensor, FlexTensor, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, options) = ops.state;
        let [_, _, height, width] = x.layout().shape().dims();
        if let Some(node) = weight_node {
            let dw = Flex::conv2d_weight_backward(x, weight.clone(), grad.clone(), options.clone());
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = x_node {
            let dx = input_gradient(grad, weight, [height, width], &options);
            grads.register::<Flex>(node.id, dx);
        }
    }
}

/// `dL/dx` of a convolution with `options` (no dilation, one group, symmetric padding below the
/// kernel's size) whose input was `input_size` high and wide: the output gradient, spread to the
/// input's stride, convolved with the turned, transposed kernel.
fn input_gradient(
    grad: FlexTensor,
    weight: FlexTensor,
    input_size: [usize; 2],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let [_, _, kh, kw] = weight.layout().shape().dims();
    let padding = [options.padding[0].0, options.padding[1].0];
    // the spread gradient's size: the convolution below gives back the input's size
    let spread_size = [
        input_size[0] + 2 * padding[0] + 1 - kh,
        input_size[1] + 2 * padding[1] + 1 - kw,
    ];
    let grad = spread(grad, options.stride, spread_size);
    let kernel = Flex::float_flip(Flex::float_swap_dims(weight, 0, 1), &[2, 3]);
    let turned = ConvOptions::new(
        [1, 1],
        [kh - 1 - padding[0], kw - 1 - padding[1]],
        [1, 1],
        1,
    );
    Flex::conv2d(grad, kernel, None, turned)
}

/// The output gradient `[b, c, h, w]` with `stride - 1` zeros after each row and column, in a
/// `[b, c, size[0], size[1]]` tensor (zeros beyond the last row and column); the gradient
/// itself where the stride is 1 and the size its own.
fn spread(grad: FlexTensor, stride: [usize; 2], size: [usize; 2]) -> FlexTensor {
    let [batch, channels, height, width] = grad.layout().shape().dims();
    if stride == [1, 1] && size == [height, width] {
        return grad;
    }
    let grad = grad.to_contiguous();
    let values = grad.as_slice::<f32>().expect("a contiguous f32 tensor");
    let mut out = vec![0f32; batch * channels * size[0] * size[1]];
    out.par_chunks_mut(size[0] * size[1])
        .zip(values.par_chunks(height * width))
        .for_each(|(plane, g)| {
            for (i, row) in g.chunks_exact(width).enumerate() {
                let start = i * stride[0] * size[1];
                for (j, &v) in row.iter().enumerate() {
                    plane[start + j * stride[1]] = v;
                }
            }
        });
    f32_tensor(out, Shape::new([batch, channels, size[0], size[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::testing::{max_gap, vec_of};
    use crate::rng::NoiseSource;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::TensorData;

    /// The convolution's output and its gradients (input, weight, bias) through this module and
    /// through burn's `Conv2d::forward`, for the same module, input and upstream weights.
    #[test]
    fn values_and_gradients_match_burns_convolution() {
        let device = Device::flex().autodiff();
        // (channels in, out, kernel, stride, padding, height, width)
        let cases = [
            (3, 5, 3, 1, 1, 8, 8),
            (4, 6, 3, 2, 1, 8, 8),
            (4, 6, 3, 2, 1, 7, 9),
            (2, 3, 3, 1, 0, 6, 5),
            (5, 4, 1, 1, 0, 4, 4),
            (2, 2, 5, 2, 2, 9, 6),
            (1, 8, 3, 3, 2, 10, 10),
        ];
        for (seed, &(c_in, c_out, k, stride, pad, h, w)) in cases.iter().enumerate() {
            let padding = if pad == 0 {
                PaddingConfig2d::Valid
            } else {
                PaddingConfig2d::Explicit(pad, pad, pad, pad)
            };
            let conv = Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([stride, stride])
                .with_padding(padding)
                .init(&device);
            let batch = 3;
            let xs = NoiseSource::new(seed as u64).normal_vec(batch * c_in * h * w);
            let run = |ours: bool| {
                let x = Tensor::<4>::from_data(
                    TensorData::new(xs.clone(), [batch, c_in, h, w]),
                    &device,
                )
                .require_grad();
                let y = if ours {
                    conv2d(&conv, &x).expect("this module serves the case")
                } else {
                    conv.forward(x.clone())
                };
                let upstream = Tensor::<4>::from_data(
                    TensorData::new(
                        NoiseSource::new(100 + seed as u64).normal_vec(y.shape().num_elements()),
                        y.dims(),
                    ),
                    &device,
                );
                let grads = (y.clone() * upstream).sum().backward();
                let bias = conv.bias.as_ref().expect("a bias").val();
                (
                    vec_of(y.inner()),
                    vec_of(x.grad(&grads).expect("input gradient")),
                    vec_of(conv.weight.val().grad(&grads).expect("weight gradient")),
                    vec_of(bias.grad(&grads).expect("bias gradient")),
                )
            };
            let (ours, burns) = (run(true), run(false));
            let case = (c_in, c_out, k, stride, pad, h, w);
            assert!(max_gap(&ours.0, &burns.0) < 1e-5, "{case:?}: output");
            assert!(
                max_gap(&ours.1, &burns.1) < 1e-5,
                "{case:?}: input gradient"
            );
            assert!(
                max_gap(&ours.2, &burns.2) < 1e-5,
                "{case:?}: weight gradient"
            );
            assert!(max_gap(&ours.3, &burns.3) < 1e-5, "{case:?}: bias gradient");
        }
    }

    #[test]
    fn other_convolutions_and_devices_keep_burns_path() {
        let ad = Device::flex().autodiff();
        let x = Tensor::<4>::zeros([1, 2, 6, 6], &ad);
        let dilated = Conv2dConfig::new([2, 2], [3, 3])
            .with_dilation([2, 2])
            .init(&ad);
        assert!(conv2d(&dilated, &x).is_none());
        let grouped = Conv2dConfig::new([2, 2], [3, 3]).with_groups(2).init(&ad);
        assert!(conv2d(&grouped, &x).is_none());
        let uneven = Conv2dConfig::new([2, 2], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 0, 0))
            .init(&ad);
        assert!(conv2d(&uneven, &x).is_none());
        // sampling: no autodiff, burn-flex's forward convolution as it is
        let plain = Device::flex();
        let conv = Conv2dConfig::new([2, 2], [3, 3]).init(&plain);
        assert!(conv2d(&conv, &Tensor::<4>::zeros([1, 2, 6, 6], &plain)).is_none());
        let served = Conv2dConfig::new([2, 2], [3, 3]).init(&ad);
        assert!(conv2d(&served, &x).is_some());
    }
}
