//! Collection of latent reasoning paths from a CODI reasoner (`prm_collect`).
//!
//! For each question the reasoner decodes once without noise (the greedy baseline) and
//! `paths_per_question` times with stochastic thoughts: additive Gaussian noise N(0, σ²I) on each
//! continuous thought only, as LatentTTS does (σ absolute, or relative to each thought's RMS with
//! `relative_sigma`). The noise of (question, path, step) comes from its own seeded stream, so a
//! collection is the same whatever the batching and an interrupted one resumes shard by shard
//! with the same paths. Each path's score is 1.0 when its answer is right (design 003's
//! `prm_score`); with `mc_rollouts` = k > 0, step `j`'s Monte-Carlo value is the fraction of k
//! continuations from the path's first `j` thoughts (new noise after them) that end right
//! (Math-Shepherd), and the last step's value is the path's own score.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use latent_codi::data::Tokenized;
use latent_codi::eval::{decode_with_thoughts, AnswerRecord, ThoughtDecoding, ThoughtHook};
use latent_codi::CodiModel;
use latent_core::train::StopFlag;
use latent_datasets::answer::{format_number, last_number};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::paths::{
    histogram, shard_stem, CollectionMeta, PathRecord, QuestionRecord, Shard, ShardRecords,
    METADATA_FILE, PATHS_FORMAT, PATHS_VERSION,
};
use crate::{PrmError, Result};

/// How paths are sampled and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Paths per question (N).
    pub paths_per_question: usize,
    /// Standard deviation of the noise added to each thought (0: every path is the greedy one).
    pub sigma: f32,
    /// Scale σ by each thought's root-mean-square value (σ = 1 then means noise as large as the
    /// thought itself), instead of using it as is (LatentTTS: 1.4 for CODI on GPT-2).
    pub relative_sigma: bool,
    /// Monte-Carlo continuations per step prefix for per-step labels (0: final-answer labels only).
    pub mc_rollouts: usize,
    /// Seed of the noise.
    pub seed: u64,
    /// Questions per shard (the unit of resumption).
    pub questions_per_shard: usize,
    /// Rows decoded together.
    pub batch_rows: usize,
    /// Decoding budget after the thoughts.
    pub max_new_tokens: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            paths_per_question: 8,
            sigma: 1.4,
            relative_sigma: false,
            mc_rollouts: 0,
            seed: 42,
            questions_per_shard: 100,
            batch_rows: 256,
            max_new_tokens: 32,
        }
    }
}

/// One decoded row of a collection batch: whose it is and what is forced or sampled.
#[derive(Debug, Clone)]
struct RowPlan {
    /// Question index (in the question file).
    question: usize,
    /// Noise stream of the row (the path number; continuations use their own).
    stream: u64,
    /// Thoughts fed as they are before the noisy ones, `[prefix_steps · hidden]`.
    prefix: Vec<f32>,
    /// Add noise after the prefix.
    noisy: bool,
}

/// The thought hook of a collection batch: forced prefixes, seeded noise, and a record of every
/// thought fed.
struct PathHook<'a> {
    plans: &'a [RowPlan],
    sampling: &'a SamplingConfig,
    steps: usize,
    /// Per row, `[steps · hidden]`: the thoughts fed.
    fed: Vec<Vec<f32>>,
}

/// A seed for the noise of (question, stream, step) under `seed` (splitmix64 finaliser of a mix).
fn stream_seed(seed: u64, question: usize, stream: u64, step: usize) -> u64 {
    let mut z = seed
        ^ (question as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ stream.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (step as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<B: Backend> ThoughtHook<B> for PathHook<'_> {
    fn edit(&mut self, step: usize, rows: &[usize], thoughts: Tensor<B, 2>) -> Tensor<B, 2> {
        let device = thoughts.device();
        let dtype = thoughts.dtype();
        let [n, d] = thoughts.dims();
        let mut data: Vec<f32> = thoughts
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 thoughts");
        for (i, &row) in rows.iter().enumerate() {
            let v = &mut data[i * d..(i + 1) * d];
            let plan = &self.plans[row];
            if (step + 1) * d <= plan.prefix.len() {
                v.copy_from_slice(&plan.prefix[step * d..(step + 1) * d]);
            } else if plan.noisy && self.sampling.sigma > 0.0 {
                let scale = if self.sampling.relative_sigma {
                    let rms = (v.iter().map(|x| x * x).sum::<f32>() / d as f32).sqrt();
                    self.sampling.sigma * rms
                } else {
                    self.sampling.sigma
                };
                let mut rng = StdRng::seed_from_u64(stream_seed(
                    self.sampling.seed,
                    plan.question,
                    plan.stream,
                    step,
                ));
                for x in v.iter_mut() {
                    let e: f32 = StandardNormal.sample(&mut rng);
                    *x += scale * e;
                }
            }
            if step < self.steps {
                self.fed[row][step * d..(step + 1) * d].copy_from_slice(v);
            }
        }
        Tensor::<B, 2>::from_data(TensorData::new(data, [n, d]), &device).cast(dtype)
    }
}

/// One decoded row: thoughts fed and text written.
struct Decoded {
    thoughts: Vec<f32>,
    output: String,
    answer: Option<String>,
    correct: bool,
}

/// Decodes every plan, `batch_rows` rows at a time.
fn decode_plans<B: Backend>(
    reasoner: &CodiModel<B>,
    tokenizer: &Tokenizer,
    examples: &[Tokenized],
    plans: &[RowPlan],
    sampling: &SamplingConfig,
    steps: usize,
    hidden: usize,
) -> Result<Vec<Decoded>> {
    let settings = ThoughtDecoding {
        latents: steps,
        max_new_tokens: sampling.max_new_tokens,
        reference_masking: false,
    };
    let mut out = Vec::with_capacity(plans.len());
    for chunk in plans.chunks(sampling.batch_rows.max(1)) {
        let questions: Vec<Vec<u32>> = chunk
            .iter()
            .map(|p| examples[p.question].question.clone())
            .collect();
        let mut hook = PathHook {
            plans: chunk,
            sampling,
            steps,
            fed: vec![vec![0.0; steps * hidden]; chunk.len()],
        };
        let ids = decode_with_thoughts(reasoner, &questions, &settings, Some(&mut hook))?;
        for ((plan, ids), thoughts) in chunk.iter().zip(ids).zip(hook.fed) {
            let record = AnswerRecord::decode(tokenizer, &examples[plan.question], &ids, steps)?;
            out.push(Decoded {
                thoughts,
                answer: last_number(&record.output).map(format_number),
                correct: record.correct,
                output: record.output,
            });
        }
    }
    Ok(out)
}

/// What [`collect`] works from.
pub struct CollectInputs<'a, B: Backend> {
    /// The reasoner.
    pub reasoner: &'a CodiModel<B>,
    /// Its checkpoint directory (recorded in the metadata).
    pub reasoner_dir: &'a Path,
    /// Its continuous thoughts per question.
    pub latent_steps: usize,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The questions, tokenized as the reasoner reads them.
    pub examples: &'a [Tokenized],
    /// The question file (recorded in the metadata).
    pub questions_file: &'a Path,
}

/// Collects `inputs.examples`' paths into `out_dir`, resuming after the last complete shard when
/// `out_dir` holds a collection with the same reasoner, questions and sampling. When `stop` is
/// requested (Ctrl-C), stops after the shard being collected; a later call resumes. Returns the
/// metadata (`questions < questions_planned` after a stop).
pub fn collect<B: Backend>(
    inputs: &CollectInputs<'_, B>,
    sampling: &SamplingConfig,
    out_dir: &Path,
    progress: bool,
    stop: Option<&StopFlag>,
) -> Result<CollectionMeta> {
    if sampling.paths_per_question == 0 || sampling.questions_per_shard == 0 {
        return Err(PrmError::config(
            "sampling",
            "paths_per_question and questions_per_shard must be at least 1",
        ));
    }
    let steps = inputs.latent_steps;
    if steps == 0 {
        return Err(PrmError::config(
            "reasoner",
            "the reasoner has no continuous thoughts (num_latent = 0)",
        ));
    }
    let hidden = inputs.reasoner.lm.config().hidden_size;
    std::fs::create_dir_all(out_dir).map_err(|e| PrmError::io(out_dir, e))?;
    let fresh = CollectionMeta {
        format: PATHS_FORMAT.into(),
        version: PATHS_VERSION,
        reasoner: inputs.reasoner_dir.to_path_buf(),
        questions_file: inputs.questions_file.to_path_buf(),
        sampling: sampling.clone(),
        latent_steps: steps,
        hidden,
        questions_planned: inputs.examples.len(),
        questions: 0,
        paths: 0,
        correct_paths: 0,
        greedy_correct: 0,
        all_right_questions: 0,
        all_wrong_questions: 0,
        all_right_share: 0.0,
        all_wrong_share: 0.0,
        score_histogram: vec![0; 10],
        step_value_histogram: if sampling.mc_rollouts > 0 {
            vec![0; 10]
        } else {
            Vec::new()
        },
        shards: Vec::new(),
    };
    let mut meta = match CollectionMeta::read(out_dir) {
        Ok(old) if same_collection(&old, &fresh) => old,
        Ok(_) => {
            return Err(PrmError::format(
                out_dir.join(METADATA_FILE),
                "holds a collection with another reasoner, question file or sampling; \
                 choose another output directory",
            ))
        }
        Err(PrmError::NoData { .. }) => fresh,
        Err(e) => return Err(e),
    };
    let per_shard = sampling.questions_per_shard;
    let shards = inputs.examples.len().div_ceil(per_shard);
    let bar = if progress {
        ProgressBar::new(inputs.examples.len() as u64).with_style(
            ProgressStyle::with_template(
                "collect {bar:30} {pos}/{len} questions [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .expect("template"),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_position(meta.questions as u64);
    for k in meta.shards.len()..shards {
        let range = k * per_shard..((k + 1) * per_shard).min(inputs.examples.len());
        let shard = collect_shard(inputs, sampling, range, steps, hidden)?;
        let stem = shard_stem(k);
        shard.write(out_dir, &stem, steps, hidden)?;
        add_to_meta(&mut meta, &shard, sampling.paths_per_question, stem);
        meta.write(out_dir)?;
        bar.set_position(meta.questions as u64);
        bar.set_message(format!(
            "path accuracy {:.3}",
            meta.correct_paths as f64 / meta.paths.max(1) as f64
        ));
        if stop.is_some_and(StopFlag::is_requested) {
            break;
        }
    }
    bar.finish_and_clear();
    meta.validate(&out_dir.join(METADATA_FILE))?;
    Ok(meta)
}

/// Whether `old` was made by the same reasoner, questions and sampling as `fresh` would be.
fn same_collection(old: &CollectionMeta, fresh: &CollectionMeta) -> bool {
    old.reasoner == fresh.reasoner
        && old.questions_file == fresh.questions_file
        && old.sampling == fresh.sampling
        && old.latent_steps == fresh.latent_steps
        && old.hidden == fresh.hidden
        && old.questions_planned == fresh.questions_planned
}

/// Adds a written shard's counts to the metadata.
fn add_to_meta(meta: &mut CollectionMeta, shard: &Shard, n: usize, stem: String) {
    let questions = shard.records.questions.len();
    meta.questions += questions;
    meta.paths += shard.records.paths.len();
    meta.correct_paths += shard.records.paths.iter().filter(|p| p.correct).count();
    meta.greedy_correct += shard
        .records
        .questions
        .iter()
        .filter(|q| q.greedy_correct)
        .count();
    for group in shard.records.paths.chunks(n) {
        let right = group.iter().filter(|p| p.correct).count();
        if right == group.len() {
            meta.all_right_questions += 1;
        } else if right == 0 {
            meta.all_wrong_questions += 1;
        }
    }
    meta.all_right_share = meta.all_right_questions as f64 / meta.questions.max(1) as f64;
    meta.all_wrong_share = meta.all_wrong_questions as f64 / meta.questions.max(1) as f64;
    for (bin, count) in histogram(shard.scores.iter().copied())
        .into_iter()
        .enumerate()
    {
        meta.score_histogram[bin] += count;
    }
    if let Some(values) = &shard.step_values {
        for (bin, count) in histogram(values.iter().copied()).into_iter().enumerate() {
            meta.step_value_histogram[bin] += count;
        }
    }
    meta.shards.push(stem);
}

/// The paths of the questions in `range`.
fn collect_shard<B: Backend>(
    inputs: &CollectInputs<'_, B>,
    sampling: &SamplingConfig,
    range: std::ops::Range<usize>,
    steps: usize,
    hidden: usize,
) -> Result<Shard> {
    let n = sampling.paths_per_question;
    let decode = |plans: &[RowPlan]| {
        decode_plans(
            inputs.reasoner,
            inputs.tokenizer,
            inputs.examples,
            plans,
            sampling,
            steps,
            hidden,
        )
    };
    // One pass: each question's noise-free path, then its N noisy ones.
    let greedy_plans = range.clone().map(|q| RowPlan {
        question: q,
        stream: 0,
        prefix: Vec::new(),
        noisy: false,
    });
    let sampled_plans = range.clone().flat_map(|q| {
        (0..n).map(move |p| RowPlan {
            question: q,
            stream: p as u64 + 1,
            prefix: Vec::new(),
            noisy: true,
        })
    });
    let plans: Vec<RowPlan> = greedy_plans.chain(sampled_plans).collect();
    let mut greedy = decode(&plans)?;
    let sampled = greedy.split_off(range.len());
    let step_values = if sampling.mc_rollouts > 0 {
        Some(monte_carlo_values(
            &sampled, &range, sampling, steps, hidden, &decode,
        )?)
    } else {
        None
    };
    let questions = range
        .clone()
        .zip(&greedy)
        .map(|(q, g)| {
            let e = &inputs.examples[q];
            QuestionRecord {
                index: q,
                question: e.question_text.clone(),
                gold: e.gold.text.clone(),
                ids: e.question.clone(),
                greedy_answer: g.answer.clone(),
                greedy_correct: g.correct,
            }
        })
        .collect();
    let mut latents = Vec::with_capacity(sampled.len() * steps * hidden);
    let mut scores = Vec::with_capacity(sampled.len());
    let mut paths = Vec::with_capacity(sampled.len());
    for (i, d) in sampled.into_iter().enumerate() {
        latents.extend_from_slice(&d.thoughts);
        scores.push(if d.correct { 1.0 } else { 0.0 });
        paths.push(PathRecord {
            question: range.start + i / n,
            path: i % n,
            output: d.output,
            answer: d.answer,
            correct: d.correct,
        });
    }
    Ok(Shard {
        records: ShardRecords { questions, paths },
        latents,
        scores,
        step_values,
    })
}

/// Per path and step `j` (1-based): the fraction of `mc_rollouts` continuations from its first
/// `j` thoughts that end right; the last step's value is the path's own correctness.
fn monte_carlo_values(
    sampled: &[Decoded],
    range: &std::ops::Range<usize>,
    sampling: &SamplingConfig,
    steps: usize,
    hidden: usize,
    decode: &impl Fn(&[RowPlan]) -> Result<Vec<Decoded>>,
) -> Result<Vec<f32>> {
    let n = sampling.paths_per_question;
    let k = sampling.mc_rollouts;
    let mut plans = Vec::new();
    for (i, d) in sampled.iter().enumerate() {
        for j in 1..steps {
            for r in 0..k {
                plans.push(RowPlan {
                    question: range.start + i / n,
                    // Streams past the paths' own (1..=n), one per (path, prefix, rollout).
                    stream: (n + 1 + (i % n) * steps * k + j * k + r) as u64,
                    prefix: d.thoughts[..j * hidden].to_vec(),
                    noisy: true,
                });
            }
        }
    }
    let continued = decode(&plans)?;
    let mut values = Vec::with_capacity(sampled.len() * steps);
    for (i, d) in sampled.iter().enumerate() {
        for j in 1..steps {
            let start = (i * (steps - 1) + (j - 1)) * k;
            let right = continued[start..start + k]
                .iter()
                .filter(|c| c.correct)
                .count();
            values.push(right as f32 / k as f32);
        }
        values.push(if d.correct { 1.0 } else { 0.0 });
    }
    Ok(values)
}

/// The default output directory of a collection of `reasoner` (beside it).
pub fn default_out_dir(reasoner: &Path) -> PathBuf {
    reasoner.join("prm_paths")
}

/// A CODI reasoner loaded for collection, with the questions of `questions_file` tokenized as it
/// reads them (its BOS setting and answer prefix; questions its preprocessing drops are skipped).
pub struct Reasoner<B: Backend> {
    /// The model.
    pub model: CodiModel<B>,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its continuous thoughts per question.
    pub latent_steps: usize,
    /// The questions.
    pub examples: Vec<Tokenized>,
}

impl<B: Backend> Reasoner<B> {
    /// Loads the CODI checkpoint `dir` and reads at most `limit` questions of `questions_file`.
    pub fn load(
        dir: &Path,
        questions_file: &Path,
        format: latent_codi::config::DataFormat,
        limit: Option<usize>,
        device: &B::Device,
    ) -> Result<Self> {
        let (model, tokenizer, meta) = CodiModel::<B>::load(dir, device, burn::tensor::DType::F32)?;
        let tokenizer = tokenizer.ok_or_else(|| {
            PrmError::config(
                "reasoner",
                format!("{} has no tokenizer.json", dir.join("model").display()),
            )
        })?;
        let problems = latent_codi::run::load_problems(questions_file, format, limit)?;
        let prep = latent_codi::run::model_prep_config(&meta, model.lm.config());
        let (examples, _) = latent_codi::data::prepare(&problems, &tokenizer, &prep)?;
        Ok(Self {
            model,
            tokenizer,
            latent_steps: meta.num_latent,
            examples,
        })
    }
}
