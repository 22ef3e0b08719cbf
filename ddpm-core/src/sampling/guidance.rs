//! Classifier-free guidance (Ho & Salimans 2022): steer a conditional denoiser towards its
//! classes by extrapolating from its unconditional prediction,
//!
//! `eps_guided = eps_null + w (eps_class - eps_null)`,
//!
//! where the null class is the "no condition" the network learned through label dropout.
//! `w = 1` is the plain conditional model, `w = 0` the unconditional one, `w > 1` trades
//! diversity for samples that look more like their class.
//!
//! Both predictions come from one forward pass over a doubled batch, except where one half is
//! not needed: at `w = 1` the result is the conditional prediction alone, and at `w = 0` (for a
//! fixed variance) the unconditional one alone, so only that half is run. The formula is applied to
//! whatever the network predicts: x_0, the noise and the velocity are each an affine function
//! of the others for a fixed x_t, so guiding any of them guides the noise in the same way. A
//! learned variance is taken from the conditional half, as GLIDE does.

use burn::prelude::*;

use crate::diffusion::Prediction;
use crate::error::{DdpmError, Result};
use crate::model::{Denoise, DenoiserOutput, class_tensor};

/// A conditional denoiser asked for one class per point, with guidance scale `w`. It is itself
/// a [`Denoise`], so every sampler runs it unchanged.
#[derive(Debug, Clone)]
pub struct Guided<'a, M: ?Sized> {
    model: &'a M,
    /// The labels of the batch the network is run on, built once rather than at every step:
    /// the classes asked for, then as many null classes (see [`Pass`]).
    labels: Tensor<1, Int>,
    pass: Pass,
    batch: usize,
    scale: f64,
}

/// Which forward pass a guidance scale needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// `w = 1`: the conditional prediction is the answer (half the work of [`Pass::Both`]).
    Conditional,
    /// `w = 0` with a fixed variance: the unconditional prediction is the answer. A learned
    /// variance comes from the conditional half, so such a model still runs [`Pass::Both`].
    Unconditional,
    /// Any other scale: both halves, in one doubled batch.
    Both,
}

impl<'a, M: Denoise + ?Sized> Guided<'a, M> {
    /// Ask `model` for class `classes[i]` at point `i`, guided with scale `scale` (w >= 0).
    pub fn new(model: &'a M, classes: &[usize], scale: f64, device: &Device) -> Result<Self> {
        let k = model.num_classes();
        if k == 0 {
            return Err(DdpmError::invalid(
                "model.num_classes",
                0,
                "must be > 0 to generate chosen classes: the model was trained unconditionally",
            ));
        }
        if let Some(&bad) = classes.iter().find(|&&c| c >= k) {
            return Err(DdpmError::invalid(
                "sampling.class",
                bad,
                format!("must be in 0..{k} (the model's classes)"),
            ));
        }
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(DdpmError::invalid(
                "sampling.guidance_scale",
                scale,
                "must be finite and >= 0 (0: unconditional, 1: conditional, > 1: guided)",
            ));
        }
        let pass = if scale == 1.0 {
            Pass::Conditional
        } else if scale == 0.0 && !model.learns_variance() {
            Pass::Unconditional
        } else {
            Pass::Both
        };
        let asked = || class_tensor(classes, device);
        let null = || Tensor::<1, Int>::full([classes.len()], k as i64, device);
        let labels = match pass {
            Pass::Conditional => asked(),
            Pass::Unconditional => null(),
            Pass::Both => Tensor::cat(vec![asked(), null()], 0),
        };
        Ok(Self {
            model,
            labels,
            pass,
            batch: classes.len(),
            scale,
        })
    }

    /// The guidance scale w.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Whether each sampling step runs the network once per point (`w` = 1, or 0 with a fixed
    /// variance) rather than twice.
    pub fn single_pass(&self) -> bool {
        self.pass != Pass::Both
    }

    /// The guided prediction from the network's output on the rows it was run on.
    fn combine(&self, out: DenoiserOutput) -> DenoiserOutput {
        if self.single_pass() {
            return out;
        }
        let (both, batch) = (out, self.batch);
        let cond = both.value.clone().narrow(0, 0, batch);
        let null = both.value.narrow(0, batch, batch);
        let value = null.clone() + (cond - null).mul_scalar(self.scale);
        DenoiserOutput {
            target: both.target,
            value,
            variance: both.variance.map(|v| v.narrow(0, 0, batch)),
        }
    }

    fn check_batch(&self, batch: usize) {
        assert_eq!(
            batch, self.batch,
            "Guided was built for {} points",
            self.batch
        );
    }
}

impl<M: Denoise + ?Sized> Denoise for Guided<'_, M> {
    fn prediction(&self) -> Prediction {
        self.model.prediction()
    }

    fn learns_variance(&self) -> bool {
        self.model.learns_variance()
    }

    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }

    fn data_size(&self) -> usize {
        self.model.data_size()
    }

    /// The guided prediction; the classes are the ones this was built with (`class` is not
    /// used).
    fn denoise(
        &self,
        x_t: Tensor<2>,
        t_index: Tensor<1, Int>,
        _class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let [batch, _] = x_t.dims();
        self.check_batch(batch);
        let (x_t, t_index) = if !self.single_pass() {
            (
                Tensor::cat(vec![x_t.clone(), x_t], 0),
                Tensor::cat(vec![t_index.clone(), t_index], 0),
            )
        } else {
            (x_t, t_index)
        };
        let out = self.model.denoise(x_t, t_index, Some(self.labels.clone()));
        self.combine(out)
    }

    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        _class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let [batch, _] = x_t.dims();
        self.check_batch(batch);
        let x_t = if !self.single_pass() {
            Tensor::cat(vec![x_t.clone(), x_t], 0)
        } else {
            x_t
        };
        let out = self
            .model
            .denoise_at(x_t, t_index, Some(self.labels.clone()));
        self.combine(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Head, MlpConfig};
    use crate::rng::{NoiseSource, seeded};

    fn max_abs(x: Tensor<2>) -> f32 {
        x.abs().max().into_scalar()
    }

    #[test]
    fn scale_one_is_the_conditional_prediction_and_zero_the_unconditional_one() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let head = Head {
            num_classes: 4,
            ..Head::default()
        };
        let model = seeded(&device, 2, || MlpConfig::default().init(head, 100, &device));
        let x = NoiseSource::new(3).normal([6, 2], &device);
        let classes = [0usize, 1, 2, 3, 1, 0];
        let class = class_tensor(&classes, &device);
        let cond = model.denoise_at(x.clone(), 40, Some(class)).value;
        let null = model.denoise_at(x.clone(), 40, None).value;
        // The class matters: the conditional and unconditional predictions differ.
        assert!(max_abs(cond.clone() - null.clone()) > 1e-3);
        let at = |w: f64| {
            Guided::new(&model, &classes, w, &device)
                .unwrap()
                .denoise_at(x.clone(), 40, None)
                .value
        };
        assert!(max_abs(at(1.0) - cond.clone()) < 1e-5);
        assert!(max_abs(at(0.0) - null.clone()) < 1e-5);
        // w = 3 extrapolates: null + 3 (cond - null).
        let expected = null.clone() + (cond - null).mul_scalar(3.0);
        assert!(max_abs(at(3.0) - expected) < 1e-4);
    }

    #[test]
    fn one_pass_where_one_half_is_the_answer_and_a_learned_variance_keeps_its_conditional_half() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let classes = [2usize, 0, 1];
        let x = NoiseSource::new(5).normal([3, 2], &device);
        let class = class_tensor(&classes, &device);
        let fixed = seeded(&device, 4, || {
            let head = Head {
                num_classes: 3,
                ..Head::default()
            };
            MlpConfig::default().init(head, 100, &device)
        });
        let single = |m: &crate::model::MlpDenoiser, w: f64| {
            Guided::new(m, &classes, w, &device).unwrap().single_pass()
        };
        assert!(single(&fixed, 1.0) && single(&fixed, 0.0));
        assert!(!single(&fixed, 0.5) && !single(&fixed, 3.0));

        let learned = seeded(&device, 4, || {
            let head = Head {
                num_classes: 3,
                variance: crate::model::ModelVariance::LearnedRange,
                ..Head::default()
            };
            MlpConfig::default().init(head, 100, &device)
        });
        // At w = 0 the value is the unconditional prediction, but the variance is the
        // conditional half's, so both halves still run.
        assert!(single(&learned, 1.0) && !single(&learned, 0.0));
        let cond = learned.denoise_at(x.clone(), 30, Some(class));
        let null = learned.denoise_at(x.clone(), 30, None);
        let cond_var = cond.variance.unwrap();
        let null_var = null.variance.unwrap();
        assert!(
            max_abs(cond_var.clone() - null_var) > 1e-4,
            "the class changes the variance"
        );
        let at0 = Guided::new(&learned, &classes, 0.0, &device)
            .unwrap()
            .denoise_at(x.clone(), 30, None);
        assert!(max_abs(at0.value - null.value) < 1e-5);
        assert!(max_abs(at0.variance.unwrap() - cond_var.clone()) < 1e-5);
        let at1 = Guided::new(&learned, &classes, 1.0, &device)
            .unwrap()
            .denoise(x, Tensor::<1, Int>::full([3], 30, &device), None);
        assert!(max_abs(at1.value - cond.value) < 1e-5);
        assert!(max_abs(at1.variance.unwrap() - cond_var) < 1e-5);
    }

    #[test]
    fn bad_classes_scales_and_unconditional_models_name_the_field() {
        let device = crate::backend::Backend::default_cpu().device().unwrap();
        let head = Head {
            num_classes: 2,
            ..Head::default()
        };
        let conditional = MlpConfig::default().init(head, 50, &device);
        let err = |r: Result<Guided<'_, crate::model::MlpDenoiser>>| r.unwrap_err().to_string();
        let e = err(Guided::new(&conditional, &[0, 2], 1.0, &device));
        assert!(e.contains("sampling.class") && e.contains("0..2"), "{e}");
        let e = err(Guided::new(&conditional, &[0], -1.0, &device));
        assert!(e.contains("sampling.guidance_scale"), "{e}");
        let e = err(Guided::new(&conditional, &[0], f64::NAN, &device));
        assert!(e.contains("sampling.guidance_scale"), "{e}");
        let unconditional = MlpConfig::default().init(Head::default(), 50, &device);
        let e = err(Guided::new(&unconditional, &[0], 1.0, &device));
        assert!(e.contains("model.num_classes"), "{e}");
    }
}
