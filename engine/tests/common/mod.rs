//! Toy operators for the engine's tests and benchmark: the engine knows nothing of models, so
//! it is tested with these. Every run is recorded (node name) in an in-memory log and, when
//! `TOY_LOG` names a file, appended there too so that tests can count runs across processes.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use judgeflow_engine::{
    ColumnType, FrameSchema, Operator, ParamKind, ParamSpec, Params, Port, Registry, RunContext,
};
use polars::prelude::*;

pub static NUMBERS: FrameSchema = FrameSchema {
    name: "numbers",
    columns: &[("id", ColumnType::I64), ("value", ColumnType::F64)],
    doc: "one number per id",
};
pub static LABELS: FrameSchema = FrameSchema {
    name: "labels",
    columns: &[("id", ColumnType::I64), ("label", ColumnType::Str)],
    doc: "one label per id",
};
pub static METRICS: FrameSchema = FrameSchema {
    name: "metrics",
    columns: &[("metric", ColumnType::Str), ("value", ColumnType::F64)],
    doc: "named figures",
};

pub static PICTURES: FrameSchema = FrameSchema {
    name: "pictures",
    columns: &[
        ("id", ColumnType::I64),
        ("image", ColumnType::Binary),
        ("caption", ColumnType::Str),
        ("tags", ColumnType::StrList),
        ("score", ColumnType::F64),
    ],
    doc: "encoded images with text",
};

/// The bytes the `pictures` toy writes for row `i`: PNG's signature, then bytes of the row (what
/// an export must carry over unchanged, not a decodable picture).
pub fn picture_bytes(i: i64) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..16 + i as u8).map(|k| k.wrapping_mul(31).wrapping_add(i as u8)));
    b
}

/// GPU-holding toy runs in flight now, and the most ever seen at once.
pub static GPU_HOLDERS: AtomicUsize = AtomicUsize::new(0);
pub static GPU_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Which nodes ran, in order.
#[derive(Default)]
pub struct RunLog(Mutex<Vec<String>>);

impl RunLog {
    fn record(&self, node: &str) {
        self.0.lock().unwrap().push(node.to_string());
        if let Ok(path) = std::env::var("TOY_LOG") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(f, "{node}").unwrap();
        }
    }

    /// Runs so far, sorted, then cleared.
    pub fn take(&self) -> Vec<String> {
        let mut v = std::mem::take(&mut *self.0.lock().unwrap());
        v.sort();
        v
    }
}

type Body = fn(&mut RunContext<'_>) -> miette::Result<()>;

struct Toy {
    name: &'static str,
    kind: Option<&'static str>,
    params: fn() -> Vec<ParamSpec>,
    inputs: fn(&Params) -> Vec<Port>,
    outputs: fn(&Params) -> Vec<Port>,
    gpus: u32,
    body: Body,
    log: Arc<RunLog>,
}

impl Operator for Toy {
    fn name(&self) -> &'static str {
        self.name
    }
    fn kind(&self) -> Option<&'static str> {
        self.kind
    }
    fn version(&self) -> u32 {
        std::env::var(format!("TOY_VERSION_{}", self.name))
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }
    fn doc(&self) -> &'static str {
        "toy operator for engine tests"
    }
    /// `clamp` stands for a deterministic operator (its seed stays out of its key); every other
    /// toy keeps the default, as operators that draw random numbers do (tests use `add` as a
    /// stand-in for sampling, whose repetitions must differ).
    fn uses_seed(&self) -> bool {
        self.name != "clamp"
    }
    fn params(&self) -> Vec<ParamSpec> {
        (self.params)()
    }
    fn inputs(&self, p: &Params) -> Vec<Port> {
        (self.inputs)(p)
    }
    fn outputs(&self, p: &Params) -> Vec<Port> {
        (self.outputs)(p)
    }
    fn gpus(&self, _p: &Params) -> u32 {
        self.gpus
    }
    fn external_inputs(&self, p: &Params) -> Vec<std::path::PathBuf> {
        match self.name {
            "read_file" => vec![p.str("path").into()],
            _ => Vec::new(),
        }
    }
    /// `slow` stands for an operator with a switch in the environment (the model's kernel
    /// choices): `TOY_SWITCH` joins its key when set, and changes nothing it computes.
    fn environment(&self, _p: &Params) -> Vec<&'static str> {
        match self.name {
            "slow" => vec!["TOY_SWITCH"],
            _ => Vec::new(),
        }
    }
    fn row_shards(&self, _p: &Params) -> Option<&'static str> {
        // Row maps: each output row comes from the input row with the same position (`on_gpu`'s
        // value is the GPU the row ran on).
        matches!(self.name, "add" | "slow" | "on_gpu").then_some("numbers")
    }
    fn run(&self, ctx: &mut RunContext<'_>) -> miette::Result<()> {
        self.log.record(ctx.node);
        (self.body)(ctx)
    }
}

fn numbers_out(_: &Params) -> Vec<Port> {
    vec![Port::frame("numbers", &NUMBERS)]
}
fn numbers_in(_: &Params) -> Vec<Port> {
    vec![Port::frame("numbers", &NUMBERS)]
}
fn none(_: &Params) -> Vec<Port> {
    Vec::new()
}
fn no_params() -> Vec<ParamSpec> {
    Vec::new()
}

fn frame(ids: Vec<i64>, values: Vec<f64>) -> DataFrame {
    df!("id" => ids, "value" => values).unwrap()
}

fn values(ctx: &RunContext<'_>, port: &str) -> miette::Result<(Vec<i64>, Vec<f64>)> {
    let df = ctx.input_frame(port)?;
    let ids = df
        .column("id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let vals = df
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    Ok((ids, vals))
}

/// The toy registry and its run log.
pub fn registry() -> (Registry, Arc<RunLog>) {
    let log = Arc::new(RunLog::default());
    let mut r = Registry::new();
    let toy = |name, kind, params, inputs, outputs, gpus, body| Toy {
        name,
        kind,
        params,
        inputs,
        outputs,
        gpus,
        body,
        log: log.clone(),
    };
    r.register(toy(
        "emit",
        None,
        || {
            vec![
                ParamSpec::new("n", ParamKind::Int { min: 1, max: 1000 }, "rows").default(3),
                ParamSpec::new(
                    "scale",
                    ParamKind::Float {
                        min: -100.0,
                        max: 100.0,
                    },
                    "value = id * scale",
                )
                .default(1.0),
                ParamSpec::new(
                    "mode",
                    ParamKind::Choice(&["plain", "squared"]),
                    "value transform",
                )
                .default("plain"),
            ]
        },
        none,
        numbers_out,
        0,
        |ctx| {
            let n = ctx.params.int("n");
            let scale = ctx.params.float("scale");
            let squared = ctx.params.str("mode") == "squared";
            let ids: Vec<i64> = (0..n).collect();
            let vals = ids
                .iter()
                .map(|&i| {
                    if squared {
                        (i * i) as f64 * scale
                    } else {
                        i as f64 * scale
                    }
                })
                .collect();
            ctx.write_frame("numbers", &mut frame(ids, vals))?;
            Ok(())
        },
    ));
    r.register(toy(
        "add",
        None,
        || {
            vec![ParamSpec::new(
                "delta",
                ParamKind::Float {
                    min: -1e6,
                    max: 1e6,
                },
                "added to every value",
            )]
        },
        numbers_in,
        numbers_out,
        0,
        |ctx| {
            let (ids, vals) = values(ctx, "numbers")?;
            let d = ctx.params.float("delta");
            ctx.write_frame(
                "numbers",
                &mut frame(ids, vals.into_iter().map(|v| v + d).collect()),
            )?;
            Ok(())
        },
    ));
    r.register(toy(
        "clamp",
        None,
        || {
            vec![
                ParamSpec::new(
                    "max",
                    ParamKind::Float {
                        min: -1e6,
                        max: 1e6,
                    },
                    "upper bound",
                )
                .default(1.0),
            ]
        },
        numbers_in,
        numbers_out,
        0,
        |ctx| {
            let (ids, vals) = values(ctx, "numbers")?;
            let m = ctx.params.float("max");
            ctx.write_frame(
                "numbers",
                &mut frame(ids, vals.into_iter().map(|v| v.min(m)).collect()),
            )?;
            Ok(())
        },
    ));
    r.register(toy(
        "merge",
        None,
        no_params,
        |_| {
            vec![
                Port::frame("left", &NUMBERS),
                Port::frame("right", &NUMBERS),
            ]
        },
        numbers_out,
        0,
        |ctx| {
            let (mut ids, a) = values(ctx, "left")?;
            let (_, b) = values(ctx, "right")?;
            ids.truncate(a.len().min(b.len()));
            ctx.write_frame(
                "numbers",
                &mut frame(ids, a.iter().zip(&b).map(|(x, y)| x + y).collect()),
            )?;
            Ok(())
        },
    ));
    r.register(toy(
        "summarize",
        None,
        no_params,
        numbers_in,
        |_| vec![Port::frame("metrics", &METRICS)],
        0,
        |ctx| {
            let (_, v) = values(ctx, "numbers")?;
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let max = v.iter().cloned().fold(f64::MIN, f64::max);
            let mut df = df!("metric" => ["mean", "max"], "value" => [mean, max]).unwrap();
            ctx.write_frame("metrics", &mut df)?;
            Ok(())
        },
    ));
    r.register(toy(
        "label",
        None,
        no_params,
        numbers_in,
        |_| vec![Port::frame("labels", &LABELS)],
        0,
        |ctx| {
            let (ids, v) = values(ctx, "numbers")?;
            let labels: Vec<String> = v.iter().map(|x| format!("v{x}")).collect();
            ctx.write_frame("labels", &mut df!("id" => ids, "label" => labels).unwrap())?;
            Ok(())
        },
    ));
    r.register(toy(
        "fit",
        None,
        || {
            vec![
                ParamSpec::new(
                    "steps",
                    ParamKind::Int { min: 1, max: 100 },
                    "fake training steps",
                )
                .default(2),
            ]
        },
        |_| {
            vec![
                Port::frame("numbers", &NUMBERS),
                Port::artifact("init", "weights").optional(),
            ]
        },
        |_| {
            vec![
                Port::artifact("weights", "weights"),
                Port::frame("curve", &METRICS),
            ]
        },
        1,
        |ctx| {
            let (_, v) = values(ctx, "numbers")?;
            let prior: f64 = if ctx.has_input("init") {
                std::fs::read_to_string(ctx.input_dir("init")?.join("w.txt"))
                    .unwrap()
                    .parse()
                    .unwrap()
            } else {
                0.0
            };
            let w = prior + v.iter().sum::<f64>() * ctx.params.int("steps") as f64;
            let dir = ctx.output_dir("weights")?;
            std::fs::write(dir.join("w.txt"), w.to_string()).unwrap();
            ctx.write_frame(
                "curve",
                &mut df!("metric" => ["w"], "value" => [w]).unwrap(),
            )?;
            Ok(())
        },
    ));
    r.register(toy(
        "score",
        None,
        no_params,
        |_| {
            vec![
                Port::artifact("weights", "weights"),
                Port::frame("numbers", &NUMBERS),
            ]
        },
        |_| vec![Port::frame("metrics", &METRICS)],
        0,
        |ctx| {
            let w: f64 = std::fs::read_to_string(ctx.input_dir("weights")?.join("w.txt"))
                .unwrap()
                .parse()
                .unwrap();
            let (_, v) = values(ctx, "numbers")?;
            let mut df = df!("metric" => ["score"], "value" => [w + v.len() as f64]).unwrap();
            ctx.write_frame("metrics", &mut df)?;
            Ok(())
        },
    ));
    r.register(toy(
        "source",
        Some("const"),
        || {
            vec![
                ParamSpec::new("kind", ParamKind::Str, "family member"),
                ParamSpec::new(
                    "value",
                    ParamKind::Float {
                        min: -1e6,
                        max: 1e6,
                    },
                    "the constant",
                ),
            ]
        },
        none,
        numbers_out,
        0,
        |ctx| {
            let v = ctx.params.float("value");
            ctx.write_frame("numbers", &mut frame(vec![0, 1], vec![v, v]))?;
            Ok(())
        },
    ));
    r.register(toy(
        "source",
        Some("range"),
        || {
            vec![
                ParamSpec::new("kind", ParamKind::Str, "family member"),
                ParamSpec::new("n", ParamKind::Int { min: 1, max: 100 }, "rows"),
            ]
        },
        none,
        numbers_out,
        0,
        |ctx| {
            let n = ctx.params.int("n");
            ctx.write_frame(
                "numbers",
                &mut frame((0..n).collect(), (0..n).map(|i| i as f64).collect()),
            )?;
            Ok(())
        },
    ));
    r.register(toy(
        "read_file",
        None,
        || {
            vec![ParamSpec::new(
                "path",
                ParamKind::Str,
                "a text file with one number per line",
            )]
        },
        none,
        numbers_out,
        0,
        |ctx| {
            // Through the engine's bounded reader, as real sources read: a FIFO or /dev/zero
            // is an error, not a hang.
            let path = std::path::Path::new(ctx.params.str("path"));
            let bytes = judgeflow_engine::files::read_regular(path, 1 << 20)
                .map_err(|e| miette::miette!("cannot read `{}`: {e}", path.display()))?;
            let text = String::from_utf8(bytes).map_err(|e| miette::miette!("{e}"))?;
            let vals: Vec<f64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
            ctx.write_frame(
                "numbers",
                &mut frame((0..vals.len() as i64).collect(), vals),
            )?;
            Ok(())
        },
    ));
    r.register(toy(
        "slow",
        None,
        no_params,
        numbers_in,
        numbers_out,
        0,
        |ctx| {
            // Writes its output, signals `TOY_STARTED`, then sleeps `TOY_SLOW_MS`: a process
            // killed during the sleep has a complete-looking output file in its build directory,
            // which is exactly what must never be mistaken for a cache entry.
            let (ids, v) = values(ctx, "numbers")?;
            ctx.write_frame("numbers", &mut frame(ids, v))?;
            if let Ok(flag) = std::env::var("TOY_STARTED") {
                std::fs::write(flag, "started").unwrap();
            }
            let ms = std::env::var("TOY_SLOW_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            Ok(())
        },
    ));
    r.register(toy(
        "gpu_probe",
        None,
        no_params,
        numbers_in,
        numbers_out,
        1,
        |ctx| {
            let now = GPU_HOLDERS.fetch_add(1, Ordering::SeqCst) + 1;
            GPU_PEAK.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            GPU_HOLDERS.fetch_sub(1, Ordering::SeqCst);
            let (ids, v) = values(ctx, "numbers")?;
            ctx.write_frame("numbers", &mut frame(ids, v))?;
            Ok(())
        },
    ));
    r.register(toy(
        "pictures",
        None,
        || vec![ParamSpec::new("n", ParamKind::Int { min: 1, max: 100 }, "rows").default(3)],
        none,
        |_| vec![Port::frame("pictures", &PICTURES)],
        0,
        |ctx| {
            let n = ctx.params.int("n");
            let ids: Vec<i64> = (0..n).collect();
            let images: Vec<Vec<u8>> = ids.iter().map(|&i| picture_bytes(i)).collect();
            let slices: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
            let images = Series::new("image".into(), slices);
            let captions: Vec<String> = ids
                .iter()
                .map(|i| format!("a \"shape\", number {i}\nsecond line"))
                .collect();
            let tags: Vec<Series> = ids
                .iter()
                .map(|&i| Series::new("".into(), vec![format!("t{i}"), "shared".to_string()]))
                .collect();
            let scores: Vec<Option<f64>> = ids
                .iter()
                .map(|&i| (i != 1).then_some(i as f64 / 2.0))
                .collect();
            let mut df = DataFrame::new_infer_height(vec![
                Series::new("id".into(), ids).into(),
                images.into(),
                Series::new("caption".into(), captions).into(),
                Series::new("tags".into(), tags).into(),
                Series::new("score".into(), scores).into(),
            ])
            .unwrap();
            ctx.write_frame("pictures", &mut df)?;
            Ok(())
        },
    ));
    r.register(toy(
        "panic",
        None,
        no_params,
        numbers_in,
        numbers_out,
        0,
        |_| panic!("toy operator panicked on purpose"),
    ));
    r.register(toy(
        "fail",
        None,
        no_params,
        numbers_in,
        numbers_out,
        0,
        |_| Err(miette::miette!("this toy operator always fails")),
    ));
    r.register(toy(
        "abort",
        None,
        no_params,
        numbers_in,
        numbers_out,
        0,
        |ctx| {
            // With `TOY_ABORT` set, a crash no unwinding catches (as a CUDA fault or the OOM
            // killer would be): only a node in its own process survives it. Else it passes
            // its input on.
            if std::env::var_os("TOY_ABORT").is_some() {
                std::process::abort();
            }
            let (ids, v) = values(ctx, "numbers")?;
            ctx.write_frame("numbers", &mut frame(ids, v))?;
            Ok(())
        },
    ));
    r.register(toy(
        "on_gpu",
        None,
        no_params,
        numbers_in,
        numbers_out,
        1,
        |ctx| {
            // Records the device ordinal it was given in place of every value, so tests can see
            // which (fake) GPU a node ran on; sleeps `TOY_SLOW_MS` so that GPU nodes overlap.
            let (ids, _) = values(ctx, "numbers")?;
            let device = *ctx
                .gpus
                .first()
                .ok_or_else(|| miette::miette!("a GPU node was given no GPU"))?;
            let ms = std::env::var("TOY_SLOW_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
            let n = ids.len();
            ctx.write_frame("numbers", &mut frame(ids, vec![device as f64; n]))?;
            Ok(())
        },
    ));
    (r, log)
}

/// Acts as the `judgeflow` CLI over the toy registry, for tests and benchmarks that need a real
/// process: `args` are the command-line arguments joined by U+001F. Prints what the CLI prints
/// and returns its exit code.
pub fn toy_cli(args: &str) -> i32 {
    use clap::Parser;
    use judgeflow_engine::cli;
    let (registry, _) = registry();
    cli::init_tracing();
    let argv: Vec<&str> = std::iter::once("judgeflow")
        .chain(args.split('\u{1f}'))
        .collect();
    let mut out = String::new();
    let code = match cli::execute(cli::Cli::parse_from(argv), &registry, &mut out) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", cli::render(&e, 100, false));
            i32::from(cli::exit_code(&e))
        }
    };
    print!("{out}");
    code
}
