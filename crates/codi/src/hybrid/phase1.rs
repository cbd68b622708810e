//! Phase 1: entropy-guided hybrid data. A CoT-capable model reads each training sample
//! `Q ‖ CoT ‖ A` teacher-forced; a step's entropy is the mean predictive entropy (nats, over the
//! base vocabulary) of the next-token distributions at the positions predicting its tokens. Each
//! sample then draws a strategy (seeded): entropy-guided (steps below the global
//! `latent_quantile` of all step entropies become latent), random (as many latent steps as the
//! entropy rule would pick, at random positions) or explicit. Consecutive latent steps form one
//! run of `latents_per_step` thoughts per step, at most `max_latent_steps`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::DType;
use latent_datasets::rng::SplitMix64;
use serde::Serialize;
use tokenizers::Tokenizer;

use super::schema::{write_hybrid_file, HYBRID_SCHEMA, HYBRID_SCHEMA_VERSION};
use super::schema::{GeneratorInfo, HybridFile, HybridSample, Segment, Strategy};
use crate::batch::collate;
use crate::data::{kept_steps, prepare, PrepConfig, Problem, Tokenized};
use crate::model::CodiModel;
use crate::{CodiError, Result};

/// Phase 1 settings (defaults: the design document's 50/30/20 mix).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase1Config {
    /// Share of entropy-guided samples (0.5).
    pub entropy_ratio: f64,
    /// Share of random samples (0.3); the rest (0.2) stays explicit.
    pub random_ratio: f64,
    /// Steps whose entropy is below this quantile of all step entropies are latent (0.5).
    pub latent_quantile: f64,
    /// Thoughts per latent step (2, Coconut's c).
    pub latents_per_step: usize,
    /// Largest run of thoughts (6).
    pub max_latent_steps: usize,
    /// Seed of the strategy draws.
    pub seed: u64,
    /// Samples per forward pass.
    pub batch_size: usize,
}

impl Default for Phase1Config {
    fn default() -> Self {
        Self {
            entropy_ratio: 0.5,
            random_ratio: 0.3,
            latent_quantile: 0.5,
            latents_per_step: 2,
            max_latent_steps: 6,
            seed: 11,
            batch_size: 32,
        }
    }
}

/// Token ranges of each step inside the ids of `steps.join(separator)` (a token belongs to the
/// step its last character falls in).
pub fn step_spans(
    tokenizer: &Tokenizer,
    steps: &[String],
    separator: &str,
) -> Result<(Vec<u32>, Vec<Range<usize>>)> {
    let text = steps.join(separator);
    let encoding = tokenizer
        .encode(text.as_str(), false)
        .map_err(|e| CodiError::Tokenizer(format!("encoding {text:?}: {e}")))?;
    let mut ends = Vec::with_capacity(steps.len());
    let mut at = 0;
    for (k, s) in steps.iter().enumerate() {
        at += s.len();
        ends.push(at);
        if k + 1 < steps.len() {
            at += separator.len();
        }
    }
    let mut spans = vec![0..0; steps.len()];
    for (t, &(_, end)) in encoding.get_offsets().iter().enumerate() {
        let step = ends
            .iter()
            .position(|&e| end <= e)
            .unwrap_or(steps.len() - 1);
        let span = &mut spans[step];
        if span.end == 0 {
            *span = t..t + 1;
        } else {
            span.end = t + 1;
        }
    }
    Ok((encoding.get_ids().to_vec(), spans))
}

/// Per position, the entropy (nats) of the next-token distribution over the base vocabulary of
/// the teacher sequences `Q ‖ CoT ‖ A` of `examples`: `[b][s]` on the host.
fn position_entropies<B: Backend>(
    model: &CodiModel<B>,
    examples: &[&Tokenized],
) -> Result<Vec<Vec<f32>>> {
    let batch = collate(examples, &model.tokens, true);
    let device = model.lm.device();
    let ids = crate::loss::int_tensor::<B>(&batch.teacher.ids, &device);
    let mask = crate::loss::int_tensor::<B>(&batch.teacher.mask, &device);
    let logits = model
        .lm
        .forward(latent_core::LmInput::ids(ids).attention_mask(mask))?
        .logits;
    let [b, s, _] = logits.dims();
    let v = model.tokens.base_vocab;
    let logp = log_softmax(logits.slice([0..b, 0..s, 0..v]), 2);
    let h = -(logp.clone().exp() * logp).sum_dim(2).reshape([b, s]);
    let flat: Vec<f32> = h.into_data().convert::<f32>().into_vec().expect("f32");
    Ok(flat.chunks(s).map(<[f32]>::to_vec).collect())
}

/// One problem ready for Phase 1.
#[derive(Clone)]
struct Item {
    problem: Problem,
    steps: Vec<String>,
    example: Tokenized,
    spans: Vec<Range<usize>>,
}

/// Mean entropy of each step of every item.
fn step_entropies<B: Backend>(
    model: &CodiModel<B>,
    items: &[Item],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch_size.max(1)) {
        let refs: Vec<&Tokenized> = chunk.iter().map(|i| &i.example).collect();
        let h = position_entropies(model, &refs)?;
        for (item, row) in chunk.iter().zip(h) {
            let q = item.example.question.len();
            // Token j of the CoT sits at q + j and is predicted at q + j - 1.
            out.push(
                item.spans
                    .iter()
                    .map(|span| {
                        let vals = &row[q + span.start - 1..q + span.end - 1];
                        vals.iter().sum::<f32>() / vals.len().max(1) as f32
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// The `q`-quantile (nearest rank) of `values`.
fn quantile(values: &[f32], q: f64) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let idx = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

/// Segments of `steps` given which are latent.
pub fn segments(
    steps: &[String],
    latent: &[bool],
    separator: &str,
    latents_per_step: usize,
    max_latent_steps: usize,
) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut k = 0;
    while k < steps.len() {
        let end = (k..steps.len())
            .find(|&j| latent[j] != latent[k])
            .unwrap_or(steps.len());
        let idx: Vec<usize> = (k..end).collect();
        out.push(if latent[k] {
            Segment::Latent {
                count: (idx.len() * latents_per_step).min(max_latent_steps),
                replaces: idx,
            }
        } else {
            Segment::Explicit {
                text: steps[k..end].join(separator),
                steps: idx,
            }
        });
        k = end;
    }
    out
}

/// What Phase 1 made, for the printed summary.
#[derive(Debug, Clone, Serialize)]
pub struct Phase1Summary {
    /// Samples written.
    pub samples: usize,
    /// Problems dropped by preprocessing or for having no CoT step.
    pub dropped: usize,
    /// Samples per strategy.
    pub per_strategy: BTreeMap<String, usize>,
    /// Per strategy, the fraction of steps made latent.
    pub latent_step_fraction: BTreeMap<String, f64>,
    /// Mean thoughts per sample.
    pub mean_thoughts: f64,
    /// Mean latent runs per sample.
    pub mean_runs: f64,
    /// The entropy threshold.
    pub threshold: f32,
    /// Quartiles (25/50/75 %) of all step entropies.
    pub entropy_quartiles: [f32; 3],
    /// Mean entropy of each step index (step 0, 1, ...).
    pub mean_entropy_by_step: Vec<f32>,
}

/// Each problem ready for Phase 1 (`None`: dropped by preprocessing or without a CoT step).
fn prepare_items(
    tokenizer: &Tokenizer,
    problems: &[Problem],
    prep: &PrepConfig,
) -> Result<Vec<Option<Item>>> {
    let mut items = Vec::with_capacity(problems.len());
    for p in problems {
        let steps = kept_steps(&p.steps, prep.keep_last_step).to_vec();
        if steps.is_empty() {
            items.push(None);
            continue;
        }
        let (mut prepared, _) = prepare(std::slice::from_ref(p), tokenizer, prep)?;
        let Some(example) = prepared.pop() else {
            items.push(None);
            continue;
        };
        let (ids, spans) = step_spans(tokenizer, &steps, &prep.step_separator)?;
        debug_assert_eq!(ids, example.cot);
        items.push(Some(Item {
            problem: p.clone(),
            steps,
            example,
            spans,
        }));
    }
    Ok(items)
}

/// Phase 1's entropy rule on each problem's gold CoT: per kept step, whether its entropy under
/// `model` is below `threshold` (one plan per problem, empty for a dropped one). With the
/// threshold of a training file, these are the runs an oracle controller would follow
/// ([`crate::hybrid::BaselineMode::Planned`]).
pub fn entropy_plans<B: Backend>(
    model: &CodiModel<B>,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    prep: &PrepConfig,
    threshold: f32,
    batch_size: usize,
) -> Result<Vec<Vec<bool>>> {
    let items = prepare_items(tokenizer, problems, prep)?;
    let kept: Vec<Item> = items.iter().flatten().cloned().collect();
    let mut entropies = step_entropies(model, &kept, batch_size)?.into_iter();
    Ok(items
        .iter()
        .map(|item| match item {
            Some(_) => entropies
                .next()
                .expect("one per item")
                .iter()
                .map(|&h| h < threshold)
                .collect(),
            None => Vec::new(),
        })
        .collect())
}

/// Builds the hybrid samples of `problems`.
pub fn generate<B: Backend>(
    model: &CodiModel<B>,
    tokenizer: &Tokenizer,
    problems: &[Problem],
    prep: &PrepConfig,
    config: &Phase1Config,
    model_name: &str,
    data_name: &str,
) -> Result<(HybridFile, Phase1Summary)> {
    let items: Vec<Item> = prepare_items(tokenizer, problems, prep)?
        .into_iter()
        .flatten()
        .collect();
    if items.is_empty() {
        return Err(CodiError::Empty("the Phase 1 problems".into()));
    }
    let entropies = step_entropies(model, &items, config.batch_size)?;
    let all: Vec<f32> = entropies.iter().flatten().copied().collect();
    let threshold = quantile(&all, config.latent_quantile);
    let mut rng = SplitMix64::new(config.seed);
    let mut samples = Vec::with_capacity(items.len());
    for (item, h) in items.iter().zip(&entropies) {
        let draw = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let strategy = if draw < config.entropy_ratio {
            Strategy::Entropy
        } else if draw < config.entropy_ratio + config.random_ratio {
            Strategy::Random
        } else {
            Strategy::Explicit
        };
        let by_entropy: Vec<bool> = h.iter().map(|&x| x < threshold).collect();
        let latent = match strategy {
            Strategy::Entropy => by_entropy,
            Strategy::Random => {
                let k = by_entropy.iter().filter(|&&l| l).count().max(1);
                let mut order: Vec<usize> = (0..h.len()).collect();
                rng.shuffle(&mut order);
                let mut latent = vec![false; h.len()];
                for &j in order.iter().take(k) {
                    latent[j] = true;
                }
                latent
            }
            Strategy::Explicit => vec![false; h.len()],
        };
        samples.push(HybridSample {
            question: item.example.question_text.clone(),
            answer: item.problem.answer.trim().to_string(),
            strategy,
            segments: segments(
                &item.steps,
                &latent,
                &prep.step_separator,
                config.latents_per_step,
                config.max_latent_steps,
            ),
            steps: item.steps.clone(),
            step_entropies: h.clone(),
        });
    }
    let file = HybridFile {
        schema: HYBRID_SCHEMA.into(),
        version: HYBRID_SCHEMA_VERSION,
        generator: GeneratorInfo {
            model: model_name.into(),
            data: data_name.into(),
            step_separator: prep.step_separator.clone(),
            entropy_threshold: threshold,
            latent_quantile: config.latent_quantile,
            latents_per_step: config.latents_per_step,
            max_latent_steps: config.max_latent_steps,
            entropy_ratio: config.entropy_ratio,
            random_ratio: config.random_ratio,
            seed: config.seed,
        },
        samples,
    };
    let summary = summarise(&file, problems.len(), &all);
    Ok((file, summary))
}

/// Summary statistics of a hybrid file.
pub fn summarise(file: &HybridFile, problems: usize, entropies: &[f32]) -> Phase1Summary {
    let n = file.samples.len();
    let mut per_strategy = BTreeMap::new();
    let mut latent_step_fraction = BTreeMap::new();
    for strategy in Strategy::ALL {
        let name = serde_json::to_value(strategy).expect("name");
        let name = name.as_str().expect("string").to_string();
        let of: Vec<&HybridSample> = file
            .samples
            .iter()
            .filter(|s| s.strategy == strategy)
            .collect();
        let steps: usize = of.iter().map(|s| s.steps.len()).sum();
        let latent: usize = of
            .iter()
            .flat_map(|s| &s.segments)
            .filter(|g| g.is_latent())
            .map(|g| g.steps().len())
            .sum();
        per_strategy.insert(name.clone(), of.len());
        latent_step_fraction.insert(name, latent as f64 / steps.max(1) as f64);
    }
    let thoughts: usize = file
        .samples
        .iter()
        .flat_map(|s| &s.segments)
        .map(|g| match g {
            Segment::Latent { count, .. } => *count,
            Segment::Explicit { .. } => 0,
        })
        .sum();
    let runs: usize = file.samples.iter().map(HybridSample::latent_runs).sum();
    let depth = file
        .samples
        .iter()
        .map(|s| s.steps.len())
        .max()
        .unwrap_or(0);
    let mean_entropy_by_step = (0..depth)
        .map(|k| {
            let v: Vec<f32> = file
                .samples
                .iter()
                .filter_map(|s| s.step_entropies.get(k).copied())
                .collect();
            v.iter().sum::<f32>() / v.len().max(1) as f32
        })
        .collect();
    Phase1Summary {
        samples: n,
        dropped: problems - n,
        per_strategy,
        latent_step_fraction,
        mean_thoughts: thoughts as f64 / n.max(1) as f64,
        mean_runs: runs as f64 / n.max(1) as f64,
        threshold: file.generator.entropy_threshold,
        entropy_quartiles: [
            quantile(entropies, 0.25),
            quantile(entropies, 0.5),
            quantile(entropies, 0.75),
        ],
        mean_entropy_by_step,
    }
}

/// Phase 1 on a saved model directory: generates the samples of `problems`, writes them to
/// `output` (validated) and returns the summary.
pub fn run_phase1<B: Backend>(
    model_dir: &Path,
    problems: &[Problem],
    step_separator: &str,
    config: &Phase1Config,
    output: &Path,
    data_name: &str,
    device: &B::Device,
) -> Result<Phase1Summary> {
    let (model, tokenizer, meta) = CodiModel::<B>::load(model_dir, device, DType::F32)?;
    let tokenizer = tokenizer.ok_or_else(|| CodiError::Checkpoint {
        path: model_dir.join("model/tokenizer.json"),
        reason: "no tokenizer saved with the model".into(),
    })?;
    let prep = PrepConfig {
        answer_prefix: meta.answer_prefix.clone(),
        step_separator: step_separator.into(),
        bos: if meta.add_bos {
            model.lm.config().bos_token_id
        } else {
            None
        },
        ..PrepConfig::default()
    };
    let (file, summary) = generate(
        &model,
        &tokenizer,
        problems,
        &prep,
        config,
        &model_dir.display().to_string(),
        data_name,
    )?;
    write_hybrid_file(output, &file)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hybrid::schema::{read_hybrid_file, validate};
    use crate::hybrid::testing::{problems, tiny_setup};

    #[test]
    fn step_spans_partition_the_cot_tokens() {
        let (_, tok, _) = tiny_setup();
        let steps = vec!["<<3+4=7>>".to_string(), "<<7-2=5>>".to_string()];
        let (ids, spans) = step_spans(&tok, &steps, " ").unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].start, spans[1].end), (0, ids.len()));
        assert_eq!(spans[0].end, spans[1].start);
        assert_eq!(
            tok.decode(&ids[spans[1].clone()], false).unwrap(),
            tok.decode(tok.encode("<<7-2=5>>", false).unwrap().get_ids(), false)
                .unwrap()
        );
    }

    #[test]
    fn phase1_output_validates_against_its_schema() {
        let (model, tok, _) = tiny_setup();
        let config = Phase1Config {
            entropy_ratio: 0.4,
            random_ratio: 0.4,
            batch_size: 3,
            ..Phase1Config::default()
        };
        let problems = problems();
        let (file, summary) = generate(
            &model,
            &tok,
            &problems,
            &PrepConfig::default(),
            &config,
            "tiny",
            "synthetic",
        )
        .unwrap();
        assert_eq!(file.samples.len(), problems.len());
        assert_eq!(summary.per_strategy.values().sum::<usize>(), problems.len());
        // The step entropies are those of an unbatched forward of each sample: the mean, over
        // the step's tokens, of the entropy of the base-vocabulary distribution that predicts
        // each token.
        let prepared = prepare(&problems, &tok, &PrepConfig::default()).unwrap().0;
        let v = model.tokens.base_vocab;
        for (s, e) in file.samples.iter().zip(&prepared) {
            let ids: Vec<i64> = e
                .question
                .iter()
                .chain(&e.cot)
                .chain(&e.answer)
                .map(|&id| i64::from(id))
                .collect();
            let n = ids.len();
            let logits = model
                .lm
                .forward(latent_core::LmInput::ids(Tensor::from_data(
                    TensorData::new(ids, [1, n]),
                    &Default::default(),
                )))
                .unwrap()
                .logits;
            let rows: Vec<f32> = logits.into_data().to_vec().unwrap();
            let vocab = rows.len() / n;
            let entropy_at = |c: usize| {
                let row = &rows[c * vocab..c * vocab + v];
                let max = row.iter().copied().fold(f32::MIN, f32::max);
                let z: f32 = row.iter().map(|x| (x - max).exp()).sum();
                row.iter()
                    .map(|x| {
                        let lp = x - max - z.ln();
                        -lp.exp() * lp
                    })
                    .sum::<f32>()
            };
            let (_, spans) = step_spans(&tok, &s.steps, " ").unwrap();
            let q = e.question.len();
            for (k, span) in spans.iter().enumerate() {
                let want =
                    span.clone().map(|j| entropy_at(q + j - 1)).sum::<f32>() / span.len() as f32;
                let got = s.step_entropies[k];
                assert!((want - got).abs() < 1e-4, "step {k}: {got} vs {want}");
            }
        }
        // The threshold is the nearest-rank median of all step entropies, and the oracle plans
        // of the problems are the entropy-guided samples' latent steps.
        let mut all: Vec<f32> = file
            .samples
            .iter()
            .flat_map(|s| s.step_entropies.clone())
            .collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(
            file.generator.entropy_threshold,
            all[all.len().div_ceil(2) - 1]
        );
        let plans = entropy_plans(
            &model,
            &tok,
            &problems,
            &PrepConfig::default(),
            file.generator.entropy_threshold,
            config.batch_size,
        )
        .unwrap();
        for (s, plan) in file.samples.iter().zip(&plans) {
            let below: Vec<bool> = s
                .step_entropies
                .iter()
                .map(|&h| h < file.generator.entropy_threshold)
                .collect();
            assert_eq!(plan, &below);
            if s.strategy == Strategy::Entropy {
                let latent: Vec<bool> = (0..s.steps.len())
                    .map(|k| {
                        s.segments
                            .iter()
                            .any(|g| g.is_latent() && g.steps().contains(&k))
                    })
                    .collect();
                assert_eq!(plan, &latent);
            }
        }
        let dir = std::env::temp_dir().join(format!("codi-phase1-{}", std::process::id()));
        let path = dir.join("hybrid.json");
        write_hybrid_file(&path, &file).unwrap();
        assert_eq!(read_hybrid_file(&path).unwrap(), file);
        std::fs::remove_dir_all(&dir).ok();

        // The validator rejects what breaks the schema.
        let here = Path::new("<test>");
        let broken = |f: &dyn Fn(&mut HybridFile)| {
            let mut b = file.clone();
            f(&mut b);
            validate(&b, here).unwrap_err().to_string()
        };
        assert!(broken(&|b| b.version = 2).contains("version 2"));
        assert!(
            broken(&|b| b.samples[0].step_entropies.pop().map(|_| ()).unwrap())
                .contains("step entropies")
        );
        assert!(broken(&|b| {
            b.samples[0].segments = vec![Segment::Latent {
                count: 2,
                replaces: vec![1, 0],
            }]
        })
        .contains("cover steps"));
        assert!(broken(&|b| {
            b.samples[0].segments = vec![
                Segment::Latent {
                    count: 2,
                    replaces: vec![0],
                },
                Segment::Latent {
                    count: 2,
                    replaces: vec![1],
                },
            ]
        })
        .contains("same type"));
        assert!(broken(&|b| {
            b.samples[0].segments = vec![Segment::Latent {
                count: 9,
                replaces: vec![0, 1],
            }]
        })
        .contains("thoughts"));
        assert!(broken(&|b| {
            b.samples[0].strategy = Strategy::Explicit;
            b.samples[0].segments = vec![Segment::Latent {
                count: 2,
                replaces: vec![0, 1],
            }]
        })
        .contains("explicit sample"));
        assert!(broken(&|b| {
            b.samples[0].segments = vec![Segment::Explicit {
                text: "x".into(),
                steps: vec![0, 1],
            }]
        })
        .contains("not its steps joined"));
        let json = serde_json::to_string(&file)
            .unwrap()
            .replacen("\"answer\"", "\"answr\"", 1);
        assert!(serde_json::from_str::<HybridFile>(&json).is_err());
    }

    #[test]
    fn consecutive_latent_steps_merge_and_are_capped() {
        let steps: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let segs = segments(&steps, &[true, true, false, true], " ", 2, 3);
        assert_eq!(
            segs,
            vec![
                Segment::Latent {
                    count: 3,
                    replaces: vec![0, 1]
                },
                Segment::Explicit {
                    text: "c".into(),
                    steps: vec![2]
                },
                Segment::Latent {
                    count: 2,
                    replaces: vec![3]
                },
            ]
        );
    }
}
