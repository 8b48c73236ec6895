//! `op = "contact_sheet"`: a PNG grid of scenes with their prompts and gold answers, so a
//! person can check that the world's labels match its pictures (`judgeflow show` prints its
//! path).

use std::collections::BTreeMap;

use judgeflow_engine::{Port, RunContext, TypedOperator, operator_params};
use judgeflow_schemas::{PROMPTS, SCENES};
use judgeflow_world::Scene;
use miette::miette;

use crate::frames::strs;

operator_params! {
    /// The contact sheet's parameters.
    pub struct ContactSheetParams {
        /// scenes to show
        count: usize [1..=200] = 12,
        /// scenes per row
        cols: usize [1..=20] = 4,
    }
}

/// Renders the first `count` scenes with the prompts asked about each.
pub struct ContactSheet;

impl TypedOperator for ContactSheet {
    type Params = ContactSheetParams;
    fn name(&self) -> &'static str {
        "contact_sheet"
    }
    fn version(&self) -> u32 {
        1
    }
    /// It lays scenes out in their order: no randomness, so a renamed node keeps its entries.
    fn uses_seed(&self) -> bool {
        false
    }
    fn doc(&self) -> &'static str {
        "PNG grid of scenes with their prompts and gold answers, for looking at"
    }
    fn inputs(&self, _: &ContactSheetParams) -> Vec<Port> {
        vec![
            Port::frame("scenes", &SCENES),
            Port::frame("prompts", &PROMPTS).optional(),
        ]
    }
    fn outputs(&self, _: &ContactSheetParams) -> Vec<Port> {
        vec![Port::artifact("sheet", "image")]
    }
    fn run(&self, p: &ContactSheetParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let count = p.count;
        let scenes = ctx.input_frame("scenes")?;
        let graphs = strs(&scenes, "scene_graph")?;
        let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if ctx.has_input("prompts") {
            let prompts = ctx.input_frame("prompts")?;
            let ids = strs(&prompts, "prompt_id")?;
            let qs = strs(&prompts, "question")?;
            let answers = strs(&prompts, "gold_answer")?;
            for ((id, q), a) in ids.iter().zip(&qs).zip(&answers) {
                let (Some(id), Some(q)) = (id, q) else {
                    continue;
                };
                let scene = id.split('-').next().unwrap_or_default().to_string();
                lines
                    .entry(scene)
                    .or_default()
                    .push(format!("{q} → {}", a.as_deref().unwrap_or("?")));
            }
        }
        let mut items = Vec::new();
        for (row, graph) in graphs.iter().take(count).enumerate() {
            let Some(graph) = graph else { continue };
            let scene = Scene::from_json(graph).map_err(|e| {
                miette!(
                    code = "judgeflow::world::graph",
                    "node `{}`: the scene graph of row {row} does not parse: {e}",
                    ctx.node
                )
            })?;
            let text = lines
                .remove(&format!("{:016x}", scene.seed))
                .unwrap_or_default();
            items.push((scene, text));
        }
        let sheet = judgeflow_world::contact_sheet(&items, p.cols);
        let dir = ctx.output_dir("sheet")?;
        let path = dir.join("contact_sheet.png");
        std::fs::write(&path, judgeflow_world::encode_png(&sheet)).map_err(|e| {
            miette!(
                code = "judgeflow::io::write",
                "node `{}`: writing {}: {e}",
                ctx.node,
                path.display()
            )
        })?;
        Ok(())
    }
}
