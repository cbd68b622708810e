//! Per-token log-probabilities of given ids, a chunk of positions at a time, so that a pass over
//! `[b, s]` tokens with a large vocabulary never holds `[b, s, vocab]` logits at once.
//!
//! - [`CausalLm::token_logprobs`]: values, on any backend (old and reference log-probs, scoring).
//! - [`CausalLm::logprob_loss`]: a loss of the log-probs under autodiff. The log-probs are
//!   computed chunk by chunk without a graph; the loss is differentiated with respect to them
//!   (a small graph over `[b, s]`); then the gradient is carried to the hidden states and the head
//!   by recomputing each chunk's softmax: `∂ logp_t / ∂ logits_t = (onehot(y_t) − softmax_t) / T`.
//!   The returned scalar has the loss's value and, under `backward`, exactly the gradient the
//!   full-logits path gives (up to rounding), while the graph never holds a vocabulary-wide tensor.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, IndexingUpdateOp};

use super::cast::to_f32;
use super::causal_lm::CausalLm;
use crate::{CoreError, Result};

/// How [`CausalLm::token_logprobs`] and [`CausalLm::logprob_loss`] compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogprobOptions {
    /// Positions per chunk (the transient logits are `[batch, chunk, vocab]`).
    pub chunk: usize,
    /// Logits are divided by it before the softmax (TRL divides by the sampling temperature; HRPO
    /// uses the raw logits, 1).
    pub temperature: f32,
}

impl Default for LogprobOptions {
    fn default() -> Self {
        Self {
            chunk: 64,
            temperature: 1.0,
        }
    }
}

/// The output head as a matrix: logits = `hidden · W` with `W` `[hidden, vocab]`, or, tied,
/// `hidden · Eᵀ` with `E` `[vocab, hidden]`.
enum Head<B: Backend> {
    Untied(Tensor<B, 2>),
    Tied(Tensor<B, 2>),
}

impl<B: Backend> Head<B> {
    /// `[n, hidden]` → `[n, vocab]`.
    fn logits(&self, rows: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Head::Untied(w) => rows.matmul(w.clone()),
            Head::Tied(e) => rows.matmul(e.clone().transpose()),
        }
    }
}

impl<B: Backend> CausalLm<B> {
    fn head(&self) -> Head<B> {
        match &self.lm_head {
            Some(head) => Head::Untied(head.weight.val()),
            None => Head::Tied(self.embed_tokens.weight.val()),
        }
    }

    /// `log softmax(head(hidden) / T)[target]` per position: `hidden` `[batch, seq, hidden]` (after
    /// the final norm, e.g. [`crate::LmHidden::last_hidden`]), `targets` `[batch, seq]` →
    /// `[batch, seq]` f32. Computed `options.chunk` positions at a time.
    pub fn token_logprobs(
        &self,
        hidden: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
        options: LogprobOptions,
    ) -> Result<Tensor<B, 2>> {
        check_shapes(&hidden, &targets, options)?;
        Ok(chunked_logprobs(&self.head(), hidden, targets, options).0)
    }
}

/// What [`CausalLm::logprob_loss`] returns.
#[derive(Debug, Clone)]
pub struct LogprobLoss<B: AutodiffBackend, T> {
    /// The loss `[1]`: its value, and the gradient the full-logits path would give.
    pub loss: Tensor<B, 1>,
    /// What the loss closure passed through.
    pub extra: T,
    /// The entropy of every position's distribution (after the temperature), `[batch, seq]`, no graph.
    pub entropy: Tensor<B::InnerBackend, 2>,
}

impl<B: AutodiffBackend> CausalLm<B> {
    /// A loss of the per-token log-probabilities of `targets` `[batch, seq]` under the head applied
    /// to `hidden` `[batch, seq, hidden]`, differentiable through `hidden` and the head without
    /// holding `[batch, seq, vocab]`.
    ///
    /// `loss` receives the log-probs `[batch, seq]` as a leaf of its own graph and returns a scalar
    /// `[1]` (plus anything to pass through, e.g. logged terms); it must depend on the model only
    /// through them (detach other inputs). The result's value is the loss; its gradient reaches
    /// everything `hidden` and the head depend on.
    pub fn logprob_loss<T>(
        &self,
        hidden: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
        options: LogprobOptions,
        loss: impl FnOnce(Tensor<B, 2>) -> Result<(Tensor<B, 1>, T)>,
    ) -> Result<LogprobLoss<B, T>> {
        check_shapes(&hidden, &targets, options)?;
        let head = self.head();
        let inner_head = match &head {
            Head::Untied(w) => Head::Untied(w.clone().inner()),
            Head::Tied(e) => Head::Tied(e.clone().inner()),
        };
        let inner_hidden = hidden.clone().inner();
        let inner_targets = targets.clone().inner();
        let (values, entropy) = chunked_logprobs(
            &inner_head,
            inner_hidden.clone(),
            inner_targets.clone(),
            options,
        );
        let leaf = Tensor::<B, 2>::from_inner(values).require_grad();
        let (value, extra) = loss(leaf.clone())?;
        let grads = value.backward();
        let Some(g) = leaf.grad(&grads) else {
            return Err(CoreError::Shape(
                "the loss does not depend on the log-probabilities".into(),
            ));
        };
        let head_weight = match head {
            Head::Untied(w) | Head::Tied(w) => w,
        };
        let head_grad = head_weight.is_require_grad();
        let (g_hidden, g_head) = backprop_chunks(
            &inner_head,
            inner_hidden,
            inner_targets,
            g,
            options,
            head_grad,
        );
        // Summed in the compute dtype, then f32 like the loss value (the surrogate's value cancels;
        // its gradient is `g_hidden`, `g_head` whatever the dtype of the sum).
        let mut surrogate = to_f32((hidden * Tensor::from_inner(g_hidden)).sum());
        if let Some(g_head) = g_head {
            surrogate = surrogate + to_f32((head_weight * Tensor::from_inner(g_head)).sum());
        }
        let value = value.inner();
        let loss = surrogate.clone() - surrogate.detach() + Tensor::from_inner(value);
        Ok(LogprobLoss {
            loss,
            extra,
            entropy,
        })
    }
}

fn check_shapes<B: Backend>(
    hidden: &Tensor<B, 3>,
    targets: &Tensor<B, 2, Int>,
    options: LogprobOptions,
) -> Result<()> {
    let [b, s, _] = hidden.dims();
    if targets.dims() != [b, s] {
        return Err(CoreError::Shape(format!(
            "targets {:?} do not match hidden states [{b}, {s}, _]",
            targets.dims()
        )));
    }
    if options.chunk == 0 || options.temperature <= 0.0 {
        return Err(CoreError::Shape(format!(
            "log-probs need a positive chunk and temperature, got {} and {}",
            options.chunk, options.temperature
        )));
    }
    Ok(())
}

/// The chunks of positions `0..s`.
fn chunks(s: usize, chunk: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..s.div_ceil(chunk)).map(move |c| c * chunk..((c + 1) * chunk).min(s))
}

/// Logits of positions `range` of `hidden`, in f32 and divided by the temperature: `[b·n, vocab]`.
fn chunk_logits<B: Backend>(
    head: &Head<B>,
    hidden: &Tensor<B, 3>,
    range: std::ops::Range<usize>,
    temperature: f32,
) -> Tensor<B, 2> {
    let [b, _, h] = hidden.dims();
    let n = range.len();
    let rows = hidden
        .clone()
        .slice([0..b, range, 0..h])
        .reshape([b * n, h]);
    let logits = head.logits(rows).cast(DType::F32);
    if temperature == 1.0 {
        logits
    } else {
        logits / temperature
    }
}

/// Log-probs of the targets and entropies of the distributions, both `[b, s]`.
fn chunked_logprobs<B: Backend>(
    head: &Head<B>,
    hidden: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    options: LogprobOptions,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [b, s, _] = hidden.dims();
    let (logps, entropies): (Vec<_>, Vec<_>) = chunks(s, options.chunk)
        .map(|range| {
            let n = range.len();
            let logits = chunk_logits(head, &hidden, range.clone(), options.temperature);
            let ids = targets.clone().slice([0..b, range]).reshape([b * n, 1]);
            let lsm = log_softmax(logits, 1);
            let entropy = (lsm.clone().exp() * lsm.clone()).sum_dim(1).neg();
            (lsm.gather(1, ids).reshape([b, n]), entropy.reshape([b, n]))
        })
        .unzip();
    (Tensor::cat(logps, 1), Tensor::cat(entropies, 1))
}

/// The gradients of `Σ g · logp` with respect to `hidden` `[b, s, hidden]` and, when `head_grad`, the
/// head's matrix (its own layout), recomputing each chunk's softmax.
fn backprop_chunks<B: Backend>(
    head: &Head<B>,
    hidden: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    g: Tensor<B, 2>,
    options: LogprobOptions,
    head_grad: bool,
) -> (Tensor<B, 3>, Option<Tensor<B, 2>>) {
    let [b, s, h] = hidden.dims();
    let dtype = hidden.dtype();
    let (weight, tied) = match head {
        Head::Untied(w) => (w.clone(), false),
        Head::Tied(e) => (e.clone(), true),
    };
    let weight_f32 = weight.clone().cast(DType::F32);
    let mut g_weight = head_grad.then(|| Tensor::<B, 2>::zeros(weight.dims(), &weight.device()));
    let mut g_hidden = Vec::new();
    for range in chunks(s, options.chunk) {
        let n = range.len();
        let logits = chunk_logits(head, &hidden, range.clone(), options.temperature);
        let coef = g
            .clone()
            .slice([0..b, range.clone()])
            .reshape([b * n, 1])
            .cast(DType::F32)
            / options.temperature;
        let ids = targets
            .clone()
            .slice([0..b, range.clone()])
            .reshape([b * n, 1]);
        // coef · (onehot(y) − softmax): the softmax scaled, plus coef added at each target.
        let d_logits =
            (softmax(logits, 1) * coef.clone().neg()).scatter(1, ids, coef, IndexingUpdateOp::Add);
        let rows = hidden
            .clone()
            .slice([0..b, range, 0..h])
            .reshape([b * n, h])
            .cast(DType::F32);
        let d_rows = if tied {
            d_logits.clone().matmul(weight_f32.clone())
        } else {
            d_logits.clone().matmul(weight_f32.clone().transpose())
        };
        if let Some(acc) = g_weight.take() {
            g_weight = Some(
                acc + if tied {
                    d_logits.transpose().matmul(rows)
                } else {
                    rows.transpose().matmul(d_logits)
                },
            );
        }
        g_hidden.push(d_rows.reshape([b, n, h]).cast(dtype));
    }
    (
        Tensor::cat(g_hidden, 1),
        g_weight.map(|g| g.cast(weight.dtype())),
    )
}
