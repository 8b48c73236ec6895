//! End to end: the README's first command, `judgeflow run pipelines/quickstart.toml`, on a fresh
//! cache — world, base model, one self-training iteration, evaluation — then its outputs read
//! back from the parquet files the cache holds and cross-checked against each other.

mod common;

use common::{judgeflow, shown_frame};

use judgeflow_schemas::columns;
use judgeflow_schemas::{FrameRow, JudgementRow, KeptStatsRow, MetricsRow};
use polars::prelude::*;

// Column readers: the shared ones (judgeflow_schemas::columns), strict about nulls here, as
// the quickstart's frames have none where these columns are read.
fn strings(df: &DataFrame, col: &str) -> Vec<String> {
    columns::optional_strings(df, col)
        .unwrap()
        .into_iter()
        .map(|s| s.unwrap_or_else(|| panic!("a null in `{col}`")))
        .collect()
}

fn bools(df: &DataFrame, col: &str) -> Vec<Option<bool>> {
    columns::bools(df, col).unwrap()
}

fn floats(df: &DataFrame, col: &str) -> Vec<f64> {
    columns::floats(df, col).unwrap()
}

fn ints(df: &DataFrame, col: &str) -> Vec<i64> {
    let values = columns::ints(df, col).unwrap();
    assert_eq!(df.column(col).unwrap().null_count(), 0, "a null in `{col}`");
    values
}

/// Wilson's 95% score interval, written out independently of `evaluate`'s.
fn wilson(k: f64, n: f64) -> (f64, f64) {
    let z = 1.959_963_984_540_054f64;
    let p = k / n;
    let denominator = 1.0 + z * z / n;
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (
        ((centre - spread) / denominator).max(0.0),
        ((centre + spread) / denominator).min(1.0),
    )
}

#[test]
fn quickstart_runs_the_method_and_its_frames_agree() {
    use judgeflow_schemas as s;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = judgeflow(&cache, &["run", "pipelines/quickstart.toml"]);
    assert!(first.contains("18 nodes: 18 ran"), "{first}");
    let again = judgeflow(&cache, &["run", "pipelines/quickstart.toml"]);
    assert!(again.contains("18 nodes: 0 ran, 18 fresh"), "{again}");

    let frame = |node: &str, port: &str, schema: &judgeflow_engine::FrameSchema| {
        let df = shown_frame(&cache, "pipelines/quickstart.toml", node, port, &[]);
        schema
            .check(&df)
            .unwrap_or_else(|e| panic!("{node}.{port} ({}): {e}", schema.name));
        df
    };
    let scenes = frame("world", "scenes", &s::SCENES);
    let prompts = frame("world", "prompts", &s::PROMPTS);
    frame("world", "corpus", &s::SFT);
    let bench = frame("bench", "bench", &s::BENCH);
    let pretrain_loss = frame("pretrain", "loss", &s::LOSS);
    let sample_open = frame("sample_open@1", "samples", &s::SAMPLES);
    let sample_closed = frame("sample_closed@1", "samples", &s::SAMPLES);
    let corrupted = frame("corrupt@1", "pairs", &s::PAIRS);
    let skipped = frame("corrupt@1", "unpaired", &s::UNPAIRED);
    let voted = frame("vote@1", "pairs", &s::PAIRS);
    let unvoted = frame("vote@1", "unpaired", &s::UNPAIRED);
    let pairs = frame("pairs@1", "pairs", &s::PAIRS);
    let judgements = frame("judge@1", "judgements", &s::JUDGEMENTS);
    let kept = frame("filter@1", "kept", &s::SFT);
    let stats = frame("filter@1", "stats", &s::KEPT_STATS);
    frame("train@1", "loss", &s::LOSS);
    let base_metrics = frame("eval_base", "metrics", &s::METRICS);
    let blind_metrics = frame("eval_base_blind", "metrics", &s::METRICS);
    let blind_judgements = frame("eval_base_blind", "judgements", &s::JUDGEMENTS);
    let metrics = frame("evaluate@1", "metrics", &s::METRICS);

    // Perception: every greedy answer of the probe is scored once, per form, against priors
    // that come from the same items.
    let probe = frame("probe", "samples", &s::SAMPLES);
    let perception = frame("perception", "perception", &s::PERCEPTION);
    let tasks = strings(&perception, "task");
    let n = ints(&perception, "n");
    let overall = tasks.iter().position(|t| t == "overall").unwrap();
    assert_eq!(overall, tasks.len() - 1, "overall comes last");
    assert_eq!(
        n[overall],
        probe.height() as i64,
        "every probe answer is scored"
    );
    let closed: i64 = (0..overall)
        .filter(|&r| tasks[r] != "caption")
        .map(|r| n[r])
        .sum();
    assert_eq!(closed, n[overall]);
    // The descriptions: one per bench scene, every scene's objects counted once.
    let describe = frame("describe", "samples", &s::SAMPLES);
    let bench_scenes = frame("bench", "scenes", &s::SCENES);
    assert_eq!(describe.height(), bench_scenes.height());
    let forms = strings(&perception, "form");
    let objects = (0..overall)
        .find(|&r| tasks[r] == "caption" && forms[r] == "objects")
        .expect("a caption/objects row");
    assert_eq!(
        n[objects],
        ints(&bench_scenes, "n_objects").iter().sum::<i64>()
    );
    assert!(
        (0..overall).any(|r| tasks[r] == "caption" && forms[r] == "claims"),
        "a caption/claims row"
    );
    let (acc, lo, hi, prior) = (
        floats(&perception, "accuracy"),
        floats(&perception, "accuracy_lo"),
        floats(&perception, "accuracy_hi"),
        floats(&perception, "prior"),
    );
    for r in 0..tasks.len() {
        assert!(lo[r] <= acc[r] && acc[r] <= hi[r], "{}", tasks[r]);
        assert!(prior[r] > 0.0 && prior[r] <= 1.0, "{}", tasks[r]);
    }
    let eval_judgements = frame("evaluate@1", "judgements", &s::JUDGEMENTS);

    // The world and its held-out bench.
    assert_eq!(scenes.height(), 400);
    assert!(prompts.height() > 5 * 400, "several prompts per scene");
    assert_eq!(bench.height(), 180);
    let train: std::collections::HashSet<String> = scenes
        .column("scene_id")
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .map(|s| format!("{:016x}", s.unwrap()))
        .collect();
    assert!(
        strings(&bench, "pair_id")
            .iter()
            .all(|id| !train.contains(id.split('-').next().unwrap())),
        "bench scenes are never training scenes"
    );

    // Pretraining learned something: the loss fell.
    let losses = floats(&pretrain_loss, "loss");
    assert_eq!(losses.len(), 400);
    let head: f64 = losses[..20].iter().sum::<f64>() / 20.0;
    let tail: f64 = losses[losses.len() - 20..].iter().sum::<f64>() / 20.0;
    assert!(tail < 0.5 * head, "pretraining loss {head:.3} -> {tail:.3}");

    // Sampling: n answers per selected prompt, open and closed as asked.
    assert_eq!(sample_open.height(), 150);
    assert_eq!(sample_closed.height(), 150 * 8);
    assert!(bools(&sample_open, "open").iter().all(|o| *o == Some(true)));
    assert!(
        bools(&sample_closed, "open")
            .iter()
            .all(|o| *o == Some(false))
    );

    // Every open answer became a pair or a recorded skip; every closed prompt likewise.
    assert_eq!(corrupted.height() + skipped.height(), 150);
    assert_eq!(voted.height() + unvoted.height(), 150);
    assert_eq!(pairs.height(), corrupted.height() + voted.height());
    assert!(pairs.height() > 0, "some synthetic pairs");
    for (c, r) in strings(&pairs, "chosen")
        .iter()
        .zip(strings(&pairs, "rejected"))
    {
        assert_ne!(*c, r, "a pair's answers differ");
    }
    // Vote pairs know whether their label matches gold; corruption pairs cannot.
    assert!(bools(&voted, "label_correct").iter().all(Option::is_some));
    assert!(
        bools(&corrupted, "label_correct")
            .iter()
            .all(Option::is_none)
    );

    // Judging: 2 samples in each of both orders of every pair; `agrees` is the parsed verdict
    // against the label.
    assert_eq!(judgements.height(), 2 * 2 * pairs.height());
    let judged = JudgementRow::from_frame(&judgements).unwrap();
    for j in &judged {
        if let Some(v) = &j.verdict {
            assert!(
                j.output
                    .to_lowercase()
                    .contains(&format!("overall judgment: answer {}", v.to_lowercase())),
                "the verdict comes from the output: {:?}",
                j.output
            );
        }
        assert_eq!(j.agrees, j.verdict.as_deref() == Some(j.preferred.as_str()));
    }

    // The filter kept one agreeing judgement per order of every pair judged right at least once
    // in each order (`per_order = 1`).
    let mut right: std::collections::BTreeMap<(&str, &str), usize> = Default::default();
    for j in &judged {
        *right.entry((&j.pair_id, &j.order)).or_default() += usize::from(j.agrees);
    }
    let passing: std::collections::BTreeSet<&str> = judged
        .iter()
        .map(|j| j.pair_id.as_str())
        .filter(|id| right[&(*id, "AB")] > 0 && right[&(*id, "BA")] > 0)
        .collect();
    assert_eq!(kept.height(), 2 * passing.len());
    let kept_ids = strings(&kept, "example_id");
    for id in &passing {
        for order in ["AB", "BA"] {
            let prefix = format!("{id}-{order}-");
            assert_eq!(
                kept_ids.iter().filter(|k| k.starts_with(&prefix)).count(),
                1,
                "{prefix}"
            );
        }
    }
    let stats = KeptStatsRow::from_frame(&stats).unwrap();
    let total = stats.iter().find(|s| s.source == "total").unwrap();
    assert_eq!(total.kept, kept.height() as i64);
    assert_eq!(total.judgements, judgements.height() as i64);
    assert!(
        strings(&kept, "response")
            .iter()
            .all(|r| r.ends_with("is better.")),
        "kept responses end in a verdict"
    );

    // Evaluation numbers are computed from the judgements the model wrote: recompute them.
    let metrics = MetricsRow::from_frame(&metrics).unwrap();
    for m in [&metrics, &MetricsRow::from_frame(&base_metrics).unwrap()] {
        let dimensions: Vec<&str> = m.iter().map(|r| r.dimension.as_str()).collect();
        assert_eq!(
            dimensions,
            ["general", "hallucination", "reasoning", "overall", "macro"]
        );
    }
    assert_eq!(
        eval_judgements.height(),
        3 * bench.height(),
        "samples = 3 per item"
    );
    let eval_judged = JudgementRow::from_frame(&eval_judgements).unwrap();
    // Per item: (right, wrong) parsed votes, and its dimension.
    let mut votes: std::collections::BTreeMap<&str, (usize, usize, &str)> = Default::default();
    for j in &eval_judged {
        let e = votes.entry(&j.pair_id).or_insert((0, 0, &j.kind));
        match &j.verdict {
            Some(x) if *x == j.preferred => e.0 += 1,
            Some(_) => e.1 += 1,
            None => {}
        }
    }
    let n: Vec<i64> = metrics.iter().map(|m| m.n).collect();
    let correct: Vec<i64> = metrics.iter().map(|m| m.correct).collect();
    for (row, m) in metrics.iter().enumerate().take(3) {
        let d = &m.dimension;
        let of_dim: Vec<&(usize, usize, &str)> = votes.values().filter(|e| e.2 == d).collect();
        let decided = of_dim
            .iter()
            .filter(|e| e.0 + e.1 > 0 && e.0 != e.1)
            .count();
        let right = of_dim.iter().filter(|e| e.0 > e.1).count();
        assert_eq!(n[row], decided as i64, "{d}");
        assert_eq!(correct[row], right as i64, "{d}");
        assert_eq!(
            m.ties,
            of_dim
                .iter()
                .filter(|e| e.0 + e.1 > 0 && e.0 == e.1)
                .count() as i64,
            "{d}"
        );
        assert_eq!(
            m.unparseable,
            of_dim.iter().filter(|e| e.0 + e.1 == 0).count() as i64,
            "{d}"
        );
    }
    let acc: Vec<f64> = metrics.iter().map(|m| m.accuracy).collect();
    assert_eq!(n[3], n[..3].iter().sum::<i64>());
    assert!((acc[3] - correct[3] as f64 / n[3] as f64).abs() < 1e-12);

    // Every accuracy has its 95% interval: Wilson's, recomputed here, around the accuracy.
    let lo: Vec<f64> = metrics.iter().map(|m| m.accuracy_lo).collect();
    let hi: Vec<f64> = metrics.iter().map(|m| m.accuracy_hi).collect();
    for row in 0..4 {
        if n[row] == 0 {
            assert!(
                lo[row].is_nan() && hi[row].is_nan(),
                "no interval without items"
            );
            continue;
        }
        let (want_lo, want_hi) = wilson(correct[row] as f64, n[row] as f64);
        assert!((lo[row] - want_lo).abs() < 1e-9 && (hi[row] - want_hi).abs() < 1e-9);
        assert!(lo[row] <= acc[row] && acc[row] <= hi[row]);
    }
    assert!(
        lo[4] <= acc[4] && acc[4] <= hi[4] && hi[4] - lo[4] > 0.0,
        "macro interval"
    );

    // The text-only baselines, recomputed from the bench itself: on a bench without a length
    // shortcut they sit near 0.5 (180 items: loosely, ±0.15 per dimension of 60).
    let bench_dims = strings(&bench, "dimension");
    let (a, b) = (strings(&bench, "answer_a"), strings(&bench, "answer_b"));
    let better = strings(&bench, "better");
    let shorter: Vec<f64> = metrics.iter().map(|m| m.shorter_wins).collect();
    for m in metrics.iter().take(4) {
        let d = &m.dimension;
        let of_dim: Vec<usize> = (0..bench.height())
            .filter(|&i| d == "overall" || &bench_dims[i] == d)
            .collect();
        let won: f64 = of_dim
            .iter()
            .map(|&i| {
                let (good, bad) = if better[i] == "A" {
                    (&a[i], &b[i])
                } else {
                    (&b[i], &a[i])
                };
                match good.chars().count().cmp(&bad.chars().count()) {
                    std::cmp::Ordering::Less => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Greater => 0.0,
                }
            })
            .sum();
        assert_eq!(m.items, of_dim.len() as i64, "{d}");
        let want = won / of_dim.len() as f64;
        assert!((m.shorter_wins - want).abs() < 1e-12, "{d}");
        assert!((m.shorter_wins + m.longer_wins - 1.0).abs() < 1e-12, "{d}");
        assert!(
            (m.shorter_wins - 0.5).abs() <= 0.15,
            "{d}: shorter wins {want:.3}"
        );
    }
    assert!(metrics.iter().all(|m| m.image == "scene" && !m.blind()));

    // The blind judge saw one grey image of the bench's size, and says so; its text baselines
    // are the same items' as the sighted judge's.
    let blind_metrics = MetricsRow::from_frame(&blind_metrics).unwrap();
    assert!(blind_metrics.iter().all(MetricsRow::blind));
    let blind_shorter: Vec<f64> = blind_metrics.iter().map(|m| m.shorter_wins).collect();
    assert_eq!(blind_shorter, shorter);
    let shown: std::collections::HashSet<Vec<u8>> = blind_judgements
        .column("image")
        .unwrap()
        .binary()
        .unwrap()
        .iter()
        .map(|b| b.unwrap().to_vec())
        .collect();
    assert_eq!(shown.len(), 1, "one blank image for every item");
    let blank = image::load_from_memory(shown.iter().next().unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(blank.dimensions(), (64, 64));
    assert!(blank.pixels().all(|p| p.0 == [128, 128, 128]));
    assert!(
        n[3] > 0,
        "the judge produced parseable verdicts on the bench"
    );

    let sheet = judgeflow(&cache, &["show", "pipelines/quickstart.toml", "sheet"]);
    let png = sheet
        .lines()
        .find(|l| l.trim_end().ends_with("contact_sheet.png"))
        .unwrap()
        .trim();
    let img = image::open(png).unwrap();
    assert!(img.width() > 400 && img.height() > 400);
}
