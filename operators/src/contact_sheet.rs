//! `op = "contact_sheet"`: a PNG grid of scenes with their prompts and gold answers, so a
//! person can check that the world's labels match its pictures (`judgeflow show` prints its
//! path).

use std::collections::BTreeMap;

use judgeflow_engine::{Operator, ParamKind, ParamSpec, Params, Port, RunContext};
use judgeflow_schemas::{PROMPTS, SCENES};
use judgeflow_world::Scene;
use miette::{IntoDiagnostic, miette};

/// Renders the first `count` scenes with the prompts asked about each.
pub struct ContactSheet;

impl Operator for ContactSheet {
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
    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "count",
                ParamKind::Int { min: 1, max: 200 },
                "scenes to show",
            )
            .default(12),
            ParamSpec::new("cols", ParamKind::Int { min: 1, max: 20 }, "scenes per row").default(4),
        ]
    }
    fn inputs(&self, _: &Params) -> Vec<Port> {
        vec![
            Port::frame("scenes", &SCENES),
            Port::frame("prompts", &PROMPTS).optional(),
        ]
    }
    fn outputs(&self, _: &Params) -> Vec<Port> {
        vec![Port::artifact("sheet", "image")]
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let count = ctx.params.usize("count");
        let scenes = ctx.input_frame("scenes")?;
        let graphs = scenes
            .column("scene_graph")
            .into_diagnostic()?
            .str()
            .into_diagnostic()?
            .clone();
        let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if ctx.has_input("prompts") {
            let prompts = ctx.input_frame("prompts")?;
            let ids = prompts
                .column("prompt_id")
                .into_diagnostic()?
                .str()
                .into_diagnostic()?
                .clone();
            let qs = prompts
                .column("question")
                .into_diagnostic()?
                .str()
                .into_diagnostic()?
                .clone();
            let answers = prompts
                .column("gold_answer")
                .into_diagnostic()?
                .str()
                .into_diagnostic()?
                .clone();
            for ((id, q), a) in ids.iter().zip(qs.iter()).zip(answers.iter()) {
                let (Some(id), Some(q)) = (id, q) else {
                    continue;
                };
                let scene = id.split('-').next().unwrap_or_default().to_string();
                lines
                    .entry(scene)
                    .or_default()
                    .push(format!("{q} → {}", a.unwrap_or("?")));
            }
        }
        let mut items = Vec::new();
        for graph in graphs.iter().take(count).flatten() {
            let scene = Scene::from_json(graph).map_err(|e| {
                miette!(
                    code = "judgeflow::world::graph",
                    "scene graph does not parse: {e}"
                )
            })?;
            let text = lines
                .remove(&format!("{:016x}", scene.seed))
                .unwrap_or_default();
            items.push((scene, text));
        }
        let sheet = judgeflow_world::contact_sheet(&items, ctx.params.usize("cols"));
        let dir = ctx.output_dir("sheet")?;
        std::fs::write(
            dir.join("contact_sheet.png"),
            judgeflow_world::encode_png(&sheet),
        )
        .into_diagnostic()?;
        Ok(())
    }
}
