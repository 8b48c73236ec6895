//! Text corruption: word boundaries, case, grammar fixes, applicability and falsity.

mod common;

use common::check_caption;
use judgeflow_world::{
    CorruptionKind, Placement, WordLists, WorldConfig, applicable_kinds, caption, corrupt_text,
    corrupt_text_placed, draw_scene, rng,
};

fn corrupt(text: &str, kind: CorruptionKind, seed: u64) -> Option<String> {
    corrupt_text(text, &WordLists::default(), &[kind], &mut rng(seed)).map(|c| {
        assert_eq!(c.kind, kind);
        c.text
    })
}

#[test]
fn attribute_edits_keep_case_and_articles() {
    for seed in 0..20 {
        let out = corrupt("Red circles.", CorruptionKind::Attribute, seed).unwrap();
        let first = out.split(' ').next().unwrap();
        assert!(
            first.chars().next().unwrap().is_uppercase() || first == "Red",
            "{out}"
        );
        assert_ne!(out, "Red circles.");
        let out = corrupt("an orange star", CorruptionKind::Attribute, seed).unwrap();
        // Whatever was swapped, the article must agree with the word after it.
        let next = out.split(' ').nth(1).unwrap();
        let vowel = next.starts_with(['a', 'e', 'i', 'o', 'u']);
        assert_eq!(out.starts_with("an "), vowel, "{out}");
        let out = corrupt("A BLUE SQUARE", CorruptionKind::Attribute, seed).unwrap();
        assert_eq!(out, out.to_uppercase(), "{out}");
    }
}

#[test]
fn edits_respect_word_boundaries() {
    // "Redmond", "bluebird", "stars" inside "starship", "leftover" must not be touched.
    let text = "Redmond bluebird starship leftover 1999";
    assert!(applicable_kinds(text, &WordLists::default()).is_empty());
    assert_eq!(
        corrupt_text(
            text,
            &WordLists::default(),
            &CorruptionKind::ALL,
            &mut rng(1)
        ),
        None
    );
}

#[test]
fn nothing_applies_to_bare_yes() {
    assert!(applicable_kinds("yes", &WordLists::default()).is_empty());
    assert!(applicable_kinds("No.", &WordLists::default()).is_empty());
}

#[test]
fn count_edits_fix_agreement() {
    for seed in 0..20 {
        assert_eq!(
            corrupt("There is one red circle.", CorruptionKind::Count, seed).unwrap(),
            "There are two red circles."
        );
        assert_eq!(corrupt("1", CorruptionKind::Count, seed).unwrap(), "2");
        let out = corrupt("Five stars", CorruptionKind::Count, seed).unwrap();
        assert!(out == "Four stars" || out == "Six stars", "{out}");
        let out = corrupt("12", CorruptionKind::Count, seed).unwrap();
        assert!(out == "11" || out == "13", "{out}");
    }
}

#[test]
fn spatial_edits_flip_relations() {
    assert_eq!(
        corrupt(
            "The star is LEFT of the square.",
            CorruptionKind::Spatial,
            0
        )
        .unwrap(),
        "The star is RIGHT of the square."
    );
    assert_eq!(
        corrupt("Above", CorruptionKind::Spatial, 0).unwrap(),
        "Below"
    );
}

#[test]
fn hallucinations_mention_an_unmentioned_colour() {
    for seed in 0..20 {
        let text = "The image shows a small red circle. The circle is blue-free.";
        let out = corrupt(text, CorruptionKind::Hallucination, seed).unwrap();
        assert!(out.len() > text.len());
        // Red and blue are already mentioned, so the invented object must use another colour.
        assert_eq!(out.matches("red").count(), 1, "{out}");
        assert_eq!(out.matches("blue").count(), 1, "{out}");
        let out = corrupt("a small red circle", CorruptionKind::Hallucination, seed).unwrap();
        assert!(out.starts_with("a small red circle and a"), "{out}");
    }
}

#[test]
fn custom_word_lists_work() {
    let words = WordLists {
        colors: vec!["crimson".into(), "teal".into()],
        sizes: vec![],
        shapes: vec!["box".into()],
        numbers: vec!["zero".into(), "one".into(), "two".into()],
        relations: vec![("near".into(), "far".into())],
    };
    let out = corrupt_text(
        "one crimson box near",
        &words,
        &[CorruptionKind::Count],
        &mut rng(0),
    );
    assert_eq!(out.unwrap().text, "two crimson boxes near");
    let out = corrupt_text(
        "Crimson boxes",
        &words,
        &[CorruptionKind::Attribute],
        &mut rng(0),
    );
    assert_eq!(out.unwrap().text, "Teal boxes");
}

#[test]
fn seeded_corruption_is_deterministic() {
    let text = "The image shows two small red circles and a large blue square. \
                The blue square is to the left of the small red circle.";
    let run = |seed| {
        corrupt_text(
            text,
            &WordLists::default(),
            &CorruptionKind::ALL,
            &mut rng(seed),
        )
    };
    assert_eq!(run(5), run(5));
    let outputs: std::collections::HashSet<_> = (0..30).map(|s| run(s).unwrap().text).collect();
    assert!(outputs.len() > 5, "corruptions should vary with the seed");
}

/// Text edits cannot consult the scene, so an edit can land on another true statement by
/// chance (renaming the object of a relation to a different object that satisfies it too).
/// Every edit must change the text, and on true captions nearly all must make them false.
#[test]
fn corrupted_captions_are_almost_always_false() {
    let words = WordLists::default();
    let (mut edits, mut still_true) = (0usize, 0usize);
    for seed in 0..400 {
        let scene = draw_scene(&WorldConfig::default(), seed);
        let text = caption(&scene, &mut rng(seed));
        let kinds = applicable_kinds(&text, &words);
        assert!(kinds.contains(&CorruptionKind::Attribute));
        assert!(kinds.contains(&CorruptionKind::Hallucination));
        for kind in kinds {
            let c = corrupt_text(&text, &words, &[kind], &mut rng(seed)).unwrap();
            assert_ne!(c.text, text);
            edits += 1;
            if check_caption(&scene, &c.text).is_ok() {
                assert_eq!(
                    kind,
                    CorruptionKind::Attribute,
                    "{kind:?} edit still true: {}",
                    c.text
                );
                still_true += 1;
            }
        }
    }
    let rate = still_true as f64 / edits as f64;
    println!(
        "{still_true} of {edits} edits left the caption true ({:.2}%)",
        rate * 100.0
    );
    assert!(rate < 0.02, "too many harmless edits: {rate}");
}

fn hallucinate(text: &str, placement: Placement, seed: u64) -> String {
    corrupt_text_placed(
        text,
        &WordLists::default(),
        &[CorruptionKind::Hallucination],
        placement,
        &mut rng(seed),
    )
    .unwrap()
    .text
}

/// `After` is `corrupt_text` itself: the same edits from the same seeds (pipelines that do not
/// ask for a placement keep their pairs and cache keys' outputs).
#[test]
fn after_placement_is_the_default_corruption() {
    let words = WordLists::default();
    for seed in 0..200 {
        let scene = draw_scene(&WorldConfig::default(), seed);
        let text = caption(&scene, &mut rng(seed));
        let placed = corrupt_text_placed(
            &text,
            &words,
            &CorruptionKind::ALL,
            Placement::After,
            &mut rng(seed),
        );
        assert_eq!(
            placed,
            corrupt_text(&text, &words, &CorruptionKind::ALL, &mut rng(seed))
        );
    }
}

/// With `Anywhere` the added object comes first about as often as last, in both forms of answer
/// (sentences, and a phrase without a sentence end), and the original answer stays whole.
#[test]
fn anywhere_puts_the_added_object_first_as_often_as_last() {
    let text = "In the image there is a large green diamond.";
    let (mut first, mut last) = (0, 0);
    for seed in 0..400 {
        let out = hallucinate(text, Placement::Anywhere, seed);
        if out.ends_with(text) {
            first += 1;
            assert!(
                out.starts_with("There is a")
                    || out.starts_with("There is an")
                    || out.starts_with('A'),
                "{out}"
            );
            assert!(out.ends_with(&format!(". {text}")), "{out}");
        } else {
            assert!(out.starts_with(&format!("{text} ")), "{out}");
            last += 1;
        }
        // After: never first.
        assert!(hallucinate(text, Placement::After, seed).starts_with(text));
    }
    assert!((160..=240).contains(&first), "first {first}, last {last}");

    let (mut first, mut last) = (0, 0);
    for seed in 0..400 {
        let out = hallucinate("A small red circle", Placement::Anywhere, seed);
        if out.ends_with(" and a small red circle") {
            // The capital moves to the front: "A blue square and a small red circle".
            assert!(
                out.starts_with('A') && !out.starts_with("A small red"),
                "{out}"
            );
            first += 1;
        } else {
            assert!(out.starts_with("A small red circle and a"), "{out}");
            last += 1;
        }
    }
    assert!((160..=240).contains(&first), "first {first}, last {last}");
    // Two sentences: three places, the first one of them.
    let two = "The image shows a small red circle. It is near the top.";
    let firsts = (0..300)
        .filter(|&s| hallucinate(two, Placement::Anywhere, s).ends_with(two))
        .count();
    assert!((70..=130).contains(&firsts), "{firsts} of 300 first");
}

/// Wherever the object goes, the edit is a hallucination: it makes the world's true captions
/// false (the added object's colour is one the caption never names).
#[test]
fn anywhere_hallucinations_make_true_captions_false() {
    for seed in 0..300 {
        let scene = draw_scene(&WorldConfig::default(), seed);
        let text = caption(&scene, &mut rng(seed));
        let out = hallucinate(&text, Placement::Anywhere, seed);
        assert_ne!(out, text);
        assert!(check_caption(&scene, &out).is_err(), "still true: {out}");
    }
}
