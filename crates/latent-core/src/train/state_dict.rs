//! Any module's parameters as host tensors keyed by module path (`layers.0.self_attn.q_proj.weight`),
//! and back. Training checkpoints use it: paths are stable across runs, parameter ids are not.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::hf::safetensors::{Checkpoint, HostTensor};
use crate::{CoreError, Result};

/// Every float parameter of `module`, `(path, values)`, in visiting order.
pub fn module_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, HostTensor)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, HostTensor)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out.push((self.path.join("."), to_host(param.val())));
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut collect);
    collect.out
}

/// A tensor's values on the host (f32).
pub(crate) fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> HostTensor {
    let data = t.into_data().convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().expect("converted to f32"),
    }
}

/// Replaces every float parameter of `module` by the tensor stored under its path in `checkpoint`,
/// keeping each parameter's id, dtype and `require_grad` flag. Every parameter must be present.
pub fn load_module_tensors<B: Backend, M: Module<B>>(
    module: M,
    checkpoint: &Checkpoint,
) -> Result<M> {
    struct Load<'a> {
        checkpoint: &'a Checkpoint,
        path: Vec<String>,
        error: Option<CoreError>,
    }
    impl Load<'_> {
        fn tensor<B: Backend, const D: usize>(
            &self,
            param: &Param<Tensor<B, D>>,
        ) -> Result<Tensor<B, D>> {
            let key = self.path.join(".");
            let location = self.checkpoint.location();
            let current = param.val();
            let host = self
                .checkpoint
                .read(&key)?
                .ok_or_else(|| CoreError::MissingTensor {
                    location: location.clone(),
                    key: key.clone(),
                    param: key.clone(),
                })?;
            if host.shape != current.dims().to_vec() {
                return Err(CoreError::TensorMismatch {
                    location,
                    key,
                    expected: format!("shape {:?}", current.dims()),
                    found: format!("shape {:?}", host.shape),
                });
            }
            let tensor = Tensor::<B, D>::from_data(
                TensorData::new(host.data, host.shape),
                (&current.device(), current.dtype()),
            );
            Ok(tensor.set_require_grad(current.is_require_grad()))
        }
    }
    impl<B: Backend> ModuleMapper<B> for Load<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if self.error.is_some() {
                return param;
            }
            match self.tensor(&param) {
                Ok(tensor) => Param::initialized(param.id, tensor),
                Err(err) => {
                    self.error = Some(err);
                    param
                }
            }
        }
    }
    let mut load = Load {
        checkpoint,
        path: Vec::new(),
        error: None,
    };
    let module = module.map(&mut load);
    match load.error {
        Some(err) => Err(err),
        None => Ok(module),
    }
}
