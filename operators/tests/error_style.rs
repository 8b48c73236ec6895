//! One error style in operators: every diagnostic an operator raises with `miette!` carries a
//! `judgeflow::…` code (the engine already puts the node's name above it), so users and tests
//! can tell errors apart by code rather than by wording. Typed errors (`thiserror` enums deriving
//! `Diagnostic`) carry theirs in `#[diagnostic(code(..))]`; this test checks the `miette!` calls,
//! which have no such check of their own.

use std::path::Path;

/// `miette!( … )` calls in `text` (up to its `#[cfg(test)]` module) whose arguments name no
/// `code`: (line, call).
fn uncoded(text: &str) -> Vec<(usize, String)> {
    let body = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for (at, _) in body.match_indices("miette!(") {
        // Doc comments mention the macro; they are not calls.
        let line_start = body[..at].rfind('\n').map_or(0, |i| i + 1);
        if body[line_start..at].trim_start().starts_with("//") {
            continue;
        }
        let mut depth = 0usize;
        let mut end = at;
        for (i, c) in body[at..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &body[at..end];
        if !call.contains("code =") {
            let line = body[..at].matches('\n').count() + 1;
            out.push((line, call.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    out
}

#[test]
fn every_miette_diagnostic_of_an_operator_has_a_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (line, call) in uncoded(&text) {
                missing.push(format!("{}:{line}: {call}", path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "diagnostics without a `code = \"judgeflow::…\"`:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_an_uncoded_call_and_accepts_a_coded_one() {
    let text = r#"
fn f() {
    let a = miette!("no code: {}", g(1));
    let b = miette!(code = "judgeflow::x", "coded {}", g(2));
    /// `miette!("{e}")` in a comment is no call.
}
#[cfg(test)]
mod tests { fn t() { miette!("tests may"); } }
"#;
    let found = uncoded(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 3);
    assert!(found[0].1.starts_with("miette!(\"no code"));
}
