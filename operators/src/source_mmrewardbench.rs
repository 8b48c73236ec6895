//! `op = "source", kind = "mmrewardbench"`: Multimodal RewardBench (arXiv 2502.14191) as a BENCH
//! frame.
//!
//! The release (github.com/facebookresearch/multimodal_rewardbench) is `data/all_data.json`, a
//! JSON array written by its `scripts/0_download_data.py`, which also downloads the images into
//! `data/images/<dataset>/…` and fills in the `Text` of rows whose prompt comes from a
//! third-party dataset. A JSONL file with the same objects is read too (the first non-blank
//! byte tells: `[` is an array). Each object has `ID`, `Text`, `Image` (path relative to
//! `image_root`, default: the file's directory, as the release's `--image-folder data`),
//! `Output1`, `Output2`, `Better` (`"Output1"` / `"Output2"`) and its category, either flat
//! (`Category`, as in the release) or nested (`Meta: {Category}`, as in the scorer's answer
//! files). Categories are kept as written (`open_generation/correctness_task`, `knowledge`,
//! `reasoning`, `safety`, `vqa`, …) and become `dimension`.
//!
//! The official scorer presents Output1 as A and does not swap, so neither does this source
//! unless `shuffle = true` (then exactly half of the pairs, ±1, get `better = "A"`, chosen with
//! the node's seed). Output columns beyond BENCH: `subset`, the scorer's finer split
//! (`safety/bias` for `PAIRS` ids, `safety/toxicity` for other safety rows, `reasoning/math` for
//! ids starting with `math`, `reasoning/coding` for other reasoning rows, else the category).

use crate::frames::frame_error;
use judgeflow_engine::{Port, RunContext, TypedOperator, operator_params};
use judgeflow_schemas::BENCH;
use serde_json::{Map, Value as Json};

use crate::images;
use crate::source_common::{
    At, BadRows, BenchFrame, Fields, FileParams, Files, balanced_labels, json_type, jsonl_rows,
    loose_id,
};

/// The Multimodal RewardBench source.
pub struct MmRewardBenchSource;

struct Row {
    at: At,
    id: String,
    text: String,
    image: String,
    outputs: [String; 2],
    /// Whether `Output1` is the better one.
    first_better: bool,
    category: String,
}

fn parse(f: &Fields<'_>, at: At) -> Result<Row, String> {
    let id = f.id("ID")?;
    let text = f.string("Text")?;
    if text.trim().is_empty() {
        // all_data_release.json leaves these empty; 0_download_data.py writes all_data.json.
        return Err(
            "`Text` is empty (read the all_data.json that the release's download script writes)"
                .into(),
        );
    }
    let image = f.string("Image")?.to_string();
    let outputs = [
        f.string("Output1")?.to_string(),
        f.string("Output2")?.to_string(),
    ];
    let first_better = match f.string("Better")? {
        "Output1" => true,
        "Output2" => false,
        other => return Err(format!("`Better` is `{other}`, not `Output1` or `Output2`")),
    };
    let category = match f.string("Category") {
        Ok(c) => c.to_string(),
        Err(flat) => match f.0.get("Meta") {
            Some(Json::Object(meta)) => Fields(meta)
                .string("Category")
                .map_err(|nested| format!("{flat}, and in `Meta` {nested}"))?
                .to_string(),
            Some(other) => return Err(format!("{flat}, and `Meta` is {}", json_type(other))),
            None => return Err(format!("{flat} (flat or under `Meta`)")),
        },
    };
    Ok(Row {
        at,
        id,
        text: text.to_string(),
        image,
        outputs,
        first_better,
        category,
    })
}

/// The scorer's finer split of safety and reasoning (`scripts/2_get_accuracy.py`).
fn subset(id: &str, category: &str) -> String {
    let id = id.to_lowercase();
    match category {
        "safety" if id.starts_with("pairs") => "safety/bias".into(),
        "safety" => "safety/toxicity".into(),
        "reasoning" if id.starts_with("math") => "reasoning/math".into(),
        "reasoning" => "reasoning/coding".into(),
        other => other.to_string(),
    }
}

/// The objects of the file, each with its position; a JSON array is all or nothing (a syntax
/// error leaves no row boundaries to trust), JSONL goes line by line.
fn objects(files: &Files, bad: &mut BadRows) -> miette::Result<Vec<(At, Map<String, Json>)>> {
    let bytes = files.read()?;
    let is_array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut out = Vec::new();
    if is_array {
        let items: Vec<Json> = serde_json::from_slice(&bytes).map_err(|e| {
            files.layout(
                "JSON array of examples",
                e.to_string(),
                "the file starts with `[` so it is read as one JSON array (the release's all_data.json)",
            )
        })?;
        for (i, item) in items.into_iter().enumerate() {
            let at = At::Row(i + 1);
            match item {
                Json::Object(map) => out.push((at, map)),
                other => bad.push(
                    at,
                    None,
                    format!("the element is {}, not an object", json_type(&other)),
                ),
            }
        }
    } else {
        for (line, parsed) in jsonl_rows(&bytes) {
            match parsed {
                Ok(map) => out.push((At::Line(line), map)),
                Err(why) => bad.push(At::Line(line), None, why),
            }
        }
    }
    Ok(out)
}

operator_params! {
    /// The Multimodal RewardBench source's parameters.
    pub struct MmRewardBenchParams {
        /// family member
        #[allow(dead_code)] // the engine reads it: it selects this operator
        kind: String [&["mmrewardbench"]],
        /// the release's data/all_data.json (JSON array) or a JSONL file of the same objects
        path: String,
        ..files: FileParams,
        /// randomise A/B order (balanced, seeded); false keeps Output1 as A like the official
        /// scorer
        shuffle: bool = false,
    }
}

impl TypedOperator for MmRewardBenchSource {
    type Params = MmRewardBenchParams;

    fn name(&self) -> &'static str {
        "source"
    }

    fn kind(&self) -> Option<&'static str> {
        Some("mmrewardbench")
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        "Multimodal RewardBench pairs (all_data.json or JSONL), dimension = category"
    }

    fn inputs(&self, _: &MmRewardBenchParams) -> Vec<Port> {
        Vec::new()
    }

    fn outputs(&self, _: &MmRewardBenchParams) -> Vec<Port> {
        vec![Port::frame("bench", &BENCH)]
    }

    fn external_inputs(&self, p: &MmRewardBenchParams) -> Vec<std::path::PathBuf> {
        crate::source_common::referenced_files(&Files::new(&p.path, &p.files))
    }
    fn run(&self, p: &MmRewardBenchParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let files = Files::new(&p.path, &p.files);
        let policy = p.files.on_error;
        let mut bad = BadRows::new();
        let mut rows = Vec::new();
        for (at, map) in objects(&files, &mut bad)? {
            match parse(&Fields(&map), at) {
                Ok(row) => rows.push(row),
                Err(why) => bad.push(at, loose_id(&map, &["ID", "id"]).as_deref(), why),
            }
        }

        let checked = images::par_map(
            rows.iter().map(|r| files.image_path(&r.image)).collect(),
            |p| images::load(&p),
        );
        let mut good = Vec::new();
        for (row, image) in rows.into_iter().zip(checked) {
            match image {
                Ok(bytes) => good.push((row, bytes)),
                Err(why) => bad.push(row.at, Some(&row.id), why),
            }
        }
        bad.settle(&files, ctx.node, policy, good.len())?;

        let n = good.len();
        let a_better = if p.shuffle {
            balanced_labels(n, ctx.seed)
        } else {
            good.iter().map(|(row, _)| row.first_better).collect()
        };
        let mut bench = BenchFrame::new();
        for ((row, bytes), a_wins) in good.into_iter().zip(a_better) {
            let [first, second] = row.outputs;
            let pair = if row.first_better {
                [first, second]
            } else {
                [second, first]
            };
            let split = subset(&row.id, &row.category);
            bench.push(
                &row.id,
                bytes,
                row.text,
                pair,
                a_wins,
                &row.category,
                &split,
            );
        }
        let mut frame = bench
            .finish("mmrewardbench")
            .map_err(frame_error(ctx.node, "building the bench frame"))?;
        ctx.write_frame("bench", &mut frame)?;
        Ok(())
    }
}
