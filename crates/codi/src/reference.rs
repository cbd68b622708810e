//! Checkpoints of the reference implementation (`zhenyi4/codi`, PyTorch), read into a
//! [`CodiModel`].
//!
//! The reference trains a `CODI(nn.Module)` holding `codi` (the causal LM, resized to `V0 + 3`
//! rows, wrapped by PEFT's `get_peft_model` when `--use_lora`) and `prj` (`nn.Sequential(Dropout,
//! Linear, GELU, Linear)` plus `add_module("ln", LayerNorm)`), and saves it with
//! `Trainer.save_model(output_dir)`. The module is not a `PreTrainedModel`, so the trainer writes
//! its whole `state_dict()` in one file: `pytorch_model.bin` (`torch.save`; the published scripts
//! pass `--save_safetensors False`) or `model.safetensors`, plus the tokenizer files and
//! `training_args.bin`. Keys:
//!
//! - `codi.base_model.model.<HF key>` for the base weights (`codi.<HF key>` without LoRA), with
//!   `.base_layer.` inserted before `weight`/`bias` in every LoRA-wrapped module;
//! - `codi.base_model.model.<module>.lora_A.<adapter>.weight` `[r, in]` and `...lora_B.<adapter>.weight`
//!   `[out, r]`, **not merged** (the adapter is PEFT's `default`);
//! - `prj.1.*`, `prj.3.*` (the linears) and `prj.ln.*` (the norm, absent with `--prj_no_ln`).
//!
//! [`load_reference`] merges each adapter into its base weight, `W += (lora_alpha / r)·B·A`
//! (transposed for GPT-2's `Conv1D`, PEFT's `fan_in_fan_out`), and loads the result. What the file
//! does not record comes from [`ReferenceSettings`] (for runs: [`ReferenceSettings::from_run`]):
//! the base model's `config.json` (architecture and `V0`), `lora_alpha` (not derivable from the
//! weights; the published scripts use 32), the EOS id, the number of latents, the BOS setting and
//! the answer prefix. The special ids follow the reference's convention: `V0` is the base config's
//! `vocab_size`, `pad = V0` (the `[PAD]` the reference adds when the tokenizer has no pad token; an
//! existing pad id is kept with `model.pad_token_id`), `<bot> = V0 + 1`, `<eot> = V0 + 2` always.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;
use burn_store::pytorch::PytorchReader;
use latent_core::hf::families::hf_ref;
use latent_core::hf::safetensors::{Checkpoint, HostTensor};
use latent_core::model::cast_module;
use latent_core::{CausalLm, Family, ModelConfig};
use tokenizers::Tokenizer;

use crate::config::CodiRunConfig;
use crate::model::{CodiMeta, CodiModel, CODI_FORMAT, CODI_FORMAT_VERSION};
use crate::projection::{norm_key, Projection, ProjectionConfig, LEGACY_NORM_KEY, TORCH_KEYS};
use crate::tokens::SpecialTokens;
use crate::{CodiError, Result, Task};

/// The weight files the reference may write, in the order its `test.py` tries them.
pub const REFERENCE_WEIGHTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Rows the reference adds to the embedding: pad, `<bot>`, `<eot>`.
pub const ADDED_ROWS: usize = 3;

/// The weight file of a reference checkpoint directory, if it has one.
pub fn reference_weights(dir: &Path) -> Option<PathBuf> {
    REFERENCE_WEIGHTS
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// Whether `dir` looks like a reference checkpoint: a weight file of [`REFERENCE_WEIGHTS`] and no
/// `codi.json` (which this crate's own saved models have).
pub fn is_reference_dir(dir: &Path) -> bool {
    !dir.join("codi.json").exists() && reference_weights(dir).is_some()
}

/// Reads every tensor of a `.safetensors` file or a `torch.save` file (anything else), as f32,
/// sorted by key. `torch.save` files are read by `burn-store`'s [`PytorchReader`] (no PyTorch):
/// f32, f64, f16, bf16, integer and boolean tensors are converted to f32. burn-store 0.21.0 reads
/// each tensor's storage linearly from its offset (it ignores strides, tracel-ai/burn#5383, and
/// zero-fills a storage shorter than the shape), so the file must hold contiguous tensors, as
/// `state_dict()` of the reference's modules gives (tied weights share one storage, read alike).
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, HostTensor)>> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        let checkpoint = Checkpoint::open(&[path.to_path_buf()])?;
        let mut keys: Vec<String> = checkpoint.keys().map(str::to_string).collect();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let t = checkpoint.read(&k)?.expect("listed key");
                Ok((k, t))
            })
            .collect()
    } else {
        read_torch_file(path)
    }
}

/// The tensors of a `torch.save` state dict (`pytorch_model.bin`), sorted by key, as f32.
fn read_torch_file(path: &Path) -> Result<Vec<(String, HostTensor)>> {
    let bad = |reason: String| CodiError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let reader = PytorchReader::new(path)
        .map_err(|e| bad(format!("not a readable PyTorch state dict: {e}")))?;
    let mut tensors: Vec<_> = reader.into_tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
        .into_iter()
        .map(|(key, snapshot)| {
            let data = snapshot
                .to_data()
                .map_err(|e| bad(format!("`{key}`: {e}")))?;
            let shape = data.shape.to_vec();
            let data = data
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| bad(format!("`{key}`: {e:?}")))?;
            Ok((key, HostTensor { shape, data }))
        })
        .collect()
}

/// What a reference checkpoint does not record.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceSettings {
    /// The base model's `config.json` (with the base vocabulary `V0`, before the 3 added rows).
    pub base_config: PathBuf,
    /// PEFT's `lora_alpha` of the run (required when the checkpoint holds LoRA weights).
    pub lora_alpha: Option<f64>,
    /// The rank the run used, checked against the weights when given.
    pub lora_r: Option<usize>,
    /// End-of-sequence id (default: the base config's first `eos_token_id`).
    pub eos: Option<u32>,
    /// An existing padding id of the tokenizer to keep (default: `V0`, the reference's `[PAD]`).
    pub pad: Option<u32>,
    /// Continuous thoughts per question (the reference's `--num_latent` / `--inf_latent_iterations`).
    pub num_latent: usize,
    /// Whether questions start with BOS (the reference tokenizes Llama questions with it).
    pub add_bos: bool,
    /// The text before the answer number.
    pub answer_prefix: String,
    /// Dropout of the projection's input when training from the checkpoint (not saved by the reference).
    pub prj_dropout: f64,
}

impl ReferenceSettings {
    /// The settings a run config gives: the base `config.json` from `model.config`, else from
    /// `model.name_or_path` (a directory, or a hub id, which is downloaded); `lora.alpha` / `lora.r`,
    /// `model.eos_token_id`, `model.pad_token_id`, `method.num_latent`, `model.add_bos`,
    /// `method.answer_prefix`, `method.prj_dropout`.
    pub fn from_run(config: &CodiRunConfig) -> Result<Self> {
        let base_config = match (&config.model.config, &config.model.name_or_path) {
            (Some(path), _) => path.clone(),
            (None, Some(spec)) if Path::new(spec).is_dir() => Path::new(spec).join("config.json"),
            (None, Some(spec)) => latent_core::hf::hub::resolve_model(spec)?.config,
            (None, None) => {
                return Err(CodiError::Config {
                    path: PathBuf::from("<config>"),
                    key: "model.config".into(),
                    reason:
                        "a reference checkpoint has no config.json: give the base model's \
                             architecture (`model.config`) or the base model (`model.name_or_path`)"
                            .into(),
                })
            }
        };
        Ok(Self {
            base_config,
            lora_alpha: config.lora.as_ref().map(|l| l.alpha),
            lora_r: config.lora.as_ref().map(|l| l.r),
            eos: config.model.eos_token_id,
            pad: config.model.pad_token_id,
            num_latent: config.method.num_latent,
            add_bos: config.model.add_bos,
            answer_prefix: config.method.answer_prefix.clone(),
            prj_dropout: config.method.prj_dropout,
        })
    }
}

/// The tokenizer for a reference checkpoint of a run: `model.tokenizer`, else `tokenizer.json` in
/// the checkpoint directory, else the base model's (`model.name_or_path`). `None` when none
/// exists (the reference saves the slow tokenizer files only).
pub fn run_tokenizer(config: &CodiRunConfig, dir: &Path) -> Result<Option<Tokenizer>> {
    let load = |p: &Path| latent_core::hf::tokenizer::load_tokenizer(p).map_err(CodiError::from);
    if let Some(path) = &config.model.tokenizer {
        return load(path).map(Some);
    }
    if dir.join("tokenizer.json").is_file() {
        return load(&dir.join("tokenizer.json")).map(Some);
    }
    match &config.model.name_or_path {
        Some(spec) if Path::new(spec).is_dir() => {
            let path = Path::new(spec).join("tokenizer.json");
            path.is_file().then(|| load(&path)).transpose()
        }
        Some(spec) => latent_core::hf::hub::resolve_model(spec)?
            .tokenizer
            .map(|p| load(&p))
            .transpose(),
        None => Ok(None),
    }
}

/// The language model's tensors under Hugging Face keys (LoRA merged) and the projection's, split
/// from a reference state dict.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitState {
    /// `transformer.h.0.attn.c_attn.weight`, `model.embed_tokens.weight`, ...
    pub lm: Vec<(String, HostTensor)>,
    /// `prj.1.weight`, ..., as saved.
    pub prj: Vec<(String, HostTensor)>,
    /// LoRA rank found (`None`: no adapter in the file).
    pub lora_rank: Option<usize>,
}

/// Renames a reference state dict to Hugging Face keys and merges its LoRA adapters:
/// `W += (lora_alpha / r)·B·A`, with `B·A` transposed for GPT-2 (`Conv1D` stores `[in, out]`).
/// Errors name `location` and the key: a key outside `codi.` / `prj.`, two adapter names, an
/// adapter without its base weight or partner, a LoRA variant this crate does not merge, a
/// missing `lora_alpha`.
pub fn split_reference_state(
    state: Vec<(String, HostTensor)>,
    family: Family,
    lora_alpha: Option<f64>,
    location: &Path,
) -> Result<SplitState> {
    let bad = |reason: String| CodiError::Checkpoint {
        path: location.to_path_buf(),
        reason,
    };
    let mut lm: BTreeMap<String, HostTensor> = BTreeMap::new();
    let mut prj = Vec::new();
    // module → [lora_A, lora_B]
    let mut adapters: BTreeMap<String, [Option<HostTensor>; 2]> = BTreeMap::new();
    let mut adapter_names = BTreeSet::new();
    for (key, tensor) in state {
        if key.starts_with("prj.") {
            prj.push((key, tensor));
            continue;
        }
        let Some(rest) = key.strip_prefix("codi.") else {
            return Err(bad(format!(
                "tensor `{key}` belongs to neither the language model (`codi.`) nor the projection (`prj.`)"
            )));
        };
        let rest = rest.strip_prefix("base_model.model.").unwrap_or(rest);
        let lora = [".lora_A.", ".lora_B."]
            .iter()
            .enumerate()
            .find_map(|(i, tag)| rest.find(tag).map(|at| (i, at, tag.len())));
        if let Some((which, at, len)) = lora {
            let module = &rest[..at];
            let adapter = rest[at + len..].strip_suffix(".weight").ok_or_else(|| {
                bad(format!(
                    "`{key}`: expected `<module>.lora_A.<adapter>.weight`"
                ))
            })?;
            adapter_names.insert(adapter.to_string());
            if adapter_names.len() > 1 {
                return Err(bad(format!(
                    "adapters {adapter_names:?} in one file (at `{key}`); the reference trains one"
                )));
            }
            adapters.entry(module.to_string()).or_default()[which] = Some(tensor);
            continue;
        }
        if rest.contains("lora_") {
            return Err(bad(format!(
                "`{key}`: only plain LoRA (lora_A / lora_B) is merged, not this PEFT variant"
            )));
        }
        let name = rest.replace(".base_layer.", ".");
        if lm.insert(name.clone(), tensor).is_some() {
            return Err(bad(format!("`{key}`: a second tensor for `{name}`")));
        }
    }
    let mut lora_rank = None;
    for (module, [a, b]) in adapters {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(bad(format!(
                "the adapter on `{module}` lacks its lora_A or lora_B matrix"
            )));
        };
        if a.shape.len() != 2 || b.shape.len() != 2 || b.shape[1] != a.shape[0] {
            return Err(bad(format!(
                "the adapter on `{module}`: lora_A {:?} and lora_B {:?} do not chain",
                a.shape, b.shape
            )));
        }
        let (r, d_in, d_out) = (a.shape[0], a.shape[1], b.shape[0]);
        if *lora_rank.get_or_insert(r) != r {
            return Err(bad(format!(
                "the adapter on `{module}` has rank {r}, others {}",
                lora_rank.unwrap_or(r)
            )));
        }
        let alpha = lora_alpha.ok_or_else(|| {
            bad(format!(
                "the checkpoint holds LoRA adapters (e.g. on `{module}`), whose scale lora_alpha / r \
                 the file does not record: give lora_alpha (`lora.alpha` of the run config; the \
                 published scripts use 32)"
            ))
        })?;
        let scale = (alpha / r as f64) as f32;
        let weight_key = format!("{module}.weight");
        let w = lm.get_mut(&weight_key).ok_or_else(|| {
            bad(format!(
                "the adapter on `{module}` has no base weight `{module}.base_layer.weight`"
            ))
        })?;
        // Conv1D stores [in, out]; Linear [out, in].
        let conv1d = family == Family::Gpt2;
        let expected = if conv1d {
            vec![d_in, d_out]
        } else {
            vec![d_out, d_in]
        };
        if w.shape != expected {
            return Err(bad(format!(
                "the adapter on `{module}` (in {d_in}, out {d_out}) does not fit its weight {:?}",
                w.shape
            )));
        }
        for o in 0..d_out {
            for i in 0..d_in {
                let delta: f32 = (0..r)
                    .map(|k| b.data[o * r + k] * a.data[k * d_in + i])
                    .sum();
                let at = if conv1d { i * d_out + o } else { o * d_in + i };
                w.data[at] += scale * delta;
            }
        }
    }
    Ok(SplitState {
        lm: lm.into_iter().collect(),
        prj,
        lora_rank,
    })
}

/// Loads the reference checkpoint directory `dir` (see the module docs), weights in `dtype`.
/// Returns the model and the metadata this crate would have saved for it (task CODI).
pub fn load_reference<B: Backend>(
    dir: &Path,
    settings: &ReferenceSettings,
    device: &B::Device,
    dtype: DType,
) -> Result<(CodiModel<B>, CodiMeta)> {
    let weights = reference_weights(dir).ok_or_else(|| CodiError::Checkpoint {
        path: dir.to_path_buf(),
        reason: format!("no reference weights ({})", REFERENCE_WEIGHTS.join(" or ")),
    })?;
    let mut config = ModelConfig::from_file(&settings.base_config)?;
    let v0 = config.vocab_size;
    let state = read_state_dict(&weights)?;
    let split = split_reference_state(state, config.family, settings.lora_alpha, &weights)?;
    if let (Some(want), Some(found)) = (settings.lora_r, split.lora_rank) {
        if want != found {
            return Err(CodiError::Config {
                path: PathBuf::from("<config>"),
                key: "lora.r".into(),
                reason: format!(
                    "{want}, but the adapters of {} have rank {found} (is this the run's config?)",
                    weights.display()
                ),
            });
        }
    }
    let embed_keys = hf_ref(config.family, "embed_tokens.weight").keys;
    let rows = split
        .lm
        .iter()
        .find(|(k, _)| embed_keys.contains(k))
        .map(|(_, t)| t.shape[0])
        .ok_or_else(|| CodiError::Checkpoint {
            path: weights.clone(),
            reason: format!("no token embedding (`codi.…{}`)", embed_keys[0]),
        })?;
    if rows != v0 + ADDED_ROWS {
        return Err(CodiError::Checkpoint {
            path: weights.clone(),
            reason: format!(
                "the embedding has {rows} rows; the reference resizes the base vocabulary \
                 (vocab_size {v0} in {}) by {ADDED_ROWS}, to {}",
                settings.base_config.display(),
                v0 + ADDED_ROWS
            ),
        });
    }
    config.vocab_size = rows;
    if let Some(obj) = config.raw.as_object_mut() {
        obj.insert("vocab_size".into(), rows.into());
    }
    let eos = match settings
        .eos
        .or_else(|| config.eos_token_ids.first().copied())
    {
        Some(eos) => eos,
        None => {
            return Err(CodiError::Config {
                path: settings.base_config.clone(),
                key: "model.eos_token_id".into(),
                reason: "the base config has no eos_token_id; set one".into(),
            })
        }
    };
    let hidden = config.hidden_size;
    let lm_checkpoint = Checkpoint::from_tensors(weights.clone(), split.lm);
    let (lm, unused) =
        CausalLm::<B>::new(&config, device).load_checkpoint(&lm_checkpoint, dtype)?;
    if let Some(key) = unused.first() {
        return Err(CodiError::Checkpoint {
            path: weights,
            reason: format!(
                "tensor `codi.…{key}` belongs to no parameter of the {:?} model of {} ({} unused)",
                config.family,
                settings.base_config.display(),
                unused.len()
            ),
        });
    }
    let (prj, projection) = load_projection::<B>(split.prj, hidden, settings, &weights, device)?;
    let v0 = v0 as u32;
    let tokens = SpecialTokens {
        base_vocab: v0 as usize,
        pad: settings.pad.unwrap_or(v0),
        bot: v0 + 1,
        eot: v0 + 2,
        eos,
    };
    let model = CodiModel {
        lm,
        prj: prj.map(|p| cast_module(p, dtype)),
        tokens,
    };
    let meta = CodiMeta {
        format: CODI_FORMAT.into(),
        version: CODI_FORMAT_VERSION,
        task: Task::Codi,
        tokens,
        num_latent: settings.num_latent,
        projection,
        add_bos: settings.add_bos,
        answer_prefix: settings.answer_prefix.clone(),
        base_model: format!(
            "reference checkpoint {} (base {})",
            dir.display(),
            settings.base_config.display()
        ),
    };
    Ok((model, meta))
}

/// The projection of a reference state dict (`None` when it has no `prj.*`, i.e. `--use_prj False`).
fn load_projection<B: Backend>(
    tensors: Vec<(String, HostTensor)>,
    hidden: usize,
    settings: &ReferenceSettings,
    location: &Path,
    device: &B::Device,
) -> Result<(Option<Projection<B>>, Option<ProjectionConfig>)> {
    if tensors.is_empty() {
        return Ok((None, None));
    }
    let known: Vec<String> = [TORCH_KEYS[0], TORCH_KEYS[1], TORCH_KEYS[2], LEGACY_NORM_KEY]
        .iter()
        .flat_map(|k| [format!("{k}.weight"), format!("{k}.bias")])
        .collect();
    if let Some((key, _)) = tensors.iter().find(|(k, _)| !known.contains(k)) {
        return Err(CodiError::Checkpoint {
            path: location.to_path_buf(),
            reason: format!("`{key}` is not a tensor of the projection (prj.1, prj.3, prj.ln)"),
        });
    }
    let checkpoint = Checkpoint::from_tensors(location.to_path_buf(), tensors);
    let first = format!("{}.weight", TORCH_KEYS[0]);
    let fc1 = checkpoint
        .read(&first)?
        .ok_or_else(|| CodiError::Checkpoint {
            path: location.to_path_buf(),
            reason: format!("missing tensor `{first}`"),
        })?;
    if fc1.shape.len() != 2 || fc1.shape[1] != hidden {
        return Err(CodiError::Checkpoint {
            path: location.to_path_buf(),
            reason: format!(
                "`{first}` has shape {:?}; expected [prj_dim, {hidden}]",
                fc1.shape
            ),
        });
    }
    let config = ProjectionConfig {
        hidden,
        dim: fc1.shape[0],
        layer_norm: checkpoint.contains(&format!("{}.weight", norm_key(&checkpoint))),
        dropout: settings.prj_dropout,
    };
    let prj = config.init::<B>(device).load_torch(&checkpoint)?;
    Ok((Some(prj), Some(config)))
}

/// [`load_reference`] for a run: settings from the config ([`ReferenceSettings::from_run`]) and
/// the tokenizer from [`run_tokenizer`].
pub fn load_reference_for_run<B: Backend>(
    dir: &Path,
    config: &CodiRunConfig,
    device: &B::Device,
    dtype: DType,
) -> Result<(CodiModel<B>, Option<Tokenizer>, CodiMeta)> {
    let settings = ReferenceSettings::from_run(config)?;
    let (model, meta) = load_reference::<B>(dir, &settings, device, dtype)?;
    let tokenizer = run_tokenizer(config, dir)?;
    Ok((model, tokenizer, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: Vec<f32>) -> HostTensor {
        HostTensor {
            shape: shape.to_vec(),
            data,
        }
    }

    fn lora_state(prefix: &str, weight: HostTensor) -> Vec<(String, HostTensor)> {
        vec![
            (format!("{prefix}.base_layer.weight"), weight),
            (format!("{prefix}.base_layer.bias"), t(&[3], vec![0.0; 3])),
            (
                format!("{prefix}.lora_A.default.weight"),
                t(&[1, 2], vec![1.0, 2.0]),
            ),
            (
                format!("{prefix}.lora_B.default.weight"),
                t(&[3, 1], vec![1.0, 0.0, -1.0]),
            ),
        ]
    }

    #[test]
    fn merges_linear_and_conv1d_adapters() {
        // Linear [out 3, in 2]: W + (alpha/r) B·A with B·A = [[1, 2], [0, 0], [-1, -2]], scale 2.
        let key = "codi.base_model.model.model.layers.0.self_attn.q_proj";
        let mut state = lora_state(key, t(&[3, 2], vec![0.0; 6]));
        state.push(("prj.1.weight".into(), t(&[1], vec![5.0])));
        let split = split_reference_state(state, Family::Llama, Some(2.0), Path::new("f")).unwrap();
        assert_eq!(split.lora_rank, Some(1));
        assert_eq!(split.prj.len(), 1);
        let (name, w) = &split.lm[1];
        assert_eq!(name, "model.layers.0.self_attn.q_proj.weight");
        assert_eq!(w.data, vec![2.0, 4.0, 0.0, 0.0, -2.0, -4.0]);
        assert_eq!(split.lm[0].0, "model.layers.0.self_attn.q_proj.bias");
        // Conv1D stores [in 2, out 3]: the transpose.
        let key = "codi.base_model.model.transformer.h.0.attn.c_attn";
        let state = lora_state(key, t(&[2, 3], vec![0.0; 6]));
        let split = split_reference_state(state, Family::Gpt2, Some(2.0), Path::new("f")).unwrap();
        assert_eq!(split.lm[1].0, "transformer.h.0.attn.c_attn.weight");
        assert_eq!(split.lm[1].1.data, vec![2.0, 0.0, -2.0, 4.0, 0.0, -4.0]);
    }

    #[test]
    fn a_file_that_is_no_state_dict_is_an_error_naming_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = read_state_dict(&path).unwrap_err();
        assert!(
            matches!(&err, CodiError::Checkpoint { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("Cargo.toml"), "{err}");
    }

    #[test]
    fn refuses_what_it_cannot_merge() {
        let key = "codi.base_model.model.model.layers.0.self_attn.q_proj";
        let state = || lora_state(key, t(&[3, 2], vec![0.0; 6]));
        let err = split_reference_state(state(), Family::Llama, None, Path::new("ckpt.bin"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ckpt.bin") && err.contains("lora_alpha"),
            "{err}"
        );
        let mut other = state();
        other.push(("model.embed_tokens.weight".into(), t(&[1], vec![0.0])));
        let err = split_reference_state(other, Family::Llama, Some(1.0), Path::new("ckpt.bin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`model.embed_tokens.weight`"), "{err}");
        let mut dora = state();
        dora.push((
            format!("{key}.lora_magnitude_vector.default.weight"),
            t(&[3], vec![1.0; 3]),
        ));
        let err = split_reference_state(dora, Family::Llama, Some(1.0), Path::new("ckpt.bin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lora_magnitude_vector"), "{err}");
        let lonely: Vec<_> = state()
            .into_iter()
            .filter(|(k, _)| !k.contains("lora_B"))
            .collect();
        let err = split_reference_state(lonely, Family::Llama, Some(1.0), Path::new("ckpt.bin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks its lora_A or lora_B"), "{err}");
    }
}
