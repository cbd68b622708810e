//! Any module's parameters as host tensors keyed by module path (`layers.0.self_attn.q_proj.weight`),
//! and back. Training checkpoints use it: paths are stable across runs, parameter ids are not.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::hf::safetensors::{Checkpoint, HostTensor};
use crate::{CoreError, Result};

/// Every float parameter of `module`, `(path, values)`, in visiting order.
pub fn module_tensors<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, HostTensor)> {
    module_tensors_where(module, |_, _| true)
}

/// The float parameters of `module` that `keep(path, trainable)` selects, `(path, values)`, in
/// visiting order (`trainable`: the parameter requires a gradient).
pub fn module_tensors_where<B: Backend, M: Module<B>>(
    module: &M,
    keep: impl Fn(&str, bool) -> bool,
) -> Vec<(String, HostTensor)> {
    struct Collect<F> {
        keep: F,
        path: Vec<String>,
        out: Vec<(String, HostTensor)>,
    }
    impl<B: Backend, F: Fn(&str, bool) -> bool> ModuleVisitor<B> for Collect<F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let path = self.path.join(".");
            let value = param.val();
            if (self.keep)(&path, value.is_require_grad()) {
                self.out.push((path, to_host(value)));
            }
        }
    }
    let mut collect = Collect {
        keep,
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut collect);
    collect.out
}

/// A float parameter as the checkpoint code sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// Module path (`layers.0.self_attn.q_proj.weight`).
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Whether it requires a gradient (trains).
    pub trainable: bool,
}

/// Path, shape and trainability of every float parameter of `module`, in visiting order (no
/// values are read).
pub fn parameters<B: Backend, M: Module<B>>(module: &M) -> Vec<ParamInfo> {
    struct List {
        path: Vec<String>,
        out: Vec<ParamInfo>,
    }
    impl<B: Backend> ModuleVisitor<B> for List {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            self.out.push(ParamInfo {
                path: self.path.join("."),
                shape: value.dims().to_vec(),
                trainable: value.is_require_grad(),
            });
        }
    }
    let mut list = List {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut list);
    list.out
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
    load_module_tensors_where(module, checkpoint, |_, _| true)
}

/// As [`load_module_tensors`], for the parameters `load(path, trainable)` selects; the others keep
/// their values. Every selected parameter must be present.
pub fn load_module_tensors_where<B: Backend, M: Module<B>>(
    module: M,
    checkpoint: &Checkpoint,
    load: impl Fn(&str, bool) -> bool,
) -> Result<M> {
    struct Load<'a, F> {
        checkpoint: &'a Checkpoint,
        select: F,
        path: Vec<String>,
        error: Option<CoreError>,
    }
    impl<F> Load<'_, F> {
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
    impl<B: Backend, F: Fn(&str, bool) -> bool> ModuleMapper<B> for Load<'_, F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if self.error.is_some()
                || !(self.select)(&self.path.join("."), param.val().is_require_grad())
            {
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
        select: load,
        path: Vec::new(),
        error: None,
    };
    let module = module.map(&mut load);
    match load.error {
        Some(err) => Err(err),
        None => Ok(module),
    }
}
