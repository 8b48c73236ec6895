//! The benchmark file sources (VL-RewardBench, Multimodal RewardBench) through the real engine:
//! their release layouts written into a tempdir (parquet with a struct image column, JSONL, a
//! JSON array), a one-node pipeline run against a fresh cache, and the bench frame read back.

mod common;

use std::path::PathBuf;

// Named, not only globbed: polars' prelude has a `lit` too.
use common::lit;
use common::*;
use judgeflow_engine::op::write_parquet;
use polars::prelude::*;
use serde_json::json;

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
