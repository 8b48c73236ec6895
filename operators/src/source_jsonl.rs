//! `op = "source", kind = "jsonl"`: prompts from a JSONL file of your own, one object a line:
//!
//! ```json
//! {"id": "q1", "image": "imgs/cat.png", "prompt": "How many cats?", "answer": "2", "task": "count", "open": false}
//! ```
//!
//! - `id`: string or integer, unique within the file.
//! - `image`: PNG or JPEG path, relative to `image_root` (default: the file's directory) or
//!   absolute.
//! - `prompt`: the question, non-empty.
//! - `answer` (optional): the gold answer; numbers and booleans are taken as written.
//! - `task` (optional, default `"unknown"`): task type, free text.
//! - `open` (optional): whether the prompt is open-ended. Default: open exactly when there is no
//!   `answer`, because a prompt with a known short answer (number, choice, phrase) is the
//!   closed-ended kind whose samples are majority-voted, and one without can only be judged by
//!   comparing answers.
//!
//! Other keys are ignored. Output: a PROMPTS frame in file order.

use std::collections::HashMap;

use crate::frames::frame_error;
use judgeflow_engine::{Port, RunContext, TypedOperator, operator_params};
use judgeflow_schemas::{FrameRow, PROMPTS, PromptRow};

use crate::images;
use crate::source_common::{At, BadRows, Fields, FileParams, Files, jsonl_rows, loose_id};

/// The JSONL prompt source.
pub struct JsonlSource;

struct Row {
    at: At,
    id: String,
    image: String,
    prompt: String,
    answer: Option<String>,
    task: String,
    open: bool,
}

fn parse(f: &Fields<'_>, at: At) -> Result<Row, String> {
    let id = f.id("id")?;
    let image = f.string("image")?.to_string();
    let prompt = f.string("prompt")?;
    if prompt.trim().is_empty() {
        return Err("`prompt` is empty".into());
    }
    let answer = f.opt_text("answer")?;
    let task = f.opt_text("task")?.unwrap_or_else(|| "unknown".into());
    let open = f.opt_bool("open")?.unwrap_or(answer.is_none());
    Ok(Row {
        at,
        id,
        image,
        prompt: prompt.to_string(),
        answer,
        task,
        open,
    })
}

operator_params! {
    /// The JSONL source's parameters.
    pub struct JsonlParams {
        /// family member
        #[allow(dead_code)] // the engine reads it: it selects this operator
        kind: String [&["jsonl"]],
        /// JSONL file, one prompt object per line
        path: String,
        ..files: FileParams,
        /// label for the `source` column; "" = the file name without extension
        source: String = "",
    }
}

impl TypedOperator for JsonlSource {
    type Params = JsonlParams;

    fn name(&self) -> &'static str {
        "source"
    }

    fn kind(&self) -> Option<&'static str> {
        Some("jsonl")
    }

    fn version(&self) -> u32 {
        1
    }
    /// It reads the file as it is: no randomness, so a renamed node keeps its entries.
    fn uses_seed(&self) -> bool {
        false
    }

    fn doc(&self) -> &'static str {
        "prompts from a JSONL file (id, image, prompt, optional answer/task/open)"
    }

    fn inputs(&self, _: &JsonlParams) -> Vec<Port> {
        Vec::new()
    }

    fn outputs(&self, _: &JsonlParams) -> Vec<Port> {
        vec![Port::frame("prompts", &PROMPTS)]
    }

    fn external_inputs(&self, p: &JsonlParams) -> Vec<std::path::PathBuf> {
        crate::source_common::referenced_files(&Files::new(&p.path, &p.files))
    }
    fn run(&self, p: &JsonlParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let files = Files::new(&p.path, &p.files);
        let policy = p.files.on_error;
        let label = match p.source.as_str() {
            "" => files
                .path
                .file_stem()
                .map_or_else(|| "jsonl".into(), |s| s.to_string_lossy().into_owned()),
            given => given.to_string(),
        };
        let bytes = files.read()?;

        let mut bad = BadRows::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut rows = Vec::new();
        for (line, parsed) in jsonl_rows(&bytes) {
            let at = At::Line(line);
            let map = match parsed {
                Ok(map) => map,
                Err(why) => {
                    bad.push(at, None, why);
                    continue;
                }
            };
            match parse(&Fields(&map), at) {
                Ok(row) => match first_line.get(&row.id) {
                    Some(first) => bad.push(
                        at,
                        Some(&row.id),
                        format!("duplicate id (first on line {first})"),
                    ),
                    None => {
                        first_line.insert(row.id.clone(), line);
                        rows.push(row);
                    }
                },
                Err(why) => bad.push(at, loose_id(&map, &["id"]).as_deref(), why),
            }
        }

        let loaded = images::par_map(
            rows.iter().map(|r| files.image_path(&r.image)).collect(),
            |p| images::load(&p),
        );
        let mut prompts = Vec::with_capacity(rows.len());
        for (row, image) in rows.into_iter().zip(loaded) {
            match image {
                Ok(bytes) => prompts.push(PromptRow {
                    prompt_id: row.id,
                    image: bytes,
                    question: row.prompt,
                    gold_answer: row.answer,
                    task: row.task,
                    open: row.open,
                    source: label.to_string(),
                }),
                Err(why) => bad.push(row.at, Some(&row.id), why),
            }
        }
        bad.settle(&files, ctx.node, policy, prompts.len())?;

        let mut frame = PromptRow::into_frame(prompts)
            .map_err(frame_error(ctx.node, "building the prompts frame"))?;
        ctx.write_frame("prompts", &mut frame)?;
        Ok(())
    }
}
