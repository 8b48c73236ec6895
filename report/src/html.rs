//! `index.html`: one self-contained page (inline style, figures linked relatively) so that the
//! report directory can be copied or served as it is.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::Data;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as the tables show it: three decimals, or a dash when unknown (NaN when n = 0).
fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "—".into()
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}\
small{color:#666}.missing{color:#a00}\
figure{display:inline-block;margin:0 1em 1em 0}img{max-width:100%}";

/// The page: figures (given as written path and title), then the tables.
pub fn page(data: &Data, figures: &[(PathBuf, String)]) -> String {
    let mut h = String::new();
    let title = escape(data.pipeline);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>judgeflow report: {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>judgeflow report: {title}</h1>\n"
    );
    let missing: Vec<&str> = data
        .nodes
        .iter()
        .filter(|n| n.outputs.is_empty())
        .map(|n| n.name.as_str())
        .collect();
    let _ = writeln!(
        h,
        "<p>{} nodes, {} with results.</p>",
        data.nodes.len(),
        data.nodes.len() - missing.len()
    );
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|n| format!("<code>{}</code>", escape(n)))
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"missing\">Not run yet: {}.</p>",
            names.join(", ")
        );
    }

    h.push_str("<h2>Figures</h2>\n");
    if figures.is_empty() {
        h.push_str("<p>No figures: no evaluate, filter or train node has a result yet.</p>\n");
    }
    for (path, caption) in figures {
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<figure><img src=\"{}\" alt=\"{}\" width=\"900\"><figcaption>{}</figcaption></figure>",
            escape(file),
            escape(caption),
            escape(caption)
        );
    }

    seeds_tables(data, &mut h);
    perception_table(data, &mut h);
    accuracy_tables(data, &mut h);
    diagnostics_table(data, &mut h);
    kept_table(data, &mut h);
    nodes_table(data, &mut h);
    h.push_str("</body>\n</html>\n");
    h
}

/// Per variant: one row per evaluate node (by iteration), one column per dimension.
fn accuracy_tables(data: &Data, h: &mut String) {
    h.push_str("<h2>Accuracy</h2>\n");
    if data.evals.is_empty() {
        h.push_str("<p>No evaluate node has a result yet.</p>\n");
        return;
    }
    h.push_str(
        "<p><small>Each cell: accuracy and its 95% interval (Wilson; macro: normal), then \
         <i>n</i> (items scored; ties and unparseable verdicts excluded) and the share of parsed \
         verdicts that said A (0.5 = no position bias), then the text-only baselines on the same \
         items: how often the better answer is the shorter / the longer one (by characters; \
         equal lengths count 1/2). A judge reads the image only where it beats these and the \
         blind judge (<i>blind</i>: every image replaced by a blank one).</small></p>\n",
    );
    let dims = data.dimensions();
    for variant in &data.variants {
        let mut evals: Vec<_> = data
            .evals
            .iter()
            .filter(|e| crate::in_variant(e.node, variant))
            .collect();
        if evals.is_empty() {
            continue;
        }
        evals.sort_by_key(|e| e.iteration);
        if data.swept() {
            let _ = writeln!(h, "<h3>{}</h3>", escape(variant));
        }
        h.push_str("<table>\n<tr><th>node</th><th>iteration</th>");
        for d in &dims {
            let _ = write!(h, "<th>{}</th>", escape(d));
        }
        h.push_str("</tr>\n");
        for e in evals {
            let blind = if crate::is_blind(&e.rows) {
                " <small>(blind)</small>"
            } else {
                ""
            };
            let _ = write!(
                h,
                "<tr><td>{}{blind}</td><td>{}</td>",
                escape(&e.node.name),
                e.iteration
            );
            for d in &dims {
                match e.rows.iter().find(|r| &r.dimension == d) {
                    Some(r) => {
                        let _ = write!(
                            h,
                            "<td title=\"correct {} · ties {} · unparseable {} · items {} · \
                             text by words: shorter {} · longer {}\">{} \
                             <small>[{}, {}]</small><br>\
                             <small>n {} · A {}<br>text: shorter {} · longer {}</small></td>",
                            r.correct,
                            r.ties,
                            r.unparseable,
                            r.items,
                            num(r.shorter_wins_words),
                            num(r.longer_wins_words),
                            num(r.accuracy),
                            num(r.accuracy_lo),
                            num(r.accuracy_hi),
                            r.n,
                            num(r.a_share),
                            num(r.shorter_wins),
                            num(r.longer_wins)
                        );
                    }
                    None => h.push_str("<td>—</td>"),
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
}

/// Every `perception` node's rows: accuracy with its interval, the prior, the gain, the gate.
fn perception_table(data: &Data, h: &mut String) {
    if data.perception.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Perception (the base model's gate)</h2>\n<p><small>Greedy answers to held-out \
         closed questions per form, and the claims of the model's descriptions of the same \
         scenes checked against their scene graphs (<code>caption claims</code>: share of \
         claims true; <code>caption objects</code>: share of the objects a true claim names). \
         Accuracy with its 95% Wilson interval; the prior is what answering without looking \
         scores (a form's most common answer; for descriptions, another scene's gold \
         description). A row passes when it reaches the gate's accuracy and beats its prior by \
         the gate's gain.</small></p>\n",
    );
    let mut cells = vec![
        [
            "node",
            "row",
            "accuracy [95% CI]",
            "n",
            "prior",
            "gain",
            "passes",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in &data.perception {
        for r in &p.rows {
            cells.push(vec![
                p.node.name.clone(),
                crate::perception_label(r),
                format!(
                    "{} [{}, {}]",
                    num(r.accuracy),
                    num(r.accuracy_lo),
                    num(r.accuracy_hi)
                ),
                r.n.to_string(),
                num(r.prior),
                format!("{:+.3}", r.accuracy - r.prior),
                if r.passes { "yes" } else { "no" }.to_string(),
            ]);
        }
    }
    cells_table(&cells, h);
}

fn kept_table(data: &Data, h: &mut String) {
    if data.kept.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Kept by the filter</h2>\n<table>\n<tr><th>node</th><th>iteration</th>\
         <th>source</th><th>kind</th><th>pairs</th><th>judgements</th><th>kept</th>\
         <th>kept fraction</th></tr>\n",
    );
    for k in &data.kept {
        for r in &k.rows {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                escape(&k.node.name),
                k.iteration,
                escape(&r.source),
                escape(&r.kind),
                r.pairs,
                r.judgements,
                r.kept,
                num(r.kept_fraction)
            );
        }
    }
    h.push_str("</table>\n");
}

fn nodes_table(data: &Data, h: &mut String) {
    h.push_str(
        "<h2>Nodes</h2>\n<table>\n<tr><th>node</th><th>op</th><th>variants</th>\
         <th>wall time</th></tr>\n",
    );
    for n in data.nodes {
        let op = match &n.kind {
            Some(k) => format!("{} ({k})", n.op),
            None => n.op.clone(),
        };
        let variants = if data.swept() {
            n.variants.join("; ")
        } else {
            String::new()
        };
        let time = match (n.outputs.is_empty(), n.seconds) {
            (true, _) => "<span class=\"missing\">not run yet</span>".to_string(),
            (false, Some(s)) => format!("{s:.2} s"),
            (false, None) => "—".to_string(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{time}</td></tr>",
            escape(&n.name),
            escape(&op),
            escape(&variants)
        );
    }
    h.push_str("</table>\n");
}

/// Rows of cells as an HTML table, the first row as its header.
fn cells_table(cells: &[Vec<String>], h: &mut String) {
    h.push_str("<table>\n");
    for (i, row) in cells.iter().enumerate() {
        let tag = if i == 0 { "th" } else { "td" };
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<{tag}>{}</{tag}>", escape(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// With a seed sweep: accuracy over seeds and the gain of the last iteration over the base.
fn seeds_tables(data: &Data, h: &mut String) {
    if data.seed_groups.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Over seeds</h2>\n<p><small>Variants that differ only by <code>pipeline.seed</code> \
         are grouped. Per evaluation and dimension: the mean accuracy over seeds with a 95% \
         t-interval across seeds (n = seeds), and each seed's accuracy with its Wilson interval \
         over items. The gain of the last iteration over the base: per seed, the difference on \
         the bench items both evaluations scored with a 95% paired bootstrap interval over \
         those items (2,000 resamples); across seeds, the mean of the per-seed gains with its \
         t-interval.</small></p>\n",
    );
    for (title, cells) in crate::seed_tables(&data.seed_groups) {
        let _ = writeln!(h, "<h3>{}</h3>", escape(&title));
        cells_table(&cells, h);
    }
}

/// Per iteration: agreement with the synthetic labels, vote label precision, A-share,
/// unparseable rate, copied answers, kept fraction.
fn diagnostics_table(data: &Data, h: &mut String) {
    if data.diagnostics.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>Per-iteration diagnostics</h2>\n<p><small>Judge: share of parsed verdicts that \
         agree with the synthetic label, that say A, and share of outputs without a verdict; \
         share of outputs whose reasoning contains answer A or B verbatim (among judgements \
         with an answer of {} words or more, n in brackets); how often the two orders of a pair pick \
         the same answer (1: the verdict follows the answers; 0.5: a coin; near 0: one letter \
         whatever the answers). Vote: share of majority labels the \
         gold answer confirms (n: pairs with a gold answer). Filter: share of judgements \
         kept.</small></p>",
        crate::diagnostics::COPY_MIN_WORDS
    );
    cells_table(
        &crate::diagnostics_table(&data.diagnostics, data.swept()),
        h,
    );
}
