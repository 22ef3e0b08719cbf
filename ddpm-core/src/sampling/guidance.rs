//! Classifier-free guidance (Ho & Salimans 2022): steer a conditional denoiser towards its
//! classes by extrapolating from its unconditional prediction,
//!
//! `eps_guided = eps_null + w (eps_class - eps_null)`,
//!
//! where the null class is the "no condition" the network learned through label dropout.
//! `w = 1` is the plain conditional model, `w = 0` the unconditional one, `w > 1` trades
//! diversity for samples that look more like their class.
//!
//! Both predictions come from one forward pass over a doubled batch. The formula is applied to
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
    /// The classes asked for, then as many null classes: the labels of the doubled batch,
    /// built once rather than at every step.
    doubled: Tensor<1, Int>,
    scale: f64,
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
        Ok(Self {
            model,
            doubled: Tensor::cat(
                vec![
                    class_tensor(classes, device),
                    Tensor::<1, Int>::full([classes.len()], k as i64, device),
                ],
                0,
            ),
            scale,
        })
    }

    /// The guidance scale w.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Combine the conditional and unconditional halves of one doubled forward pass.
    fn combine(&self, both: DenoiserOutput, batch: usize) -> DenoiserOutput {
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
            batch,
            self.doubled.dims()[0] / 2,
            "Guided was built for {} points",
            self.doubled.dims()[0] / 2
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
        let both = self.model.denoise(
            Tensor::cat(vec![x_t.clone(), x_t], 0),
            Tensor::cat(vec![t_index.clone(), t_index], 0),
            Some(self.doubled.clone()),
        );
        self.combine(both, batch)
    }

    fn denoise_at(
        &self,
        x_t: Tensor<2>,
        t_index: usize,
        _class: Option<Tensor<1, Int>>,
    ) -> DenoiserOutput {
        let [batch, _] = x_t.dims();
        self.check_batch(batch);
        let both = self.model.denoise_at(
            Tensor::cat(vec![x_t.clone(), x_t], 0),
            t_index,
            Some(self.doubled.clone()),
        );
        self.combine(both, batch)
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
