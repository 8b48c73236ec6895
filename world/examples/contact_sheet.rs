//! Writes a contact sheet of generated scenes with their gold caption and QA to a PNG.
//!
//! `cargo run -p judgeflow-world --example contact_sheet [-- OUT.png]` (default
//! `/tmp/contact_sheet.png`). The last row uses increasing noise to show the difficulty knob;
//! the benchmark pairs of the first four scenes are printed.

use judgeflow_world::{
    WorldConfig, bench_pairs, contact_sheet, draw_scene, encode_png, prompts_for, rng,
};

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/contact_sheet.png".to_string());
    let noises = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0];
    let items: Vec<_> = noises
        .iter()
        .enumerate()
        .map(|(i, &noise)| {
            let config = WorldConfig {
                noise,
                ..WorldConfig::default()
            };
            let seed = 1000 + i as u64;
            let scene = draw_scene(&config, seed);
            // Preference pairs go to stdout: too long to read in a grid cell.
            if i < 4 {
                for pair in bench_pairs(&scene, config.max_objects, &mut rng(seed)) {
                    println!(
                        "[{:?}/{}] {}\n  chosen:   {}\n  rejected: {}",
                        pair.dimension, pair.error_kind, pair.question, pair.chosen, pair.rejected
                    );
                }
            }
            let lines = prompts_for(&scene, &mut rng(seed))
                .into_iter()
                .map(|p| format!("{} -> {}", p.question, p.answer))
                .collect();
            (scene, lines)
        })
        .collect();
    let sheet = contact_sheet(&items, 4);
    std::fs::write(&out, encode_png(&sheet)).expect("write contact sheet");
    println!("wrote {out} ({}x{})", sheet.width(), sheet.height());
}
