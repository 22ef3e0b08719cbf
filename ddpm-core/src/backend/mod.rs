//! Where tensors live and which kernels run them: the [`Backend`] choice (flex, ndarray, wgpu)
//! and, in [`host`], the CPU kernels the library runs in SIMD lanes on the host where burn's
//! CPU backends run scalar ones.

#[cfg(feature = "flex")]
pub(crate) mod conv;
#[cfg(feature = "flex")]
pub(crate) mod fused;
pub(crate) mod host;

/// What the kernel tests of this module share: a tensor's values, and how far two sets of values
/// are apart.
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use super::host::host_values as vec_of;

    /// The largest gap between `a` and `b` relative to `1 + |b|`; where it passes 1e-6, the worst
    /// pair goes to standard error.
    pub(crate) fn max_gap(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let (i, gap) = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
            .enumerate()
            .fold(
                (0, 0.0),
                |(bi, bg), (i, g)| if g > bg { (i, g) } else { (bi, bg) },
            );
        if gap > 1e-6 {
            eprintln!("worst at {i}: {} against {}", a[i], b[i]);
        }
        gap
    }
}

use burn::prelude::{Device, Tensor};

use crate::error::{DdpmError, Result};

/// GELU (the exact erf form) wherever `x` lives: the fused kernel on flex, with its own
/// backward pass ([`fused`]); SIMD lanes on the host for ndarray without autodiff ([`host`]);
/// burn's op everywhere else (ndarray under autodiff, wgpu).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused::fusable(&x) {
        return fused::gelu(x);
    }
    if host::host_path(&x.device()) {
        return host::gelu(x);
    }
    burn::tensor::activation::gelu(x)
}

/// SiLU, `x sigma(x)`, wherever `x` lives: the fused kernel on flex ([`fused`]), burn's op
/// everywhere else.
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused::fusable(&x) {
        return fused::silu(x);
    }
    burn::tensor::activation::silu(x)
}

/// A 2-D convolution wherever `x` lives: in training on flex, with its input gradient computed as
/// a convolution ([`conv`]); burn's `Conv2d::forward` everywhere else.
pub fn conv2d(conv: &burn::nn::conv::Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if let Some(y) = conv::conv2d(conv, &x) {
        return y;
    }
    conv.forward(x)
}

/// The sine wherever `x` lives: the fused kernel on flex ([`fused`]), burn's op elsewhere.
pub fn sin<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused::fusable(&x) {
        return fused::sin(x);
    }
    x.sin()
}

/// The cosine wherever `x` lives: the fused kernel on flex ([`fused`]), burn's op elsewhere.
pub fn cos<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if fused::fusable(&x) {
        return fused::cos(x);
    }
    x.cos()
}

crate::choice::choice_enum! {
    /// Where tensors live and which kernels run them.
    pub enum Backend ("backend") {
        /// burn's pure-Rust CPU backend (the default: fastest here).
        Flex = "flex",
        /// The ndarray CPU backend (deprecated by burn 0.22 in favour of flex).
        Ndarray = "ndarray",
        /// GPU through wgpu (Vulkan, Metal, DX12); needs the `wgpu` cargo feature.
        Wgpu = "wgpu",
        /// PyTorch's CPU kernels through burn's LibTorch backend; needs the `tch` cargo feature
        /// and PyTorch 2.9.0 (environment.md).
        Libtorch = "libtorch",
    }
}

impl Backend {
    /// The CPU backend used when none is named: flex if compiled in, else ndarray.
    pub fn default_cpu() -> Self {
        if cfg!(feature = "flex") {
            Backend::Flex
        } else {
            Backend::Ndarray
        }
    }

    /// Whether this backend was compiled in.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Libtorch => cfg!(feature = "tch"),
        }
    }

    /// The backends compiled into this build.
    pub fn available() -> Vec<Backend> {
        Self::ALL
            .iter()
            .copied()
            .filter(|b| b.is_available())
            .collect()
    }

    /// The backend a (non-autodiff) device belongs to, among those compiled in. Asking never
    /// starts wgpu: only the device [`Backend::device`] made is recognised as wgpu's (a wgpu
    /// device made some other way gets `None`).
    pub fn of(device: &Device) -> Option<Backend> {
        Self::available().into_iter().find(|&b| {
            let candidate = match b {
                #[cfg(feature = "wgpu")]
                Backend::Wgpu => WGPU_ADAPTER
                    .get()
                    .and_then(|r| r.as_ref().ok())
                    .map(|adapter| adapter.device.clone()),
                _ => b.device().ok(),
            };
            candidate.as_ref() == Some(device)
        })
    }

    /// A short name for `device`: the backend's name, or the device's debug form.
    pub fn label(device: &Device) -> String {
        Self::of(device).map_or_else(|| format!("{device:?}"), |b| b.name().to_string())
    }

    /// What runs this backend's kernels: the adapter for wgpu (e.g. `llvmpipe (LLVM 15.0.6, 256
    /// bits) (Cpu, vulkan)` for Mesa's software driver, or the GPU's name), `CPU` for the CPU
    /// backends; the same error as [`Backend::device`] when it cannot run.
    pub fn hardware(self) -> Result<String> {
        match self {
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_adapter().map(|adapter| adapter.description),
            other => other.device().map(|_| "CPU".to_string()),
        }
    }

    /// Whether this backend runs on a GPU: wgpu on a hardware adapter. `false` for the CPU
    /// backends, and for wgpu on a software rasterizer (llvmpipe), which runs its shaders on the
    /// CPU far slower than flex.
    pub fn runs_on_gpu(self) -> bool {
        match self {
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_adapter().is_ok_and(|adapter| !adapter.software),
            _ => false,
        }
    }

    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Libtorch => "tch",
            other => other.name(),
        }
    }

    /// A device of this backend (without autodiff; training adds it).
    pub fn device(self) -> Result<Device> {
        let missing = |feature: &str| DdpmError::BackendUnavailable {
            backend: self.name().to_string(),
            reason: format!(
                "this build lacks the `{feature}` cargo feature; compiled in: {}",
                Self::available()
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn 0.22 deprecates ndarray; the tutorial still offers it
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_adapter().map(|adapter| adapter.device),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            // burn 0.22 deprecates LibTorch in favour of its CubeCL backends
            Backend::Libtorch => Ok(Device::libtorch()),
            #[allow(unreachable_patterns)]
            other => Err(missing(other.feature())),
        }
    }
}

/// The adapter wgpu was started on: its device, a description, and whether it is a software
/// rasterizer (a CPU); or why wgpu could not start. Set on first use.
#[cfg(feature = "wgpu")]
#[derive(Clone)]
struct WgpuAdapter {
    device: Device,
    description: String,
    software: bool,
}

#[cfg(feature = "wgpu")]
static WGPU_ADAPTER: std::sync::OnceLock<std::result::Result<WgpuAdapter, String>> =
    std::sync::OnceLock::new();

/// The wgpu device on the adapter wgpu prefers (a discrete GPU first; a software driver such
/// as Mesa's llvmpipe when nothing else is there), or why there is none.
///
/// burn's `Device::wgpu` is lazy and panics at the first tensor when no adapter exists; this
/// asks for the adapter up front, once per process, and turns its absence into an error that
/// says what to install. Other failures (say, wgpu already started elsewhere in the process
/// with other options) keep burn's own message.
#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> Result<WgpuAdapter> {
    use burn::tensor::wgpu::{WgpuInitError, wgpu::DeviceType};
    WGPU_ADAPTER
        .get_or_init(|| {
            let (device, setup) =
                Device::wgpu_options()
                    .init_with_setup()
                    .map_err(|e| match e {
                        WgpuInitError::AdapterUnavailable { .. } => format!(
                            "wgpu found no graphics adapter ({e}). Install your GPU's driver with \
                         Vulkan (Linux, Windows), Metal (macOS) or DX12 (Windows); on Linux \
                         without a GPU, `apt install mesa-vulkan-drivers` gives a software Vulkan \
                         adapter (llvmpipe) that runs everything, about 15-20x slower than \
                         `--backend flex`"
                        ),
                        other => format!("wgpu could not start: {other}"),
                    })?;
            let info = setup.adapter.get_info();
            Ok(WgpuAdapter {
                device,
                description: format!("{} ({:?}, {})", info.name, info.device_type, info.backend),
                software: info.device_type == DeviceType::Cpu,
            })
        })
        .clone()
        .map_err(|reason| DdpmError::BackendUnavailable {
            backend: "wgpu".to_string(),
            reason,
        })
}
