//! The CODI model: a causal LM with CODI's special tokens, the projection of continuous thoughts,
//! and the files a trained model is saved as.
//!
//! A saved model is a directory:
//! - `model/`: the language model in Hugging Face layout (`config.json` with the resized
//!   `vocab_size`, `model.safetensors`, LoRA merged; `transformers` loads it) and `tokenizer.json`;
//! - `projection.safetensors`: the projection under the reference code's names `prj.1.*`, `prj.3.*`,
//!   `prj.ln.*` (the legacy `prj.4.*` norm keys are still read);
//! - `codi.json`: [`CodiMeta`] (special ids, number of latents, projection shape, task).

use std::path::{Path, PathBuf};

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::DType;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, SaveDtype};
use latent_core::model::{cast_module, NewRowInit};
use latent_core::{CausalLm, Pretrained};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::projection::{Projection, ProjectionConfig};
use crate::tokens::SpecialTokens;
use crate::{CodiError, Result, Task};

/// Format tag of `codi.json`.
pub const CODI_FORMAT: &str = "latent-reasoning/codi";
/// Version of `codi.json` this crate writes and reads.
pub const CODI_FORMAT_VERSION: u32 = 1;

/// What `codi.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodiMeta {
    /// Always [`CODI_FORMAT`].
    pub format: String,
    /// [`CODI_FORMAT_VERSION`].
    pub version: u32,
    /// How the model was trained (decides how it is evaluated).
    pub task: Task,
    /// Special token ids.
    pub tokens: SpecialTokens,
    /// Continuous thoughts per question.
    pub num_latent: usize,
    /// The projection, or `None` when thoughts are fed back unprojected.
    pub projection: Option<ProjectionConfig>,
    /// Whether the question starts with the model's BOS token.
    pub add_bos: bool,
    /// The text before the answer number, e.g. `"The answer is: "`.
    pub answer_prefix: String,
    /// Where the base model came from (informational).
    pub base_model: String,
}

/// A causal LM with CODI's special tokens and projection.
#[derive(Module, Debug)]
pub struct CodiModel<B: Backend> {
    /// The language model (vocabulary resized for the special tokens).
    pub lm: CausalLm<B>,
    /// The projection of continuous thoughts (`None`: the hidden state is fed back as is).
    pub prj: Option<Projection<B>>,
    /// The special ids.
    pub tokens: SpecialTokens,
}

impl<B: Backend> CodiModel<B> {
    /// Wraps a base model: resizes its vocabulary for `tokens` (new rows random, see
    /// [`NewRowInit::Random`]) and adds a fresh projection.
    pub fn from_base(
        lm: CausalLm<B>,
        tokens: SpecialTokens,
        projection: Option<&ProjectionConfig>,
    ) -> Result<Self> {
        Self::from_base_with(lm, tokens, projection, NewRowInit::Random)
    }

    /// [`CodiModel::from_base`] with the added rows of the embedding (and of an untied head)
    /// initialised as `init` says: [`NewRowInit::Mean`] is transformers' default mean resizing,
    /// which the reference implementation uses.
    pub fn from_base_with(
        lm: CausalLm<B>,
        tokens: SpecialTokens,
        projection: Option<&ProjectionConfig>,
        init: NewRowInit,
    ) -> Result<Self> {
        if lm.config().vocab_size != tokens.base_vocab {
            return Err(CodiError::Checkpoint {
                path: PathBuf::from("<base model>"),
                reason: format!(
                    "special tokens were assigned for {} rows but the model has {}",
                    tokens.base_vocab,
                    lm.config().vocab_size
                ),
            });
        }
        let device = lm.device();
        let dtype = lm.embed_tokens.weight.val().dtype();
        let lm = lm.resize_vocab_with(tokens.vocab_size(), init)?;
        Ok(Self {
            lm,
            prj: projection.map(|p| cast_module(p.init(&device), dtype)),
            tokens,
        })
    }

    /// The next input embedding of a continuous thought: `[batch, seq, D]` → `[batch, seq, D]`.
    pub fn thought<const N: usize>(&self, hidden: Tensor<B, N>) -> Tensor<B, N> {
        match &self.prj {
            Some(prj) => prj.forward(hidden),
            None => hidden,
        }
    }

    /// Writes the model (LoRA merged) to `dir`: see the module docs for the layout.
    pub fn save(&self, dir: &Path, tokenizer: Option<&Tokenizer>, meta: &CodiMeta) -> Result<()> {
        let lm_dir = dir.join("model");
        self.lm
            .clone()
            .merge_lora()
            .save_pretrained(&lm_dir, SaveDtype::F32)?;
        if let Some(tok) = tokenizer {
            let path = lm_dir.join("tokenizer.json");
            tok.save(&path, false)
                .map_err(|e| CodiError::Tokenizer(format!("saving {}: {e}", path.display())))?;
        }
        if let Some(prj) = &self.prj {
            write_safetensors(
                &dir.join("projection.safetensors"),
                &prj.torch_tensors(),
                SaveDtype::F32,
            )?;
        }
        let json = serde_json::to_string_pretty(meta).expect("meta serialises");
        latent_core::atomic::write_atomic(&dir.join("codi.json"), json.as_bytes())?;
        Ok(())
    }

    /// Loads a model saved by [`CodiModel::save`], weights in `dtype`.
    pub fn load(
        dir: &Path,
        device: &B::Device,
        dtype: DType,
    ) -> Result<(Self, Option<Tokenizer>, CodiMeta)> {
        let meta = read_meta(dir)?;
        let lm_dir = dir.join("model");
        let pretrained = Pretrained::<B>::load(&lm_dir.to_string_lossy(), device, dtype)?;
        if pretrained.model.config().vocab_size != meta.tokens.vocab_size() {
            return Err(CodiError::Checkpoint {
                path: lm_dir.join("config.json"),
                reason: format!(
                    "vocab_size {} does not hold the special tokens of codi.json ({} rows)",
                    pretrained.model.config().vocab_size,
                    meta.tokens.vocab_size()
                ),
            });
        }
        let prj = match &meta.projection {
            Some(cfg) => {
                let path = dir.join("projection.safetensors");
                let checkpoint = Checkpoint::open(&[path])?;
                let prj: Projection<B> = cfg.init(device);
                Some(cast_module(prj.load_torch(&checkpoint)?, dtype))
            }
            None => None,
        };
        let model = Self {
            lm: pretrained.model,
            prj,
            tokens: meta.tokens,
        };
        Ok((model, pretrained.tokenizer, meta))
    }
}

/// Reads and checks `dir/codi.json`.
pub fn read_meta(dir: &Path) -> Result<CodiMeta> {
    let path = dir.join("codi.json");
    let meta: CodiMeta = latent_core::config_file::read_config(&path)?;
    if meta.format != CODI_FORMAT || meta.version != CODI_FORMAT_VERSION {
        return Err(CodiError::Checkpoint {
            path,
            reason: format!(
                "format {:?} version {} (this crate reads {CODI_FORMAT:?} version {CODI_FORMAT_VERSION})",
                meta.format, meta.version
            ),
        });
    }
    Ok(meta)
}

/// Parameter counts of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// Every float parameter.
    pub total: usize,
    /// Parameters that receive gradients.
    pub trainable: usize,
}

/// Counts the parameters of `module`, and those that train (on an autodiff backend; reading the
/// flag materialises lazily initialised parameters).
pub fn count_parameters<B: Backend, M: Module<B>>(module: &M) -> ParamCounts {
    struct Count(ParamCounts);
    impl<B: Backend> ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let n = param.lazy_shape().num_elements();
            self.0.total += n;
            if param.val().is_require_grad() {
                self.0.trainable += n;
            }
        }
    }
    let mut count = Count(ParamCounts {
        total: 0,
        trainable: 0,
    });
    module.visit(&mut count);
    count.0
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use latent_core::{CpuBackend, ModelConfig};

    use super::*;
    use crate::experiment::tiny_llama_config;

    fn base(tied: bool) -> CausalLm<CpuBackend> {
        let mut json = tiny_llama_config(20, 8, 1, 2);
        json["tie_word_embeddings"] = tied.into();
        let config = ModelConfig::from_json_str(&json.to_string(), Path::new("<tiny>")).unwrap();
        let _seed = latent_core::seed_backend::<CpuBackend>(&Default::default(), 3);
        CausalLm::new(&config, &Default::default())
    }

    fn rows(t: Tensor<CpuBackend, 2>) -> Vec<Vec<f32>> {
        let [n, d] = t.dims();
        let v: Vec<f32> = t.into_data().convert::<f32>().into_vec().unwrap();
        (0..n).map(|r| v[r * d..(r + 1) * d].to_vec()).collect()
    }

    fn mean(rows: &[Vec<f32>]) -> Vec<f32> {
        let n = rows.len() as f32;
        (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c]).sum::<f32>() / n)
            .collect()
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "{what}: max difference {diff}");
    }

    #[test]
    fn mean_init_gives_the_new_rows_the_mean_of_the_old_ones() {
        for tied in [true, false] {
            let lm = base(tied);
            let old_embed = rows(lm.embed_tokens.weight.val());
            // The head is `[hidden, vocab]`: its vocabulary rows are the transpose's rows.
            let old_head = lm
                .lm_head
                .as_ref()
                .map(|h| rows(h.weight.val().transpose()));
            let tokens = SpecialTokens::assign(20, None, 3);
            let model = CodiModel::from_base_with(lm, tokens, None, NewRowInit::Mean).unwrap();
            assert_eq!(model.lm.config().vocab_size, 23);
            let embed = rows(model.lm.embed_tokens.weight.val());
            assert_eq!(embed.len(), 23);
            assert_eq!(&embed[..20], &old_embed[..], "old rows kept");
            let want = mean(&old_embed);
            for (i, row) in embed[20..].iter().enumerate() {
                assert_close(row, &want, &format!("embedding row {}", 20 + i));
            }
            if let Some(old_head) = old_head {
                let head = rows(model.lm.lm_head.as_ref().unwrap().weight.val().transpose());
                assert_eq!(&head[..20], &old_head[..]);
                let want = mean(&old_head);
                assert!(want.iter().zip(&mean(&old_embed)).any(|(a, b)| a != b));
                for row in &head[20..] {
                    assert_close(row, &want, "untied head row");
                }
            }
        }
    }

    #[test]
    fn random_init_is_not_the_mean() {
        let lm = base(true);
        let old = rows(lm.embed_tokens.weight.val());
        let tokens = SpecialTokens::assign(20, None, 3);
        let model = CodiModel::from_base(lm, tokens, None).unwrap();
        let embed = rows(model.lm.embed_tokens.weight.val());
        let want = mean(&old);
        let diff = embed[21]
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(
            diff > 1e-3,
            "a random row should differ from the mean ({diff})"
        );
    }
}
