//! The GRPO step on the shared trainer: at the first micro-batch of a window, roll out G
//! completions per prompt with the current policy (a merged, detached copy), score them, compute
//! advantages, and the reference's (and, with `num_iterations > 1`, the sampling policy's)
//! log-probs; every micro-batch then trains on its share with the GRPO loss, through the chunked
//! log-prob helper.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use latent_core::infer::{SamplingConfig, StopReason};
use latent_core::latent::{rollout, RolloutConfig, RolloutTensors, Rollouts, ThinkingLm};
use latent_core::model::LogprobOptions;
use latent_core::train::{shard_range, Replica, StepIndex, StepLoss, StopFlag, TrainStep};
use latent_core::{CausalLm, CoreError, LmInput};
use tokenizers::Tokenizer;

use crate::advantage::{advantages, Advantages};
use crate::batch::{MicroBatch, Window};
use crate::config::GrpoRunConfig;
use crate::forward::{completion_hidden, projection_sources};
use crate::loss::{grpo_loss, LossInputs};
use crate::prompt::PromptExample;
use crate::reward::Reward;

/// One window's rollouts and what the loss needs of them.
#[derive(Debug, Clone)]
pub struct GenerationBatch {
    /// The window it belongs to.
    pub window_id: u64,
    /// `groups × G` rows, group by group.
    pub rollouts: Rollouts,
    /// The prompt index of each group.
    pub prompts: Vec<usize>,
    /// Reward per row.
    pub rewards: Vec<f32>,
    /// Advantages per row, with the reward statistics.
    pub advantages: Advantages,
    /// The reference's log-prob of each completion token, per row (when `beta != 0`).
    pub ref_logps: Option<Vec<Vec<f32>>>,
    /// The sampling policy's log-probs, per row (when `num_iterations > 1`).
    pub old_logps: Option<Vec<Vec<f32>>>,
    /// Completion tokens that count in the loss, over the whole window (`dapo`'s normaliser).
    pub loss_tokens: usize,
    /// Groups dynamic sampling replaced.
    pub groups_replaced: usize,
    /// Wall time of rollouts, scoring and the reference pass.
    pub seconds: f64,
}

/// The tensors of one micro-batch (rows of a [`GenerationBatch`]) on a device.
pub struct MicroTensors<B: Backend> {
    /// The rows' rollouts, re-padded to their own widths.
    pub rollouts: Rollouts,
    /// Per-position fields.
    pub t: RolloutTensors<B>,
    /// `[n, C]` f32: completion tokens that count (truncated completions zeroed when configured).
    pub loss_mask: Tensor<B, 2>,
    /// `[n, 1]`.
    pub advantages: Tensor<B, 2>,
    /// `[n, C]`.
    pub ref_logps: Option<Tensor<B, 2>>,
    /// `[n, C]`.
    pub old_logps: Option<Tensor<B, 2>>,
}

/// Per-row values padded with 0 to `width`: `[rows, width]`.
fn padded<B: Backend>(rows: &[&Vec<f32>], width: usize, device: &B::Device) -> Tensor<B, 2> {
    let mut flat = Vec::with_capacity(rows.len() * width);
    for r in rows {
        flat.extend(r.iter().copied().take(width));
        flat.extend(std::iter::repeat_n(0.0, width.saturating_sub(r.len())));
    }
    Tensor::from_data(TensorData::new(flat, [rows.len(), width]), device)
}

impl GenerationBatch {
    /// Completion tokens of `rows` that count in the loss (truncated completions count none
    /// when `mask_truncated`).
    pub fn counted_tokens(&self, rows: &[usize], mask_truncated: bool) -> usize {
        rows.iter()
            .filter(|&&r| !(mask_truncated && self.rollouts.stops[r] == StopReason::Budget))
            .map(|&r| self.rollouts.completions[r].len())
            .sum()
    }

    /// The tensors of `rows` on `device`.
    pub fn micro<B: Backend>(
        &self,
        rows: &[usize],
        mask_truncated: bool,
        device: &B::Device,
    ) -> MicroTensors<B> {
        let rollouts = self.rollouts.select_rows(rows);
        let t = rollouts.tensors::<B>(device);
        let (n, p, c) = (rows.len(), rollouts.prompt_width, rollouts.completion_width);
        let mut mask = Vec::with_capacity(n * c);
        for (k, &r) in rows.iter().enumerate() {
            let keep = !(mask_truncated && self.rollouts.stops[r] == StopReason::Budget);
            let w = rollouts.width();
            mask.extend(
                rollouts.completion_mask[k * w + p..k * w + p + c]
                    .iter()
                    .map(|&m| if keep { f32::from(m) } else { 0.0 }),
            );
        }
        let adv: Vec<f32> = rows.iter().map(|&r| self.advantages.values[r]).collect();
        let pick = |all: &Option<Vec<Vec<f32>>>| {
            all.as_ref().map(|all| {
                let rows: Vec<&Vec<f32>> = rows.iter().map(|&r| &all[r]).collect();
                padded::<B>(&rows, c, device)
            })
        };
        MicroTensors {
            loss_mask: Tensor::from_data(TensorData::new(mask, [n, c]), device),
            advantages: Tensor::from_data(TensorData::new(adv, [n, 1]), device),
            ref_logps: pick(&self.ref_logps),
            old_logps: pick(&self.old_logps),
            rollouts,
            t,
        }
    }
}

/// The GRPO / HRPO training step.
pub struct GrpoStep<'a, B: AutodiffBackend, R: Reward> {
    config: &'a GrpoRunConfig,
    prompts: &'a [PromptExample],
    tokenizer: &'a Tokenizer,
    reward: R,
    eos_token_ids: Vec<u32>,
    pad_token_id: u32,
    /// The reference when it is not the policy with adapters off (full fine-tuning: the initial
    /// weights).
    reference: Option<CausalLm<B::InnerBackend>>,
    generation: Option<GenerationBatch>,
    projection_start: Option<Vec<f32>>,
    /// Global norm of the projection's gradient at the last update.
    pub projection_grad_norm: Option<f64>,
    /// Ends a window's rollouts within one decoding step once raised.
    stop: Option<StopFlag>,
    /// The model and micro-batch at which a stop request cut a window's rollouts short (shared by
    /// the replicas of a data-parallel run, [`GrpoStep::share_stopped`]).
    stopped: StoppedAt<B>,
    /// In a data-parallel run: this replica, which rolls out its share of each window's groups
    /// and computes its share of the reference log-probs, then gathers the others'.
    replica: Option<Replica<B::InnerBackend>>,
}

/// Where a stop during a window's rollouts leaves the model and the micro-batch that opened the
/// window (the first replica to stop writes it).
pub type StoppedAt<B> = Arc<Mutex<Option<(ThinkingLm<B>, StepIndex)>>>;

impl<'a, B: AutodiffBackend, R: Reward> GrpoStep<'a, B, R> {
    /// A step for `model` as it is now (its projection and, without LoRA, its weights are the
    /// reference points).
    pub fn new(
        config: &'a GrpoRunConfig,
        model: &ThinkingLm<B>,
        prompts: &'a [PromptExample],
        tokenizer: &'a Tokenizer,
        reward: R,
        eos_token_ids: Vec<u32>,
        pad_token_id: u32,
    ) -> Self {
        Self {
            config,
            prompts,
            tokenizer,
            reward,
            eos_token_ids,
            pad_token_id,
            reference: (!config.lora.enabled).then(|| model.lm.valid()),
            generation: None,
            projection_start: model.projection.as_ref().map(|p| host(p.weight.val())),
            projection_grad_norm: None,
            stop: None,
            stopped: StoppedAt::default(),
            replica: None,
        }
    }

    /// Record a stop during rollouts in `slot` (every replica of a data-parallel run shares one,
    /// whichever of them the stop reaches first).
    pub fn share_stopped(&mut self, slot: StoppedAt<B>) {
        self.stopped = slot;
    }

    /// Rollouts end with `CoreError::StopRequested` within one decoding step once `stop` is
    /// raised; the step then keeps the model it was given ([`GrpoStep::take_stopped`]).
    pub fn set_stop(&mut self, stop: Option<StopFlag>) {
        self.stop = stop;
    }

    /// After a stop during a window's rollouts: the model as it was (the state after the previous
    /// update) and the micro-batch that opened the window, whose `Position::before` is where the
    /// run resumes. The rollouts come first in a window, so no gradient of that update existed.
    pub fn take_stopped(&mut self) -> Option<(ThinkingLm<B>, StepIndex)> {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Measure the projection's change from `start` (`[hidden · hidden]`, Burn layout) instead of
    /// its weights at construction (a resumed run: its values at the run's start).
    pub fn set_projection_start(&mut self, start: Vec<f32>) {
        self.projection_start = Some(start);
    }

    /// Use `reference` as the KL reference instead of the model's weights at construction (full
    /// fine-tuning resumed: the run's initial weights).
    pub fn set_reference(&mut self, reference: CausalLm<B::InnerBackend>) {
        self.reference = Some(reference);
    }

    /// The current generation batch (after the first micro-batch of a window).
    pub fn generation(&self) -> Option<&GenerationBatch> {
        self.generation.as_ref()
    }

    /// Mean |W_p − W_p(start)| of the projection, if there is one.
    pub fn projection_change(&self, model: &ThinkingLm<B>) -> Option<f64> {
        projection_change(self.projection_start.as_deref()?, model)
    }

    fn logprob_options(&self) -> LogprobOptions {
        let g = &self.config.grpo;
        LogprobOptions {
            chunk: g.logprob_chunk,
            temperature: if g.logprob_temperature {
                g.temperature
            } else {
                1.0
            },
        }
    }

    /// Rolls out, scores and prepares `window` with the policy as it is.
    pub fn generate(
        &self,
        model: &ThinkingLm<B>,
        window: &Window,
    ) -> crate::Result<GenerationBatch> {
        let started = Instant::now();
        let c = self.config;
        let g = c.grpo.group_size;
        let policy = model.rollout_copy();
        let mut prompt_ids = window.prompts.clone();
        if c.grpo.dynamic_sampling {
            prompt_ids.extend(&window.reserve);
        }
        let ids: Vec<Vec<u32>> = prompt_ids
            .iter()
            .map(|&i| self.prompts[i].ids.clone())
            .collect();
        let rollout_config = RolloutConfig {
            group_size: g,
            max_new_tokens: c.grpo.max_completion_length,
            sampling: SamplingConfig {
                temperature: c.grpo.temperature,
                top_k: c.grpo.top_k,
                top_p: c.grpo.top_p,
                seed: c
                    .training
                    .seed
                    .wrapping_add(window.id.wrapping_mul(1_000_003)),
            },
            eos_token_ids: self.eos_token_ids.clone(),
            pad_token_id: self.pad_token_id,
            answer_delimiter: c.hrpo.answer_delimiter.clone(),
            mix: c.hrpo.enabled,
            stop: self.stop.clone(),
        };
        let all = self.rollout_groups(&policy, &ids, &rollout_config)?;
        let rewards: Vec<f32> = (0..all.rows)
            .map(|r| {
                self.reward
                    .score(&all.texts[r], &self.prompts[prompt_ids[r / g]].gold)
            })
            .collect();
        let wanted = window.prompts.len();
        let groups: Vec<usize> = if c.grpo.dynamic_sampling {
            choose_groups(&rewards, g, wanted)
        } else {
            (0..wanted).collect()
        };
        let groups_replaced = groups.iter().filter(|&&k| k >= wanted).count();
        let rows: Vec<usize> = groups.iter().flat_map(|&k| k * g..(k + 1) * g).collect();
        let (rollouts, rewards) = if c.grpo.dynamic_sampling {
            (
                all.select_rows(&rows),
                rows.iter().map(|&r| rewards[r]).collect(),
            )
        } else {
            (all, rewards)
        };
        let advantages = advantages(&rewards, g, c.grpo.scale_rewards);
        let mut batch = GenerationBatch {
            window_id: window.id,
            prompts: groups.iter().map(|&k| prompt_ids[k]).collect(),
            rewards,
            advantages,
            ref_logps: None,
            old_logps: None,
            loss_tokens: 0,
            groups_replaced,
            seconds: 0.0,
            rollouts,
        };
        let all: Vec<usize> = (0..batch.rollouts.rows).collect();
        batch.loss_tokens = batch.counted_tokens(&all, c.grpo.mask_truncated_completions);
        let valid = model.valid();
        let device = model.lm.device();
        if c.grpo.loss.beta != 0.0 {
            let reference = match &self.reference {
                Some(r) => r.clone(),
                None => valid.lm.without_adapters(),
            };
            batch.ref_logps = Some(self.per_row_logps(&batch, &device, |t, p, w| {
                let hidden = reference
                    .forward_hidden(
                        LmInput::ids(t.ids.clone()).attention_mask(t.attention_mask.clone()),
                    )?
                    .last_hidden;
                let [n, _, h] = hidden.dims();
                Ok((
                    hidden.slice([0..n, p - 1..p - 1 + w, 0..h]),
                    reference.clone(),
                ))
            })?);
        }
        if c.grpo.num_iterations > 1 {
            batch.old_logps = Some(self.per_row_logps(&batch, &device, |t, p, w| {
                let states = match (c.two_pass(), &valid.projection) {
                    (true, Some(proj)) => {
                        Some(proj.forward(projection_sources(&valid, t, &c.hrpo)?))
                    }
                    _ => None,
                };
                let hidden = completion_hidden(&valid, t, p, w, c.hrpo.enabled, states)?;
                Ok((hidden, valid.lm.clone()))
            })?);
        }
        batch.seconds = started.elapsed().as_secs_f64();
        Ok(batch)
    }

    /// The rollouts of `prompts` (G each): all of them here, or, in a data-parallel run, this
    /// replica's contiguous share of the groups, gathered with the others' shares. Row `r` of the
    /// window samples with seed `sampling.seed + r` either way, so the rollouts are the ones one
    /// device makes.
    fn rollout_groups(
        &self,
        policy: &ThinkingLm<B::InnerBackend>,
        prompts: &[Vec<u32>],
        config: &RolloutConfig,
    ) -> crate::Result<Rollouts> {
        let Some(replica) = &self.replica else {
            return Ok(rollout(policy, self.tokenizer, prompts, config)?);
        };
        let mine = shard_range(prompts.len(), replica.rank(), replica.replicas())?;
        let part = if mine.is_empty() {
            Rollouts::default()
        } else {
            let mut config = config.clone();
            config.sampling.seed = config
                .sampling
                .seed
                .wrapping_add((mine.start * config.group_size) as u64);
            rollout(policy, self.tokenizer, &prompts[mine], &config)?
        };
        let parts = replica
            .all_gather(&part.to_f32())?
            .iter()
            .map(|p| Rollouts::from_f32(p))
            .collect::<latent_core::Result<Vec<_>>>()?;
        Ok(Rollouts::concat(&parts, self.pad_token_id)?)
    }

    /// Log-probs of every row's completion tokens under the model `forward` returns hidden states
    /// from, computed a micro-batch of rows at a time; one `Vec` per row (its completion length).
    /// In a data-parallel run each replica computes a contiguous share of the rows and gathers the
    /// others'.
    fn per_row_logps(
        &self,
        batch: &GenerationBatch,
        device: &B::Device,
        forward: impl Fn(
            &RolloutTensors<B::InnerBackend>,
            usize,
            usize,
        )
            -> crate::Result<(Tensor<B::InnerBackend, 3>, CausalLm<B::InnerBackend>)>,
    ) -> crate::Result<Vec<Vec<f32>>> {
        let per = self.config.completions_per_micro_batch();
        let all = batch.rollouts.rows;
        let mine = match &self.replica {
            Some(replica) => shard_range(all, replica.rank(), replica.replicas())?,
            None => 0..all,
        };
        let mut out = Vec::with_capacity(all);
        let rows: Vec<usize> = mine.collect();
        for chunk in rows.chunks(per) {
            let sub = batch.rollouts.select_rows(chunk);
            let t = sub.tensors::<B::InnerBackend>(device);
            let (p, w) = (sub.prompt_width, sub.completion_width);
            let (hidden, head) = forward(&t, p, w)?;
            let n = chunk.len();
            let targets = t.ids.clone().slice([0..n, p..p + w]);
            let logps = head.token_logprobs(hidden, targets, self.logprob_options())?;
            let flat = host(logps);
            for (k, &r) in chunk.iter().enumerate() {
                let len = batch.rollouts.completions[r].len();
                out.push(flat[k * w..k * w + len].to_vec());
            }
        }
        let Some(replica) = &self.replica else {
            return Ok(out);
        };
        // Every row's values, in row order: the shares are contiguous and in rank order.
        let parts = replica.all_gather(&out.concat())?;
        let mut flat = parts.concat().into_iter();
        Ok(batch
            .rollouts
            .completions
            .iter()
            .map(|c| flat.by_ref().take(c.len()).collect())
            .collect())
    }
}

/// Mean |W_p − start| of `model`'s projection (`None` without one); `start` in Burn layout.
pub fn projection_change<B: Backend>(start: &[f32], model: &ThinkingLm<B>) -> Option<f64> {
    let now = host(model.projection.as_ref()?.weight.val());
    Some(
        now.iter()
            .zip(start)
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / start.len().max(1) as f64,
    )
}

/// The groups dynamic sampling keeps: those whose rewards differ first (in order), then, if fewer
/// than `wanted`, the first of the others; `wanted` indices in all.
fn choose_groups(rewards: &[f32], g: usize, wanted: usize) -> Vec<usize> {
    let informative = |k: &usize| {
        rewards[k * g..(k + 1) * g]
            .iter()
            .any(|&r| r != rewards[k * g])
    };
    let groups = rewards.len() / g;
    let mut chosen: Vec<usize> = (0..groups).filter(informative).take(wanted).collect();
    let fill: Vec<usize> = (0..groups)
        .filter(|k| !informative(k))
        .take(wanted - chosen.len())
        .collect();
    chosen.extend(fill);
    chosen.sort_by_key(|&k| (k >= wanted, k));
    chosen
}

/// Every value of `t` on the host, f32.
pub(crate) fn host<BK: Backend, const D: usize>(t: Tensor<BK, D>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32 data")
}

/// Masked mean on the host.
fn masked_mean<BK: Backend>(x: Tensor<BK, 2>, mask: Tensor<BK, 2>) -> f64 {
    let total: f64 = mask.clone().sum().into_scalar().elem();
    if total == 0.0 {
        return 0.0;
    }
    let s: f64 = (x * mask).sum().into_scalar().elem();
    s / total
}

impl<B: AutodiffBackend, R: Reward> TrainStep<B, ThinkingLm<B>> for GrpoStep<'_, B, R> {
    type Batch = MicroBatch;

    fn loss(
        &mut self,
        model: &ThinkingLm<B>,
        batch: &MicroBatch,
        at: StepIndex,
    ) -> latent_core::Result<StepLoss<B>> {
        let wrap = |e: crate::GrpoError| latent_core::CoreError::Method(Box::new(e));
        // The loop has rolled out in `prepare`; a direct call rolls out here.
        self.prepare(model, batch, at)?;
        let c = self.config;
        let gen = self.generation.as_ref().expect("generated");
        let rows: Vec<usize> = batch.rows().collect();
        // A data-parallel shard of the micro-batch: the shared loop averages the replicas' losses
        // as means over their rows, which `dapo` and `bnpo` are not; rescale those so the
        // replicas' mean is the whole micro-batch's loss.
        let shard_factor = if rows.len() < batch.completions {
            let tokens =
                |rows: &[usize]| gen.counted_tokens(rows, c.grpo.mask_truncated_completions);
            let whole: Vec<usize> = batch.whole_rows().collect();
            c.grpo.loss.loss_type.shard_factor(
                whole.len(),
                rows.len(),
                tokens(&rows),
                tokens(&whole),
            )
        } else {
            1.0
        };
        let device = model.lm.device();
        let micro = gen.micro::<B>(&rows, c.grpo.mask_truncated_completions, &device);
        let (p, w) = (micro.rollouts.prompt_width, micro.rollouts.completion_width);
        let states = match (c.two_pass(), &model.projection) {
            (true, Some(projection)) => {
                let inner = micro.rollouts.tensors::<B::InnerBackend>(&device);
                let sources = projection_sources(&model.valid(), &inner, &c.hrpo).map_err(wrap)?;
                Some(projection.forward(Tensor::from_inner(sources)))
            }
            _ => None,
        };
        let hidden =
            completion_hidden(model, &micro.t, p, w, c.hrpo.enabled, states).map_err(wrap)?;
        let n = rows.len();
        let targets = micro.t.ids.clone().slice([0..n, p..p + w]);
        let inputs = LossInputs {
            old_logps: if batch.iteration == 0 {
                None
            } else {
                micro.old_logps.clone()
            },
            ref_logps: micro.ref_logps.clone(),
            advantages: micro.advantages.clone(),
            mask: micro.loss_mask.clone(),
            max_completion_length: c.grpo.max_completion_length,
            batch_tokens: gen.loss_tokens,
        };
        let scale = c.grpo.loss.loss_type.trainer_scale(c.grpo.accumulation) * shard_factor;
        let loss_config = c.grpo.loss;
        let out = model
            .lm
            .logprob_loss(hidden, targets, self.logprob_options(), |logps| {
                let o = grpo_loss(logps, &inputs, &loss_config);
                Ok((
                    o.loss * scale,
                    [o.kl, o.clip_low, o.clip_high, o.clip_region],
                ))
            })?;
        let [kl, clip_low, clip_high, clip_region] = out.extra;
        let inner_mask = micro.loss_mask.clone().inner();
        let entropy = masked_mean(out.entropy, inner_mask);
        let mut terms = vec![
            ("kl".to_string(), kl),
            ("clip_ratio/low_mean".to_string(), clip_low),
            ("clip_ratio/high_mean".to_string(), clip_high),
            ("clip_ratio/region_mean".to_string(), clip_region),
            ("entropy".to_string(), entropy),
        ];
        terms.extend(window_terms(gen));
        if let Some(norm) = self.projection_grad_norm {
            terms.push(("projection/grad_norm".to_string(), norm));
        }
        if let Some(change) = self.projection_change(model) {
            terms.push(("projection/mean_abs_change".to_string(), change));
        }
        Ok(StepLoss {
            loss: out.loss,
            terms,
        })
    }

    /// Rolls out, scores and prepares the batch's window at its first micro-batch (outside the
    /// backend RNG lock: data-parallel replicas exchange their shares of the rollouts here).
    fn prepare(
        &mut self,
        model: &ThinkingLm<B>,
        batch: &MicroBatch,
        at: StepIndex,
    ) -> latent_core::Result<()> {
        if self.generation.as_ref().map(|g| g.window_id) == Some(batch.window.id) {
            return Ok(());
        }
        match self.generate(model, &batch.window) {
            Ok(generation) => {
                self.generation = Some(generation);
                Ok(())
            }
            Err(crate::GrpoError::Core(CoreError::StopRequested { during })) => {
                self.stopped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| (model.clone(), at));
                Err(CoreError::StopRequested {
                    during: format!("{during} of the rollouts of update {}", at.update),
                })
            }
            Err(e) => Err(latent_core::CoreError::Method(Box::new(e))),
        }
    }

    fn join_replicas(&mut self, replica: Replica<B::InnerBackend>) {
        self.replica = Some(replica);
    }

    fn adjust_gradients(&mut self, model: &ThinkingLm<B>, grads: &mut GradientsParams) {
        if let Some(p) = &model.projection {
            self.projection_grad_norm = grads.get::<B::InnerBackend, 2>(p.weight.id).map(|g| {
                let sq: f64 = g.cast(DType::F32).square().sum().into_scalar().elem();
                sq.sqrt()
            });
        }
    }
}

/// What is logged of a whole window (the same for each of its micro-batches).
fn window_terms(gen: &GenerationBatch) -> Vec<(String, f64)> {
    let r = &gen.rollouts;
    let lengths: Vec<usize> = r.completions.iter().map(Vec::len).collect();
    let n = lengths.len().max(1) as f64;
    let truncated = r.stops.iter().filter(|&&s| s == StopReason::Budget).count();
    let completion_tokens: usize = lengths.iter().sum();
    let thinking = r.thinking_mask.iter().filter(|&&m| m).count();
    let mixed_mean = |values: &[f32], empty: f64| {
        if thinking == 0 {
            return empty;
        }
        values
            .iter()
            .zip(&r.thinking_mask)
            .filter(|(_, &m)| m)
            .map(|(&v, _)| f64::from(v))
            .sum::<f64>()
            / thinking as f64
    };
    vec![
        ("reward/mean".into(), gen.advantages.reward_mean),
        ("reward/std".into(), gen.advantages.reward_std),
        (
            "reward/frac_zero_std".into(),
            gen.advantages.frac_reward_zero_std,
        ),
        (
            "completions/mean_length".into(),
            completion_tokens as f64 / n,
        ),
        (
            "completions/min_length".into(),
            lengths.iter().copied().min().unwrap_or(0) as f64,
        ),
        (
            "completions/max_length".into(),
            lengths.iter().copied().max().unwrap_or(0) as f64,
        ),
        ("completions/clipped_ratio".into(), truncated as f64 / n),
        (
            "thinking/fraction".into(),
            thinking as f64 / completion_tokens.max(1) as f64,
        ),
        ("thinking/gate_mean".into(), mixed_mean(&r.gate_mean, 1.0)),
        (
            "thinking/hidden_ratio".into(),
            mixed_mean(&r.hidden_ratio, 0.0),
        ),
        ("dynamic/groups_replaced".into(), gen.groups_replaced as f64),
        ("time/rollout_s".into(), gen.seconds),
    ]
}
