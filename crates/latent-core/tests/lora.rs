//! LoRA against the `peft` package: adapters written by PEFT (`scripts/make_lora_fixture.py`) give
//! PEFT's logits, adapted and merged; adapters saved here have PEFT's keys, shapes and values; a
//! fresh adapter changes nothing; only adapters and modules to save get gradients; bad adapter
//! files give errors that name the file and key.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use latent_core::hf::safetensors::{write_safetensors, Checkpoint, HostTensor};
use latent_core::lora::{is_adapter_param, LoraConfig, ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use latent_core::{CausalLm, CoreError, CpuBackend, LmInput, SaveDtype};

type AB = Autodiff<CpuBackend>;

const FAMILIES: [&str; 2] = ["qwen2", "gpt2"];

fn adapter_dir(name: &str) -> PathBuf {
    fixture_dir("lora").join(name)
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latent-core-lora-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn logits<BK: Backend>(model: &CausalLm<BK>, name: &str) -> HostTensor {
    let ids = ids_tensor(&inputs(name).single);
    let ids = Tensor::<BK, 2, Int>::from_data(ids.into_data(), &model.device());
    let data = model.forward(LmInput::ids(ids)).unwrap().logits.into_data();
    let data = data.convert::<f32>();
    HostTensor {
        shape: data.shape.to_vec(),
        data: data.into_vec().unwrap(),
    }
}

fn with_peft_adapter(name: &str) -> CausalLm<B> {
    load_model(name)
        .load_lora(adapter_dir(name), DType::F32)
        .unwrap()
        .0
}

fn tensors(path: &Path) -> BTreeMap<String, HostTensor> {
    let ckpt = Checkpoint::open(&[path.to_path_buf()]).unwrap();
    ckpt.keys()
        .map(|k| (k.to_string(), ckpt.read(k).unwrap().unwrap()))
        .collect()
}

#[test]
fn peft_adapter_gives_peft_logits_adapted_and_merged() {
    for name in FAMILIES {
        let expected = Checkpoint::open(&[adapter_dir(name).join("expected.safetensors")]).unwrap();
        let model = with_peft_adapter(name);
        let adapted = logits(&model, name);
        let diff = max_abs_diff(&adapted, &expected_tensor(&expected, "single.logits"));
        eprintln!("{name}: adapted logits vs PEFT: max abs diff {diff:.2e}");
        assert!(diff <= TOL, "{name}: adapted logits differ by {diff}");
        let base_diff = max_abs_diff(&adapted, &logits(&load_model(name), name));
        assert!(
            base_diff > 0.1,
            "{name}: the adapter hardly matters ({base_diff})"
        );

        let merged = model.merge_lora();
        let reference = expected_tensor(&expected, "merged.logits");
        let diff = max_abs_diff(&logits(&merged, name), &reference);
        eprintln!("{name}: merged logits vs PEFT merge_and_unload: max abs diff {diff:.2e}");
        assert!(diff <= TOL, "{name}: merged logits differ by {diff}");
        // The merged model is a plain checkpoint for transformers.
        let dir = temp_dir(&format!("merged-{name}"));
        merged.save_pretrained(&dir, SaveDtype::F32).unwrap();
        let diff = max_abs_diff(&logits(&load_model_from(&dir), name), &reference);
        assert!(diff <= TOL, "{name}: saved merged model differs by {diff}");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn saved_adapter_has_peft_keys_shapes_and_values() {
    for name in FAMILIES {
        let (model, config) = load_model(name)
            .load_lora(adapter_dir(name), DType::F32)
            .unwrap();
        let dir = temp_dir(&format!("save-{name}"));
        model.save_lora(&dir, &config).unwrap();
        let ours = tensors(&dir.join(ADAPTER_WEIGHTS));
        let peft = tensors(&adapter_dir(name).join(ADAPTER_WEIGHTS));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            peft.keys().collect::<Vec<_>>(),
            "{name}: keys differ"
        );
        for (key, t) in &peft {
            assert_eq!(&ours[key], t, "{name}: {key} differs");
        }
        let saved = LoraConfig::from_file(dir.join(ADAPTER_CONFIG)).unwrap();
        assert_eq!(saved, config, "{name}: config differs");
        let (reloaded, _) = load_model(name).load_lora(&dir, DType::F32).unwrap();
        assert_eq!(logits(&reloaded, name), logits(&model, name));
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn fresh_adapter_changes_nothing() {
    for (name, targets) in [
        ("qwen2", &["q_proj", "v_proj", "down_proj"][..]),
        ("gpt2", &["c_attn", "c_fc"][..]),
        ("llama", &["k_proj", "gate_proj"][..]),
    ] {
        let base = load_model(name);
        let before = logits(&base, name);
        let model = base.with_lora(&LoraConfig::new(4, 8.0, targets)).unwrap();
        let per_layer = targets.len();
        let layers = model.config().num_hidden_layers;
        let keys: Vec<String> = model
            .adapter_tensors()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys.len(), 2 * per_layer * layers, "{name}: {keys:?}");
        assert_eq!(
            logits(&model, name),
            before,
            "{name}: fresh adapter changed logits"
        );
        assert_eq!(logits(&model.merge_lora(), name), before);
    }
    let err = load_model("qwen2")
        .with_lora(&LoraConfig::new(4, 8.0, &["c_attn"]))
        .unwrap_err();
    assert!(matches!(err, CoreError::Lora { .. }), "{err}");
}

/// `(parameter path, gradient present)` of every parameter.
fn gradient_presence(
    model: &CausalLm<AB>,
    grads: &<AB as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> Vec<(String, bool)> {
    struct Visit<'a> {
        grads: &'a <AB as burn::tensor::backend::AutodiffBackend>::Gradients,
        path: Vec<String>,
        out: Vec<(String, bool)>,
    }
    impl ModuleVisitor<AB> for Visit<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
            let has = param.val().grad(self.grads).is_some();
            self.out.push((self.path.join("."), has));
        }
    }
    let mut v = Visit {
        grads,
        path: Vec::new(),
        out: Vec::new(),
    };
    model.visit(&mut v);
    v.out
}

#[test]
fn only_adapters_and_modules_to_save_get_gradients() {
    // qwen2 saves every norm (PEFT's suffix rule: "norm" also ends "input_layernorm"); gpt2 saves
    // ln_f, which is `norm` here.
    let qwen2_saved = |path: &str| path.contains("norm");
    let gpt2_saved = |path: &str| path.starts_with("norm.");
    for (name, saved) in [
        ("qwen2", &qwen2_saved as &dyn Fn(&str) -> bool),
        ("gpt2", &gpt2_saved),
    ] {
        let device = Default::default();
        let model = load_model_on::<AB>(&fixture_dir(name));
        let (model, _) = model.load_lora(adapter_dir(name), DType::F32).unwrap();
        let ids = Tensor::<AB, 2, Int>::from_ints([[3, 9, 27, 4]], &device);
        let loss = model.forward(LmInput::ids(ids)).unwrap().logits.sum();
        let grads = loss.backward();
        let presence = gradient_presence(&model, &grads);
        let adapters = presence.iter().filter(|(p, _)| is_adapter_param(p)).count();
        assert!(adapters > 0);
        for (path, has) in presence {
            let trainable = is_adapter_param(&path) || saved(&path);
            assert_eq!(has, trainable, "{name}: {path}: gradient {has}");
        }
    }
}

/// A copy of the qwen2 adapter with `edit` applied to its tensors and `config_edit` to its config.
fn broken_adapter(
    tag: &str,
    edit: impl FnOnce(&mut BTreeMap<String, HostTensor>),
    config_edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    edited_adapter("qwen2", tag, edit, config_edit)
}

/// A copy of the `name` fixture adapter with `edit` applied to its tensors and `config_edit` to
/// its config.
fn edited_adapter(
    name: &str,
    tag: &str,
    edit: impl FnOnce(&mut BTreeMap<String, HostTensor>),
    config_edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let dir = temp_dir(&format!("{name}-{tag}"));
    let mut t = tensors(&adapter_dir(name).join(ADAPTER_WEIGHTS));
    edit(&mut t);
    let t: Vec<_> = t.into_iter().collect();
    write_safetensors(&dir.join(ADAPTER_WEIGHTS), &t, SaveDtype::F32).unwrap();
    let text = std::fs::read_to_string(adapter_dir(name).join(ADAPTER_CONFIG)).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config_edit(&mut config);
    std::fs::write(dir.join(ADAPTER_CONFIG), config.to_string()).unwrap();
    dir
}

#[test]
fn bad_adapter_files_give_errors_naming_file_and_key() {
    let key = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight";
    let cases: [(&str, PathBuf, &str); 4] = [
        (
            "missing",
            broken_adapter("missing", |t| drop(t.remove(key)), |_| {}),
            key,
        ),
        (
            "shape",
            broken_adapter(
                "shape",
                |t| {
                    t.insert(
                        key.into(),
                        HostTensor {
                            shape: vec![4, 8],
                            data: vec![0.0; 32],
                        },
                    );
                },
                |_| {},
            ),
            key,
        ),
        (
            "stray",
            broken_adapter(
                "stray",
                |t| {
                    t.insert(
                        "base_model.model.lm_head.lora_A.weight".into(),
                        HostTensor {
                            shape: vec![1],
                            data: vec![0.0],
                        },
                    );
                },
                |_| {},
            ),
            "lm_head.lora_A",
        ),
        (
            "dora",
            broken_adapter("dora", |_| {}, |c| c["use_dora"] = true.into()),
            "use_dora",
        ),
    ];
    for (tag, dir, needle) in cases {
        let err = load_model("qwen2").load_lora(&dir, DType::F32).unwrap_err();
        let msg = err.to_string();
        let file = if tag == "dora" {
            ADAPTER_CONFIG
        } else {
            ADAPTER_WEIGHTS
        };
        assert!(msg.contains(needle) && msg.contains(file), "{tag}: {msg}");
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn adapters_off_is_the_base_model_and_the_rollout_copy_is_the_adapted_one() {
    for name in FAMILIES {
        let load = |dir: &Path| {
            load_model_on::<AB>(&fixture_dir(name))
                .load_lora(dir, DType::F32)
                .unwrap()
                .0
        };
        let base = logits(&load_model(name), name);
        // Adapters only: switching them off gives the base model back. Autodiff and plain
        // backends may sum in different orders, so "the same" means equal to 1e-5, far below
        // the adapters' own effect on these logits.
        let lora_only = edited_adapter(
            name,
            "lora-only",
            |t| t.retain(|k, _| k.contains(".lora_")),
            |c| {
                c["modules_to_save"] = serde_json::Value::Null;
                // Dropout would make two training-mode passes differ.
                c["lora_dropout"] = 0.0.into();
            },
        );
        let adapted = load(&lora_only);
        let with = logits(&adapted, name);
        let effect = max_abs_diff(&with, &base);
        assert!(
            effect > 1e-2,
            "{name}: the adapters change logits by {effect}"
        );
        let off = max_abs_diff(&logits(&adapted.without_adapters(), name), &base);
        assert!(off <= 1e-5, "{name}: adapters off differs by {off}");
        let kept = max_abs_diff(&logits(&adapted, name), &with);
        assert!(
            kept <= 1e-6,
            "{name}: the policy keeps its adapters ({kept})"
        );
        let copy = adapted.rollout_copy();
        let diff = max_abs_diff(&logits(&copy, name), &with);
        assert!(
            diff <= 1e-5,
            "{name}: merged rollout copy differs by {diff}"
        );
        assert!(copy.adapter_tensors().is_empty(), "{name}: merged");
        std::fs::remove_dir_all(lora_only).ok();

        // With `modules_to_save`, adapters off keeps the saved modules: it is the model whose
        // adapters are zero, not the base model.
        let zero_b = edited_adapter(
            name,
            "zero-b",
            |t| {
                for (k, v) in t.iter_mut() {
                    if k.contains(".lora_B") {
                        v.data.iter_mut().for_each(|x| *x = 0.0);
                    }
                }
            },
            |_| {},
        );
        let adapted = load(&adapter_dir(name));
        let off = logits(&adapted.without_adapters(), name);
        let saved_only = logits(&load(&zero_b), name);
        let diff = max_abs_diff(&off, &saved_only);
        assert!(
            diff <= 1e-5,
            "{name}: off with saved modules differs by {diff}"
        );
        let moved = max_abs_diff(&off, &base);
        assert!(
            moved > 1e-3,
            "{name}: the saved modules move logits by {moved}"
        );
        std::fs::remove_dir_all(zero_b).ok();
    }
}
