//! Typed operator parameters end to end, on the example operator in `typed/words.rs`: its one
//! declaration is what `judgeflow ops` lists, what pipelines are validated against and what
//! its run reads.

#[path = "typed/words.rs"]
mod words;

use clap::Parser;
use judgeflow_engine::cli::{self, Cli};
use judgeflow_engine::{Operator, OperatorParams, ParamKind, Registry, Value};

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(words::Words);
    r
}

fn cli(cache: &std::path::Path, args: &[&str]) -> Result<String, judgeflow_engine::Error> {
    let mut argv = vec!["judgeflow", "--cache", cache.to_str().unwrap()];
    argv.extend_from_slice(args);
    let mut out = String::new();
    cli::execute(Cli::parse_from(argv), &registry(), &mut out).map(|()| out)
}

#[test]
fn the_declaration_is_the_operators_params_and_what_ops_lists() {
    let specs = words::Words.params();
    let summary: Vec<(&str, ParamKind, Option<Value>)> = specs
        .iter()
        .map(|s| (s.name, s.kind.clone(), s.default.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("word", ParamKind::Str, Some(Value::Str("hello".into()))),
            (
                "times",
                ParamKind::Int { min: 1, max: 100 },
                Some(Value::Int(3))
            ),
            (
                "case",
                ParamKind::Choice(&["lower", "upper"]),
                Some(Value::Str("lower".into()))
            ),
            (
                "share",
                ParamKind::Float { min: 0.0, max: 1.0 },
                Some(Value::Float(1.0))
            ),
            ("extra", ParamKind::StrList, Some(Value::List(vec![]))),
        ]
    );
    assert_eq!(
        specs[3].doc, "the share of `times` to write, rounded up (1: all)",
        "doc lines are joined into one"
    );
    assert_eq!(words::WordsParams::specs().len(), specs.len());

    let dir = tempfile::tempdir().unwrap();
    let ops = cli(dir.path(), &["ops"]).unwrap();
    assert!(ops.contains("words  v1\n  a word, repeated\n"), "{ops}");
    assert!(
        ops.contains("    times = 3: an integer in 1..=100 — rows to write\n"),
        "{ops}"
    );
    assert!(
        ops.contains("    case = \"lower\": one of `lower`, `upper` — lower or upper case\n"),
        "{ops}"
    );
}

#[test]
fn a_pipeline_sets_typed_params_and_is_validated_against_them() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("words.toml");
    std::fs::write(
        &pipeline,
        "[pipeline]\nname = \"words\"\n\n[nodes.shout]\nop = \"words\"\nword = \"Hi\"\n\
         times = 4\ncase = \"upper\"\nshare = 0.5\nextra = [\"there\"]\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let path = pipeline.to_str().unwrap();
    cli(&cache, &["run", path]).unwrap();
    let shown = cli(&cache, &["show", path, "shout"]).unwrap();
    // `show` also prints the cache's path, whose random temporary name may itself hold "HI"
    // (a CI run's `/tmp/.tmpDOHIum`, session 18): count in the rest.
    let rows = shown.replace(dir.path().to_str().unwrap(), "<dir>");
    assert_eq!(rows.matches("HI").count(), 2, "{shown}");
    assert!(shown.contains("there"), "{shown}");

    // A misspelled parameter, a value out of range and a choice that is not one.
    for (line, code) in [
        ("tims = 4", "unknown_param"),
        ("times = 0", "bad_value"),
        ("case = \"title\"", "bad_value"),
    ] {
        std::fs::write(
            &pipeline,
            format!("[pipeline]\nname = \"words\"\n\n[nodes.shout]\nop = \"words\"\n{line}\n"),
        )
        .unwrap();
        let err = cli(&cache, &["check", path]).unwrap_err();
        let text = cli::render(&err, 100, false);
        assert!(text.contains(code), "{line}: {text}");
    }
}
