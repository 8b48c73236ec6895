//! The JSON-lines prompt source and what every file source refuses, through the real engine:
//! fixtures (PNG, JPEG, truncated PNG, JSONL, device files, oversized images) are written into
//! a tempdir (`common`), a one-node pipeline is planned with the real registry and run against
//! a fresh cache, and the output frame is read back from the cache. The benchmark sources are
//! in `benchmark_sources.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use judgeflow_engine::Error;
use judgeflow_engine::cache::Cache;
use judgeflow_engine::cli;
use judgeflow_engine::exec::{self, RunOptions};
use judgeflow_engine::progress::ProgressHub;
use judgeflow_schemas::columns;
use serde_json::json;

/// Good and bad prompt lines, in that order of ids: p1, 2, p3, p4 are good.
fn prompt_fixture(f: &Fixture) -> PathBuf {
    f.write("data/a.png", png(1));
    f.write("data/b.jpg", jpeg(2));
    f.write("data/sub/c.png", png(3));
    f.write("data/trunc.png", truncated_png());
    let absolute = f.write("elsewhere/d.png", png(4));
    f.jsonl(
        "data/prompts.jsonl",
        &[
            json!({"id": "p1", "image": "a.png", "prompt": "What colour is it?", "answer": "red", "task": "color"}),
            json!({"id": 2, "image": "b.jpg", "prompt": "Describe the picture."}),
            json!({"id": "p3", "image": "sub/c.png", "prompt": "How many?", "answer": 3, "open": true}),
            json!({"id": "p4", "image": absolute.to_str().unwrap(), "prompt": "Where?", "extra": [1, 2]}),
        ]
        .iter()
        .map(|v| v.to_string())
        .chain([
            String::new(),
            r#"{"id": "broken", "image": "a.png", "#.to_string(),
            json!({"id": "no-prompt", "image": "a.png"}).to_string(),
            json!({"id": "trunc", "image": "trunc.png", "prompt": "?"}).to_string(),
            json!({"id": "gone", "image": "missing.png", "prompt": "?"}).to_string(),
            json!({"id": "p1", "image": "a.png", "prompt": "again"}).to_string(),
            json!({"id": "typed", "image": "a.png", "prompt": "?", "open": "yes"}).to_string(),
        ])
        .collect::<Vec<_>>(),
    )
}

#[test]
fn jsonl_prompts_keep_good_rows_and_fill_defaults() {
    let f = Fixture::new();
    let path = prompt_fixture(&f);
    let df = f
        .run(&format!(
            "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap();
    assert_eq!(strings(&df, "prompt_id"), ["p1", "2", "p3", "p4"]);
    assert_eq!(
        strs(&df, "gold_answer"),
        [Some("red".to_string()), None, Some("3".to_string()), None]
    );
    assert_eq!(
        strings(&df, "task"),
        ["color", "unknown", "unknown", "unknown"]
    );
    let open: Vec<bool> = columns::bools(&df, "open")
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    // Default: open exactly when there is no answer; p3 says so explicitly despite its answer.
    assert_eq!(open, [false, true, true, true]);
    assert_eq!(strings(&df, "source"), ["prompts"; 4]);
    let images = columns::binaries(&df, "image").unwrap();
    // Bytes pass through untouched, JPEG stays JPEG.
    assert_eq!(images, [png(1), jpeg(2), png(3), png(4)]);
}

#[test]
fn jsonl_bad_rows_fail_the_node_naming_ids_and_lines() {
    let f = Fixture::new();
    let path = prompt_fixture(&f);
    let err = f
        .run(&format!(
            "kind = \"jsonl\"\npath = {}\nsource = \"mine\"",
            lit(&path)
        ))
        .unwrap_err();
    let (code, message) = node_failure(err);
    assert_eq!(code, "judgeflow::source::bad_rows");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("6 of 10 rows are bad"), "{message}");
    for needle in [
        "line 6: bad JSON",
        "line 7 (id `no-prompt`): `prompt` is missing",
        "line 8 (id `trunc`)",
        "does not decode",
        "line 9 (id `gone`): cannot read image",
        "line 10 (id `p1`): duplicate id (first on line 1)",
        "line 11 (id `typed`): `open` is a string, not a boolean",
    ] {
        assert!(
            message.contains(needle),
            "missing {needle:?} in:\n{message}"
        );
    }
}

#[test]
fn a_truncated_png_alone_is_a_bad_row() {
    let f = Fixture::new();
    f.write("t.png", truncated_png());
    let path = f.jsonl(
        "one.jsonl",
        &[json!({"id": "only", "image": "t.png", "prompt": "?"}).to_string()],
    );
    let (code, message) = node_failure(
        f.run(&format!("kind = \"jsonl\"\npath = {}", lit(&path)))
            .unwrap_err(),
    );
    assert_eq!(code, "judgeflow::source::bad_rows");
    assert!(
        message.contains("(id `only`)") && message.contains("Png image does not decode"),
        "{message}"
    );
    // Skipping it leaves nothing, which is its own error.
    let (code, _) = node_failure(
        f.run(&format!(
            "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap_err(),
    );
    assert_eq!(code, "judgeflow::source::empty");
}

/// Plans `body` as `[nodes.src]` against one persistent cache, for freshness across edits.
fn status_of_src(f: &Fixture, body: &str, cache: &Path) -> judgeflow_engine::exec::Status {
    let pipeline = f.write(
        "persistent.toml",
        format!(
            "[pipeline]\nname = \"sources\"\nseed = 11\n\n[nodes.src]\nop = \"source\"\n{body}\n"
        ),
    );
    let plan = cli::load(&pipeline, &judgeflow_operators::registry(), &[]).unwrap();
    let cache = Cache::open(cache).unwrap();
    exec::status(&plan, &cache).unwrap().remove(0).1
}

fn run_src(f: &Fixture, body: &str, cache: &Path) -> Result<(), Error> {
    let pipeline = f.write(
        "persistent.toml",
        format!(
            "[pipeline]\nname = \"sources\"\nseed = 11\n\n[nodes.src]\nop = \"source\"\n{body}\n"
        ),
    );
    let plan = cli::load(&pipeline, &judgeflow_operators::registry(), &[])?;
    let cache = Cache::open(cache)?;
    exec::run(
        &plan,
        &cache,
        &RunOptions { jobs: 1, gpus: 1 },
        &ProgressHub::hidden(),
    )
    .map(|_| ())
}

#[test]
fn a_line_that_is_not_utf8_keeps_the_other_rows_images_in_the_key() {
    let f = Fixture::new();
    f.write("a.png", png(1));
    f.write("b.png", png(2));
    let mut bytes = Vec::new();
    for (id, image) in [("a", "a.png"), ("b", "b.png")] {
        bytes.extend(
            json!({"id": id, "image": image, "prompt": "?"})
                .to_string()
                .bytes(),
        );
        bytes.push(b'\n');
    }
    bytes.extend(b"{\"id\": \"bad\", \"image\": \"a.png\", \"prompt\": \"\xff\"}\n");
    let path = f.write("mixed.jsonl", &bytes);
    let body = format!(
        "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
        lit(&path)
    );
    let cache = f.path("persistent-cache");
    run_src(&f, &body, &cache).unwrap();
    assert!(matches!(
        status_of_src(&f, &body, &cache),
        judgeflow_engine::exec::Status::Fresh { .. }
    ));
    // Replacing an image a kept row uses must make the source dirty, bad line or not.
    f.write("b.png", png(3));
    match status_of_src(&f, &body, &cache) {
        judgeflow_engine::exec::Status::Dirty { why, .. } => assert!(
            why.iter().any(|w| matches!(
                w,
                judgeflow_engine::dirty::DirtyReason::FileChanged { path } if path.ends_with("b.png")
            )),
            "{why:?}"
        ),
        other => panic!("the old image would be served: {other:?}"),
    }
}

#[test]
fn a_data_file_that_is_a_device_is_refused_not_read() {
    let f = Fixture::new();
    let body = "kind = \"jsonl\"\npath = \"/dev/zero\"";
    let cache = f.path("dev-cache");
    // Planning hashes nothing it would have to read without end...
    assert!(matches!(
        status_of_src(&f, body, &cache),
        judgeflow_engine::exec::Status::Dirty { .. }
    ));
    // ... and the run refuses the file with the reason.
    let err = run_src(&f, body, &cache).unwrap_err();
    let text = cli::render(&err, 100, false);
    assert!(
        text.contains("cannot read `/dev/zero`")
            && text.contains("a character device, not a regular file"),
        "{text}"
    );
}

/// A PNG whose header says `width`×`height` greyscale, followed by a stub of image data: the
/// size check must come from the header, before anything is decoded.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x63, 0x00, 0x00]);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn images_that_are_not_regular_files_or_too_large_are_bad_rows_not_hangs() {
    let f = Fixture::new();
    f.write("ok.png", png(5));
    f.write("huge.png", png_header_only(20_000, 20_000));
    let fifo = f.path("fifo.png");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let looped = f.path("loop");
    std::fs::create_dir(&looped).unwrap();
    std::os::unix::fs::symlink(&looped, looped.join("again")).unwrap();
    let path = f.jsonl(
        "hazards.jsonl",
        &[
            json!({"id": "ok", "image": "ok.png", "prompt": "?"}),
            json!({"id": "fifo", "image": "fifo.png", "prompt": "?"}),
            json!({"id": "zero", "image": "/dev/zero", "prompt": "?"}),
            json!({"id": "loop", "image": "loop", "prompt": "?"}),
            json!({"id": "huge", "image": "huge.png", "prompt": "?"}),
        ]
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>(),
    );
    let err = f
        .run(&format!("kind = \"jsonl\"\npath = {}", lit(&path)))
        .unwrap_err();
    let (code, message) = node_failure(err);
    assert_eq!(code, "judgeflow::source::bad_rows");
    for needle in [
        "(id `fifo`): cannot read image",
        "a FIFO, not a regular file",
        "(id `zero`): cannot read image `/dev/zero`: it is a character device",
        "(id `loop`): cannot read image",
        "a directory, not a regular file",
        "(id `huge`)",
        "20000×20000 pixels; the limit is 48000000 pixels",
    ] {
        assert!(
            message.contains(needle),
            "missing {needle:?} in:\n{message}"
        );
    }
    let df = f
        .run(&format!(
            "kind = \"jsonl\"\npath = {}\non_error = \"skip\"",
            lit(&path)
        ))
        .unwrap();
    assert_eq!(strings(&df, "prompt_id"), ["ok"]);
}
