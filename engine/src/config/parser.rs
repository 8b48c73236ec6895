//! The parser behind [`super::parse`]: walks the TOML document's tables (`[pipeline]`,
//! `[nodes.*]`, `[iterate.*]`, `[sweep]`, `[executor]`) into declarations, collecting every
//! problem as a diagnostic pointing at its span instead of stopping at the first.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    GroupDecl, InputsDecl, MAX_NAME_CHARS, MAX_PIPELINE_BYTES, MAX_TIMES, NodeDecl, PipelineDecl,
    Sp, SweepDecl, valid_name,
};
use crate::error::{ConfigError, Origin};
use crate::value::Value;

pub(super) fn parse_inner(
    origin: Origin,
) -> Result<(PipelineDecl, Vec<ConfigError>), Vec<ConfigError>> {
    let text = origin.text().to_string();
    if text.len() > MAX_PIPELINE_BYTES {
        return Err(vec![
            ConfigError::new(
                "judgeflow::config::too_large",
                format!(
                    "pipeline file is {} bytes; the limit is {MAX_PIPELINE_BYTES}",
                    text.len()
                ),
            )
            .help("pipeline files are small hand-written TOML; is this the right file?"),
        ]);
    }
    let table = match DeTable::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Err(vec![
                ConfigError::new("judgeflow::config::syntax", "invalid TOML")
                    .at(&origin, span, e.message().to_string())
                    .help("pipeline files are TOML: https://toml.io"),
            ]);
        }
    };
    let mut p = Parser {
        origin: origin.clone(),
        errors: Vec::new(),
    };
    let decl = p.document(table.get_ref(), table.span());
    Ok((decl, p.errors))
}

struct Parser {
    origin: Origin,
    errors: Vec<ConfigError>,
}

type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

impl Parser {
    /// Names become file names under the cache's `runs/` (with `@N` and sweep labels added):
    /// a name that the file system would refuse must be refused here, before anything runs.
    fn check_length(&mut self, what: &str, name: &Sp<String>) -> bool {
        let n = name.value.chars().count();
        if n <= MAX_NAME_CHARS {
            return true;
        }
        self.err(
            "judgeflow::config::name_too_long",
            format!("{what} name is {n} characters long; the limit is {MAX_NAME_CHARS}"),
            name.span.clone(),
            "too long",
        )
        .help = Some("pick a shorter name; names appear in file names and in every report".into());
        false
    }

    fn err(
        &mut self,
        code: &'static str,
        msg: impl Into<String>,
        span: Range<usize>,
        label: impl Into<String>,
    ) -> &mut ConfigError {
        let e = ConfigError::new(code, msg).at(&self.origin, span, label);
        self.errors.push(e);
        self.errors.last_mut().expect("just pushed")
    }

    fn expect_table<'a, 'i>(
        &mut self,
        what: &str,
        v: &'a Spanned<DeValue<'i>>,
    ) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    "judgeflow::config::type",
                    format!("`{what}` must be a table"),
                    v.span(),
                    format!("found {}", de_type_name(other)),
                );
                None
            }
        }
    }

    fn document(&mut self, root: &DeTable<'_>, root_span: Range<usize>) -> PipelineDecl {
        let mut decl = PipelineDecl {
            origin: self.origin.clone(),
            name: Sp::new(String::new(), 0..0),
            seed: 0,
            compare: Vec::new(),
            nodes: Vec::new(),
            groups: Vec::new(),
            sweeps: Vec::new(),
            executor: Default::default(),
        };
        let mut saw_pipeline = false;
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "pipeline" => {
                    saw_pipeline = true;
                    if let Some(t) = self.expect_table("pipeline", value) {
                        self.pipeline_table(t, value.span(), &mut decl);
                    }
                }
                "nodes" => {
                    if let Some(t) = self.expect_table("nodes", value) {
                        for entry in t.iter() {
                            if let Some(node) = self.node(entry) {
                                decl.nodes.push(node);
                            }
                        }
                    }
                }
                "iterate" => {
                    if let Some(t) = self.expect_table("iterate", value) {
                        for entry in t.iter() {
                            if let Some(g) = self.group(entry) {
                                decl.groups.push(g);
                            }
                        }
                    }
                }
                "sweep" => {
                    if let Some(t) = self.expect_table("sweep", value) {
                        for entry in t.iter() {
                            self.sweep(entry, None, &mut decl.sweeps);
                        }
                    }
                }
                "executor" => {
                    decl.executor = crate::executor::settings::parse_table(
                        &self.origin,
                        value,
                        &mut self.errors,
                    );
                }
                other => {
                    let other = other.to_string();
                    self.err(
                        "judgeflow::config::unknown_section",
                        format!("unknown top-level section `{other}`"),
                        key.span(),
                        "not a pipeline section",
                    );
                    let e = self.errors.pop().expect("just pushed").suggest(
                        &other,
                        ["pipeline", "nodes", "iterate", "sweep", "executor"],
                    );
                    let e = if e.help.is_none() {
                        e.help(
                            "top-level sections are `pipeline`, `nodes`, `iterate`, `sweep` \
                             and `executor`",
                        )
                    } else {
                        e
                    };
                    self.errors.push(e);
                }
            }
        }
        if !saw_pipeline {
            self.err(
                "judgeflow::config::missing_pipeline",
                "missing `[pipeline]` section",
                root_span.start..root_span.start,
                "expected `[pipeline]` with a `name`",
            )
            .help =
                Some("start the file with:\n[pipeline]\nname = \"my-pipeline\"\nseed = 0".into());
        }
        if saw_pipeline && decl.nodes.is_empty() && self.errors.is_empty() {
            self.err(
                "judgeflow::config::no_nodes",
                "the pipeline has no nodes",
                decl.name.span.clone(),
                "nothing to run",
            )
            .help = Some("add nodes as `[nodes.NAME]` tables with an `op` key".into());
        }
        for (name, (_, span)) in &decl.executor.nodes {
            if !decl.nodes.iter().any(|n| &n.name.value == name) {
                let e = ConfigError::new(
                    "judgeflow::config::executor",
                    format!("`[executor.nodes.{name}]` names no node of this pipeline"),
                )
                .at(
                    &self.origin,
                    span.clone(),
                    "no `[nodes.*]` table has this name",
                )
                .suggest(name, decl.nodes.iter().map(|n| n.name.value.as_str()));
                self.errors.push(e);
            }
        }
        decl
    }

    fn pipeline_table(&mut self, t: &DeTable<'_>, span: Range<usize>, decl: &mut PipelineDecl) {
        let mut saw_name = false;
        for (key, value) in t.iter() {
            match key.get_ref().as_ref() {
                "name" => {
                    if let Some(s) = self.string("pipeline.name", value) {
                        if !valid_name(&s.value) {
                            self.err(
                                "judgeflow::config::bad_name",
                                format!("pipeline name `{}` has characters other than letters, digits, `_` and `-`", s.value),
                                s.span.clone(),
                                "invalid name",
                            );
                        }
                        self.check_length("pipeline", &s);
                        decl.name = s;
                        saw_name = true;
                    }
                }
                "seed" => {
                    if let Some(n) = self.unsigned("pipeline.seed", value, u64::MAX) {
                        decl.seed = n.value;
                    }
                }
                "compare" => {
                    if let Some(list) = self.string_list("pipeline.compare", value) {
                        decl.compare = list;
                    }
                }
                other => {
                    let other = other.to_string();
                    self.err(
                        "judgeflow::config::unknown_key",
                        format!("unknown key `{other}` in `[pipeline]`"),
                        key.span(),
                        "unknown key",
                    );
                    let e = self
                        .errors
                        .pop()
                        .expect("just pushed")
                        .suggest(&other, ["name", "seed", "compare"]);
                    self.errors.push(e);
                }
            }
        }
        if !saw_name {
            self.err(
                "judgeflow::config::missing_key",
                "`[pipeline]` has no `name`",
                span,
                "this table needs `name = \"...\"`",
            );
        }
    }

    fn node(&mut self, (key, value): Entry<'_, '_>) -> Option<NodeDecl> {
        let name = Sp::new(key.get_ref().to_string(), key.span());
        if !valid_name(&name.value) {
            self.err(
                "judgeflow::config::bad_name",
                format!(
                    "node name `{}` has characters other than letters, digits, `_` and `-`",
                    name.value
                ),
                name.span.clone(),
                "invalid node name",
            )
            .help = Some(
                "`@` and `.` are reserved for references like `judge@prev` and `train.checkpoint`"
                    .into(),
            );
            return None;
        }
        if !self.check_length("node", &name) {
            return None;
        }
        let table = self.expect_table(&format!("nodes.{}", name.value), value)?;
        let mut node = NodeDecl {
            name,
            op: None,
            inputs: InputsDecl::None,
            params: Vec::new(),
            seed: None,
            gpus: None,
            shards: None,
        };
        for (k, v) in table.iter() {
            match k.get_ref().as_ref() {
                "op" => node.op = self.string("op", v),
                "inputs" => node.inputs = self.inputs(v),
                "seed" => node.seed = self.unsigned("seed", v, u64::MAX),
                "gpus" => {
                    node.gpus = self
                        .unsigned("gpus", v, 64)
                        .map(|s| Sp::new(s.value as u32, s.span))
                }
                "shards" => {
                    node.shards = self
                        .unsigned("shards", v, 4096)
                        .map(|s| Sp::new(s.value as u32, s.span))
                }
                param => match Value::from_toml(v.get_ref()) {
                    Some(val) => node
                        .params
                        .push((Sp::new(param.to_string(), k.span()), Sp::new(val, v.span()))),
                    None => {
                        self.err(
                            "judgeflow::config::type",
                            format!(
                                "parameter `{param}` of node `{}` is not a plain value",
                                node.name.value
                            ),
                            v.span(),
                            format!("{} is not a parameter value", de_type_name(v.get_ref())),
                        )
                        .help = Some(
                            "parameters are strings, numbers, booleans or arrays of them".into(),
                        );
                    }
                },
            }
        }
        Some(node)
    }

    fn inputs(&mut self, v: &Spanned<DeValue<'_>>) -> InputsDecl {
        match v.get_ref() {
            DeValue::Array(_) => self
                .string_list("inputs", v)
                .map(InputsDecl::Positional)
                .unwrap_or_default(),
            DeValue::Table(t) => {
                let mut named = Vec::new();
                for (k, item) in t.iter() {
                    if let Some(s) = self.string("inputs", item) {
                        named.push((Sp::new(k.get_ref().to_string(), k.span()), s));
                    }
                }
                InputsDecl::Named(named)
            }
            DeValue::String(s) => InputsDecl::Positional(vec![Sp::new(s.to_string(), v.span())]),
            other => {
                self.err(
                    "judgeflow::config::type",
                    "`inputs` must be an array of node references or a table of port = reference",
                    v.span(),
                    format!("found {}", de_type_name(other)),
                );
                InputsDecl::None
            }
        }
    }

    fn group(&mut self, (key, value): Entry<'_, '_>) -> Option<GroupDecl> {
        let name = Sp::new(key.get_ref().to_string(), key.span());
        let table = self.expect_table(&format!("iterate.{}", name.value), value)?;
        let mut times = None;
        let mut nodes = None;
        let mut initial = Vec::new();
        for (k, v) in table.iter() {
            match k.get_ref().as_ref() {
                "times" => {
                    times = self
                        .unsigned("times", v, MAX_TIMES as u64)
                        .map(|s| Sp::new(s.value as u32, s.span))
                }
                "nodes" => nodes = self.string_list("nodes", v),
                "initial" => {
                    if let Some(t) = self.expect_table("initial", v) {
                        for (ik, iv) in t.iter() {
                            if let Some(s) = self.string("initial", iv) {
                                initial.push((Sp::new(ik.get_ref().to_string(), ik.span()), s));
                            }
                        }
                    }
                }
                other => {
                    let other = other.to_string();
                    self.err(
                        "judgeflow::config::unknown_key",
                        format!("unknown key `{other}` in `[iterate.{}]`", name.value),
                        k.span(),
                        "unknown key",
                    );
                    let e = self
                        .errors
                        .pop()
                        .expect("just pushed")
                        .suggest(&other, ["times", "nodes", "initial"]);
                    self.errors.push(e);
                }
            }
        }
        let (Some(times), Some(nodes)) = (times, nodes) else {
            self.err(
                "judgeflow::config::missing_key",
                format!("`[iterate.{}]` needs `times` and `nodes`", name.value),
                value.span(),
                "incomplete iteration group",
            );
            return None;
        };
        if times.value == 0 {
            self.err(
                "judgeflow::config::range",
                "`times` must be at least 1",
                times.span.clone(),
                "zero repetitions",
            );
            return None;
        }
        Some(GroupDecl {
            name,
            times,
            nodes,
            initial,
        })
    }

    /// One `[sweep]` entry into `out`. A dotted key written without quotes
    /// (`pipeline.seed = [1, 2]`) is a nested table in TOML; it means the same as the quoted
    /// `"pipeline.seed"`, so nested tables are flattened into dotted targets (`prefix` is the
    /// outer key and where it starts). Both spellings of one key make two entries, which
    /// planning reports as a key swept twice.
    fn sweep(
        &mut self,
        (key, value): Entry<'_, '_>,
        prefix: Option<(&str, usize)>,
        out: &mut Vec<SweepDecl>,
    ) {
        let (name, span) = match prefix {
            // One line (`a.b = [..]`): point at the whole dotted key; a `[sweep.a]` table's
            // key sits far from its header, so point at the inner key alone.
            Some((outer, start))
                if self
                    .origin
                    .text()
                    .get(start..key.span().end)
                    .is_some_and(|written| !written.contains('\n')) =>
            {
                (format!("{outer}.{}", key.get_ref()), start..key.span().end)
            }
            Some((outer, _)) => (format!("{outer}.{}", key.get_ref()), key.span()),
            None => (key.get_ref().to_string(), key.span()),
        };
        let target = Sp::new(name, span);
        if let DeValue::Table(t) = value.get_ref() {
            for entry in t.iter() {
                self.sweep(entry, Some((&target.value, target.span.start)), out);
            }
            return;
        }
        let DeValue::Array(items) = value.get_ref() else {
            self.err(
                "judgeflow::config::type",
                format!(
                    "sweep `{}` must list its alternatives in an array",
                    target.value
                ),
                value.span(),
                format!("found {}", de_type_name(value.get_ref())),
            );
            return;
        };
        if items.is_empty() {
            self.err(
                "judgeflow::config::range",
                format!("sweep `{}` has no alternatives", target.value),
                value.span(),
                "empty array",
            );
            return;
        }
        let mut values = Vec::new();
        for item in items.iter() {
            match Value::from_toml(item.get_ref()) {
                Some(v) => values.push(Sp::new(v, item.span())),
                None => {
                    self.err(
                        "judgeflow::config::type",
                        "sweep alternatives must be plain values",
                        item.span(),
                        "not a parameter value",
                    );
                }
            }
        }
        out.push(SweepDecl { target, values });
    }

    fn string(&mut self, what: &str, v: &Spanned<DeValue<'_>>) -> Option<Sp<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            other => {
                self.err(
                    "judgeflow::config::type",
                    format!("`{what}` must be a string"),
                    v.span(),
                    format!("found {}", de_type_name(other)),
                );
                None
            }
        }
    }

    fn string_list(&mut self, what: &str, v: &Spanned<DeValue<'_>>) -> Option<Vec<Sp<String>>> {
        match v.get_ref() {
            DeValue::Array(items) => items.iter().map(|i| self.string(what, i)).collect(),
            other => {
                self.err(
                    "judgeflow::config::type",
                    format!("`{what}` must be an array of strings"),
                    v.span(),
                    format!("found {}", de_type_name(other)),
                );
                None
            }
        }
    }

    fn unsigned(&mut self, what: &str, v: &Spanned<DeValue<'_>>, max: u64) -> Option<Sp<u64>> {
        let parsed = match v.get_ref() {
            DeValue::Integer(_) => match Value::from_toml(v.get_ref()) {
                Some(Value::Int(i)) if i >= 0 && (i as u64) <= max => Some(i as u64),
                _ => None,
            },
            other => {
                self.err(
                    "judgeflow::config::type",
                    format!("`{what}` must be an integer"),
                    v.span(),
                    format!("found {}", de_type_name(other)),
                );
                return None;
            }
        };
        match parsed {
            Some(n) => Some(Sp::new(n, v.span())),
            None => {
                self.err(
                    "judgeflow::config::range",
                    format!("`{what}` must be in 0..={max}"),
                    v.span(),
                    "out of range",
                );
                None
            }
        }
    }
}

fn de_type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
