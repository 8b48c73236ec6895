//! The reporter on hand-made frames: which files it writes, that they are real charts, and what
//! the page says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use judgeflow_engine::FrameSchema;
use judgeflow_engine::cli::ReportNode;
use judgeflow_engine::trace::TraceLine;
use judgeflow_report::{write_report, write_report_with_trace};
use polars::prelude::*;

const MAJORITY: &str = "vote.method=majority";
const ORACLE: &str = "vote.method=oracle";

fn write_frame(dir: &Path, name: &str, mut df: DataFrame) -> PathBuf {
    let path = dir.join(format!("{name}.parquet"));
    let file = std::fs::File::create(&path).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    path
}

/// A `metrics` frame: accuracies of `general`, `hallucination`, then `overall` and `macro`,
/// each with an interval of ± 0.1 (NaN stays NaN).
fn metrics(dir: &Path, name: &str, general: f64, hallucination: f64) -> PathBuf {
    metrics_seen(dir, name, general, hallucination, "scene")
}

fn metrics_seen(dir: &Path, name: &str, general: f64, hallucination: f64, image: &str) -> PathBuf {
    let overall = if hallucination.is_nan() {
        general
    } else {
        (general + hallucination) / 2.0
    };
    let acc = [general, hallucination, overall, overall];
    let df = df!(
        "dimension" => ["general", "hallucination", "overall", "macro"],
        "accuracy" => acc,
        // `f64::max` would turn NaN into the bound; an unknown accuracy has no interval.
        "accuracy_lo" => acc.map(|a| if a.is_nan() { a } else { (a - 0.1).max(0.0) }),
        "accuracy_hi" => acc.map(|a| if a.is_nan() { a } else { (a + 0.1).min(1.0) }),
        "correct" => [30i64, 0, 30, 30],
        "n" => [40i64, 0, 40, 40],
        "ties" => [1i64, 0, 1, 1],
        "unparseable" => [2i64, 3, 5, 5],
        "a_share" => [0.525, f64::NAN, 0.525, 0.525],
        "items" => [43i64, 3, 46, 46],
        "shorter_wins" => [0.48, 0.5, 0.49, 0.49],
        "longer_wins" => [0.52, 0.5, 0.51, 0.51],
        "shorter_wins_words" => [0.5, 0.5, 0.5, 0.5],
        "longer_wins_words" => [0.5, 0.5, 0.5, 0.5],
        "image" => [image; 4],
    )
    .unwrap();
    write_frame(dir, name, df)
}

fn kept(dir: &Path, name: &str, fraction: f64) -> PathBuf {
    let df = df!(
        "source" => ["scenes", "scenes", "total"],
        "kind" => ["hallucination", "reasoning", "total"],
        "pairs" => [10i64, 10, 20],
        "judgements" => [20i64, 20, 40],
        "kept" => [10i64, 14, 24],
        "kept_fraction" => [0.5, 0.7, fraction],
    )
    .unwrap();
    write_frame(dir, name, df)
}

fn loss(dir: &Path, name: &str) -> PathBuf {
    let steps: Vec<i64> = (1..=20).collect();
    let losses: Vec<f64> = steps.iter().map(|&s| 3.0 / (s as f64)).collect();
    let df = df!(
        "step" => steps.clone(),
        "loss" => losses,
        "lr" => vec![1e-4; 20],
        "tokens" => vec![100i64; 20],
        "grad_norm" => vec![1.0; 20],
        "seconds" => steps.iter().map(|&s| s as f64 * 0.1).collect::<Vec<_>>(),
    )
    .unwrap();
    write_frame(dir, name, df)
}

/// An `evaluate` node of the plain variant whose `metrics` frame is at `metrics`.
fn evaluation(name: &str, template: &str, iteration: Option<u32>, metrics: PathBuf) -> ReportNode {
    node(
        name,
        template,
        iteration,
        "evaluate",
        &[""],
        Some(("metrics", metrics)),
    )
}

fn node(
    name: &str,
    template: &str,
    iteration: Option<u32>,
    op: &str,
    variants: &[&str],
    output: Option<(&str, PathBuf)>,
) -> ReportNode {
    ReportNode {
        name: name.into(),
        template: template.into(),
        iteration,
        op: op.into(),
        kind: None,
        variants: variants.iter().map(|v| v.to_string()).collect(),
        seconds: output.as_ref().map(|_| 1.5),
        outputs: output
            .map(|(port, path)| BTreeMap::from([(port.to_string(), path)]))
            .unwrap_or_default(),
        schemas: declared(op),
    }
}

/// The frame outputs the real operator `op` declares, as the engine hands them over.
fn declared(op: &str) -> BTreeMap<String, &'static FrameSchema> {
    use judgeflow_schemas::{JUDGEMENTS, KEPT_STATS, LOSS, METRICS, PAIRS, SFT, UNPAIRED};
    let ports: &[(&str, &'static FrameSchema)] = match op {
        "evaluate" => &[("metrics", &METRICS), ("judgements", &JUDGEMENTS)],
        "judge" => &[("judgements", &JUDGEMENTS)],
        "vote" => &[("pairs", &PAIRS), ("unpaired", &UNPAIRED)],
        "filter" => &[("kept", &SFT), ("stats", &KEPT_STATS)],
        "train" => &[("loss", &LOSS)],
        "perception" => &[("perception", &judgeflow_schemas::PERCEPTION)],
        _ => &[],
    };
    ports.iter().map(|&(p, s)| (p.to_string(), s)).collect()
}

/// Decodes a written PNG: the expected size, and not one flat colour.
fn assert_chart(path: &Path) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), (900, 560), "{}", path.display());
    let colours: BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 20,
        "{}: {} colours",
        path.display(),
        colours.len()
    );
    let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    assert!(
        white < img.pixels().len() * 99 / 100,
        "{} is nearly blank",
        path.display()
    );
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_sweep_gets_figures_per_variant_and_a_page_of_tables() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let both = [MAJORITY, ORACLE];
    let mut nodes = vec![
        node("world", "world", None, "source", &both, None),
        node(
            "evaluate_base",
            "evaluate_base",
            None,
            "evaluate",
            &both,
            Some(("metrics", metrics(d, "base", 0.5, 0.25))),
        ),
    ];
    for (variant, v, gain) in [(MAJORITY, "m", 0.1), (ORACLE, "o", 0.2)] {
        for it in 1..=2u32 {
            let tag = format!("{v}{it}");
            let suffix = format!("@{it}[{variant}]");
            nodes.push(node(
                &format!("filter{suffix}"),
                "filter",
                Some(it),
                "filter",
                &[variant],
                Some((
                    "stats",
                    kept(d, &format!("kept{tag}"), 0.6 - 0.1 * f64::from(it)),
                )),
            ));
            nodes.push(node(
                &format!("train{suffix}"),
                "train",
                Some(it),
                "train",
                &[variant],
                Some(("loss", loss(d, &format!("loss{tag}")))),
            ));
            let general = 0.5 + gain * f64::from(it);
            nodes.push(node(
                &format!("evaluate{suffix}"),
                "evaluate",
                Some(it),
                "evaluate",
                &[variant],
                Some(("metrics", metrics(d, &format!("eval{tag}"), general, 0.3))),
            ));
        }
    }
    nodes.push(node(
        "evaluate@3[vote.method=oracle]",
        "evaluate",
        Some(3),
        "evaluate",
        &[ORACLE],
        None,
    ));
    let out = d.join("report");
    let files = write_report("self <training> & co", &nodes, &out).unwrap();

    let written = names(&files);
    for expected in [
        "accuracy_vs_iteration_vote.method-majority.png",
        "accuracy_vs_iteration_vote.method-oracle.png",
        "final_vs_base_vote.method-majority.png",
        "final_vs_base_vote.method-oracle.png",
        "variants.png",
        "kept_fraction.png",
        "loss.png",
    ] {
        assert!(
            written.contains(&expected.to_string()),
            "{expected} missing from {written:?}"
        );
        assert_chart(&out.join(expected));
    }
    assert_eq!(written.last().unwrap(), "index.html");
    assert_eq!(written.len(), 8, "{written:?}");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        html.contains("self &lt;training&gt; &amp; co"),
        "pipeline name escaped"
    );
    assert!(!html.contains("<training>"));
    // Oracle iteration 2: general 0.5 + 0.2 * 2 = 0.9; majority: 0.7; base 0.5 / 0.25.
    assert!(
        html.contains("0.900 <small>[0.800, 1.000]</small><br>"),
        "{html}"
    );
    assert!(html.contains("0.700 <small>[0.600, 0.800]</small><br>"));
    assert!(html.contains("0.250 <small>[0.150, 0.350]</small><br>"));
    assert!(html.contains("<small>n 40 · A 0.525<br>text: shorter 0.480 · longer 0.520</small>"));
    assert!(html.contains("<h3>vote.method=oracle</h3>"));
    assert!(html.contains("evaluate@3[vote.method=oracle]"));
    assert!(html.contains("not run yet"));
    assert!(html.contains("0.400</td>"), "kept fraction of iteration 2");
    assert!(html.contains("1.50 s"));
    for f in &written[..written.len() - 1] {
        assert!(
            html.contains(&format!("<img src=\"{f}\"")),
            "{f} not linked"
        );
    }
}

#[test]
fn one_variant_one_iteration_and_nan_still_draw() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let nodes = vec![
        evaluation(
            "evaluate_base",
            "evaluate_base",
            None,
            metrics(d, "base", 0.5, f64::NAN),
        ),
        evaluation(
            "evaluate@1",
            "evaluate",
            Some(1),
            metrics(d, "e1", 0.75, f64::NAN),
        ),
        node(
            "filter@1",
            "filter",
            Some(1),
            "filter",
            &[""],
            Some(("stats", kept(d, "kept1", 0.6))),
        ),
        node("evaluate@2", "evaluate", Some(2), "evaluate", &[""], None),
    ];
    let out = d.join("report");
    let files = write_report("tiny", &nodes, &out).unwrap();
    assert_eq!(
        names(&files),
        [
            "accuracy_vs_iteration.png",
            "final_vs_base.png",
            "kept_fraction.png",
            "index.html"
        ]
    );
    for chart in &files[..3] {
        assert_chart(chart);
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("0.750 <small>[0.650, 0.850]</small><br>"));
    // hallucination has n = 0: its accuracy and interval are NaN, shown as dashes.
    assert!(
        html.contains("— <small>[—, —]</small><br><small>n 0 · A —<br>"),
        "{html}"
    );
    assert!(!html.contains("NaN"));
    assert!(
        !html.contains("<h3>"),
        "no per-variant headings without a sweep"
    );
    assert!(html.contains("Not run yet: <code>evaluate@2</code>"));
}

#[test]
fn only_the_base_evaluated_gives_one_point_and_no_comparison() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let nodes = vec![node(
        "evaluate_base",
        "evaluate_base",
        None,
        "evaluate",
        &[],
        Some(("metrics", metrics(d, "base", 0.5, 0.5))),
    )];
    let out = d.join("report");
    let files = write_report("base", &nodes, &out).unwrap();
    assert_eq!(names(&files), ["accuracy_vs_iteration.png", "index.html"]);
    assert_chart(&out.join("accuracy_vs_iteration.png"));
}

/// Frames are picked by the schema their port declares: a user's own operator (`score`, port
/// `scores`) writing a `metrics` frame is drawn and listed like `evaluate`, and an operator
/// named `evaluate` that declares no `metrics` frame contributes nothing.
#[test]
fn a_metrics_frame_of_any_operator_is_reported() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let mut mine = node(
        "score_base",
        "score_base",
        None,
        "score",
        &[],
        Some(("scores", metrics(d, "scores", 0.5, 0.5))),
    );
    mine.schemas = BTreeMap::from([("scores".to_string(), &judgeflow_schemas::METRICS)]);
    let mut impostor = node(
        "evaluate@1",
        "evaluate",
        Some(1),
        "evaluate",
        &[],
        Some(("metrics", metrics(d, "impostor", 0.9, 0.9))),
    );
    impostor.schemas = BTreeMap::new();
    let out = d.join("report");
    let files = write_report("mine", &[mine, impostor], &out).unwrap();
    assert_eq!(names(&files), ["accuracy_vs_iteration.png", "index.html"]);
    assert_chart(&out.join("accuracy_vs_iteration.png"));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        html.contains("0.500 <small>[0.400, 0.600]</small>"),
        "the user's metrics are tabled: {html}"
    );
    assert!(
        !html.contains("0.900 <small>"),
        "a node declaring no metrics frame is not: {html}"
    );
}

#[test]
fn nothing_run_yet_gives_a_page_without_figures() {
    let data = tempfile::tempdir().unwrap();
    let nodes = vec![
        node("evaluate@1", "evaluate", Some(1), "evaluate", &[""], None),
        node("filter@1", "filter", Some(1), "filter", &[""], None),
    ];
    let out = data.path().join("report");
    let files = write_report("fresh", &nodes, &out).unwrap();
    assert_eq!(names(&files), ["index.html"]);
    let html = std::fs::read_to_string(&files[0]).unwrap();
    assert!(html.contains("2 nodes, 0 with results"));
    assert!(html.contains("No figures"));
    assert_eq!(html.matches("not run yet").count(), 2);
}

#[test]
fn a_frame_with_missing_columns_names_the_node_and_file() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let wrong = write_frame(
        d,
        "wrong",
        df!("dimension" => ["general"], "accuracy" => [0.5]).unwrap(),
    );
    let nodes = vec![evaluation("evaluate@1", "evaluate", Some(1), wrong.clone())];
    let err = write_report("p", &nodes, &d.join("report")).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("evaluate@1"), "{text}");
    assert!(text.contains(&wrong.display().to_string()), "{text}");
    assert!(text.contains("correct"), "names a missing column: {text}");
}

#[test]
fn an_unreadable_parquet_names_the_node_and_file() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let garbage = d.join("stats.parquet");
    std::fs::write(&garbage, b"not parquet at all").unwrap();
    let nodes = vec![node(
        "filter@2",
        "filter",
        Some(2),
        "filter",
        &[""],
        Some(("stats", garbage.clone())),
    )];
    let err = write_report("p", &nodes, &d.join("report")).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("filter@2"), "{text}");
    assert!(text.contains(&garbage.display().to_string()), "{text}");
}

fn trace_line(
    node: &str,
    op: &str,
    gpus: u32,
    status: &str,
    times: Option<(f64, f64, f64)>,
) -> TraceLine {
    TraceLine {
        run: "20261129T113000Z-1-0001".into(),
        pipeline: "tiny".into(),
        node: node.into(),
        template: node.split('@').next().unwrap().into(),
        iteration: None,
        op: op.into(),
        kind: None,
        status: status.into(),
        cache: Some(if status == "ran" { "miss" } else { "hit" }.into()),
        key: None,
        gpus,
        submit_s: times.map(|t| t.0),
        start_s: times.map(|t| t.1),
        end_s: times.map(|t| t.2),
        queue_s: times.map(|t| t.1 - t.0),
        wall_s: times.map(|t| t.2 - t.1),
        cpu_s: None,
        peak_rss_bytes: None,
        peak_gpu_bytes: None,
        rows_in: None,
        rows_out: None,
    }
}

#[test]
fn a_trace_becomes_a_timeline_coloured_by_operator() {
    let data = tempfile::tempdir().unwrap();
    let out = data.path().join("report");
    let trace = vec![
        trace_line("world", "source", 0, "cached", Some((0.0, 0.0, 0.0))),
        trace_line("pretrain", "train", 1, "ran", Some((0.0, 0.1, 60.0))),
        trace_line("judge@1", "judge", 1, "ran", Some((60.0, 62.0, 100.0))),
        trace_line("filter@1", "filter", 0, "ran", Some((100.0, 100.0, 100.4))),
        trace_line("train@1", "train", 1, "skipped", None),
    ];
    let files = write_report_with_trace("tiny", &[], Some(&trace), &out).unwrap();
    assert_eq!(names(&files), ["timeline.png", "index.html"]);
    let img = image::open(out.join("timeline.png")).unwrap().to_rgb8();
    assert_eq!(img.width(), 1200);
    assert!(img.height() >= 360);
    let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
    // Operators are coloured in order of first start: source, train, judge, filter. `train`'s
    // bar (60 s of ~116 shown) is far larger than `judge`'s (38 s), which is larger than the
    // sub-second `filter`'s.
    let [train, judge, filter] = [1, 2, 3].map(|i| {
        let c = judgeflow_report_palette(i);
        count(c)
    });
    assert!(
        train > judge && judge > filter && filter > 0,
        "{train} {judge} {filter}"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("timeline.png"), "{html}");
}

/// Tableau 10, as the report's palette.
fn judgeflow_report_palette(i: usize) -> [u8; 3] {
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]][i]
}

/// A blind evaluation of the base model is not iteration 0 (the figures take the first
/// non-blind one), is drawn beside the bars, and is marked in the table.
#[test]
fn a_blind_evaluation_is_drawn_beside_the_bars_not_as_an_iteration() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let nodes = vec![
        // Listed first, so that a report that took it for the base would show 0.111.
        evaluation(
            "eval_blind",
            "eval_blind",
            None,
            metrics_seen(d, "blind", 0.111, 0.5, "blank"),
        ),
        evaluation(
            "eval_base",
            "eval_base",
            None,
            metrics(d, "base", 0.5, 0.25),
        ),
        evaluation(
            "evaluate@1",
            "evaluate",
            Some(1),
            metrics(d, "final", 0.7, 0.5),
        ),
    ];
    let out = d.join("report");
    let files = write_report("blind", &nodes, &out).unwrap();
    assert_eq!(
        names(&files),
        [
            "accuracy_vs_iteration.png",
            "final_vs_base.png",
            "index.html"
        ]
    );
    for f in &files[..2] {
        assert_chart(f);
    }
    let bars = image::open(&files[1]).unwrap().to_rgb8();
    // The blind bars' colour (Tableau orange) is in the figure, and so is the baselines' olive.
    assert!(
        bars.pixels().any(|p| p.0 == [255, 127, 14]),
        "no blind bars"
    );
    assert!(
        bars.pixels().any(|p| p.0 == [188, 189, 34]),
        "no baseline bars"
    );
    let without_blind = write_report("blind", &nodes[1..], &d.join("plain")).unwrap();
    let plain = image::open(&without_blind[1]).unwrap().to_rgb8();
    assert!(!plain.pixels().any(|p| p.0 == [255, 127, 14]));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("eval_blind <small>(blind)</small>"), "{html}");
    assert!(html.contains("0.111"));
}

/// With a blind evaluation at every iteration, "base vs final" sets the final judge's blind score
/// beside its bars, not an earlier one's: the blind bars of a report holding blind evaluations at
/// iterations 1 and 2 are those of a report holding only iteration 2's.
#[test]
fn the_final_bars_take_the_final_iteration_s_blind_score() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let evals = |blinds: &[(u32, f64)]| {
        let mut nodes = vec![
            evaluation("eval_base", "eval_base", None, metrics(d, "base", 0.5, 0.5)),
            evaluation(
                "evaluate@1",
                "evaluate",
                Some(1),
                metrics(d, "one", 0.6, 0.6),
            ),
            evaluation(
                "evaluate@2",
                "evaluate",
                Some(2),
                metrics(d, "two", 0.7, 0.7),
            ),
        ];
        for &(it, acc) in blinds {
            let name = format!("evaluate_blind@{it}");
            nodes.push(evaluation(
                &name,
                "evaluate_blind",
                Some(it),
                metrics_seen(d, &name, acc, acc, "blank"),
            ));
        }
        nodes
    };
    // The highest row holding a blind (orange) pixel in the left half (the legend, which has an
    // orange swatch too, sits top right): the first dimension's blind bar's height.
    let blind_top = |nodes: &[ReportNode], dir: &str| {
        let files = write_report("blinds", nodes, &d.join(dir)).unwrap();
        let bars = files
            .iter()
            .find(|f| f.ends_with("final_vs_base.png"))
            .unwrap();
        let img = image::open(bars).unwrap().to_rgb8();
        (0..img.height())
            .find(|&y| (0..img.width() / 2).any(|x| img.get_pixel(x, y).0 == [255, 127, 14]))
            .expect("blind bars drawn")
    };
    let both = blind_top(&evals(&[(1, 0.2), (2, 0.9)]), "both");
    let last_only = blind_top(&evals(&[(2, 0.9)]), "last");
    let first_only = blind_top(&evals(&[(1, 0.2)]), "first");
    assert_eq!(both, last_only, "the final iteration's blind bars");
    assert!(first_only > both, "iteration 1's blind bars are lower");
}

/// An `evaluate` node's `judgements`: for each item `(pair_id, dimension, right, wrong)`, that
/// many parsed samples agreeing / disagreeing with the label, plus one unparseable sample.
fn eval_judgements(dir: &Path, name: &str, items: &[(&str, &str, usize, usize)]) -> PathBuf {
    let (mut ids, mut kinds, mut verdicts, mut agrees) = (vec![], vec![], vec![], vec![]);
    for &(id, dim, right, wrong) in items {
        for k in 0..right + wrong + 1 {
            ids.push(id.to_string());
            kinds.push(dim.to_string());
            verdicts.push((k < right + wrong).then_some("A"));
            agrees.push(k < right);
        }
    }
    let n = ids.len();
    let df = df!(
        "pair_id" => ids,
        "image" => vec![b"png".to_vec(); n],
        "question" => vec!["q"; n],
        "order" => vec!["AB"; n],
        "answer_a" => vec!["one"; n],
        "answer_b" => vec!["two"; n],
        "preferred" => vec!["A"; n],
        "kind" => kinds,
        "source" => vec!["bench"; n],
        "output" => vec!["x. Overall Judgment: Answer A is better."; n],
        "verdict" => verdicts,
        "verdict_prob" => vec![0.5; n],
        "agrees" => agrees,
    )
    .unwrap();
    write_frame(dir, name, df)
}

/// A `judge` node's `judgements` with 4 rows: 2 agreeing A verdicts (one of which copies a
/// long answer into its reasoning), 1 disagreeing B verdict, 1 unparseable output.
fn judge_judgements(dir: &Path, name: &str) -> PathBuf {
    let long = "a red circle left of a blue square";
    let df = df!(
        "pair_id" => ["p1", "p1", "p2", "p2"],
        "image" => vec![b"png".to_vec(); 4],
        "question" => ["q"; 4],
        "order" => ["AB", "BA", "AB", "BA"],
        "answer_a" => [long, "red", long, "red"],
        "answer_b" => ["red", long, "red", long],
        "preferred" => ["A", "B", "A", "B"],
        "kind" => ["general"; 4],
        "source" => ["scenes"; 4],
        "output" => [
            "In the image: A red circle left of a blue square. Overall Judgment: Answer A is better.",
            "A circle. Overall Judgment: Answer A is better.",
            "Something. Overall Judgment: Answer A is better.",
            "cut off",
        ],
        "verdict" => [Some("A"), Some("A"), Some("A"), None],
        "verdict_prob" => [0.9, 0.6, 0.7, f64::NAN],
        "agrees" => [true, false, true, false],
    )
    .unwrap();
    write_frame(dir, name, df)
}

fn vote_pairs(dir: &Path, name: &str) -> PathBuf {
    let df = df!(
        "pair_id" => ["v1", "v2", "v3", "v4"],
        "prompt_id" => ["a", "b", "c", "d"],
        "image" => vec![b"png".to_vec(); 4],
        "question" => ["q"; 4],
        "chosen" => ["1"; 4],
        "rejected" => ["2"; 4],
        "task" => ["count"; 4],
        "kind" => ["majority"; 4],
        "source" => ["scenes"; 4],
        "label_correct" => [Some(true), Some(true), Some(false), None],
    )
    .unwrap();
    write_frame(dir, name, df)
}

#[test]
fn a_seed_sweep_is_aggregated_with_intervals_and_diagnostics() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let seeds = ["seed=1", "seed=2", "seed=3"];
    let mut nodes = Vec::new();
    // Base: 6 items, 3 right. After one iteration: per seed 4, 5, 6 right of 6.
    let base_items = |s: usize| {
        (0..6)
            .map(|i| {
                let id: &'static str = ["i0", "i1", "i2", "i3", "i4", "i5"][i];
                let dim = if i < 3 { "general" } else { "hallucination" };
                let _ = s;
                if i % 2 == 0 {
                    (id, dim, 2, 1)
                } else {
                    (id, dim, 0, 3)
                }
            })
            .collect::<Vec<_>>()
    };
    for (k, seed) in seeds.iter().enumerate() {
        let mut base = vec![(
            "metrics",
            metrics(d, &format!("base{k}"), 0.5 + 0.01 * k as f64, 0.5),
        )];
        base.push((
            "judgements",
            eval_judgements(d, &format!("basej{k}"), &base_items(k)),
        ));
        let mut after_items = base_items(k);
        for item in after_items.iter_mut().take(k + 1).filter(|x| x.2 == 0) {
            item.2 = 3;
            item.3 = 0;
        }
        // Items 1 (seed 2 and 3) turn right; seed 1 turns nothing... and item 0 stays right.
        let after = vec![
            (
                "metrics",
                metrics(d, &format!("after{k}"), 0.6 + 0.05 * k as f64, 0.7),
            ),
            (
                "judgements",
                eval_judgements(d, &format!("afterj{k}"), &after_items),
            ),
        ];
        let with_outputs =
            |name: &str, template: &str, it: Option<u32>, op: &str, outs: Vec<(&str, PathBuf)>| {
                let mut n = node(name, template, it, op, &[seed], None);
                n.outputs = outs
                    .into_iter()
                    .map(|(p, path)| (p.to_string(), path))
                    .collect();
                n
            };
        nodes.push(with_outputs(
            &format!("eval_base[{seed}]"),
            "eval_base",
            None,
            "evaluate",
            base,
        ));
        nodes.push(with_outputs(
            &format!("judge@1[{seed}]"),
            "judge",
            Some(1),
            "judge",
            vec![("judgements", judge_judgements(d, &format!("judge{k}")))],
        ));
        nodes.push(with_outputs(
            &format!("vote@1[{seed}]"),
            "vote",
            Some(1),
            "vote",
            vec![("pairs", vote_pairs(d, &format!("vote{k}")))],
        ));
        nodes.push(with_outputs(
            &format!("filter@1[{seed}]"),
            "filter",
            Some(1),
            "filter",
            vec![("stats", kept(d, &format!("kept{k}"), 0.6))],
        ));
        nodes.push(with_outputs(
            &format!("evaluate@1[{seed}]"),
            "evaluate",
            Some(1),
            "evaluate",
            after,
        ));
    }

    let sections = judgeflow_report::compare_sections("p", &nodes).unwrap();
    let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["seeds", "per-iteration diagnostics"]);
    let seeds_json = &sections[0].json[0];
    assert_eq!(seeds_json["seeds"], serde_json::json!([1, 2, 3]));
    let overall = |eval: usize| {
        seeds_json["evaluations"][eval]["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dimension"] == "overall")
            .unwrap()
            .clone()
    };
    assert_eq!(seeds_json["evaluations"][0]["node"], "eval_base");
    assert_eq!(seeds_json["evaluations"][1]["node"], "evaluate@1");
    // Overall after: (general + 0.7) / 2 with general 0.6, 0.65, 0.7: mean 0.675, sd 0.025.
    let after = overall(1)["across_seeds"].clone();
    assert!(
        (after["mean"].as_f64().unwrap() - 0.675).abs() < 1e-9,
        "{after}"
    );
    let half = 4.3027 * 0.025 / 3f64.sqrt();
    assert!(
        (after["hi"].as_f64().unwrap() - 0.675 - half).abs() < 1e-4,
        "{after}"
    );
    assert_eq!(overall(1)["per_seed"].as_array().unwrap().len(), 3);
    // The paired gain per seed, from the items: seed k turns the wrong items among the first
    // k + 1 right: +0/6... item 1 for k >= 1, so gains 0, 1/6, 1/6 of 6 shared items.
    let gain = &seeds_json["gain"];
    assert_eq!(gain["base"], "eval_base");
    assert_eq!(gain["last"], "evaluate@1");
    let overall_gain = gain["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dimension"] == "overall")
        .unwrap();
    let per_seed: Vec<f64> = overall_gain["per_seed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["difference"].as_f64().unwrap())
        .collect();
    assert_eq!(per_seed.len(), 3);
    assert!((per_seed[0] - 0.0).abs() < 1e-12, "{per_seed:?}");
    assert!((per_seed[1] - 1.0 / 6.0).abs() < 1e-12, "{per_seed:?}");
    assert!((per_seed[2] - 1.0 / 6.0).abs() < 1e-12, "{per_seed:?}");
    assert_eq!(overall_gain["per_seed"][1]["items"], 6);
    let mean = overall_gain["across_seeds"]["mean"].as_f64().unwrap();
    assert!((mean - 1.0 / 9.0).abs() < 1e-12);
    // Diagnostics: one row per seed variant at iteration 1.
    let diag = sections[1].json.as_array().unwrap();
    assert_eq!(diag.len(), 3);
    let row = &diag[0];
    assert_eq!(row["variant"], "seed=1");
    assert!(
        (row["agreement"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12,
        "{row}"
    );
    assert_eq!(row["a_share"], 1.0);
    assert_eq!(row["unparseable"], 0.25);
    // Every judgement has the long answer; one of four reasonings copies it.
    assert_eq!(row["copy_checked"], 4);
    assert_eq!(row["copies"], 0.25);
    assert!((row["label_precision"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(row["labelled"], 3);
    assert_eq!(row["kept_fraction"], 0.6);
    assert!(
        sections[1].text.contains("reasoning copies an answer"),
        "{}",
        sections[1].text
    );

    let out = tempfile::tempdir().unwrap();
    let files = write_report("p", &nodes, out.path()).unwrap();
    assert!(
        names(&files).contains(&"seeds.png".to_string()),
        "{files:?}"
    );
    assert_chart(&out.path().join("seeds.png"));
    let page = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(page.contains("Over seeds"), "{page}");
    assert!(page.contains("gain evaluate@1 − eval_base"), "{page}");
    assert!(page.contains("Per-iteration diagnostics"), "{page}");
}

#[test]
fn perception_is_drawn_beside_its_prior_and_tabled_with_the_gate() {
    use judgeflow_schemas::{FrameRow, PerceptionRow};
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let row = |task: &str, form: &str, accuracy: f64, prior: f64| PerceptionRow {
        task: task.into(),
        form: form.into(),
        accuracy,
        accuracy_lo: accuracy - 0.05,
        accuracy_hi: accuracy + 0.05,
        correct: (accuracy * 100.0) as i64,
        n: 100,
        prior,
        passes: accuracy >= 0.85 && accuracy - prior >= 0.3,
        min_accuracy: 0.85,
        min_gain: 0.3,
    };
    let rows = vec![
        row("color", "word", 0.97, 0.2),
        row("existence", "yes_no", 0.51, 0.5),
        row("caption", "claims", 0.62, 0.1),
        row("overall", "all", 0.7, 0.35),
    ];
    let path = write_frame(d, "perception", PerceptionRow::into_frame(rows).unwrap());
    let nodes = vec![node(
        "perception",
        "perception",
        None,
        "perception",
        &[""],
        Some(("perception", path)),
    )];
    let out = d.join("report");
    let files = write_report("seeing", &nodes, &out).unwrap();
    assert_eq!(names(&files), ["perception.png", "index.html"]);
    assert_chart(&files[0]);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for cell in [
        "<td>existence yes/no</td><td>0.510 [0.460, 0.560]</td><td>100</td><td>0.500</td><td>+0.010</td><td>no</td>",
        "<td>color</td><td>0.970 [0.920, 1.020]</td><td>100</td><td>0.200</td><td>+0.770</td><td>yes</td>",
        "<td>caption claims</td>",
    ] {
        assert!(html.contains(cell), "{cell} missing from {html}");
    }
}
