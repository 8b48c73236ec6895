//! Which environment switches join the model nodes' cache keys (`Operator::environment`): on
//! CUDA, the kernel choices of `judgeflow_model::KERNEL_SWITCHES` for every node that runs a
//! model and, for training, the optimizer's; on the CPU, where they choose nothing, none (so
//! the CPU's keys never depend on a variable left set in a shell).

use std::path::Path;

use judgeflow_model::KERNEL_SWITCHES;
use judgeflow_model::fused_adamw::OPTIMIZER_VAR;

/// (node, op, declared variables) of every node of a shipped pipeline.
fn declared(pipeline: &str) -> Vec<(String, String, Vec<&'static str>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pipelines")
        .join(pipeline);
    let registry = judgeflow_operators::registry();
    let plan =
        judgeflow_engine::cli::load(&path, &registry, &[]).expect("a shipped pipeline loads");
    plan.order
        .iter()
        .map(|&i| {
            let node = &plan.graph[i];
            let vars = node.op.environment(&node.params);
            (node.name.clone(), node.op.name().to_string(), vars)
        })
        .collect()
}

#[test]
fn cuda_model_nodes_name_the_kernel_switches_and_training_the_optimizer() {
    let nodes = declared("self_train.toml");
    let mut seen = std::collections::BTreeSet::new();
    for (node, op, vars) in &nodes {
        let cuda = ["train", "sample", "judge", "evaluate"].contains(&op.as_str());
        if !cuda {
            assert!(
                vars.is_empty(),
                "`{node}` ({op}) runs no model but names {vars:?}"
            );
            continue;
        }
        seen.insert(op.as_str());
        for switch in KERNEL_SWITCHES {
            assert!(
                vars.contains(switch),
                "`{node}` ({op}) on CUDA leaves out {switch}: {vars:?}"
            );
        }
        assert_eq!(
            vars.contains(&OPTIMIZER_VAR),
            op == "train",
            "`{node}` ({op}): the optimizer's switch belongs to training alone: {vars:?}"
        );
    }
    assert_eq!(
        seen.len(),
        4,
        "self_train.toml runs all four model operators on CUDA: {seen:?}"
    );
}

#[test]
fn cpu_nodes_name_no_switch() {
    let nodes = declared("quickstart.toml");
    assert!(nodes.iter().any(|(_, op, _)| op == "train"));
    for (node, op, vars) in nodes {
        assert!(vars.is_empty(), "`{node}` ({op}) on the CPU names {vars:?}");
    }
}
