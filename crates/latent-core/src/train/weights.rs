//! `model.safetensors` of a training checkpoint: parameters by module path, f32.
//!
//! A model with frozen parameters (LoRA: the base weights) saves only its trainable ones. The
//! header metadata says which: `latent_core.parameters` is `all` or `trainable`; with `trainable`,
//! `latent_core.frozen` lists the frozen parameters (`{path: shape}`) that were left out. Loading
//! goes into a freshly built model whose frozen parameters came from the base model as usual;
//! a frozen parameter the checkpoint does not list, a saved one that is frozen or absent in the
//! model, or a shape that differs is an error naming the file and the parameter. Files without the
//! metadata (written before it existed) hold every parameter.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::prelude::*;

use super::state_dict::{
    load_module_tensors, load_module_tensors_where, module_tensors_where, parameters,
};
use crate::hf::safetensors::{write_safetensors_with_metadata, Checkpoint, SaveDtype};
use crate::{CoreError, Result};

/// Metadata key: which parameters the file holds (`all` or `trainable`).
pub const PARAMETERS_KEY: &str = "latent_core.parameters";
/// Metadata key: the frozen parameters a `trainable` file leaves out, `{path: shape}` as JSON.
pub const FROZEN_KEY: &str = "latent_core.frozen";

/// Writes `model`'s parameters to `path`: all of them, or only the trainable ones when some are
/// frozen (with the frozen ones listed in the metadata).
pub fn save_training_weights<B: Backend, M: Module<B>>(path: &Path, model: &M) -> Result<()> {
    let frozen: BTreeMap<String, Vec<usize>> = parameters(model)
        .into_iter()
        .filter(|p| !p.trainable)
        .map(|p| (p.path, p.shape))
        .collect();
    if frozen.is_empty() {
        let tensors = module_tensors_where(model, |_, _| true);
        let metadata = [(PARAMETERS_KEY.to_string(), "all".to_string())];
        return write_safetensors_with_metadata(path, &tensors, SaveDtype::F32, &metadata);
    }
    let tensors = module_tensors_where(model, |_, trainable| trainable);
    let metadata = [
        (PARAMETERS_KEY.to_string(), "trainable".to_string()),
        (
            FROZEN_KEY.to_string(),
            serde_json::to_string(&frozen).expect("paths and shapes serialise"),
        ),
    ];
    write_safetensors_with_metadata(path, &tensors, SaveDtype::F32, &metadata)
}

/// Loads the parameters [`save_training_weights`] wrote to `path` into `model` (built as the run
/// built it: base weights loaded, adapters attached, the same parameters frozen).
pub fn load_training_weights<B: Backend, M: Module<B>>(path: &Path, model: M) -> Result<M> {
    let checkpoint = Checkpoint::open(&[path.to_path_buf()])?;
    match checkpoint.metadata(PARAMETERS_KEY)?.as_deref() {
        None | Some("all") => load_module_tensors(model, &checkpoint),
        Some("trainable") => {
            check_trainable_file(path, &checkpoint, &model)?;
            load_module_tensors_where(model, &checkpoint, |_, trainable| trainable)
        }
        Some(other) => Err(CoreError::Safetensors {
            path: path.to_path_buf(),
            message: format!(
                "metadata {PARAMETERS_KEY} is {other:?}; expected \"all\" or \"trainable\""
            ),
        }),
    }
}

/// A `trainable` file fits `model` when the model trains exactly the saved parameters and freezes
/// exactly the listed ones, with the listed shapes.
fn check_trainable_file<B: Backend, M: Module<B>>(
    path: &Path,
    checkpoint: &Checkpoint,
    model: &M,
) -> Result<()> {
    let listed = checkpoint
        .metadata(FROZEN_KEY)?
        .ok_or_else(|| CoreError::Safetensors {
            path: path.to_path_buf(),
            message: format!("{PARAMETERS_KEY} is \"trainable\" but {FROZEN_KEY} is missing"),
        })?;
    let frozen: BTreeMap<String, Vec<usize>> =
        serde_json::from_str(&listed).map_err(|e| CoreError::Safetensors {
            path: path.to_path_buf(),
            message: format!("metadata {FROZEN_KEY}: {e}"),
        })?;
    let mismatch = |key: &str, checkpoint: String, run: String| CoreError::ResumeMismatch {
        path: path.to_path_buf(),
        key: key.to_string(),
        checkpoint,
        run,
    };
    let params = parameters(model);
    for p in &params {
        match (p.trainable, frozen.get(&p.path)) {
            (true, Some(_)) => {
                return Err(mismatch(
                    &p.path,
                    "frozen (not saved)".into(),
                    "trainable".into(),
                ))
            }
            (false, None) if checkpoint.contains(&p.path) => {
                return Err(mismatch(&p.path, "trained (saved)".into(), "frozen".into()))
            }
            (false, None) => {
                return Err(mismatch(
                    &p.path,
                    "absent".into(),
                    format!("a frozen parameter of shape {:?}", p.shape),
                ))
            }
            (false, Some(shape)) if *shape != p.shape => {
                return Err(mismatch(
                    &p.path,
                    format!("a frozen parameter of shape {shape:?}"),
                    format!("of shape {:?}", p.shape),
                ))
            }
            _ => {}
        }
    }
    let known: BTreeMap<&str, bool> = params
        .iter()
        .map(|p| (p.path.as_str(), p.trainable))
        .collect();
    if let Some(path) = frozen.keys().find(|k| !known.contains_key(k.as_str())) {
        return Err(mismatch(path, "a frozen parameter".into(), "absent".into()));
    }
    if let Some(key) = checkpoint.keys().find(|k| !known.contains_key(k)) {
        return Err(mismatch(key, "trained (saved)".into(), "absent".into()));
    }
    Ok(())
}
