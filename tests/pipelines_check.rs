//! Every pipeline users copy from `pipelines/` plans cleanly: operators, parameters, ports,
//! references and schemas all check, GPU pipelines included (planning needs no GPU).

use std::process::Command;

#[test]
fn every_shipped_pipeline_passes_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "quickstart",
        "self_train",
        "oracle_vs_majority",
        "ablations",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    for file in &files {
        let out = Command::new(env!("CARGO_BIN_EXE_judgeflow"))
            .arg("check")
            .arg(file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("is valid"),
            "{}: {stdout}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One `--set` list from its parts, in order.
fn sets<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.concat()
}

/// The science grid (`scripts/device_science.sh`, `scripts/device_levers.sh`) runs
/// `self_train.toml` with these `--set` lists; a renamed node or parameter must fail here, on
/// the CPU, not after the GPU machine has started.
#[test]
fn the_science_grid_variants_of_self_train_pass_check() {
    // What the lever sets build on: one object a scene, session 8's judge corpus (four judge
    // rows a scene, half hard), and r10's and r11's claim-by-claim corpora with reading rows.
    let one: &[&str] = &["world.max_objects=1", "bench.max_objects=1"];
    let judge: &[&str] = &[
        "pretrain.patch_probe=1.0",
        "world.judge_examples=4",
        "world.judge_hard_share=0.5",
    ];
    let long: &[&str] = &["eval_base.max_tokens=256", "eval_base_blind.max_tokens=256"];
    let compare: &[&str] = &["world.judge_reasoning=compare"];
    let r10 = sets(&[judge, compare, &["world.quote_examples=8"]]);
    let r11 = sets(&[
        judge,
        compare,
        &["world.quote_examples=16", "pretrain.loss_per=example"],
    ]);
    let variants: Vec<Vec<&str>> = vec![
        vec![],
        vec!["pretrain.judge_verdicts=random"],
        vec!["pretrain.judge_verdicts=random_reasoning"],
        vec!["filter.keep=all"],
        vec!["judge.orders=random"],
        vec!["vote.method=oracle"],
        vec!["vote.method=oracle", "vote_reasoning.method=oracle"],
        vec!["prompts.reasoning_examples=0", "sample_reasoning.limit=0"],
        vec![
            "world.reasoning_examples=2",
            "prompts.reasoning_examples=2",
            "sample_reasoning.limit=600",
        ],
        vec![
            "world.reasoning_examples=2",
            "prompts.reasoning_examples=2",
            "sample_reasoning.limit=600",
            "world.reasoning_judged=true",
            "world.judge_reasoning=compare_final",
        ],
        vec!["pipeline.seed=3"],
        vec!["pretrain.gate_init=1.0"],
        vec!["pretrain.lr=3e-3"],
        vec!["world.max_objects=2", "bench.max_objects=2"],
        vec!["world.count=12000"],
        vec!["world.count=20000"],
        one.to_vec(),
        vec!["pretrain.patch_probe=1.0"],
        vec!["pretrain.patch_probe=1.0", "world.count=12000"],
        vec![
            "pretrain.patch_probe=1.0",
            "pretrain.cross_attention_every=2",
        ],
        vec!["pretrain.patch_probe=1.0", "pretrain.steps=2400"],
        vec![
            "pretrain.patch_probe=1.0",
            "pretrain.cross_attention_every=2",
            "pretrain.steps=2400",
        ],
        sets(&[one, judge]),
        sets(&[one, judge, &["pretrain.steps=2400"]]),
        judge.to_vec(),
        sets(&[one, &r10]),
        sets(&[one, &r10, &["pretrain.steps=2400"]]),
        sets(&[&r10, long]),
        sets(&[one, &r11, &["world.binding_examples=8"]]),
        sets(&[
            one,
            &r11,
            &["world.binding_examples=8", "pretrain.steps=3000"],
        ]),
        sets(&[one, &r11, &["pretrain.steps=3000"]]),
        sets(&[&r11, &["world.binding_examples=8"], long]),
        sets(&[
            one,
            &r11,
            &[
                "pretrain.steps=3000",
                "world.binding_examples=8",
                "world.binding_format=claim",
                "pretrain.mark_weight=8",
            ],
        ]),
    ];
    let scripts = ["device_science.sh", "device_levers.sh"].map(|s| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(s),
        )
        .unwrap()
    });
    for sets in variants {
        for set in sets.iter().filter(|s| !s.starts_with("pipeline.")) {
            assert!(
                scripts.iter().any(|s| s.contains(&format!("--set {set}"))),
                "`--set {set}` is not what the scripts run: update this list"
            );
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_judgeflow"));
        cmd.arg("check").arg("pipelines/self_train.toml");
        for set in &sets {
            cmd.arg("--set").arg(set);
        }
        let out = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "self_train.toml with --set {sets:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
