//! `op = "source", kind = "vlrewardbench"`: VL-RewardBench (arXiv 2411.17451) as a BENCH frame.
//!
//! Two layouts of the 1,250-pair release are read:
//! - `parquet`: the Hugging Face release (`MMInstruction/VL-RewardBench`,
//!   `data/test-00000-of-00001.parquet`): `id`, `query`, `response` (list of 2 strings),
//!   `human_ranking` (list of 2 ints), `query_source`, and `image` as the `datasets` Image struct
//!   `{bytes, path}` (bytes win; a row with only a path reads it under `image_root`). A plain
//!   binary or string (path) `image` column is accepted too.
//! - `jsonl`: the GitHub release (`data/data.jsonl` of vl-rewardbench/VL_RewardBench): the same
//!   fields with the image as a path in `image_path` (`images/povid/….jpg`) or `image`, relative
//!   to `image_root` (default: the file's directory, as the release's `images_parent_dir`).
//!
//! `human_ranking` ranks the two responses: `[0, 1]` prefers the first, `[1, 0]` the second.
//! 1,245 of 1,250 rows prefer the first, so answers are put in random order: exactly half of the
//! pairs (±1) get `better = "A"`, chosen with the node's seed.
//!
//! Dimensions follow the official scorer (`cal.py` since its "fix povid" commits, and
//! lmms-eval's `vl_rewardbench` task), which goes by the id's prefix up to the first `-` or
//! `_`: `RLAIF` → rlaif-v, `RLHF` → rlhf-v, `hallucination` → povid (all hallucination);
//! `mathverse`, `mmmu` → reasoning; `wildvision` → general; everything else → vlfeedback
//! (general). That catch-all would hide a wrong file, so here "everything else" is spelled out
//! instead: the release's VLFeedback rows keep VLFeedback's own ids (`LRVInstruction-…`,
//! `svit-…`, `jailbreak-…`, `politics-…`). A row whose id prefix is unknown falls back to its
//! `query_source` (the HF card's names: WildVision, VLFeedback, POVID, RLAIF-V, RLHF-V,
//! MathVerse, MMMU-Pro; case and punctuation ignored), then to the subset directory in its image
//! path (the scorer's original rule); failing all three it is a bad row. On the GitHub release
//! this gives general 183, hallucination 749, reasoning 318, as in the paper.
//!
//! Some ids recur with different response pairs (18 in the release); `pair_id` gets `#2`, `#3`.
//! Output columns beyond BENCH: `subset` (the scorer's dataset name, e.g. `povid`).

use crate::frames::frame_error;
use judgeflow_engine::{Port, RunContext, TypedOperator, choice_enum, operator_params};
use judgeflow_schemas::BENCH;
use polars::prelude::*;
use serde_json::Value as Json;

use crate::images;
use crate::source_common::{
    At, BadRows, BenchFrame, Fields, FileParams, Files, SourceError, balanced_labels, json_type,
    jsonl_rows, loose_id,
};

/// The VL-RewardBench source.
pub struct VlRewardBenchSource;

/// Where a row's image is.
enum ImageRef {
    Bytes(Vec<u8>),
    Path(String),
}

/// One row as read, before its image is checked.
struct Raw {
    at: At,
    id: String,
    query: String,
    responses: [String; 2],
    /// Index of the preferred response.
    preferred: usize,
    query_source: Option<String>,
}

/// The official dataset names and their dimension.
const SUBSETS: &[(&str, &str)] = &[
    ("rlaif-v", "hallucination"),
    ("rlhf-v", "hallucination"),
    ("povid", "hallucination"),
    ("reasoning_tasks", "reasoning"),
    ("wildvision-battle", "general"),
    ("vlfeedback", "general"),
];

/// Id prefix (lowercase) → official dataset name.
const ID_PREFIXES: &[(&str, &str)] = &[
    ("rlaif", "rlaif-v"),
    ("rlhf", "rlhf-v"),
    ("hallucination", "povid"),
    ("mathverse", "reasoning_tasks"),
    ("mmmu", "reasoning_tasks"),
    ("wildvision", "wildvision-battle"),
    ("vlfeedback", "vlfeedback"),
    ("lrvinstruction", "vlfeedback"),
    ("svit", "vlfeedback"),
    ("jailbreak", "vlfeedback"),
    ("politics", "vlfeedback"),
];

/// `query_source` with case and punctuation removed → official dataset name. Prefixes, because
/// sources carry suffixes (`wildvision-battle`, `POVID_preference_data_for_VLLMs`).
const QUERY_SOURCES: &[(&str, &str)] = &[
    ("wildvision", "wildvision-battle"),
    ("vlfeedback", "vlfeedback"),
    ("povid", "povid"),
    ("rlaifv", "rlaif-v"),
    ("rlhfv", "rlhf-v"),
    ("mathverse", "reasoning_tasks"),
    ("mmmu", "reasoning_tasks"),
];

/// The official dataset name of a row (see the module docs for the order of evidence).
fn subset(id: &str, query_source: Option<&str>, image_path: Option<&str>) -> Option<&'static str> {
    let prefix = id.split(['-', '_']).next().unwrap_or(id).to_lowercase();
    let by_id = ID_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, s)| *s);
    let by_source = || {
        let norm: String = query_source?
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        QUERY_SOURCES
            .iter()
            .find(|(p, _)| norm.starts_with(p))
            .map(|(_, s)| *s)
    };
    let by_dir = || {
        image_path?.split(['/', '\\']).find_map(|part| {
            SUBSETS
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(part))
                .map(|(s, _)| *s)
        })
    };
    by_id.or_else(by_source).or_else(by_dir)
}

fn dimension(subset: &str) -> &'static str {
    SUBSETS
        .iter()
        .find(|(s, _)| *s == subset)
        .map_or("general", |(_, d)| d)
}

/// Index of the preferred response from a ranking, which must be `[0, 1]` or `[1, 0]`.
fn preferred(ranking: &[Option<i64>]) -> Result<usize, String> {
    match ranking {
        [Some(0), Some(1)] => Ok(0),
        [Some(1), Some(0)] => Ok(1),
        other => Err(format!(
            "`human_ranking` is {other:?}, not [0, 1] or [1, 0]"
        )),
    }
}

fn two_responses(items: Vec<Option<String>>) -> Result<[String; 2], String> {
    match <[Option<String>; 2]>::try_from(items) {
        Ok([Some(a), Some(b)]) => Ok([a, b]),
        Ok(_) => Err("`response` holds a null".into()),
        Err(items) => Err(format!("`response` has {} answers, not 2", items.len())),
    }
}

fn from_json(f: &Fields<'_>, at: At) -> Result<(Raw, ImageRef), String> {
    let id = f.id("id")?;
    let query = f.string("query")?.to_string();
    let responses = two_responses(
        f.array("response")?
            .iter()
            .map(|v| match v {
                Json::String(s) => Ok(Some(s.clone())),
                other => Err(format!(
                    "`response` holds {}, not strings",
                    json_type(other)
                )),
            })
            .collect::<Result<_, _>>()?,
    )?;
    let ranking: Vec<Option<i64>> = f.array("human_ranking")?.iter().map(Json::as_i64).collect();
    let preferred = preferred(&ranking)?;
    let query_source = f.opt_text("query_source")?;
    let key = f
        .first_of(&["image_path", "image"])
        .ok_or("neither `image_path` nor `image` is present")?;
    let image = ImageRef::Path(f.string(key)?.to_string());
    let raw = Raw {
        at,
        id,
        query,
        responses,
        preferred,
        query_source,
    };
    Ok((raw, image))
}

fn jsonl(files: &Files, bad: &mut BadRows) -> Result<Vec<(Raw, ImageRef)>, SourceError> {
    let bytes = files.read()?;
    let mut rows = Vec::new();
    for (line, parsed) in jsonl_rows(&bytes) {
        let at = At::Line(line);
        match parsed {
            Ok(map) => match from_json(&Fields(&map), at) {
                Ok(raw) => rows.push(raw),
                Err(why) => bad.push(at, loose_id(&map, &["id"]).as_deref(), why),
            },
            Err(why) => bad.push(at, None, why),
        }
    }
    Ok(rows)
}

/// The HF parquet layout. Column types are checked for the whole file (a mistyped column is a
/// wrong file, not a bad row); nulls and wrong list lengths are bad rows.
fn parquet(files: &Files, bad: &mut BadRows) -> Result<Vec<(Raw, ImageRef)>, SourceError> {
    const EXPECTED: &str = "VL-RewardBench parquet file";
    let help = "expected the Hugging Face release's columns: id, query, response, human_ranking, \
                query_source, image; for the GitHub data.jsonl use `layout = \"jsonl\"`";
    // A FIFO or a device named as the parquet file must be refused, not opened (it would block
    // or never end); `read` checks and bounds it.
    let file = std::io::Cursor::new(files.read()?);
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| files.layout(EXPECTED, format!("cannot read it as parquet: {e}"), help))?;
    let column = |name: &str| {
        df.column(name)
            .map_err(|_| files.layout(EXPECTED, format!("column `{name}` is missing"), help))
    };
    let mistyped = |name: &str, want: &str| {
        let got = df
            .column(name)
            .map(|c| c.dtype().to_string())
            .unwrap_or_default();
        files.layout(
            EXPECTED,
            format!("column `{name}` is {got}, not {want}"),
            help,
        )
    };
    let ids = column("id")?.str().map_err(|_| mistyped("id", "str"))?;
    let queries = column("query")?
        .str()
        .map_err(|_| mistyped("query", "str"))?;
    let responses = column("response")?
        .list()
        .map_err(|_| mistyped("response", "list[str]"))?;
    let ranking_col = column("human_ranking")?
        .cast(&DataType::List(Box::new(DataType::Int64)))
        .map_err(|_| mistyped("human_ranking", "list[int]"))?;
    let rankings = ranking_col
        .list()
        .map_err(|_| mistyped("human_ranking", "list[int]"))?;
    let sources = match df.column("query_source") {
        Ok(c) => Some(c.str().map_err(|_| mistyped("query_source", "str"))?),
        Err(_) => None,
    };
    let images = ImageColumn::new(column("image")?).map_err(|got| {
        files.layout(
            EXPECTED,
            format!("column `image` is {got}, not a struct {{bytes, path}}, binary or a path"),
            help,
        )
    })?;

    let mut rows = Vec::new();
    for i in 0..df.height() {
        let at = At::Row(i + 1);
        let id = ids.get(i).map(str::to_string);
        let row = || -> Result<(Raw, ImageRef), String> {
            let id = id.clone().ok_or("`id` is null")?;
            let query = queries.get(i).ok_or("`query` is null")?.to_string();
            let answers = responses.get_as_series(i).ok_or("`response` is null")?;
            let answers = answers
                .str()
                .map_err(|_| "`response` is not a list of strings")?;
            let responses = two_responses(answers.iter().map(|s| s.map(str::to_string)).collect())?;
            let ranking = rankings.get_as_series(i).ok_or("`human_ranking` is null")?;
            let ranking: Vec<Option<i64>> = ranking
                .i64()
                .map_err(|_| "`human_ranking` is not a list of integers")?
                .iter()
                .collect();
            let raw = Raw {
                at,
                id,
                query,
                responses,
                preferred: preferred(&ranking)?,
                query_source: sources.and_then(|s| s.get(i)).map(str::to_string),
            };
            Ok((raw, images.get(i)?))
        };
        match row() {
            Ok(raw) => rows.push(raw),
            Err(why) => bad.push(at, id.as_deref(), why),
        }
    }
    Ok(rows)
}

/// The image column of the parquet layout, in whichever of its forms the file has.
enum ImageColumn {
    Struct {
        bytes: Option<BinaryChunked>,
        path: Option<StringChunked>,
    },
    Bytes(BinaryChunked),
    Path(StringChunked),
}

impl ImageColumn {
    /// `Err` is the column's type, when it is none of the forms.
    fn new(col: &Column) -> Result<Self, String> {
        match col.dtype() {
            DataType::Struct(_) => {
                let fields = col.struct_().map_err(|e| e.to_string())?.fields_as_series();
                let field = |name: &str| fields.iter().find(|s| s.name().as_str() == name);
                let bytes = field("bytes").and_then(|s| s.binary().ok().cloned());
                let path = field("path").and_then(|s| s.str().ok().cloned());
                if bytes.is_none() && path.is_none() {
                    return Err(col.dtype().to_string());
                }
                Ok(ImageColumn::Struct { bytes, path })
            }
            DataType::Binary => Ok(ImageColumn::Bytes(
                col.binary().map_err(|e| e.to_string())?.clone(),
            )),
            DataType::String => Ok(ImageColumn::Path(
                col.str().map_err(|e| e.to_string())?.clone(),
            )),
            other => Err(other.to_string()),
        }
    }

    /// Row `i`'s image: embedded bytes if there are any, else its path.
    fn get(&self, i: usize) -> Result<ImageRef, String> {
        let (bytes, path) = match self {
            ImageColumn::Struct { bytes, path } => (
                bytes.as_ref().and_then(|b| b.get(i)),
                path.as_ref().and_then(|p| p.get(i)),
            ),
            ImageColumn::Bytes(b) => (b.get(i), None),
            ImageColumn::Path(p) => (None, p.get(i)),
        };
        match (bytes, path) {
            (Some(b), _) => Ok(ImageRef::Bytes(b.to_vec())),
            (None, Some(p)) if !p.is_empty() => Ok(ImageRef::Path(p.to_string())),
            _ => Err("`image` has neither bytes nor a path".into()),
        }
    }
}

choice_enum! {
    /// The release file's layout.
    pub enum Layout {
        Auto = "auto",
        Parquet = "parquet",
        Jsonl = "jsonl",
    }
}

operator_params! {
    /// The VL-RewardBench source's parameters.
    pub struct VlRewardBenchParams {
        /// family member
        #[allow(dead_code)] // the engine reads it: it selects this operator
        kind: String [&["vlrewardbench"]],
        /// the release file: HF `test-00000-of-00001.parquet` or GitHub `data.jsonl`
        path: String,
        ..files: FileParams,
        /// file layout; `auto` = parquet for a `.parquet` file, else JSONL
        layout: Layout = Layout::Auto,
    }
}

impl TypedOperator for VlRewardBenchSource {
    type Params = VlRewardBenchParams;

    fn name(&self) -> &'static str {
        "source"
    }

    fn kind(&self) -> Option<&'static str> {
        Some("vlrewardbench")
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        "VL-RewardBench pairs (HF parquet or GitHub JSONL) in seeded random A/B order"
    }

    fn inputs(&self, _: &VlRewardBenchParams) -> Vec<Port> {
        Vec::new()
    }

    fn outputs(&self, _: &VlRewardBenchParams) -> Vec<Port> {
        vec![Port::frame("bench", &BENCH)]
    }

    fn external_inputs(&self, p: &VlRewardBenchParams) -> Vec<std::path::PathBuf> {
        crate::source_common::referenced_files(&Files::new(&p.path, &p.files))
    }
    fn run(&self, p: &VlRewardBenchParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let files = Files::new(&p.path, &p.files);
        let policy = p.files.on_error;
        let is_parquet = match p.layout {
            Layout::Parquet => true,
            Layout::Jsonl => false,
            Layout::Auto => files
                .path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet")),
        };
        let mut bad = BadRows::new();
        let raws = if is_parquet {
            parquet(&files, &mut bad)?
        } else {
            jsonl(&files, &mut bad)?
        };

        let (mut rows, mut refs) = (Vec::new(), Vec::new());
        for (raw, image) in raws {
            let path = match &image {
                ImageRef::Path(p) => Some(p.as_str()),
                ImageRef::Bytes(_) => None,
            };
            match subset(&raw.id, raw.query_source.as_deref(), path) {
                Some(s) => {
                    rows.push((raw, s));
                    refs.push(image);
                }
                None => {
                    let why = format!(
                        "unknown source: neither the id prefix, `query_source` ({}) nor the image path \
                         names a VL-RewardBench subset",
                        raw.query_source.as_deref().unwrap_or("absent")
                    );
                    bad.push(raw.at, Some(&raw.id), why);
                }
            }
        }

        let checked = images::par_map(refs, |image| match image {
            ImageRef::Bytes(bytes) => images::validate(bytes),
            ImageRef::Path(p) => images::load(&files.image_path(&p)),
        });
        let mut good = Vec::new();
        for ((raw, subset), image) in rows.into_iter().zip(checked) {
            match image {
                Ok(bytes) => good.push((raw, subset, bytes)),
                Err(why) => bad.push(raw.at, Some(&raw.id), why),
            }
        }
        bad.settle(&files, ctx.node, policy, good.len())?;

        let a_better = balanced_labels(good.len(), ctx.seed);
        let mut bench = BenchFrame::new();
        for ((raw, subset, bytes), a_wins) in good.into_iter().zip(a_better) {
            let [first, second] = raw.responses;
            let pair = if raw.preferred == 0 {
                [first, second]
            } else {
                [second, first]
            };
            bench.push(
                &raw.id,
                bytes,
                raw.query,
                pair,
                a_wins,
                dimension(subset),
                subset,
            );
        }
        let mut frame = bench
            .finish("vlrewardbench")
            .map_err(frame_error(ctx.node, "building the bench frame"))?;
        ctx.write_frame("bench", &mut frame)?;
        Ok(())
    }
}
