//! The file sources through the real engine: fixtures (PNG, JPEG, truncated PNG, JSONL, JSON,
//! parquet with a struct image column) are written into a tempdir, a one-node pipeline is
//! planned with the real registry and run against a fresh cache, and the output frame is read
//! back from the cache.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{ImageFormat, Rgb, RgbImage};
use judgeflow_engine::cache::Cache;
use judgeflow_engine::exec::{self, RunOptions};
use judgeflow_engine::op::{read_parquet, write_parquet};
use judgeflow_engine::progress::ProgressHub;
use judgeflow_engine::{Error, cli};
use judgeflow_schemas::columns;
use polars::prelude::*;
use serde_json::json;

struct Fixture {
    dir: tempfile::TempDir,
    runs: AtomicUsize,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            runs: AtomicUsize::new(0),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn jsonl(&self, name: &str, lines: &[String]) -> PathBuf {
        self.write(name, lines.join("\n") + "\n")
    }

    /// Runs a one-node pipeline `[nodes.src]` with `body` as its table and returns its frame.
    /// Each run gets a fresh cache: a source's key covers its parameters, not the file's bytes,
    /// and fixtures change between runs.
    fn run(&self, body: &str) -> Result<DataFrame, Error> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let pipeline = self.write(
            &format!("pipeline{n}.toml"),
            format!("[pipeline]\nname = \"sources\"\nseed = 11\n\n[nodes.src]\nop = \"source\"\n{body}\n"),
        );
        let plan = cli::load(&pipeline, &judgeflow_operators::registry(), &[])?;
        let cache = Cache::open(self.path(&format!("cache{n}")))?;
        let reports = exec::run(
            &plan,
            &cache,
            &RunOptions { jobs: 1, gpus: 1 },
            &ProgressHub::hidden(),
        )?;
        let node = &plan.graph[plan.order[0]];
        let key = reports[0].key.clone().expect("a node that ran has a key");
        let (_, file, _) =
            exec::output_file(&cache, &key, node, None).expect("the node has a frame output");
        read_parquet(&file)
    }
}

fn image_bytes(seed: u8, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(16, 12, |x, y| Rgb([seed, (x * 13) as u8, (y * 17) as u8]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn png(seed: u8) -> Vec<u8> {
    image_bytes(seed, ImageFormat::Png)
}

fn jpeg(seed: u8) -> Vec<u8> {
    image_bytes(seed, ImageFormat::Jpeg)
}

/// A PNG cut off halfway: its signature and header are intact, so only decoding finds it.
fn truncated_png() -> Vec<u8> {
    let mut bytes = png(99);
    bytes.truncate(bytes.len() / 2);
    bytes
}

fn strs(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    columns::optional_strings(df, col).unwrap()
}

fn strings(df: &DataFrame, col: &str) -> Vec<String> {
    strs(df, col)
        .into_iter()
        .map(|s| s.expect("no nulls"))
        .collect()
}

fn count(values: &[String], want: &str) -> usize {
    values.iter().filter(|v| *v == want).count()
}

/// The operator's diagnostic inside the engine's `NodeFailed`: its code and its message.
fn node_failure(err: Error) -> (String, String) {
    match err {
        Error::NodeFailed { cause, .. } => (
            cause.code().map(|c| c.to_string()).unwrap_or_default(),
            cause.to_string(),
        ),
        other => panic!("expected a node failure, got {other:?}"),
    }
}

fn lit(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Good and bad prompt lines, in that order of ids: p1, 2, p3, p4 are good.
fn prompt_fixture(f: &Fixture) -> PathBuf {
    f.write("data/a.png", png(1));
    f.write("data/b.jpg", jpeg(2));
    f.write("data/sub/c.png", png(3));
    f.write("data/trunc.png", truncated_png());
    let absolute = f.write("elsewhere/d.png", png(4));
    f.jsonl(
        "data/prompts.jsonl",
        &[
            json!({"id": "p1", "image": "a.png", "prompt": "What colour is it?", "answer": "red", "task": "color"}),
            json!({"id": 2, "image": "b.jpg", "prompt": "Describe the picture."}),
            json!({"id": "p3", "image": "sub/c.png", "prompt": "How many?", "answer": 3, "open": true}),
            json!({"id": "p4", "image": absolute.to_str().unwrap(), "prompt": "Where?", "extra": [1, 2]}),
        ]
        .iter()
        .map(|v| v.to_string())
        .chain([
            String::new(),
            r#"{"id": "broken", "image": "a.png", "#.to_string(),
            json!({"id": "no-prompt", "image": "a.png"}).to_string(),
            json!({"id": "trunc", "image": "trunc.png", "prompt": "?"}).to_string(),
            json!({"id": "gone", "image": "missing.png", "prompt": "?"}).to_string(),
            json!({"id": "p1", "image": "a.png", "prompt": "again"}).to_string(),
            json!({"id": "typed", "image": "a.png", "prompt": "?", "open": "yes"}).to_string(),
        ])
        .collect::<Vec<_>>(),
    )
}

#[test]
fn jsonl_prompts_keep_good_rows_and_fill_defaults() {
    let f = Fixture::new();
    let path = prompt_fixture(&f);
    let df = f
        .run(&format!(
            "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap();
    assert_eq!(strings(&df, "prompt_id"), ["p1", "2", "p3", "p4"]);
    assert_eq!(
        strs(&df, "gold_answer"),
        [Some("red".to_string()), None, Some("3".to_string()), None]
    );
    assert_eq!(
        strings(&df, "task"),
        ["color", "unknown", "unknown", "unknown"]
    );
    let open: Vec<bool> = columns::bools(&df, "open")
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    // Default: open exactly when there is no answer; p3 says so explicitly despite its answer.
    assert_eq!(open, [false, true, true, true]);
    assert_eq!(strings(&df, "source"), ["prompts"; 4]);
    let images = columns::binaries(&df, "image").unwrap();
    // Bytes pass through untouched, JPEG stays JPEG.
    assert_eq!(images, [png(1), jpeg(2), png(3), png(4)]);
}

#[test]
fn jsonl_bad_rows_fail_the_node_naming_ids_and_lines() {
    let f = Fixture::new();
    let path = prompt_fixture(&f);
    let err = f
        .run(&format!(
            "kind = \"jsonl\"\npath = {}\nsource = \"mine\"",
            lit(&path)
        ))
        .unwrap_err();
    let (code, message) = node_failure(err);
    assert_eq!(code, "judgeflow::source::bad_rows");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("6 of 10 rows are bad"), "{message}");
    for needle in [
        "line 6: bad JSON",
        "line 7 (id `no-prompt`): `prompt` is missing",
        "line 8 (id `trunc`)",
        "does not decode",
        "line 9 (id `gone`): cannot read image",
        "line 10 (id `p1`): duplicate id (first on line 1)",
        "line 11 (id `typed`): `open` is a string, not a boolean",
    ] {
        assert!(
            message.contains(needle),
            "missing {needle:?} in:\n{message}"
        );
    }
}

#[test]
fn a_truncated_png_alone_is_a_bad_row() {
    let f = Fixture::new();
    f.write("t.png", truncated_png());
    let path = f.jsonl(
        "one.jsonl",
        &[json!({"id": "only", "image": "t.png", "prompt": "?"}).to_string()],
    );
    let (code, message) = node_failure(
        f.run(&format!("kind = \"jsonl\"\npath = {}", lit(&path)))
            .unwrap_err(),
    );
    assert_eq!(code, "judgeflow::source::bad_rows");
    assert!(
        message.contains("(id `only`)") && message.contains("Png image does not decode"),
        "{message}"
    );
    // Skipping it leaves nothing, which is its own error.
    let (code, _) = node_failure(
        f.run(&format!(
            "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap_err(),
    );
    assert_eq!(code, "judgeflow::source::empty");
}

/// One VL-RewardBench row: the preferred answer says `good <id>`, the other `bad <id>`.
struct Vl {
    id: &'static str,
    source: Option<&'static str>,
    preferred_first: bool,
    bytes: Option<Vec<u8>>,
    path: Option<&'static str>,
}

fn vl(id: &'static str, source: Option<&'static str>) -> Vl {
    Vl {
        id,
        source,
        preferred_first: true,
        bytes: Some(png(7)),
        path: None,
    }
}

fn vl_responses(v: &Vl) -> [String; 2] {
    let (good, bad) = (format!("good {}", v.id), format!("bad {}", v.id));
    if v.preferred_first {
        [good, bad]
    } else {
        [bad, good]
    }
}

/// The HF layout: `image` is a struct {bytes, path} as the `datasets` Image feature writes it.
fn vl_parquet(f: &Fixture, rows: &[Vl]) -> PathBuf {
    let n = rows.len();
    let lists = |items: Vec<Series>| Series::new("x".into(), items);
    let response = lists(
        rows.iter()
            .map(|v| Series::new("".into(), vl_responses(v)))
            .collect(),
    );
    let ranking = lists(
        rows.iter()
            .map(|v| {
                Series::new(
                    "".into(),
                    if v.preferred_first { [0i64, 1] } else { [1, 0] },
                )
            })
            .collect(),
    );
    let bytes = Series::new(
        "bytes".into(),
        rows.iter()
            .map(|v| v.bytes.clone())
            .collect::<Vec<Option<Vec<u8>>>>(),
    );
    let paths = Series::new(
        "path".into(),
        rows.iter().map(|v| v.path).collect::<Vec<_>>(),
    );
    let image = StructChunked::from_series("image".into(), n, [bytes, paths].iter())
        .unwrap()
        .into_series();
    let mut df = DataFrame::new(
        n,
        vec![
            Series::new("id".into(), rows.iter().map(|v| v.id).collect::<Vec<_>>()).into(),
            Series::new(
                "query".into(),
                rows.iter()
                    .map(|v| format!("q {}", v.id))
                    .collect::<Vec<_>>(),
            )
            .into(),
            response.with_name("response".into()).into(),
            image.into(),
            ranking.with_name("human_ranking".into()).into(),
            Series::new(
                "query_source".into(),
                rows.iter().map(|v| v.source).collect::<Vec<_>>(),
            )
            .into(),
        ],
    )
    .unwrap();
    let path = f.path("vl/test-00000-of-00001.parquet");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_parquet(&path, &mut df).unwrap();
    path
}

/// 24 rows across the official subsets (ids as in the release), plus one fallback by
/// `query_source`, one `[1, 0]` ranking, one path-only image, one repeated id, and three bad rows.
fn vl_rows(f: &Fixture) -> Vec<Vl> {
    f.write("vl/imgs/side.jpg", jpeg(8));
    let mut rows = vec![
        vl("RLAIF-V-14", Some("COCO")),
        vl("RLAIF-V-276", Some("TextVQA")),
        vl("RLHF-V-3", Some("coco")),
        vl(
            "hallucination_pair-1003",
            Some("POVID_preference_data_for_VLLMs"),
        ),
        vl("hallucination_pair-1004", Some("POVID")),
        vl("mathverse_2279", None),
        vl("mathverse_2279", None),
        vl("mmmu_pro_test_Marketing_150", None),
        vl("wildvision-battle-9", Some("wildvision-battle")),
        vl("LRVInstruction-000000007746", Some("LRVInstruction")),
        vl(
            "jailbreak-typo-HateSpeech-70",
            Some("jailbreak-typo-HateSpeech"),
        ),
        vl("custom-1", Some("RLAIF-V")),
        vl("custom-2", Some("MMMU-Pro")),
    ];
    rows.push(Vl {
        preferred_first: false,
        ..vl("RLHF-V-77", Some("vqav2"))
    });
    rows.push(Vl {
        bytes: None,
        path: Some("imgs/side.jpg"),
        ..vl("wildvision-battle-10", None)
    });
    for i in 0..9 {
        rows.push(vl(
            [
                "RLAIF-V-100",
                "RLAIF-V-101",
                "RLAIF-V-102",
                "mathverse_5",
                "mathverse_6",
                "svit-complex-1",
                "politics-Gov-2",
                "RLHF-V-8",
                "hallucination_pair-9",
            ][i],
            None,
        ));
    }
    rows.push(vl("mystery-1", Some("COCO")));
    rows.push(Vl {
        bytes: Some(truncated_png()),
        ..vl("RLAIF-V-666", None)
    });
    rows.push(Vl {
        bytes: None,
        ..vl("RLAIF-V-667", None)
    });
    rows
}

fn check_vl_frame(df: &DataFrame) {
    let ids = strings(df, "pair_id");
    assert_eq!(ids.len(), 24);
    assert!(
        ids.contains(&"mathverse_2279".to_string())
            && ids.contains(&"mathverse_2279#2".to_string())
    );
    let dims = strings(df, "dimension");
    assert_eq!(count(&dims, "hallucination"), 12);
    assert_eq!(count(&dims, "reasoning"), 6);
    assert_eq!(count(&dims, "general"), 6);
    let at = |id: &str| ids.iter().position(|x| x == id).unwrap();
    assert_eq!(dims[at("custom-1")], "hallucination");
    assert_eq!(dims[at("custom-2")], "reasoning");
    assert_eq!(dims[at("jailbreak-typo-HateSpeech-70")], "general");
    assert_eq!(
        strings(df, "subset")[at("hallucination_pair-1003")],
        "povid"
    );

    // The preferred answer sits where `better` points, and exactly half the pairs say A.
    let better = strings(df, "better");
    assert_eq!(count(&better, "A"), 12);
    let (a, b) = (strings(df, "answer_a"), strings(df, "answer_b"));
    for i in 0..ids.len() {
        let (chosen, rejected) = if better[i] == "A" {
            (&a[i], &b[i])
        } else {
            (&b[i], &a[i])
        };
        assert!(
            chosen.starts_with("good ") && rejected.starts_with("bad "),
            "{}",
            ids[i]
        );
    }
    assert!(strings(df, "source").iter().all(|s| s == "vlrewardbench"));
}

#[test]
fn vlrewardbench_parquet_with_struct_images() {
    let f = Fixture::new();
    let path = vl_parquet(&f, &vl_rows(&f));
    let node = format!(
        "kind = \"vlrewardbench\"\npath = {}\non_error = \"skip\"",
        lit(&path)
    );
    let df = f.run(&node).unwrap();
    check_vl_frame(&df);
    let side = df
        .column("image")
        .unwrap()
        .binary()
        .unwrap()
        .get(
            strings(&df, "pair_id")
                .iter()
                .position(|x| x == "wildvision-battle-10")
                .unwrap(),
        )
        .unwrap()
        .to_vec();
    assert_eq!(
        side,
        jpeg(8),
        "a struct image with only a path is read under image_root"
    );

    // The order is the seed's: the same seed repeats it, another seed changes it.
    let better = strings(&df, "better");
    assert_eq!(strings(&f.run(&node).unwrap(), "better"), better);
    assert_ne!(
        strings(&f.run(&format!("{node}\nseed = 12345")).unwrap(), "better"),
        better
    );

    let (code, message) = node_failure(
        f.run(&format!("kind = \"vlrewardbench\"\npath = {}", lit(&path)))
            .unwrap_err(),
    );
    assert_eq!(code, "judgeflow::source::bad_rows");
    assert!(message.contains("3 of 27 rows are bad"), "{message}");
    assert!(
        message.contains("row 25 (id `mystery-1`): unknown source"),
        "{message}"
    );
    assert!(
        message.contains("row 26 (id `RLAIF-V-666`): the Png image does not decode"),
        "{message}"
    );
    assert!(
        message.contains("row 27 (id `RLAIF-V-667`): `image` has neither bytes nor a path"),
        "{message}"
    );
}

#[test]
fn vlrewardbench_github_jsonl_layout() {
    let f = Fixture::new();
    let rows = vl_rows(&f);
    let mut lines = Vec::new();
    for (i, v) in rows.iter().enumerate() {
        // The GitHub release keeps images under images/<subset>/ and names them in `image_path`.
        let rel = match (&v.bytes, v.path) {
            (_, Some(p)) => p.to_string(),
            (Some(bytes), None) => {
                let name = format!("images/misc/{i}.png");
                f.write(&format!("vl/{name}"), bytes);
                name
            }
            (None, None) => "images/misc/absent.png".to_string(),
        };
        let mut row = json!({
            "id": v.id,
            "image_path": rel,
            "query": format!("q {}", v.id),
            "response": vl_responses(v),
            "human_ranking": if v.preferred_first { [0, 1] } else { [1, 0] },
        });
        if let Some(s) = v.source {
            row["query_source"] = json!(s);
        }
        lines.push(row.to_string());
    }
    // Unknown id prefix and query source, but the image directory names the subset.
    f.write("vl/images/vlfeedback/x.png", png(5));
    let mut extra = json!({
        "id": "feedback-1", "image_path": "images/vlfeedback/x.png", "query": "q",
        "response": ["good feedback-1", "bad feedback-1"], "human_ranking": [0, 1], "query_source": "svit-x",
    });
    lines.push(extra.to_string());
    extra["human_ranking"] = json!([0, 0]);
    extra["id"] = json!("tied-1");
    lines.push(extra.to_string());
    let path = f.jsonl("vl/data.jsonl", &lines);

    let df = f
        .run(&format!(
            "kind = \"vlrewardbench\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap();
    let ids = strings(&df, "pair_id");
    assert_eq!(ids.len(), 25);
    let dims = strings(&df, "dimension");
    assert_eq!(
        dims[ids.iter().position(|x| x == "feedback-1").unwrap()],
        "general"
    );
    assert_eq!(count(&dims, "general"), 7);

    let (_, message) = node_failure(
        f.run(&format!("kind = \"vlrewardbench\"\npath = {}", lit(&path)))
            .unwrap_err(),
    );
    assert!(
        message.contains("line 29 (id `tied-1`): `human_ranking` is [Some(0), Some(0)]"),
        "{message}"
    );
}

#[test]
fn vlrewardbench_parquet_without_the_release_columns_is_a_layout_error() {
    let f = Fixture::new();
    let path = f.path("wrong.parquet");
    write_parquet(&path, &mut df!("id" => ["a"], "question" => ["q"]).unwrap()).unwrap();
    let (code, message) = node_failure(
        f.run(&format!("kind = \"vlrewardbench\"\npath = {}", lit(&path)))
            .unwrap_err(),
    );
    assert_eq!(code, "judgeflow::source::layout");
    assert!(message.contains("column `query` is missing"), "{message}");
}

fn mm(id: &str, image: &str, better: &str, category: &str) -> serde_json::Value {
    json!({
        "ID": id, "Text": format!("q {id}"), "Image": image,
        "Output1": format!("one {id}"), "Output2": format!("two {id}"),
        "Better": better, "Category": category,
    })
}

#[test]
fn mmrewardbench_release_array_keeps_order_and_categories() {
    let f = Fixture::new();
    f.write("mm/images/nocaps/1.jpg", jpeg(1));
    f.write("mm/images/pairs/2.png", png(2));
    f.write("mm/images/mathvista/3.jpg", jpeg(3));
    f.write("mm/images/EMMA-Coding/4_0.png", png(4));
    let mut nested = mm("vqa_5", "images/nocaps/1.jpg", "Output1", "");
    nested.as_object_mut().unwrap().remove("Category");
    nested["Meta"] = json!({"Category": "vqa"});
    let mut no_text = mm(
        "nocaps_8",
        "images/nocaps/1.jpg",
        "Output1",
        "open_generation/correctness_task",
    );
    no_text["Text"] = json!("");
    let data = json!([
        mm(
            "nocaps_13062",
            "images/nocaps/1.jpg",
            "Output2",
            "open_generation/correctness_task"
        ),
        mm("PAIRS_2", "images/pairs/2.png", "Output1", "safety"),
        mm(
            "mathvista_3",
            "images/mathvista/3.jpg",
            "Output2",
            "reasoning"
        ),
        mm(
            "EMMA-Coding_4",
            "images/EMMA-Coding/4_0.png",
            "Output1",
            "reasoning"
        ),
        nested,
        mm("hateful_6", "images/hateful/6.png", "Output1", "safety"),
        mm("odd_7", "images/nocaps/1.jpg", "Output3", "knowledge"),
        no_text,
    ]);
    let path = f.write(
        "mm/all_data.json",
        serde_json::to_string_pretty(&data).unwrap(),
    );

    let df = f
        .run(&format!(
            "kind = \"mmrewardbench\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap();
    assert_eq!(
        strings(&df, "pair_id"),
        [
            "nocaps_13062",
            "PAIRS_2",
            "mathvista_3",
            "EMMA-Coding_4",
            "vqa_5"
        ]
    );
    assert_eq!(strings(&df, "better"), ["B", "A", "B", "A", "A"]);
    assert_eq!(strings(&df, "answer_a")[0], "one nocaps_13062");
    assert_eq!(
        strings(&df, "dimension"),
        [
            "open_generation/correctness_task",
            "safety",
            "reasoning",
            "reasoning",
            "vqa"
        ]
    );
    assert_eq!(
        strings(&df, "subset"),
        [
            "open_generation/correctness_task",
            "safety/bias",
            "reasoning/math",
            "reasoning/coding",
            "vqa"
        ]
    );

    let (_, message) = node_failure(
        f.run(&format!("kind = \"mmrewardbench\"\npath = {}", lit(&path)))
            .unwrap_err(),
    );
    assert!(message.contains("3 of 8 rows are bad"), "{message}");
    assert!(
        message.contains("row 6 (id `hateful_6`): cannot read image"),
        "{message}"
    );
    assert!(
        message.contains("row 7 (id `odd_7`): `Better` is `Output3`"),
        "{message}"
    );
    assert!(
        message.contains("row 8 (id `nocaps_8`): `Text` is empty"),
        "{message}"
    );
}

#[test]
fn mmrewardbench_jsonl_shuffled_is_balanced() {
    let f = Fixture::new();
    f.write("img.png", png(9));
    let lines: Vec<String> = (0..10)
        .map(|i| mm(&format!("knowledge_{i}"), "img.png", "Output1", "knowledge").to_string())
        .collect();
    let path = f.jsonl("mm.jsonl", &lines);
    let node = format!("kind = \"mmrewardbench\"\npath = {}", lit(&path));
    assert_eq!(strings(&f.run(&node).unwrap(), "better"), ["A"; 10]);
    let df = f.run(&format!("{node}\nshuffle = true")).unwrap();
    let better = strings(&df, "better");
    assert_eq!(count(&better, "A"), 5);
    let (a, b) = (strings(&df, "answer_a"), strings(&df, "answer_b"));
    for i in 0..10 {
        let chosen = if better[i] == "A" { &a[i] } else { &b[i] };
        assert!(chosen.starts_with("one "));
    }
}

/// Plans `body` as `[nodes.src]` against one persistent cache, for freshness across edits.
fn status_of_src(f: &Fixture, body: &str, cache: &Path) -> judgeflow_engine::exec::Status {
    let pipeline = f.write(
        "persistent.toml",
        format!(
            "[pipeline]\nname = \"sources\"\nseed = 11\n\n[nodes.src]\nop = \"source\"\n{body}\n"
        ),
    );
    let plan = cli::load(&pipeline, &judgeflow_operators::registry(), &[]).unwrap();
    let cache = Cache::open(cache).unwrap();
    exec::status(&plan, &cache).unwrap().remove(0).1
}

fn run_src(f: &Fixture, body: &str, cache: &Path) -> Result<(), Error> {
    let pipeline = f.write(
        "persistent.toml",
        format!(
            "[pipeline]\nname = \"sources\"\nseed = 11\n\n[nodes.src]\nop = \"source\"\n{body}\n"
        ),
    );
    let plan = cli::load(&pipeline, &judgeflow_operators::registry(), &[])?;
    let cache = Cache::open(cache)?;
    exec::run(
        &plan,
        &cache,
        &RunOptions { jobs: 1, gpus: 1 },
        &ProgressHub::hidden(),
    )
    .map(|_| ())
}

#[test]
fn a_line_that_is_not_utf8_keeps_the_other_rows_images_in_the_key() {
    let f = Fixture::new();
    f.write("a.png", png(1));
    f.write("b.png", png(2));
    let mut bytes = Vec::new();
    for (id, image) in [("a", "a.png"), ("b", "b.png")] {
        bytes.extend(
            json!({"id": id, "image": image, "prompt": "?"})
                .to_string()
                .bytes(),
        );
        bytes.push(b'\n');
    }
    bytes.extend(b"{\"id\": \"bad\", \"image\": \"a.png\", \"prompt\": \"\xff\"}\n");
    let path = f.write("mixed.jsonl", &bytes);
    let body = format!(
        "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
        lit(&path)
    );
    let cache = f.path("persistent-cache");
    run_src(&f, &body, &cache).unwrap();
    assert!(matches!(
        status_of_src(&f, &body, &cache),
        judgeflow_engine::exec::Status::Fresh { .. }
    ));
    // Replacing an image a kept row uses must make the source dirty, bad line or not.
    f.write("b.png", png(3));
    match status_of_src(&f, &body, &cache) {
        judgeflow_engine::exec::Status::Dirty { why, .. } => assert!(
            why.iter().any(|w| matches!(
                w,
                judgeflow_engine::dirty::DirtyReason::FileChanged { path } if path.ends_with("b.png")
            )),
            "{why:?}"
        ),
        other => panic!("the old image would be served: {other:?}"),
    }
}

#[test]
fn a_data_file_that_is_a_device_is_refused_not_read() {
    let f = Fixture::new();
    let body = "kind = \"jsonl\"\npath = \"/dev/zero\"";
    let cache = f.path("dev-cache");
    // Planning hashes nothing it would have to read without end...
    assert!(matches!(
        status_of_src(&f, body, &cache),
        judgeflow_engine::exec::Status::Dirty { .. }
    ));
    // ... and the run refuses the file with the reason.
    let err = run_src(&f, body, &cache).unwrap_err();
    let text = cli::render(&err, 100, false);
    assert!(
        text.contains("cannot read `/dev/zero`")
            && text.contains("a character device, not a regular file"),
        "{text}"
    );
}

/// A PNG whose header says `width`×`height` greyscale, followed by a stub of image data: the
/// size check must come from the header, before anything is decoded.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x63, 0x00, 0x00]);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn images_that_are_not_regular_files_or_too_large_are_bad_rows_not_hangs() {
    let f = Fixture::new();
    f.write("ok.png", png(5));
    f.write("huge.png", png_header_only(20_000, 20_000));
    let fifo = f.path("fifo.png");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let looped = f.path("loop");
    std::fs::create_dir(&looped).unwrap();
    std::os::unix::fs::symlink(&looped, looped.join("again")).unwrap();
    let path = f.jsonl(
        "hazards.jsonl",
        &[
            json!({"id": "ok", "image": "ok.png", "prompt": "?"}),
            json!({"id": "fifo", "image": "fifo.png", "prompt": "?"}),
            json!({"id": "zero", "image": "/dev/zero", "prompt": "?"}),
            json!({"id": "loop", "image": "loop", "prompt": "?"}),
            json!({"id": "huge", "image": "huge.png", "prompt": "?"}),
        ]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>(),
    );
    let err = f
        .run(&format!("kind = \"jsonl\"\npath = {}", lit(&path)))
        .unwrap_err();
    let (code, message) = node_failure(err);
    assert_eq!(code, "judgeflow::source::bad_rows");
    for needle in [
        "(id `fifo`): cannot read image",
        "a FIFO, not a regular file",
        "(id `zero`): cannot read image `/dev/zero`: it is a character device",
        "(id `loop`): cannot read image",
        "a directory, not a regular file",
        "(id `huge`)",
        "20000×20000 pixels; the limit is 48000000 pixels",
    ] {
        assert!(
            message.contains(needle),
            "missing {needle:?} in:\n{message}"
        );
    }
    let df = f
        .run(&format!(
            "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap();
    assert_eq!(strings(&df, "prompt_id"), ["ok"]);
}
