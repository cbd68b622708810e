//! Evaluation: masked-CE loss and the weighted-bound perplexity on held-out data, and generation
//! metrics (EM, token F1, BLEU both ways, the cosine between the re-encoded output and the input
//! vector); for paraphrase also the copy-source baseline, BLEU against the source and the
//! exact-copy rate. Each loop checks an optional stop flag between its batches, so a stop
//! (Ctrl-C, SIGTERM) is honoured within one batch (`CoreError::StopRequested`).

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use latent_core::train::{check_stop, StopFlag};
use serde::Serialize;

use crate::data::Examples;
use crate::decoder::SgddModel;
use crate::diffusion::{corrupt, diffusion_loss, LossKind};
use crate::encoder::SemanticEncoder;
use crate::maskgit::{cosine, generate, DecodeConfig};
use crate::metrics::{
    corpus_bleu, exact_match, mean_sentence_bleu, score, sentence_bleu, TextScores,
};
use crate::schedule::MaskSchedule;
use crate::Result;

/// Held-out loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossReport {
    /// Mean cross-entropy over masked positions.
    pub masked_ce: f64,
    /// Mean cross-entropy over masked positions whose target is not padding.
    pub masked_ce_nonpad: f64,
    /// Weighted bound (MDLM) per maskable token.
    pub bound_per_token: f64,
    /// `exp(bound_per_token)`: a perplexity upper bound (the only perplexity reported).
    pub ppl_bound: f64,
}

/// Loss on `examples` with fixed corruption seeds (`seed`), no guidance dropout; stops between
/// batches once `stop` is raised.
pub fn eval_loss<B: Backend>(
    model: &SgddModel<B>,
    examples: &Examples,
    batch_size: usize,
    seed: u64,
    stop: Option<&StopFlag>,
) -> Result<LossReport> {
    let schedule = MaskSchedule::default();
    let (mut ce, mut masked, mut bound, mut tokens) = (0.0, 0usize, 0.0, 0usize);
    let (mut ce_nonpad, mut nonpad) = (0.0, 0usize);
    for batch in examples.epoch_batches(batch_size, seed, 0, false) {
        check_stop(stop, "the held-out loss")?;
        let c = corrupt(&batch, &schedule, model.mask_id(), 0.0);
        let out = diffusion_loss(model, &batch, &c, &schedule, LossKind::MaskedCe);
        ce += out.masked_ce * out.masked_tokens as f64;
        masked += out.masked_tokens;
        ce_nonpad += out.masked_ce_nonpad * out.masked_nonpad_tokens as f64;
        nonpad += out.masked_nonpad_tokens;
        bound += out.bound_per_token * out.tokens as f64;
        tokens += out.tokens;
    }
    let bound_per_token = bound / tokens.max(1) as f64;
    Ok(LossReport {
        masked_ce: ce / masked.max(1) as f64,
        masked_ce_nonpad: ce_nonpad / nonpad.max(1) as f64,
        bound_per_token,
        ppl_bound: bound_per_token.exp(),
    })
}

/// Text of a generated row: tokens after the start token up to the first end or pad token.
pub fn row_text<B: Backend>(encoder: &SemanticEncoder<B>, row: &[u32]) -> Result<String> {
    let s = encoder.special;
    let body: Vec<u32> = row
        .iter()
        .skip(1)
        .take_while(|&&t| t != s.eos && t != s.pad)
        .copied()
        .collect();
    encoder.detokenize(&body)
}

/// Generated texts for semantic vectors `cond`, in batches; the re-encoded output vectors too.
/// Stops between batches once `stop` is raised.
pub fn generate_texts<B: Backend>(
    model: &SgddModel<B>,
    encoder: &SemanticEncoder<B>,
    cond: &[Vec<f32>],
    len: usize,
    decode: &DecodeConfig,
    batch_size: usize,
    stop: Option<&StopFlag>,
) -> Result<(Vec<String>, Vec<Vec<f32>>)> {
    let device = model.embed.weight.device();
    let schedule = MaskSchedule::default();
    let (mut texts, mut vectors) = (Vec::new(), Vec::new());
    for chunk in cond.chunks(batch_size.max(1)) {
        check_stop(stop, "generation")?;
        let mut failure = None;
        let embed = |ids: &[u32]| -> Vec<Vec<f32>> {
            let rows: Vec<String> = ids
                .chunks(len)
                .map(|r| row_text(encoder, r).unwrap_or_default())
                .collect();
            encoder
                .embed_texts(&rows, rows.len(), &device)
                .unwrap_or_else(|e| {
                    failure = Some(e);
                    vec![vec![0.0; encoder.width()]; rows.len()]
                })
        };
        let ids = generate(
            model,
            chunk,
            len,
            &encoder.special,
            decode,
            &schedule,
            embed,
        );
        if let Some(e) = failure {
            return Err(e);
        }
        let rows = ids
            .chunks(len)
            .map(|r| row_text(encoder, r))
            .collect::<Result<Vec<_>>>()?;
        vectors.extend(encoder.embed_texts(&rows, rows.len().max(1), &device)?);
        texts.extend(rows);
    }
    Ok((texts, vectors))
}

/// Paraphrase baselines: scores of copying the source, and how close the outputs stay to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyReport {
    /// The source sentence scored as the output.
    pub copy_source: TextScores,
    /// Mean sentence BLEU of the outputs against the sources (0–1).
    pub self_bleu: f64,
    /// Corpus BLEU of the outputs against the sources (0–100).
    pub self_corpus_bleu: f64,
    /// Fraction of outputs identical to their source.
    pub exact_copy_rate: f64,
}

/// One generated example, as written to `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Encoded text.
    pub src: String,
    /// Reference.
    pub reference: String,
    /// Output.
    pub output: String,
    /// Output equals the reference.
    pub exact_match: bool,
    /// Sentence BLEU against the reference.
    pub sentence_bleu: f64,
    /// Cosine between the re-encoded output and the input vector.
    pub cosine: f64,
    /// The nearest-neighbour retrieval baseline's output for the same input, when computed
    /// ([`crate::baselines`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieved: Option<String>,
}

/// Generation metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationReport {
    /// Outputs against references.
    pub scores: TextScores,
    /// Mean cosine between the re-encoded output and the input vector.
    pub cosine: f64,
    /// Paraphrase baselines (QQP only).
    pub copy: Option<CopyReport>,
    /// Wall time of decoding and re-encoding.
    pub seconds: f64,
    /// Every example.
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

/// Decodes the first `limit` examples (0 = all) and scores them; `paraphrase` adds the copy
/// baselines. Stops between generation batches once `stop` is raised.
#[allow(clippy::too_many_arguments)]
pub fn eval_generation<B: Backend>(
    model: &SgddModel<B>,
    encoder: &SemanticEncoder<B>,
    examples: &Examples,
    decode: &DecodeConfig,
    batch_size: usize,
    limit: usize,
    paraphrase: bool,
    stop: Option<&StopFlag>,
) -> Result<GenerationReport> {
    let n = if limit == 0 {
        examples.len()
    } else {
        limit.min(examples.len())
    };
    let len = examples.targets.first().map_or(0, Vec::len);
    let start = Instant::now();
    let (outputs, vectors) = generate_texts(
        model,
        encoder,
        &examples.cond[..n],
        len,
        decode,
        batch_size,
        stop,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let refs: Vec<String> = examples.pairs[..n].iter().map(|p| p.trg.clone()).collect();
    let srcs: Vec<String> = examples.pairs[..n].iter().map(|p| p.src.clone()).collect();
    let cosines: Vec<f64> = vectors
        .iter()
        .zip(&examples.cond[..n])
        .map(|(v, c)| cosine(v, c))
        .collect();
    let samples = (0..n)
        .map(|i| Sample {
            src: srcs[i].clone(),
            reference: refs[i].clone(),
            output: outputs[i].clone(),
            exact_match: exact_match(&outputs[i], &refs[i]),
            sentence_bleu: sentence_bleu(&outputs[i], &refs[i]),
            cosine: cosines[i],
            retrieved: None,
        })
        .collect();
    let copy = paraphrase.then(|| CopyReport {
        copy_source: score(&srcs, &refs),
        self_bleu: mean_sentence_bleu(&outputs, &srcs),
        self_corpus_bleu: corpus_bleu(&outputs, &srcs).score,
        exact_copy_rate: outputs
            .iter()
            .zip(&srcs)
            .filter(|(o, s)| exact_match(o, s))
            .count() as f64
            / n.max(1) as f64,
    });
    Ok(GenerationReport {
        scores: score(&outputs, &refs),
        cosine: cosines.iter().sum::<f64>() / n.max(1) as f64,
        copy,
        seconds,
        samples,
    })
}

/// Writes samples as JSON lines.
pub fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut text = String::new();
    for s in samples {
        text.push_str(&serde_json::to_string(s).expect("serialisable"));
        text.push('\n');
    }
    latent_core::atomic::write_atomic(path, text.as_bytes())?;
    Ok(())
}
