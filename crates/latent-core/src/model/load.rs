//! Loading Hugging Face weights into a [`CausalLm`]: a module mapper that replaces each lazily
//! initialised parameter with the checkpoint tensor its path names.

use std::collections::HashSet;

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;

use super::causal_lm::CausalLm;
use super::lora_linear::is_adapter_param;
use crate::hf::config::Family;
use crate::hf::families::hf_ref;
use crate::hf::safetensors::Checkpoint;
use crate::hf::weight_names::HfRef;
use crate::{CoreError, Result};

/// Checkpoint keys that hold buffers, not parameters, in some transformers versions.
const IGNORED_SUFFIXES: [&str; 3] = [".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"];

impl<B: Backend> CausalLm<B> {
    /// Replaces every parameter with its tensor from `checkpoint`, converted to `dtype`.
    ///
    /// Returns the model and the checkpoint keys that no parameter used (buffers excluded).
    pub fn load_checkpoint(
        self,
        checkpoint: &Checkpoint,
        dtype: DType,
    ) -> Result<(Self, Vec<String>)> {
        let (model, used) = self.load_selected(checkpoint, dtype, "", &|_| true)?;
        let tied = model.config().tie_word_embeddings;
        let mut unused: Vec<String> = checkpoint
            .keys()
            .filter(|k| !used.contains(*k))
            .filter(|k| !IGNORED_SUFFIXES.iter().any(|s| k.ends_with(s)))
            .filter(|k| !(tied && *k == "lm_head.weight"))
            .map(str::to_string)
            .collect();
        unused.sort();
        Ok((model, unused))
    }

    /// Replaces the parameters whose Hugging Face key `select` accepts with the tensors stored
    /// under `prefix` + key (a PEFT adapter's `base_model.model.`); adapter matrices are skipped.
    ///
    /// Returns the model and the checkpoint keys used.
    pub(crate) fn load_selected(
        self,
        checkpoint: &Checkpoint,
        dtype: DType,
        prefix: &str,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<(Self, HashSet<String>)> {
        let mut mapper = LoadMapper {
            checkpoint,
            family: self.config().family,
            dtype,
            prefix,
            select,
            path: Vec::new(),
            used: HashSet::new(),
            error: None,
        };
        let model = self.map(&mut mapper);
        match mapper.error {
            Some(err) => Err(err),
            None => Ok((model, mapper.used)),
        }
    }
}

struct LoadMapper<'a> {
    checkpoint: &'a Checkpoint,
    family: Family,
    dtype: DType,
    prefix: &'a str,
    select: &'a dyn Fn(&str) -> bool,
    path: Vec<String>,
    used: HashSet<String>,
    error: Option<CoreError>,
}

impl LoadMapper<'_> {
    fn load<B: Backend, const D: usize>(
        &mut self,
        param: &Param<Tensor<B, D>>,
        path: String,
        r: HfRef,
    ) -> Result<Tensor<B, D>> {
        let HfRef {
            keys,
            transposed,
            part,
        } = r;
        let keys: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
        let location = self.checkpoint.location();
        let Some(key) = keys.iter().find(|k| self.checkpoint.contains(k)) else {
            return Err(CoreError::MissingTensor {
                location,
                key: keys[0].clone(),
                param: path,
            });
        };
        let host = self
            .checkpoint
            .read(key)?
            .expect("key listed in the checkpoint");
        let expected = param.lazy_shape().dims::<D>().to_vec();
        let mismatch = |found: &[usize]| CoreError::TensorMismatch {
            location: location.clone(),
            key: key.clone(),
            expected: format!("shape compatible with parameter {path} {expected:?}"),
            found: format!("shape {found:?}"),
        };
        if host.shape.len() != D {
            return Err(mismatch(&host.shape));
        }
        // Slices and transposes are materialised on the host: strided views would be copied by
        // every matmul that reads them.
        let mut host = host;
        if let Some((index, count)) = part {
            if !host.shape[D - 1].is_multiple_of(count) {
                return Err(mismatch(&host.shape));
            }
            host = host.last_axis_part(index, count);
        }
        if transposed {
            host = host.transposed();
        }
        let tensor = Tensor::<B, D>::from_data(
            TensorData::new(host.data, host.shape.clone()),
            (&param.lazy_device(), self.dtype),
        );
        if tensor.dims().to_vec() != expected {
            return Err(mismatch(&host.shape));
        }
        self.used.insert(key.clone());
        Ok(tensor)
    }
}

impl<B: Backend> ModuleMapper<B> for LoadMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let path = self.path.join(".");
        if self.error.is_some() || is_adapter_param(&path) {
            return param;
        }
        let r = hf_ref(self.family, &path);
        if !(self.select)(r.save_key()) {
            return param;
        }
        match self.load(&param, path, r) {
            Ok(tensor) => Param::initialized(param.id, tensor.set_require_grad(true)),
            Err(err) => {
                self.error = Some(err);
                param
            }
        }
    }
}
