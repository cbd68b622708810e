//! Saving a [`CausalLm`] in Hugging Face layout (`config.json` + `model.safetensors`, HF key names),
//! so that `transformers` loads the directory and produces the same logits.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;

use super::causal_lm::CausalLm;
use super::lora_linear::is_adapter_param;
use crate::hf::config::Family;
use crate::hf::families::hf_ref;
use crate::hf::safetensors::{write_safetensors, HostTensor, SaveDtype};
use crate::hf::weight_names::HfRef;
use crate::{CoreError, Result};

impl<B: Backend> CausalLm<B> {
    /// Every parameter as a host tensor under its Hugging Face key (GPT-2's q/k/v fused back into
    /// `c_attn`). LoRA adapters are not included (see [`CausalLm::merge_lora`], [`CausalLm::save_lora`]).
    pub fn hf_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut visitor = SaveVisitor {
            family: self.config().family,
            path: Vec::new(),
            entries: Vec::new(),
        };
        self.visit(&mut visitor);
        let mut fused: BTreeMap<String, Vec<(usize, HostTensor)>> = BTreeMap::new();
        let mut out = Vec::new();
        for (r, tensor) in visitor.entries {
            match r.part {
                Some((index, _)) => fused
                    .entry(r.save_key().to_string())
                    .or_default()
                    .push((index, tensor)),
                None => out.push((r.save_key().to_string(), tensor)),
            }
        }
        for (key, mut parts) in fused {
            parts.sort_by_key(|(index, _)| *index);
            out.push((
                key,
                concat_last_axis(parts.into_iter().map(|(_, t)| t).collect()),
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (created if needed).
    pub fn save_pretrained(&self, dir: impl AsRef<Path>, dtype: SaveDtype) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
        write_safetensors(&dir.join("model.safetensors"), &self.hf_tensors(), dtype)?;
        let mut config = self.config().raw.clone();
        if let Some(obj) = config.as_object_mut() {
            let key = if obj.contains_key("torch_dtype") {
                "torch_dtype"
            } else {
                "dtype"
            };
            obj.insert(key.into(), dtype.torch_name().into());
        }
        let path = dir.join("config.json");
        let text = serde_json::to_string_pretty(&config).map_err(|e| CoreError::json(&path, &e))?;
        std::fs::write(&path, text + "\n").map_err(|e| CoreError::io(&path, e))
    }
}

/// Concatenates row-major tensors of equal leading shape along their last axis.
fn concat_last_axis(parts: Vec<HostTensor>) -> HostTensor {
    let rank = parts[0].shape.len();
    let rows: usize = parts[0].shape[..rank - 1].iter().product();
    let widths: Vec<usize> = parts.iter().map(|p| p.shape[rank - 1]).collect();
    let total: usize = widths.iter().sum();
    let mut data = Vec::with_capacity(rows * total);
    for row in 0..rows {
        for (p, w) in parts.iter().zip(&widths) {
            data.extend_from_slice(&p.data[row * w..(row + 1) * w]);
        }
    }
    let mut shape = parts[0].shape.clone();
    shape[rank - 1] = total;
    HostTensor { shape, data }
}

struct SaveVisitor {
    family: Family,
    path: Vec<String>,
    entries: Vec<(HfRef, HostTensor)>,
}

impl<B: Backend> ModuleVisitor<B> for SaveVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let path = self.path.join(".");
        if is_adapter_param(&path) {
            return;
        }
        let r = hf_ref(self.family, &path);
        let tensor = param.val();
        let tensor = if r.transposed {
            tensor.transpose()
        } else {
            tensor
        };
        let data = tensor.into_data().convert::<f32>();
        let shape = data.shape.to_vec();
        let data = data.into_vec::<f32>().expect("converted to f32");
        self.entries.push((r, HostTensor { shape, data }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenates_last_axis() {
        let a = HostTensor {
            shape: vec![2, 1],
            data: vec![1.0, 2.0],
        };
        let b = HostTensor {
            shape: vec![2, 2],
            data: vec![3.0, 4.0, 5.0, 6.0],
        };
        let c = concat_last_axis(vec![a, b]);
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.data, vec![1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
    }
}
