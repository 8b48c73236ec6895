//! A Hugging Face model directory is checked before use (`hf_dir::inspect`): every way a user's
//! copy can be wrong is one diagnostic naming the file and, for weights, the tensor
//! (snapshotted). The directories are assembled from the tiny random checkpoint
//! (`fixtures/mllama_tiny`) and its tokenizer files (`fixtures/mllama_tiny_files`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use judgeflow_model::hf_dir::inspect;
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A complete model directory in a temporary directory.
fn model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (from, name) in [
        ("mllama_tiny", "config.json"),
        ("mllama_tiny", "model.safetensors"),
        ("mllama_tiny_files", "tokenizer.json"),
        ("mllama_tiny_files", "tokenizer_config.json"),
        ("mllama_tiny_files", "preprocessor_config.json"),
        ("mllama_tiny_files", "generation_config.json"),
    ] {
        std::fs::copy(fixtures().join(from).join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// Rewrites `model.safetensors` after `edit` changes its tensors (name → (shape, f32 values)).
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut BTreeMap<String, (Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            (name, (view.shape().to_vec(), view.data().to_vec()))
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (shape, data))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn rendered(dir: &Path) -> String {
    let err = inspect(dir).expect_err("the directory must be refused");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, &err)
        .unwrap();
    out.replace(&dir.display().to_string(), "[MODEL]")
}

#[test]
fn a_complete_directory_passes_with_what_it_holds() {
    let dir = model_dir();
    let found = inspect(dir.path()).unwrap();
    assert_eq!(
        found.weight_files,
        vec![dir.path().join("model.safetensors")]
    );
    assert_eq!(found.dtypes.iter().collect::<Vec<_>>(), vec!["F32"]);
    assert!(found.tensor_count > 50, "{}", found.tensor_count);
    let names: Vec<String> = found
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into())
        .collect();
    assert_eq!(
        names,
        [
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
}

#[test]
fn every_broken_directory_is_one_diagnostic_naming_file_and_tensor() {
    type Breakage = fn(&Path);
    let cases: Vec<(&str, Breakage)> = vec![
        ("missing_config", |d| {
            std::fs::remove_file(d.join("config.json")).unwrap()
        }),
        ("wrong_model_type", |d| {
            let text = std::fs::read_to_string(d.join("config.json")).unwrap();
            let text = text.replacen("\"model_type\": \"mllama\"", "\"model_type\": \"llava\"", 1);
            std::fs::write(d.join("config.json"), text).unwrap();
        }),
        ("missing_weights", |d| {
            std::fs::remove_file(d.join("model.safetensors")).unwrap()
        }),
        ("missing_tensor", |d| {
            edit_weights(d, |t| {
                t.remove("language_model.model.layers.3.cross_attn.k_norm.weight")
                    .unwrap();
            })
        }),
        ("misshaped_and_unexpected_tensors", |d| {
            edit_weights(d, |t| {
                let (shape, data) = t.remove("multi_modal_projector.bias").unwrap();
                let half = shape[0] / 2;
                t.insert(
                    "multi_modal_projector.bias".into(),
                    (vec![half], data[..half * 4].to_vec()),
                );
                t.insert("vision_model.extra.weight".into(), (vec![2], vec![0; 8]));
            })
        }),
        ("truncated_weights", |d| {
            let path = d.join("model.safetensors");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        }),
        ("missing_shard", |d| {
            std::fs::write(
                d.join("model.safetensors.index.json"),
                r#"{"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}"#,
            )
            .unwrap();
        }),
        ("tokenizer_without_image_token", |d| {
            let text = std::fs::read_to_string(d.join("tokenizer.json")).unwrap();
            std::fs::write(
                d.join("tokenizer.json"),
                text.replace("<|image|>", "<|picture|>"),
            )
            .unwrap();
        }),
        ("missing_tokenizer", |d| {
            std::fs::remove_file(d.join("tokenizer.json")).unwrap()
        }),
        ("preprocessor_of_another_model", |d| {
            let text = std::fs::read_to_string(d.join("preprocessor_config.json")).unwrap();
            std::fs::write(
                d.join("preprocessor_config.json"),
                text.replace("\"max_image_tiles\": 4", "\"max_image_tiles\": 6"),
            )
            .unwrap();
        }),
        ("template_that_does_not_parse", |d| {
            std::fs::write(d.join("chat_template.jinja"), "{% for m in messages %}{{ m").unwrap();
        }),
    ];
    for (name, breakage) in cases {
        let dir = model_dir();
        breakage(dir.path());
        insta::assert_snapshot!(name, rendered(dir.path()));
    }
}
