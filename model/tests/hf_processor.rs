//! The chat template renderer and the image processor against transformers 5's own, on
//! fixtures made without torch by `scripts/make_processor_fixtures.py`: a Llama-3.2-layout
//! tokenizer with a Jinja chat template, and `MllamaImageProcessorPil` on pictures of many sizes
//! and aspect ratios under several tilings (1 to 16 tiles, tiny, tall, wide, transparent, grey).
//! The device fixtures (`hf_device_fixtures.rs`) hold the PIL outputs of the GPU machine's
//! Pillow, compared at 1e-5.

use std::path::{Path, PathBuf};

use judgeflow_model::chat::prompt_ids;
use judgeflow_model::chat_template::ChatTemplate;
use judgeflow_model::preprocess::{IMAGE_STD, PreprocessConfig, preprocess_bytes};
use judgeflow_model::tokenizer::JudgeTokenizer;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_processor")
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join(name)).unwrap()).unwrap()
}

#[test]
fn chat_template_renders_and_tokenizes_as_transformers() {
    let template = ChatTemplate::from_dir(&fixture())
        .unwrap()
        .expect("tokenizer_config.json holds a template");
    let tokenizer = JudgeTokenizer::from_file(fixture().join("tokenizer.json")).unwrap();
    let cases = json("chat.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 6);
    for (i, case) in cases.iter().enumerate() {
        let generation = case["add_generation_prompt"].as_bool().unwrap();
        let text = template.render(&case["messages"], generation).unwrap();
        assert_eq!(
            text,
            case["text"].as_str().unwrap(),
            "case {i}: rendered text"
        );
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tokenizer.encode(&text).unwrap(), ids, "case {i}: ids");
    }
}

/// The judge's prompt from the template equals the ids `chat::prompt_ids` assembles piece by
/// piece (the format every judgeflow checkpoint was trained on).
#[test]
fn template_prompt_equals_the_built_in_prompt() {
    let template = ChatTemplate::from_dir(&fixture()).unwrap().unwrap();
    let tokenizer = JudgeTokenizer::from_file(fixture().join("tokenizer.json")).unwrap();
    for question in [
        "Which answer is better?\n\nAnswer A: a red square.\nAnswer B: a blue circle.",
        "  leading and trailing spaces  ",
        "Ünïcödé 🙂",
    ] {
        assert_eq!(
            template.prompt_ids(&tokenizer, question).unwrap(),
            prompt_ids(&tokenizer, question).unwrap(),
            "{question:?}"
        );
    }
}

#[test]
fn a_template_that_raises_is_a_diagnostic_naming_the_file() {
    let template = ChatTemplate::from_dir(&fixture()).unwrap().unwrap();
    let messages = serde_json::json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]},
    ]);
    let err = template.render(&messages, true).unwrap_err().to_string();
    assert!(err.contains("tokenizer_config.json"), "{err}");
    assert!(
        err.contains("a system message cannot be combined with images"),
        "{err}"
    );
}

#[test]
fn image_processor_matches_transformers_on_every_size_and_tiling() {
    let bytes = std::fs::read(fixture().join("processor.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let f32s = |name: &str| -> Vec<f32> {
        let view = tensors.tensor(name).unwrap();
        view.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let i64s = |name: &str| -> Vec<i64> {
        let view = tensors.tensor(name).unwrap();
        view.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let meta = json("processor.json");
    let cases = meta["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    // Pillow 13 (which made these fixtures) runs the vertical resampling pass first for some
    // sizes; judgeflow keeps the horizontal-first order of earlier Pillow versions, so a pixel
    // may round to the neighbouring 8-bit value: one step after normalisation, in the channel
    // with the smallest std. Tiling, aspect-ratio ids and masks must be exact.
    assert!(
        meta["pillow"].as_str().is_some(),
        "processor.json names its Pillow"
    );
    let one_step = 1.0 / 255.0 / IMAGE_STD[1] + 1e-5;
    let mut grids = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let config = PreprocessConfig::new(
            case["tile_size"].as_u64().unwrap() as usize,
            case["max_image_tiles"].as_u64().unwrap() as usize,
        );
        let png = std::fs::read(fixture().join(format!("images/{name}.png"))).unwrap();
        let ours = preprocess_bytes(&png, &config).unwrap();
        let theirs = f32s(&format!("{name}.pixel_values"));
        assert_eq!(ours.pixel_values.len(), theirs.len(), "{name}: tiles");
        let worst = ours
            .pixel_values
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= one_step, "{name}: pixel values differ by {worst}");
        assert_eq!(
            vec![ours.aspect_ratio_id],
            i64s(&format!("{name}.aspect_ratio_ids")),
            "{name}: aspect-ratio id"
        );
        assert_eq!(
            ours.aspect_ratio_mask,
            i64s(&format!("{name}.aspect_ratio_mask")),
            "{name}: aspect-ratio mask"
        );
        assert_eq!(
            ours.num_tiles() as u64,
            case["num_tiles"].as_u64().unwrap(),
            "{name}: tiles"
        );
        grids.insert(ours.aspect_ratio);
    }
    // The fixture covers square, tall and wide grids, not only one tile.
    assert!(grids.len() >= 6, "grids covered: {grids:?}");
}
