//! Global-norm gradient clipping with PyTorch's `clip_grad_norm_` semantics: one norm over every
//! gradient of the module, `coef = max_norm / (norm + 1e-6)` clamped to 1, all gradients scaled.
//! (Burn's own clipping is per parameter tensor.)

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// The global L2 norm of `grads` over the parameters of `module`.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        total: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let sq: f64 = g
                    .cast(burn::tensor::DType::F32)
                    .square()
                    .sum()
                    .into_scalar()
                    .elem();
                self.total += sq;
            }
        }
    }
    let mut visitor = SquaredNorm { grads, total: 0.0 };
    module.visit(&mut visitor);
    visitor.total.sqrt()
}

/// Scales `grads` so their global norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_grad_norm::<B, M>(module, grads);
    scale_to_max_norm::<B, M>(module, grads, norm, max_norm);
    norm
}

/// Scales `grads`, whose global norm is `norm`, so that it is at most `max_norm`
/// (`coef = max_norm / (norm + 1e-6)`, clamped to 1).
pub fn scale_to_max_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    norm: f64,
    max_norm: f64,
) {
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    if coef < 1.0 {
        struct Scale<'a> {
            grads: &'a mut GradientsParams,
            coef: f64,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                    self.grads
                        .register::<B::InnerBackend, D>(param.id, g * self.coef);
                }
            }
        }
        module.visit(&mut Scale { grads, coef });
    }
}
