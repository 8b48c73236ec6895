//! An example operator with typed parameters, the whole of it: adding an operator is this one
//! file and one `registry.register(words::Words)` line (see `typed_params.rs`).
//!
//! Its parameters are declared once, in `WordsParams`: `judgeflow ops`, the validation of
//! pipelines (names, types, ranges, defaults) and the struct `run` reads all come from that
//! declaration, so a misspelled parameter is a compile error here and a "did you mean" in a
//! pipeline file.

use judgeflow_engine::{
    ColumnType, FrameSchema, Port, RunContext, TypedOperator, choice_enum, operator_params,
};
use polars::prelude::*;

/// What `words` writes.
pub static WORDS: FrameSchema = FrameSchema {
    name: "words",
    columns: &[("i", ColumnType::I64), ("word", ColumnType::Str)],
    doc: "one word per row",
};

choice_enum! {
    /// How a word is written.
    pub enum Case {
        Lower = "lower",
        Upper = "upper",
    }
}

operator_params! {
    /// The parameters of `words`.
    pub struct WordsParams {
        /// the word to repeat
        word: String = "hello",
        /// rows to write
        times: usize [1..=100] = 3,
        /// lower or upper case
        case: Case = Case::Lower,
        /// the share of `times` to write, rounded up
        /// (1: all)
        share: f64 [0.0..=1.0] = 1.0,
        /// words appended after the repetitions
        extra: Vec<String> = Vec::<String>::new(),
    }
}

/// Repeats a word.
pub struct Words;

impl TypedOperator for Words {
    type Params = WordsParams;

    fn name(&self) -> &'static str {
        "words"
    }
    fn version(&self) -> u32 {
        1
    }
    fn doc(&self) -> &'static str {
        "a word, repeated"
    }
    fn inputs(&self, _: &WordsParams) -> Vec<Port> {
        Vec::new()
    }
    fn outputs(&self, _: &WordsParams) -> Vec<Port> {
        vec![Port::frame("words", &WORDS)]
    }
    fn run(&self, p: &WordsParams, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        let word = match p.case {
            Case::Lower => p.word.to_lowercase(),
            Case::Upper => p.word.to_uppercase(),
        };
        let kept = (p.times as f64 * p.share).ceil() as usize;
        let mut words = vec![word; kept];
        words.extend(p.extra.iter().cloned());
        let ids: Vec<i64> = (0..words.len() as i64).collect();
        let mut df = df!("i" => ids, "word" => words).map_err(|e| miette::miette!("{e}"))?;
        ctx.write_frame("words", &mut df)?;
        Ok(())
    }
}
