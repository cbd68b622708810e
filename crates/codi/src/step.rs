//! The [`TrainStep`] of CODI and its baselines, for `latent_core::train::train`.

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use latent_core::train::{StepLoss, TrainStep};

use crate::batch::CodiBatch;
use crate::loss::{codi_loss, sft_loss, LossConfig};
use crate::model::CodiModel;
use crate::Task;

/// One micro-batch's loss for a task.
#[derive(Debug, Clone)]
pub struct CodiStep {
    /// What is trained.
    pub task: Task,
    /// CODI loss settings (unused by the baselines).
    pub loss: LossConfig,
    /// When set, only embedding rows from this index on (the added special tokens) receive
    /// gradient; the base rows stay fixed.
    pub train_rows_from: Option<usize>,
}

/// A `[1]` tensor's value on the host.
pub fn host(t: &Tensor<impl Backend, 1>) -> f64 {
    t.clone().into_scalar().elem()
}

impl<B: AutodiffBackend> TrainStep<B, CodiModel<B>> for CodiStep {
    type Batch = CodiBatch;

    fn loss(
        &mut self,
        model: &CodiModel<B>,
        batch: &CodiBatch,
        _at: latent_core::train::StepIndex,
    ) -> latent_core::Result<StepLoss<B>> {
        let wrap = |e: crate::CodiError| latent_core::CoreError::Method(Box::new(e));
        match self.task {
            Task::Codi => {
                let terms = codi_loss(model, batch, &self.loss).map_err(wrap)?;
                let named = vec![
                    ("student_ce".to_string(), host(&terms.student_ce)),
                    ("teacher_ce".to_string(), host(&terms.teacher_ce)),
                    ("kd".to_string(), host(&terms.kd)),
                ];
                Ok(StepLoss {
                    loss: terms.total,
                    terms: named,
                })
            }
            Task::CotSft | Task::NoCotSft => {
                let loss = sft_loss(model, batch).map_err(wrap)?;
                let ce = host(&loss);
                Ok(StepLoss {
                    loss,
                    terms: vec![("ce".to_string(), ce)],
                })
            }
        }
    }

    fn adjust_gradients(&mut self, model: &CodiModel<B>, grads: &mut GradientsParams) {
        if let Some(from) = self.train_rows_from {
            keep_embedding_rows_from(model, grads, from);
        }
    }
}

/// Zeroes the embedding gradient of rows below `from`, so only the added special tokens train.
pub fn keep_embedding_rows_from<B: AutodiffBackend>(
    model: &CodiModel<B>,
    grads: &mut GradientsParams,
    from: usize,
) {
    let id = model.lm.embed_tokens.weight.id;
    if let Some(g) = grads.remove::<B::InnerBackend, 2>(id) {
        let [rows, cols] = g.dims();
        let keep: Vec<f32> = (0..rows)
            .map(|r| if r >= from { 1.0 } else { 0.0 })
            .collect();
        let keep =
            Tensor::<B::InnerBackend, 1>::from_data(TensorData::new(keep, [rows]), &g.device())
                .reshape([rows, 1])
                .expand([rows, cols]);
        grads.register(id, g * keep);
    }
}
