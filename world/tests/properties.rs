//! Property tests: every gold label is true of its drawn scene, checked by an independent
//! text oracle; placement, determinism and serialisation invariants.

mod common;

use common::{check_caption, claimed_kinds, final_answer, number, oracle, words};
use judgeflow_world::{
    BenchPair, Color, Dimension, Scene, Shape, Size, TaskType, WorldConfig, bench_pairs,
    bench_pairs_directed, binding_claims, binding_pairs, corpus_for, draw_scene, prompts_for,
    reasoning_prompts, render, render_png, rng,
};
use proptest::prelude::*;

/// Configs across the allowed range, including dense ones that exercise grid fallback.
fn configs() -> impl Strategy<Value = WorldConfig> {
    (
        prop_oneof![Just(64u32), Just(48), Just(96)],
        1usize..=4,
        0usize..=4,
        prop_oneof![Just(0.0f32), 0.0f32..=1.0],
    )
        .prop_map(|(image_size, min, extra, noise)| WorldConfig {
            image_size,
            min_objects: min,
            max_objects: (min + extra).min(4),
            noise,
            ..WorldConfig::default()
        })
        .prop_filter("valid", |c| c.validate().is_ok())
}

fn assert_no_overlap(scene: &Scene) {
    for (i, a) in scene.objects.iter().enumerate() {
        let (ax0, ax1) = (a.x - a.radius, a.x + a.radius);
        let (ay0, ay1) = (a.y - a.radius, a.y + a.radius);
        assert!(
            ax1 <= scene.width && ay1 <= scene.height,
            "object outside image"
        );
        for b in &scene.objects[i + 1..] {
            let (bx0, bx1) = (b.x - b.radius, b.x + b.radius);
            let (by0, by1) = (b.y - b.radius, b.y + b.radius);
            let disjoint = ax1 < bx0 || bx1 < ax0 || ay1 < by0 || by1 < ay0;
            assert!(disjoint, "objects overlap: {a:?} {b:?}");
        }
    }
}

/// Fixed seed so every run checks the same cases (`PROPTEST_CASES` and `PROPTEST_RNG_SEED`
/// override it to explore more);
/// failures are reproducible from the seed, so no regression files are written.
fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6a75_6467_6566_6c6f),
        failure_persistence: None,
        ..ProptestConfig::with_cases(96)
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn scenes_respect_config(config in configs(), seed in any::<u64>()) {
        let scene = draw_scene(&config, seed);
        prop_assert!(scene.objects.len() >= config.min_objects);
        prop_assert!(scene.objects.len() <= config.max_objects);
        prop_assert_eq!(scene.width, config.image_size);
        assert_no_overlap(&scene);
    }

    #[test]
    fn gold_answers_are_true(config in configs(), seed in any::<u64>()) {
        let scene = draw_scene(&config, seed);
        let prompts = prompts_for(&scene, &mut rng(seed));
        prop_assert!(prompts[0].open && prompts[0].task == TaskType::Caption);
        let mut yes_no = (0, 0);
        for p in &prompts {
            if p.open {
                check_caption(&scene, &p.answer).map_err(|e| {
                    TestCaseError::fail(format!("{e}\ncaption: {}", p.answer))
                })?;
                continue;
            }
            prop_assert!(
                p.answer.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "non-canonical answer {:?}", p.answer
            );
            let gold = oracle(&scene, &p.question).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&gold, &p.answer, "question: {}", p.question);
            if p.task == TaskType::Existence {
                if p.answer == "yes" { yes_no.0 += 1 } else { yes_no.1 += 1 }
            }
        }
        prop_assert_eq!(yes_no.0, yes_no.1, "existence questions unbalanced");
    }

    #[test]
    fn binding_pairs_are_true_and_differ_in_one_word(config in configs(), seed in any::<u64>(), n in 1usize..4) {
        let scene = draw_scene(&config, seed);
        let pairs = binding_pairs(&scene, n, &mut rng(seed));
        prop_assert_eq!(pairs.len() % 2, 0);
        if config.max_objects == 1 {
            // One object always leaves some colour or shape absent.
            prop_assert_eq!(pairs.len(), 2 * n);
        }
        for pair in pairs.chunks(2) {
            let answers: Vec<&str> = pair.iter().map(|p| p.answer.as_str()).collect();
            prop_assert!(answers == ["yes", "no"] || answers == ["no", "yes"], "{:?}", answers);
            for p in pair {
                prop_assert_eq!(p.task, TaskType::Existence);
                let gold = oracle(&scene, &p.question).map_err(TestCaseError::fail)?;
                prop_assert_eq!(&gold, &p.answer, "question: {}", p.question);
            }
            // Besides the article ("a red circle", "an orange circle").
            let content = |q: &str| -> Vec<String> {
                words(q).into_iter().filter(|w| w != "a" && w != "an").collect()
            };
            let (a, b) = (content(&pair[0].question), content(&pair[1].question));
            prop_assert_eq!(a.len(), b.len());
            let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            prop_assert_eq!(differ, 1, "{} / {}", &pair[0].question, &pair[1].question);
        }
    }

    #[test]
    fn binding_claims_mark_their_claims_truly_and_draw_as_the_questions(config in configs(), seed in any::<u64>(), n in 1usize..4) {
        let scene = draw_scene(&config, seed);
        let claims = binding_claims(&scene, n, &mut rng(seed));
        let questions = binding_pairs(&scene, n, &mut rng(seed));
        prop_assert_eq!(claims.len(), questions.len());
        let find = |word: &str, names: &[&'static str]| names.iter().position(|n| *n == word);
        let sizes: Vec<&str> = Size::ALL.iter().map(|s| s.name()).collect();
        let colors: Vec<&str> = Color::ALL.iter().map(|c| c.name()).collect();
        let shapes: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
        for (claim, question) in claims.iter().zip(&questions) {
            // "a large red square (false)." restating the claim the prompt ends with.
            let (said, mark) = claim.answer.trim_end_matches('.').rsplit_once(' ').unwrap();
            prop_assert!(claim.question.ends_with(said), "{} / {}", claim.question, said);
            let w: Vec<&str> = said.split(' ').collect();
            prop_assert_eq!(w.len(), 4, "{}", said);
            let size = Size::ALL[find(w[1], &sizes).unwrap()];
            let color = Color::ALL[find(w[2], &colors).unwrap()];
            let shape = Shape::ALL[find(w[3], &shapes).unwrap()];
            match mark {
                "(true)" => prop_assert!(scene.count(Some(size), Some(color), Some(shape)) > 0, "{}", said),
                "(false)" => prop_assert_eq!(scene.count(None, Some(color), Some(shape)), 0, "{}", said),
                other => prop_assert!(false, "mark {}", other),
            }
            // The same draws as the questions: the same thing, the same truth, the same order.
            let thing = format!("{} {}", w[2], w[3]);
            prop_assert!(question.question.contains(&format!(" {thing}")), "{} / {}", question.question, thing);
            prop_assert_eq!(mark == "(true)", question.answer == "yes");
        }
    }

    #[test]
    fn reasoning_prompts_justify_the_true_answer(config in configs(), seed in any::<u64>(), n in 1usize..5) {
        let scene = draw_scene(&config, seed);
        let prompts = reasoning_prompts(&scene, n, &mut rng(seed));
        prop_assert_eq!(prompts.len(), n);
        for p in &prompts {
            prop_assert_eq!(p.task, TaskType::Reasoning);
            prop_assert!(!p.open);
            // The question is one of the closed questions with a request for reasoning around it.
            let asked = p.question.strip_suffix(" Explain your answer.")
                .or_else(|| p.question.strip_suffix(" Give your reasoning."))
                .or_else(|| p.question.strip_prefix("Answer with your reasoning: "));
            prop_assert!(asked.is_some(), "no request for reasoning: {}", p.question);
            let gold = oracle(&scene, asked.expect("checked")).map_err(TestCaseError::fail)?;
            prop_assert_eq!(final_answer(&p.answer), gold.as_str(), "{}", p.answer);
            // A counting justification's leading count is the count too ("There are no ...").
            if asked.expect("checked").starts_with("How many") {
                let expect = if gold == "0" { "no" } else { gold.as_str() };
                let said = words(&p.answer);
                prop_assert_eq!(said[2].as_str(), expect, "{}", p.answer);
            }
        }
    }

    #[test]
    fn corpus_rows_are_true(seed in any::<u64>()) {
        let scene = draw_scene(&WorldConfig::default(), seed);
        for row in corpus_for(&scene, &mut rng(seed)) {
            if row.task == TaskType::Caption {
                check_caption(&scene, &row.answer).map_err(TestCaseError::fail)?;
            } else {
                prop_assert_eq!(oracle(&scene, &row.question).map_err(TestCaseError::fail)?, row.answer);
            }
        }
    }

    #[test]
    fn bench_rejected_is_false_and_chosen_true(config in configs(), seed in any::<u64>()) {
        let scene = draw_scene(&config, seed);
        let pairs = bench_pairs(&scene, config.max_objects, &mut rng(seed));
        prop_assert_eq!(pairs.len(), 3);
        for pair in &pairs {
            prop_assert_ne!(&pair.chosen, &pair.rejected);
            match pair.dimension {
                Dimension::General | Dimension::Hallucination => {
                    // One injected error: only a few new words, never a rephrased caption.
                    let mut pool = words(&pair.chosen);
                    let new_words = words(&pair.rejected)
                        .into_iter()
                        .filter(|w| match pool.iter().position(|p| p == w) {
                            Some(i) => { pool.swap_remove(i); false }
                            None => true,
                        })
                        .count();
                    // A count error changes the count, the total, "is"/"are" and a plural; a
                    // swapped group changes its size, colour and shape, and so do up to two
                    // spatial claims that name it.
                    let limit = if pair.dimension == Dimension::General { 4 } else { 9 };
                    prop_assert!(new_words <= limit, "{} vs {}", pair.chosen, pair.rejected);
                    check_caption(&scene, &pair.chosen).map_err(TestCaseError::fail)?;
                    prop_assert!(
                        check_caption(&scene, &pair.rejected).is_err(),
                        "rejected caption is true: {}", pair.rejected
                    );
                    if pair.dimension == Dimension::Hallucination {
                        // A swap, not an addition: as many groups and objects listed as the
                        // truth, one of them of a colour-shape combination the scene lacks.
                        let (c, r) = (claimed_kinds(&pair.chosen), claimed_kinds(&pair.rejected));
                        prop_assert_eq!(c.len(), r.len(), "{} vs {}", &pair.chosen, &pair.rejected);
                        prop_assert_eq!(c.values().sum::<usize>(), r.values().sum::<usize>());
                        prop_assert!(
                            r.keys().any(|&(_, col, sh)| scene.count(None, Some(col), Some(sh)) == 0),
                            "nothing hallucinated: {}", pair.rejected
                        );
                    }
                }
                Dimension::Reasoning => {
                    let gold = oracle(&scene, &pair.question).map_err(TestCaseError::fail)?;
                    prop_assert_eq!(final_answer(&pair.chosen), gold.as_str());
                    prop_assert_ne!(final_answer(&pair.rejected), gold.as_str());
                    // The leading count claim of a counting justification must be right too.
                    if pair.error_kind == "count" {
                        let claimed = words(&pair.chosen)[2].clone();
                        let expect = if gold == "0" { "no" } else { gold.as_str() };
                        prop_assert_eq!(claimed.as_str(), expect);
                    }
                }
            }
        }
        let kinds: Vec<&str> = pairs.iter().map(|p| p.error_kind.as_str()).collect();
        prop_assert!(["attribute", "count", "spatial"].contains(&kinds[0]));
        prop_assert_eq!(kinds[1], "hallucination");
        prop_assert!(["count", "spatial", "comparison"].contains(&kinds[2]));
    }

    #[test]
    fn same_seed_same_png(config in configs(), seed in any::<u64>()) {
        let a = draw_scene(&config, seed);
        let b = draw_scene(&config, seed);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(render_png(&a), render_png(&b));
        prop_assert_eq!(prompts_for(&a, &mut rng(7)), prompts_for(&b, &mut rng(7)));
    }

    #[test]
    fn png_decodes_to_render(config in configs(), seed in any::<u64>()) {
        let scene = draw_scene(&config, seed);
        let decoded = image::load_from_memory(&render_png(&scene)).unwrap().to_rgb8();
        prop_assert_eq!(decoded, render(&scene));
    }

    #[test]
    fn scene_json_round_trips(config in configs(), seed in any::<u64>()) {
        let scene = draw_scene(&config, seed);
        prop_assert_eq!(Scene::from_json(&scene.to_json()).unwrap(), scene);
    }
}

#[test]
fn objects_paint_their_colour_at_their_centre() {
    // Clean backgrounds only: noise shifts pixel values by design.
    for seed in 0..200 {
        let scene = draw_scene(&WorldConfig::default(), seed);
        let img = render(&scene);
        for o in &scene.objects {
            // The star's centre is inside its inner pentagon; every shape covers its centre.
            assert_eq!(
                img.get_pixel(o.x, o.y).0,
                o.color.rgb(),
                "seed {seed}: {o:?}"
            );
        }
    }
}

#[test]
fn different_seeds_differ() {
    let config = WorldConfig::default();
    let pngs: std::collections::HashSet<Vec<u8>> = (0..50)
        .map(|s| render_png(&draw_scene(&config, s)))
        .collect();
    assert_eq!(pngs.len(), 50);
}

#[test]
fn config_defaults_and_validation() {
    let config: WorldConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config, WorldConfig::default());
    assert_eq!(config.image_size, 64);
    assert_eq!((config.min_objects, config.max_objects), (1, 4));
    assert_eq!(config.noise, 0.0);
    assert!(config.validate().is_ok());
    let partial: WorldConfig =
        serde_json::from_str(r#"{"noise": 0.5, "shapes": ["circle", "star"]}"#).unwrap();
    assert_eq!(partial.shapes, vec![Shape::Circle, Shape::Star]);
    assert!(serde_json::from_str::<WorldConfig>(r#"{"nosie": 0.5}"#).is_err());
    let bad = |c: WorldConfig| c.validate().is_err();
    assert!(bad(WorldConfig {
        min_objects: 0,
        ..config.clone()
    }));
    assert!(bad(WorldConfig {
        min_objects: 3,
        max_objects: 2,
        ..config.clone()
    }));
    assert!(bad(WorldConfig {
        noise: 1.5,
        ..config.clone()
    }));
    assert!(bad(WorldConfig {
        colors: vec![],
        ..config.clone()
    }));
    assert!(
        bad(WorldConfig {
            max_objects: 5,
            ..config.clone()
        }),
        "5 large cannot fit 64px"
    );
    assert!(bad(WorldConfig {
        image_size: 16,
        ..config.clone()
    }));
}

#[test]
fn dense_configs_still_place_every_object() {
    // Exactly at grid capacity, where rejection sampling often gives up and the grid fallback
    // must take over.
    let config = WorldConfig {
        min_objects: 4,
        max_objects: 4,
        sizes: vec![Size::Large],
        ..WorldConfig::default()
    };
    let small = WorldConfig {
        min_objects: 12,
        max_objects: 12,
        sizes: vec![Size::Small],
        ..WorldConfig::default()
    };
    for seed in 0..100 {
        for c in [&config, &small] {
            let scene = draw_scene(c, seed);
            assert_eq!(scene.objects.len(), c.max_objects);
            assert_no_overlap(&scene);
        }
    }
}

#[test]
fn restricted_vocabulary_is_respected() {
    let config = WorldConfig {
        shapes: vec![Shape::Triangle],
        colors: vec![Color::Green, Color::Purple],
        sizes: vec![Size::Small],
        ..WorldConfig::default()
    };
    for seed in 0..50 {
        for o in draw_scene(&config, seed).objects {
            assert_eq!((o.shape, o.size), (Shape::Triangle, Size::Small));
            assert!(matches!(o.color, Color::Green | Color::Purple));
        }
    }
}

#[test]
fn relations_follow_the_margin_rule() {
    let scene = draw_scene(&WorldConfig::default(), 3);
    let margin = scene.relation_margin();
    assert_eq!(margin, 8);
    let mut a = scene.objects[0];
    let mut b = a;
    a.x = 20;
    b.x = 28;
    assert!(
        !scene.left_of(&a, &b) && !scene.right_of(&b, &a),
        "offset == margin: undecided"
    );
    b.x = 29;
    assert!(scene.left_of(&a, &b) && scene.right_of(&b, &a));
    a.y = 40;
    b.y = 30;
    assert!(scene.below(&a, &b) && scene.above(&b, &a) && !scene.above(&a, &b));
}

#[test]
fn every_task_and_error_kind_occurs() {
    let mut tasks = std::collections::HashSet::new();
    let mut kinds = std::collections::HashSet::new();
    let mut answers = std::collections::HashSet::new();
    for seed in 0..300 {
        let scene = draw_scene(&WorldConfig::default(), seed);
        for p in prompts_for(&scene, &mut rng(seed))
            .into_iter()
            .chain(reasoning_prompts(&scene, 1, &mut rng(seed)))
        {
            tasks.insert(p.task);
            if !p.open {
                answers.insert(p.answer);
            }
        }
        for pair in bench_pairs(&scene, WorldConfig::default().max_objects, &mut rng(seed)) {
            kinds.insert((pair.dimension, pair.error_kind));
        }
    }
    assert_eq!(tasks.len(), TaskType::ALL.len());
    for a in [
        "yes", "no", "0", "1", "2", "left", "right", "above", "below", "red", "star",
    ] {
        assert!(answers.contains(a), "answer {a} never occurs");
    }
    for (dim, kind) in [
        (Dimension::General, "attribute"),
        (Dimension::General, "count"),
        (Dimension::General, "spatial"),
        (Dimension::Hallucination, "hallucination"),
        (Dimension::Reasoning, "count"),
        (Dimension::Reasoning, "spatial"),
        (Dimension::Reasoning, "comparison"),
    ] {
        assert!(
            kinds.contains(&(dim, kind.to_string())),
            "{dim:?}/{kind} never occurs"
        );
    }
}

/// The bench of `scenes` scenes (seeds `i | high_bit`) with every dimension's length wishes
/// exactly balanced, as the `scenes_bench` source makes them.
fn balanced_bench(config: &WorldConfig, scenes: u64, high_bit: u64) -> Vec<BenchPair> {
    (0..scenes)
        .flat_map(|i| {
            let seed = i | high_bit;
            let longer = [i % 2 == 0, i % 4 < 2, (i / 2) % 2 == 0];
            bench_pairs_directed(
                &draw_scene(config, seed),
                longer,
                config.max_objects,
                &mut rng(seed),
            )
        })
        .collect()
}

/// Every text rule's score printed; those further than `bound` from 0.5, said.
fn rules_off_chance(label: &str, scores: &[(&str, f64)], bound: f64) -> Vec<String> {
    let mut off = Vec::new();
    for &(rule, score) in scores {
        eprintln!("{label}: {rule} wins {score:.3}");
        if (score - 0.5).abs() > bound {
            off.push(format!("{label}: \"{rule} wins\" scores {score:.3}"));
        }
    }
    off
}

/// Share of pairs a text-only rule wins: `prefer(chosen, rejected)` says which answer it picks
/// (`Greater`: the first), ties count one half.
fn text_rule_score(pairs: &[&BenchPair], prefer: impl Fn(&str, &str) -> std::cmp::Ordering) -> f64 {
    let won: f64 = pairs
        .iter()
        .map(|p| match prefer(&p.chosen, &p.rejected) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum();
    won / pairs.len() as f64
}

/// No text shortcut: on every dimension, "the shorter answer is better" and "the longer answer
/// is better", by characters and by words, both score within 0.50 ± 0.05 over 1,200 pairs per
/// dimension (± 0.03 with balanced wishes), in the default world and in a denser one (more
/// objects, longer captions).
#[test]
fn length_does_not_predict_the_better_answer() {
    let dense = WorldConfig {
        min_objects: 3,
        max_objects: 8,
        sizes: vec![Size::Small],
        ..WorldConfig::default()
    };
    dense.validate().expect("a valid dense config");
    let mut failures = Vec::new();
    // Coins per pair (`bench_pairs`), and exactly balanced wishes (`bench_pairs_directed`, as
    // the `scenes_bench` source makes them), which must land closer to 0.5.
    let worlds = [("default", WorldConfig::default()), ("dense", dense)];
    for ((name, config), balanced) in worlds.iter().flat_map(|w| [(w, false), (w, true)]) {
        let tolerance = if balanced { 0.03 } else { 0.05 };
        let name = format!("{name}{}", if balanced { " balanced" } else { "" });
        let pairs: Vec<BenchPair> = if balanced {
            balanced_bench(config, 1200, 1 << 63)
        } else {
            (0..1200u64)
                .flat_map(|i| {
                    let seed = i | (1 << 63);
                    bench_pairs(
                        &draw_scene(config, seed),
                        config.max_objects,
                        &mut rng(seed),
                    )
                })
                .collect()
        };
        for dim in [
            Dimension::General,
            Dimension::Hallucination,
            Dimension::Reasoning,
        ] {
            let of_dim: Vec<&BenchPair> = pairs.iter().filter(|p| p.dimension == dim).collect();
            assert_eq!(of_dim.len(), 1200);
            let chars = |s: &str| s.chars().count();
            let word_count = |s: &str| s.split_whitespace().count();
            let scores = [
                (
                    "shorter by characters",
                    text_rule_score(&of_dim, |c, r| chars(r).cmp(&chars(c))),
                ),
                (
                    "longer by characters",
                    text_rule_score(&of_dim, |c, r| chars(c).cmp(&chars(r))),
                ),
                (
                    "shorter by words",
                    text_rule_score(&of_dim, |c, r| word_count(r).cmp(&word_count(c))),
                ),
                (
                    "longer by words",
                    text_rule_score(&of_dim, |c, r| word_count(c).cmp(&word_count(r))),
                ),
            ];
            failures.extend(rules_off_chance(
                &format!("{name} world, {dim:?}"),
                &scores,
                tolerance,
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The fewest objects a bench answer claims, read from its text: the counted phrases of a
/// caption; a count's final number; a comparison's two counts, added when they count two
/// shapes or two colours (different objects) and the larger one when a shape and a colour
/// (which one object can be); two for a spatial claim.
fn claimed_objects(pair: &BenchPair) -> usize {
    match (pair.dimension, pair.error_kind.as_str()) {
        (Dimension::General | Dimension::Hallucination, _) => {
            claimed_kinds(&pair.rejected).values().sum()
        }
        (Dimension::Reasoning, "count") => {
            number(final_answer(&pair.rejected)).expect("a count's answer is a number")
        }
        (Dimension::Reasoning, "comparison") => {
            let (claims, _) = pair
                .rejected
                .split_once(", so the answer")
                .expect("a justified answer");
            let ws = words(claims);
            let counted: Vec<(usize, bool)> = ws
                .iter()
                .enumerate()
                .filter(|(i, _)| *i > 1) // "There are" / "There is"
                .filter_map(|(i, w)| {
                    let n = number(w)?;
                    // The category noun comes within the next two words: "2 circles",
                    // "no red shapes"; `true` for a colour.
                    let is_color = ws[i + 1..(i + 3).min(ws.len())]
                        .iter()
                        .any(|w| common::color(w).is_some());
                    Some((n, is_color))
                })
                .collect();
            let [(a, a_color), (b, b_color)] = counted[..] else {
                panic!("two counted categories in {claims:?}: {counted:?}");
            };
            if a_color == b_color { a + b } else { a.max(b) }
        }
        (Dimension::Reasoning, "spatial") => 2,
        (_, kind) => panic!("unknown error kind {kind}"),
    }
}

#[test]
fn no_rejected_answer_claims_more_objects_than_the_world_holds() {
    for max_objects in 1..=3 {
        let config = WorldConfig {
            min_objects: 1,
            max_objects,
            ..WorldConfig::default()
        };
        config.validate().expect("a valid config");
        let mut kinds = std::collections::HashSet::new();
        for seed in 0..400u64 {
            let scene = draw_scene(&config, seed);
            for pair in bench_pairs(&scene, max_objects, &mut rng(seed)) {
                let claimed = claimed_objects(&pair);
                assert!(
                    claimed <= max_objects,
                    "world of at most {max_objects}: {claimed} objects claimed by {pair:?}"
                );
                kinds.insert((pair.dimension, pair.error_kind.clone()));
            }
        }
        // Every dimension still has pairs, and a one-object world still miscounts.
        assert!(
            kinds.contains(&(Dimension::Reasoning, "count".to_string())),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&(Dimension::General, "attribute".to_string())),
            "{kinds:?}"
        );
        if max_objects >= 2 {
            assert!(
                kinds.contains(&(Dimension::Reasoning, "comparison".to_string())),
                "{kinds:?}"
            );
        }
    }
}

/// No text shortcut within a question form of the reasoning pairs of a one-object world (the
/// lab's and the GPU grid's): over 2,400 scenes with the wishes balanced as `scenes_bench`
/// balances them, "the answer that counts something wins" (its final number is not 0) and "the
/// longer answer wins" over the counting pairs, and "the answer yes wins" over the comparison
/// pairs, score within 0.50 ± 0.08. Session 24: with each question drawn once, as the corpus
/// draws it, 90% of a one-object bench's counting pairs preferred the answer that finds
/// something, and a judge shown a blank image scored 0.80-0.90 on them. The default world keeps
/// the pooled draw (`reasoning_pair`'s documentation says why): its rates are printed and bounded
/// at 0.50 ± 0.18 (today 0.65 for "counts something") so that they cannot grow unseen.
#[test]
fn no_reasoning_question_form_favours_an_answer_by_its_text() {
    let one = WorldConfig {
        min_objects: 1,
        max_objects: 1,
        ..WorldConfig::default()
    };
    one.validate().expect("a valid one-object config");
    let finds = |answer: &str| !answer.trim_end_matches('.').ends_with("answer is 0");
    let yes = |answer: &str| answer.trim_end_matches('.').ends_with("answer is yes");
    let chars = |s: &str| s.chars().count();
    let mut failures = Vec::new();
    for (name, config) in [("one-object", one), ("default", WorldConfig::default())] {
        let pairs: Vec<BenchPair> = balanced_bench(&config, 2400, 1 << 62)
            .into_iter()
            .filter(|p| p.dimension == Dimension::Reasoning)
            .collect();
        let of_kind = |kind: &str| -> Vec<&BenchPair> {
            pairs.iter().filter(|p| p.error_kind == kind).collect()
        };
        let (counting, comparison) = (of_kind("count"), of_kind("comparison"));
        eprintln!(
            "{name}: {} counting, {} comparison, {} spatial pairs",
            counting.len(),
            comparison.len(),
            of_kind("spatial").len()
        );
        assert!(
            counting.len() > 400 && comparison.len() > 400,
            "{name}: too few pairs"
        );
        let scores = [
            (
                "counting: the answer that counts something",
                text_rule_score(&counting, |c, r| finds(c).cmp(&finds(r))),
            ),
            (
                "counting: the longer answer",
                text_rule_score(&counting, |c, r| chars(c).cmp(&chars(r))),
            ),
            (
                "comparison: the answer yes",
                text_rule_score(&comparison, |c, r| yes(c).cmp(&yes(r))),
            ),
        ];
        let bound = if name == "default" { 0.18 } else { 0.08 };
        failures.extend(rules_off_chance(&format!("{name} world"), &scores, bound));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
