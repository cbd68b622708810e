//! Converting every parameter of a module to another float dtype (e.g. a random model in bf16).

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;

use super::causal_lm::CausalLm;

struct CastMapper(DType);

impl<B: Backend> ModuleMapper<B> for CastMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let dtype = self.0;
        if param.val().dtype() == dtype {
            return param;
        }
        let id = param.id;
        let tensor = param.val();
        let require_grad = tensor.is_require_grad();
        Param::initialized(
            id,
            tensor.cast(dtype).detach().set_require_grad(require_grad),
        )
    }
}

impl<B: Backend> CausalLm<B> {
    /// The same model with every parameter converted to `dtype` (parameter ids kept).
    pub fn cast_params(self, dtype: DType) -> Self {
        self.map(&mut CastMapper(dtype))
    }
}

/// `x` in f32, unchanged (no graph node added) when it already is: the numerically sensitive parts
/// of a bf16/f16 forward (softmaxes, losses) run on it.
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    to_dtype(x, DType::F32)
}

/// `x` in `dtype`, unchanged (no graph node added) when it already is (e.g. f32 inputs of a model
/// whose parameters are bf16).
pub fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        x
    } else {
        x.cast(dtype)
    }
}

/// Any module with every float parameter converted to `dtype` (parameter ids and `require_grad`
/// flags kept), e.g. a method's extra layers to match its backbone.
pub fn cast_module<B: Backend, M: Module<B>>(module: M, dtype: DType) -> M {
    module.map(&mut CastMapper(dtype))
}
