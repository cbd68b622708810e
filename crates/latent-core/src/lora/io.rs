//! Adapters in PEFT's layout: `adapter_config.json` and `adapter_model.safetensors`.
//!
//! Keys are PEFT's (`get_peft_model_state_dict`, adapter name removed):
//! `base_model.model.<module>.lora_A.weight` `[r, d_in]`, `base_model.model.<module>.lora_B.weight`
//! `[d_out, r]` (PyTorch layout, the transposes of Burn's), and each parameter of a module to save
//! under `base_model.model.<its checkpoint key>`.

use std::collections::HashSet;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::DType;

use super::apply::{attach, no_target};
use super::config::LoraConfig;
use super::targets::{for_each_target, module_of};
use crate::hf::config::Family;
use crate::hf::safetensors::{write_safetensors, Checkpoint, HostTensor, SaveDtype};
use crate::model::LoraPair;
use crate::{CausalLm, CoreError, Result};

/// Prefix of every key in a PEFT adapter file.
pub const PEFT_PREFIX: &str = "base_model.model.";
/// The adapter's config file.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// The adapter's weights file.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// PEFT's keys of the two matrices of the adapter on `module`.
fn pair_keys(module: &str) -> [String; 2] {
    ["A", "B"].map(|m| format!("{PEFT_PREFIX}{module}.lora_{m}.weight"))
}

impl<B: Backend> CausalLm<B> {
    /// Loads a PEFT LoRA adapter directory onto this (base) model: adapters on the targeted
    /// projections, `modules_to_save` replaced by the saved copies; everything else frozen.
    /// Weights are converted to `dtype`.
    ///
    /// Errors name the file and key: a missing or misshapen tensor, a key that belongs to nothing,
    /// a setting this crate does not implement.
    pub fn load_lora(self, dir: impl AsRef<Path>, dtype: DType) -> Result<(Self, LoraConfig)> {
        let loaded = self.load_lora_parts(dir.as_ref(), dtype)?;
        loaded.check_all_used()?;
        Ok((loaded.model, loaded.config))
    }

    /// [`CausalLm::load_lora`] without the check that every tensor was used: the caller reads the
    /// keys that belong to modules outside the model (e.g. a thinking residual in
    /// `modules_to_save`) from [`LoadedAdapter::file`], adds them to `used`, then calls
    /// [`LoadedAdapter::check_all_used`].
    pub fn load_lora_parts(self, dir: &Path, dtype: DType) -> Result<LoadedAdapter<B>> {
        let config_path = dir.join(ADAPTER_CONFIG);
        let config = LoraConfig::from_file(&config_path)?;
        let file = Checkpoint::open(&[dir.join(ADAPTER_WEIGHTS)])?;
        let family = self.config().family;
        let model = self.freeze_for_lora(&config);
        let (mut model, mut used) = model.load_selected(&file, dtype, PEFT_PREFIX, &|key| {
            config.saves(module_of(key))
        })?;
        let device = model.device();
        let attached = attach(&mut model, &config, |module, [d_in, d_out]| {
            let [a, b] = pair_keys(module);
            let param = format!("LoRA adapter on {module}");
            let a = file.read_shaped(&a, &[config.r, d_in], &param)?;
            let b = file.read_shaped(&b, &[d_out, config.r], &param)?;
            let tensor = |t: HostTensor| {
                let t = t.transposed();
                Tensor::<B, 2>::from_data(TensorData::new(t.data, t.shape), (&device, dtype))
            };
            used.extend(pair_keys(module));
            Ok(LoraPair::from_tensors(
                tensor(a),
                tensor(b),
                config.scaling(),
                config.lora_dropout,
            ))
        })?;
        if attached == 0 {
            return Err(CoreError::InvalidConfig {
                path: config_path,
                key: "target_modules".into(),
                reason: no_target(&config, family),
            });
        }
        Ok(LoadedAdapter {
            model,
            config,
            file,
            used,
            config_path,
        })
    }

    /// Writes the attached adapters and the `modules_to_save` of `config` in PEFT's layout
    /// (`adapter_config.json`, `adapter_model.safetensors`, f32) into `dir` (created if needed).
    /// `fan_in_fan_out` is written as PEFT sets it for the family (true for GPT-2's `Conv1D`).
    pub fn save_lora(&self, dir: impl AsRef<Path>, config: &LoraConfig) -> Result<()> {
        self.save_lora_with(dir, config, Vec::new())
    }

    /// [`CausalLm::save_lora`] plus `extra` tensors under their full keys (modules to save that live
    /// outside the model, e.g. `base_model.model.model.thinking_residual_gate_r.weight`).
    pub fn save_lora_with(
        &self,
        dir: impl AsRef<Path>,
        config: &LoraConfig,
        extra: Vec<(String, HostTensor)>,
    ) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
        let mut tensors = self.adapter_tensors();
        tensors.extend(extra);
        tensors.extend(
            self.hf_tensors()
                .into_iter()
                .filter(|(key, _)| config.saves(module_of(key)))
                .map(|(key, t)| (format!("{PEFT_PREFIX}{key}"), t)),
        );
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        write_safetensors(&dir.join(ADAPTER_WEIGHTS), &tensors, SaveDtype::F32)?;
        let mut config = config.clone();
        config.fan_in_fan_out = self.config().family == Family::Gpt2;
        config.inference_mode = true;
        let path = dir.join(ADAPTER_CONFIG);
        let text = serde_json::to_string_pretty(&config).map_err(|e| CoreError::json(&path, &e))?;
        std::fs::write(&path, text + "\n").map_err(|e| CoreError::io(&path, e))
    }

    /// Every attached adapter's matrices under PEFT's keys, in PyTorch layout.
    pub fn adapter_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut out = Vec::new();
        // `for_each_target` needs `&mut`; a clone shares the tensors.
        let mut model = self.clone();
        for_each_target(&mut model, |module, mut target| {
            if let Some(pair) = target.slot() {
                let [a, b] = pair_keys(module);
                out.push((a, host(pair.lora_a.val().transpose())));
                out.push((b, host(pair.lora_b.val().transpose())));
            }
            Ok(())
        })
        .expect("listing cannot fail");
        out
    }
}

/// A base model with an adapter loaded, before the check that the adapter file held nothing else.
pub struct LoadedAdapter<B: Backend> {
    /// The model with adapters attached and `modules_to_save` loaded.
    pub model: CausalLm<B>,
    /// `adapter_config.json`.
    pub config: LoraConfig,
    /// `adapter_model.safetensors`.
    pub file: Checkpoint,
    /// The keys of `file` read so far.
    pub used: HashSet<String>,
    config_path: std::path::PathBuf,
}

impl<B: Backend> LoadedAdapter<B> {
    /// Errors naming the first tensor of the adapter file that nothing read.
    pub fn check_all_used(&self) -> Result<()> {
        match self.file.keys().find(|k| !self.used.contains(*k)) {
            Some(key) => Err(CoreError::Safetensors {
                path: self.file.location(),
                message: format!(
                    "tensor {key:?} belongs to no LoRA target or module to save of {:?}",
                    self.config_path
                ),
            }),
            None => Ok(()),
        }
    }
}

/// A tensor on the host in f32.
fn host<B: Backend>(t: Tensor<B, 2>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec::<f32>().expect("converted to f32"),
    }
}
