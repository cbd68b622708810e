//! The causal LM every method builds on, and its forward contract.

use burn::module::Initializer;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::module::embedding;

use super::block::DecoderLayer;
use super::input::{LmHidden, LmInput, LmOutput};
use super::input_checks::check_in_range;
use super::kv_cache::KvCache;
use super::linear::{flat_matmul_transposed, init_linear, FlatForward};
use super::norm::Norm;
use super::rope::{Rope, RopeTables};
use crate::hf::config::{ModelConfig, Positions};
use crate::{CoreError, Result};

/// A decoder-only language model of any supported family (Llama, Qwen2, Qwen3, GPT-2).
///
/// Field names mirror the Hugging Face Llama names without the `model.` prefix; the family files
/// map them to each checkpoint's keys (see [`crate::hf::weight_names`]).
#[derive(Module, Debug)]
pub struct CausalLm<B: Backend> {
    /// Token embedding `[vocab, hidden]`.
    pub embed_tokens: Embedding<B>,
    /// Learned position table `[max_positions, hidden]` (GPT-2 only).
    pub embed_positions: Option<Embedding<B>>,
    /// The blocks.
    pub layers: Vec<DecoderLayer<B>>,
    /// Final norm.
    pub norm: Norm<B>,
    /// Output head `[hidden, vocab]`; `None` when tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
    rope: Option<Rope>,
    pub(crate) config: ModelConfig,
}

impl<B: Backend> CausalLm<B> {
    /// A randomly initialised model (normal(0, `initializer_range`) weights, unit norms, zero
    /// biases, as transformers initialises). Parameters are created lazily, so building and then
    /// loading weights never materialises the random ones.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let normal = Initializer::Normal {
            mean: 0.0,
            std: config.initializer_range,
        };
        let h = config.hidden_size;
        let rope = match &config.positions {
            Positions::Rope(rope) => Some(Rope::new(rope, config.head_dim)),
            Positions::Learned => None,
        };
        Self {
            embed_tokens: Embedding {
                weight: normal.init([config.vocab_size, h], device),
            },
            embed_positions: rope.is_none().then(|| Embedding {
                weight: normal.init([config.max_position_embeddings, h], device),
            }),
            layers: (0..config.num_hidden_layers)
                .map(|_| DecoderLayer::new(config, device))
                .collect(),
            norm: Norm::new(config.norm, h, config.norm_eps, device),
            lm_head: (!config.tie_word_embeddings).then(|| {
                init_linear(
                    h,
                    config.vocab_size,
                    false,
                    config.initializer_range,
                    device,
                )
            }),
            rope,
            config: config.clone(),
        }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device holding the parameters.
    pub fn device(&self) -> B::Device {
        self.embed_tokens.weight.lazy_device()
    }

    /// Token embeddings of `ids` `[batch, seq]` → `[batch, seq, hidden]` (before position embeddings).
    pub fn embed(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        embedding(self.embed_tokens.weight.val(), ids)
    }

    /// Logits of final hidden states: `[batch, seq, hidden]` → `[batch, seq, vocab]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => head.forward_flat(hidden),
            None => flat_matmul_transposed(hidden, self.embed_tokens.weight.val()),
        }
    }

    /// Runs the model.
    ///
    /// Shapes: ids `[batch, seq]` and/or embeddings `[batch, seq, hidden]`; `attention_mask`
    /// `[batch, seq]` (1 = real token, 0 = padding, left or right); `position_ids` `[batch, seq]`.
    /// Output: logits `[batch, seq, vocab]`, final hidden `[batch, seq, hidden]` (after the final
    /// norm) and, on request, `num_layers + 1` hidden states in transformers' convention.
    pub fn forward(&self, input: LmInput<B>) -> Result<LmOutput<B>> {
        let keep = input.logits_to_keep;
        Ok(self.with_logits(self.run(input, None)?, keep))
    }

    /// [`CausalLm::forward`] without the LM head: the final hidden state `[batch, seq, hidden]` (and
    /// every layer's on request), e.g. for chunked log-probabilities
    /// ([`CausalLm::token_logprobs`]) or a reward head.
    pub fn forward_hidden(&self, input: LmInput<B>) -> Result<LmHidden<B>> {
        self.run(input, None)
    }

    /// Runs the model on `seq` new positions that follow what `cache` holds, and appends them to it.
    ///
    /// Same shapes as [`CausalLm::forward`]; `attention_mask` marks which new positions are real
    /// (left-padded prompts). Default positions continue each sequence's count of real tokens.
    pub fn forward_cached(&self, input: LmInput<B>, cache: &mut KvCache<B>) -> Result<LmOutput<B>> {
        let keep = input.logits_to_keep;
        Ok(self.with_logits(self.run(input, Some(cache))?, keep))
    }

    /// The head applied to the last `keep` positions (all without `keep`).
    fn with_logits(&self, hidden: LmHidden<B>, keep: Option<usize>) -> LmOutput<B> {
        let [b, s, h] = hidden.last_hidden.dims();
        let head_input = match keep {
            Some(n) if n.clamp(1, s) < s => {
                let n = n.clamp(1, s);
                hidden.last_hidden.clone().slice([0..b, s - n..s, 0..h])
            }
            _ => hidden.last_hidden.clone(),
        };
        LmOutput {
            logits: self.logits(head_input),
            last_hidden: hidden.last_hidden,
            hidden_states: hidden.hidden_states,
        }
    }

    /// Token embeddings, replaced by the given vectors where requested: `[batch, seq, hidden]`.
    fn input_embeddings(
        &self,
        ids: Option<Tensor<B, 2, Int>>,
        embeds: Option<Tensor<B, 3>>,
        replace: Option<Tensor<B, 2, Bool>>,
    ) -> Result<Tensor<B, 3>> {
        if let Some(e) = &embeds {
            let h = e.dims()[2];
            if h != self.config.hidden_size {
                return Err(CoreError::Shape(format!(
                    "input embeddings of width {h} for a model of hidden_size {}",
                    self.config.hidden_size
                )));
            }
        }
        if let Some(ids) = &ids {
            let rows = self.embed_tokens.weight.dims()[0];
            check_in_range(ids, rows, "token id", || {
                format!("the embedding table has {rows} rows (ids 0..{rows})")
            })?;
        }
        let x = match (ids, embeds, replace) {
            (Some(ids), None, None) => self.embed(ids),
            (None, Some(embeds), None) => embeds,
            (Some(ids), Some(embeds), Some(replace)) => {
                let [b, s, h] = embeds.dims();
                if ids.dims() != [b, s] || replace.dims() != [b, s] {
                    return Err(CoreError::Shape(format!(
                        "ids {:?}, embeds {:?} and replace mask {:?} disagree",
                        ids.dims(),
                        embeds.dims(),
                        replace.dims()
                    )));
                }
                let replace = replace.unsqueeze_dim::<3>(2).expand([b, s, h]);
                self.embed(ids).mask_where(replace, embeds)
            }
            _ => {
                return Err(CoreError::Shape(
                    "give ids, embeddings, or ids + embeddings + replace mask".into(),
                ))
            }
        };
        let [b, s, _] = x.dims();
        if b == 0 || s == 0 {
            return Err(CoreError::Shape(format!(
                "empty input: batch {b}, sequence length {s}"
            )));
        }
        Ok(x)
    }

    fn run(&self, input: LmInput<B>, cache: Option<&mut KvCache<B>>) -> Result<LmHidden<B>> {
        let LmInput {
            ids,
            embeds,
            replace,
            attention_mask,
            position_ids,
            output_hidden_states,
            logits_to_keep: _,
        } = input;
        let mut x = self.input_embeddings(ids, embeds, replace)?;
        let [b, s, _] = x.dims();
        let device = x.device();
        if let Some(mask) = &attention_mask {
            if mask.dims() != [b, s] {
                return Err(CoreError::Shape(format!(
                    "attention_mask {:?} does not match input [{b}, {s}]",
                    mask.dims()
                )));
            }
        }
        if let Some(cache) = &cache {
            if cache.batch() != b {
                return Err(CoreError::Shape(format!(
                    "cache holds {} sequences, input has {b}",
                    cache.batch()
                )));
            }
        }
        let positions = match position_ids {
            Some(p) => p,
            None => {
                let fresh = default_positions(attention_mask.clone(), b, s, &device);
                match &cache {
                    Some(cache) => fresh + cache.real_tokens(),
                    None => fresh,
                }
            }
        };
        if let Some(table) = &self.embed_positions {
            let rows = table.weight.dims()[0];
            check_in_range(&positions, rows, "position", || {
                format!(
                    "the learned position table has {rows} rows (max_position_embeddings); \
                     shorten the input or the cache"
                )
            })?;
            x = x + embedding(table.weight.val(), positions.clone());
        }
        let heads = self.config.num_attention_heads;
        let rope = self.rope.as_ref().map(|r| {
            let q = r.tables(positions, heads, x.dtype());
            let kv_heads = self.config.num_key_value_heads;
            let k = if kv_heads == heads {
                q.clone()
            } else {
                RopeTables {
                    cos: q.cos.clone().narrow(1, 0, kv_heads),
                    sin: q.sin.clone().narrow(1, 0, kv_heads),
                }
            };
            (q, k)
        });

        let mut hidden_states = Vec::new();
        match cache {
            None => {
                let hide = attention_mask.map(|m| {
                    m.equal_elem(0)
                        .reshape([b, 1, 1, s])
                        .expand([b, heads, s, s])
                });
                for layer in &self.layers {
                    if output_hidden_states {
                        hidden_states.push(x.clone());
                    }
                    x = layer.forward(x, rope.as_ref(), hide.clone());
                }
            }
            Some(cache) => {
                cache.reserve(s);
                let valid = match attention_mask {
                    Some(m) => m.clamp(0, 1),
                    None => Tensor::<B, 2, Int>::ones([b, s], &device),
                };
                let start = cache.append_slots(valid);
                let mask = cache.query_mask(start, s, heads, self.config.num_key_value_heads);
                let kvs = std::mem::take(&mut cache.layers);
                for (layer, kv) in self.layers.iter().zip(kvs) {
                    if output_hidden_states {
                        hidden_states.push(x.clone());
                    }
                    let (y, kv) = layer.forward_cached(x, rope.as_ref(), kv, start, &mask);
                    x = y;
                    cache.layers.push(kv);
                }
            }
        }
        let last_hidden = self.norm.forward(x);
        if output_hidden_states {
            hidden_states.push(last_hidden.clone());
        }
        Ok(LmHidden {
            last_hidden,
            hidden_states,
        })
    }
}

/// Position ids: the running count of real tokens minus one (so left padding starts real text at 0),
/// or `0..seq` without a mask. Shape `[batch, seq]`.
pub fn default_positions<B: Backend>(
    attention_mask: Option<Tensor<B, 2, Int>>,
    batch: usize,
    seq: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    match attention_mask {
        Some(mask) => (mask.cumsum(1) - 1).clamp_min(0),
        None => Tensor::<B, 1, Int>::arange(0..seq as i64, device)
            .unsqueeze::<2>()
            .expand([batch, seq]),
    }
}
