//! What a training run is made of, before the model sees it: the SFT rows, judge-format
//! examples and their verdict handling (balanced, randomised for the control, the verdict's
//! token for its loss weight), the world tokenizer, and the padded, length-grouped batches.
//!
//! Contract: everything here is a pure function of its inputs and the seeded `rng` it is given,
//! so a training run's data, and the order of its batches, are reproducible from the node's
//! seed; uploads to the device happen only in [`make_batches`].

use burn::tensor::backend::AutodiffBackend;
use judgeflow_model::backend::UploadGuard;
use judgeflow_model::tokenizer::{JudgeTokenizer, train_world_tokenizer};
use judgeflow_model::train::TrainBatch;
use judgeflow_world::{CorruptionKind, WordLists, corrupt_text};
use miette::miette;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

use crate::judge_format::{
    self, Verdict, judge_prompt, judge_response, parse_verdict, reasoning_of,
};
use crate::model_kit::ImageCache;

/// Rows are padded to a multiple of this many tokens, so few distinct shapes occur (each new
/// shape costs a kernel compilation and autotune on GPU backends).
pub(crate) const PAD_MULTIPLE: usize = 16;
/// Batches whose rows are sorted by length together (less padding), before shuffling batches.
pub(crate) const LENGTH_GROUP: usize = 32;

/// The SFT frame's columns.
pub(crate) struct Rows {
    pub(crate) images: Vec<Vec<u8>>,
    pub(crate) prompts: Vec<String>,
    pub(crate) responses: Vec<String>,
}

/// An example ready to batch: token ids, loss weight per token, index of its image row.
pub(crate) struct Example {
    pub(crate) ids: Vec<u32>,
    pub(crate) weights: Vec<f32>,
    pub(crate) image: usize,
}

/// Drops the surplus of the more frequent verdict letter so both letters are equally common.
pub(crate) fn balance_verdicts(
    items: Vec<(usize, String, String)>,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, String, String)> {
    let (mut a, mut b): (Vec<_>, Vec<_>) = items
        .into_iter()
        .filter(|(_, _, r)| parse_verdict(r).is_some())
        .partition(|(_, _, r)| parse_verdict(r).map(|v| v.0) == Some(Verdict::A));
    let n = a.len().min(b.len());
    a.shuffle(rng);
    b.shuffle(rng);
    a.truncate(n);
    b.truncate(n);
    let mut out: Vec<_> = a.into_iter().chain(b).collect();
    out.sort_by_key(|(i, _, _)| *i);
    out
}

/// Redraws the verdict of every item whose response has one, keeping the reasoning before it.
pub(crate) fn randomize_verdicts(items: &mut [(usize, String, String)], rng: &mut ChaCha8Rng) {
    for (_, _, response) in items.iter_mut() {
        if parse_verdict(response).is_some() {
            let verdict = if rng.random_bool(0.5) {
                Verdict::A
            } else {
                Verdict::B
            };
            *response = judge_response(reasoning_of(response), verdict);
        }
    }
}

/// Redraws every claim mark (`(true)`, `(false)`) in the reasoning of every item whose response
/// has a verdict, each with its own fair coin: the reasoning still restates the claims but no
/// longer checks them. Rows without a verdict are untouched.
pub(crate) fn randomize_marks(items: &mut [(usize, String, String)], rng: &mut ChaCha8Rng) {
    for (_, _, response) in items.iter_mut() {
        if parse_verdict(response).is_none() {
            continue;
        }
        let mut out = String::with_capacity(response.len());
        let mut rest = response.as_str();
        while let Some(at) = rest.find(['(']) {
            let after = &rest[at..];
            let mark = ["(true)", "(false)"]
                .into_iter()
                .find(|m| after.starts_with(m));
            match mark {
                Some(m) => {
                    out.push_str(&rest[..at]);
                    out.push_str(if rng.random_bool(0.5) {
                        "(true)"
                    } else {
                        "(false)"
                    });
                    rest = &rest[at + m.len()..];
                }
                None => {
                    out.push_str(&rest[..=at]);
                    rest = &rest[at + 1..];
                }
            }
        }
        out.push_str(rest);
        *response = out;
    }
}

/// Judge-format examples over the corpus: the row's answer against a corrupted one (or another
/// row's answer when no corruption applies), in random order, with a verdict drawn at random.
pub(crate) fn format_examples(
    rows: &Rows,
    fraction: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<(usize, String, String)> {
    let words = WordLists::default();
    let n = rows.prompts.len();
    let mut out = Vec::new();
    if n < 2 {
        return out;
    }
    for i in 0..n {
        if !rng.random_bool(fraction) {
            continue;
        }
        let gold = &rows.responses[i];
        let other = match corrupt_text(gold, &words, &CorruptionKind::ALL, rng) {
            Some(c) => c.text,
            None => {
                let j = (i + rng.random_range(1..n)) % n;
                rows.responses[j].clone()
            }
        };
        if other == *gold {
            continue;
        }
        let (a, b) = if rng.random_bool(0.5) {
            (gold.as_str(), other.as_str())
        } else {
            (other.as_str(), gold.as_str())
        };
        let verdict = if rng.random_bool(0.5) {
            Verdict::A
        } else {
            Verdict::B
        };
        out.push((
            i,
            judge_prompt(&rows.prompts[i], a, b),
            judge_response(&format!("In the image: {gold}"), verdict),
        ));
    }
    out
}

/// The index, within `response_ids` (a response's tokens, as `sft_example` encodes them, with
/// their `spans` from [`judge_format::token_spans`]), of the token that spells the verdict
/// letter of `response` alone; `None` without a verdict line or when the letter shares a token
/// with neighbouring text.
pub(crate) fn verdict_token(
    tokenizer: &JudgeTokenizer,
    response_ids: &[u32],
    spans: &[Range<usize>],
    response: &str,
) -> Option<usize> {
    let k = judge_format::verdict_token_in(spans, response)?;
    let piece = tokenizer.decode(&response_ids[k..=k], true).ok()?;
    (piece.trim().len() == 1).then_some(k)
}

/// The indices, within a response's tokens (given by their `spans` from
/// [`judge_format::token_spans`]), of the tokens that spell the word of each claim mark of
/// `response`: the `true` of `(true)` and the `false` of `(false)`, which a `compare` reasoning
/// writes after every restated claim (`judge_corpus`). Every token that overlaps the word
/// counts; none for a response without marks.
pub(crate) fn mark_tokens(spans: &[Range<usize>], response: &str) -> Vec<usize> {
    let words: Vec<(usize, usize)> = ["(true)", "(false)"]
        .iter()
        .flat_map(|mark| {
            response
                .match_indices(mark)
                .map(move |(at, m)| (at + 1, at + m.len() - 1))
        })
        .collect();
    spans
        .iter()
        .enumerate()
        .filter(|(_, t)| words.iter().any(|&(s, e)| t.start < e && t.end > s))
        .map(|(k, _)| k)
        .collect()
}

/// The world tokenizer, trained on everything the model will read and write.
pub(crate) fn world_tokenizer(
    items: &[(usize, String, String)],
    vocab_size: usize,
) -> miette::Result<JudgeTokenizer> {
    let texts = items.iter().flat_map(|(_, p, r)| [p.as_str(), r.as_str()]);
    train_world_tokenizer(texts, vocab_size).map_err(|e| {
        miette!(
            code = "judgeflow::train::tokenizer",
            "training the world tokenizer: {e}"
        )
    })
}

/// What batches are made of: the examples, the image rows they point into, and the patch
/// probe's labels by image when the probe is on.
pub(crate) struct TrainData<'a> {
    pub(crate) images: &'a [Vec<u8>],
    pub(crate) examples: &'a [Example],
    pub(crate) probe_labels: Option<&'a std::collections::HashMap<blake3::Hash, Vec<i64>>>,
}

/// Batches of `batch_size` examples: rows sorted by length within windows of
/// [`LENGTH_GROUP`] batches, padded to a multiple of [`PAD_MULTIPLE`].
pub(crate) fn make_batches<B: AutodiffBackend>(
    model: &judgeflow_model::model::MllamaForConditionalGeneration<B>,
    tokenizer: &JudgeTokenizer,
    data: &TrainData<'_>,
    batch_size: usize,
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> miette::Result<Vec<TrainBatch<B>>> {
    let TrainData {
        images,
        examples,
        probe_labels,
    } = *data;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(rng);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks_mut(batch_size * LENGTH_GROUP) {
        window.sort_by_key(|&i| examples[i].ids.len());
        groups.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    let mut cache = ImageCache::new(model);
    let pad = tokenizer.pad_id();
    let mut batches = Vec::with_capacity(groups.len());
    // Uploading a whole training set runs no kernel: see `UploadGuard` (12,000 scenes at 96 px
    // panicked in cubecl's device thread without it).
    let mut uploads = UploadGuard::new();
    for rows in groups {
        let longest = rows
            .iter()
            .map(|&i| examples[i].ids.len())
            .max()
            .unwrap_or(1);
        let seq = longest.div_ceil(PAD_MULTIPLE) * PAD_MULTIPLE;
        let mut ids = Vec::with_capacity(rows.len());
        let mut masks = Vec::with_capacity(rows.len());
        for &i in &rows {
            let mut row = examples[i].ids.clone();
            let mut mask = examples[i].weights.clone();
            row.resize(seq, pad);
            mask.resize(seq, 0.0);
            ids.push(row);
            masks.push(mask);
        }
        let bytes: Vec<&[u8]> = rows
            .iter()
            .map(|&i| images[examples[i].image].as_slice())
            .collect();
        let inputs = cache.batch::<B>(
            &bytes,
            &|k| format!("training row {}", examples[rows[k]].image),
            device,
        )?;
        // The f32 pixels and the i64 ids and f32 weights, not the PNG bytes: session 5 counted
        // the PNGs (~1 KiB against 108 KiB of pixels at 96 px) and still overflowed.
        let uploaded = inputs.pixel_values.shape().num_elements() * 4 + seq * rows.len() * 12;
        let batch = TrainBatch::from_weighted_sequences(
            model.config(),
            &ids,
            &masks,
            pad,
            Some(inputs),
            device,
        );
        batches.push(match probe_labels {
            Some(by_image) => batch.with_patch_labels(
                &crate::patch_probe::batch_labels(by_image, &bytes, model.config()),
                device,
            ),
            None => batch,
        });
        uploads.uploaded::<B>(uploaded, device).map_err(|e| {
            miette!(
                code = "judgeflow::model::device",
                help = "on a GPU this is usually memory: lower the node's `batch_size`",
                "the backend failed while uploading training batches: {e}"
            )
        })?;
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn randomized_marks_are_coins_and_leave_the_rest() {
        let reasoning = "In the image: a red circle. Answer A: a red circle (true). Answer B: a \
                         blue square (false), two stars (true) (note).";
        let mut items: Vec<(usize, String, String)> = (0..300)
            .map(|i| (i, "p".into(), judge_response(reasoning, Verdict::A)))
            .collect();
        items.push((300, "q".into(), "a red circle (true)".into()));
        randomize_marks(&mut items, &mut ChaCha8Rng::seed_from_u64(5));
        let strip = |r: &str| r.replace("(true)", "(_)").replace("(false)", "(_)");
        let mut trues = [0usize; 3];
        for (_, _, r) in &items[..300] {
            assert_eq!(
                strip(r),
                strip(&judge_response(reasoning, Verdict::A)),
                "{r}"
            );
            let marks: Vec<bool> = r
                .match_indices(['('])
                .filter_map(|(at, _)| {
                    let after = &r[at..];
                    after
                        .starts_with("(true)")
                        .then_some(true)
                        .or(after.starts_with("(false)").then_some(false))
                })
                .collect();
            assert_eq!(marks.len(), 3, "{r}");
            for (k, m) in marks.iter().enumerate() {
                trues[k] += *m as usize;
            }
        }
        // Each mark is true about half the time, whatever it was.
        assert!(trues.iter().all(|t| (110..190).contains(t)), "{trues:?}");
        assert_eq!(
            items[300].2, "a red circle (true)",
            "rows without a verdict are untouched"
        );
    }

    #[test]
    fn randomized_verdicts_keep_reasoning_and_carry_no_signal() {
        let mut items: Vec<(usize, String, String)> = (0..400)
            .map(|i| {
                (
                    i,
                    "p".into(),
                    judge_response(&format!("In the image: thing {i}."), Verdict::A),
                )
            })
            .collect();
        items.push((400, "q".into(), "two red circles".into()));
        randomize_verdicts(&mut items, &mut ChaCha8Rng::seed_from_u64(3));
        let a = items[..400]
            .iter()
            .filter(|(_, _, r)| parse_verdict(r).map(|v| v.0) == Some(Verdict::A))
            .count();
        assert!((160..240).contains(&a), "{a} of 400 still A");
        assert!(
            items[..400]
                .iter()
                .enumerate()
                .all(|(i, (_, _, r))| reasoning_of(r) == format!("In the image: thing {i}."))
        );
        assert_eq!(
            items[400].2, "two red circles",
            "rows without a verdict are untouched"
        );
    }

    #[test]
    fn the_verdict_token_spells_the_letter() {
        let responses = [
            "In the image: two red circles. Overall Judgment: Answer B is better.",
            "In the image: a blue square left of a green star. Overall Judgment: Answer A is better.",
        ];
        let tokenizer = train_world_tokenizer(responses.iter().copied(), 300).expect("tokenizer");
        for r in responses {
            let ids = tokenizer.encode(r).expect("encodes");
            let spans = judge_format::token_spans(&tokenizer, &ids);
            let at = verdict_token(&tokenizer, &ids, &spans, r).expect("found");
            let letter = tokenizer.decode(&ids[at..=at], true).expect("decodes");
            assert_eq!(letter.trim(), &r[r.len() - 12..r.len() - 11], "{r}");
        }
        let ids = tokenizer.encode("no verdict").expect("ok");
        let spans = judge_format::token_spans(&tokenizer, &ids);
        assert_eq!(verdict_token(&tokenizer, &ids, &spans, "no verdict"), None);
    }

    #[test]
    fn mark_tokens_spell_the_marks_words() {
        let responses = [
            "In the image: a red circle. Answer A: a red circle (true). Answer B: a blue square \
             (false). Overall Judgment: Answer A is better.",
            "In the image: two stars. Answer A: one star (false). Answer B: two stars (true). \
             Overall Judgment: Answer B is better.",
        ];
        let tokenizer = train_world_tokenizer(responses.iter().copied(), 300).expect("tokenizer");
        for r in responses {
            let ids = tokenizer.encode(r).expect("encodes");
            let at = mark_tokens(&judge_format::token_spans(&tokenizer, &ids), r);
            let spelled: Vec<String> = at
                .iter()
                .map(|&k| tokenizer.decode(&ids[k..=k], true).expect("decodes"))
                .collect();
            let joined = spelled.concat();
            let words: String = r
                .split(['(', ')'])
                .skip(1)
                .step_by(2)
                .collect::<Vec<_>>()
                .concat();
            assert_eq!(
                joined.replace(['(', ')', ' '], ""),
                words,
                "{r}: {spelled:?}"
            );
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        }
        let plain = "In the image: two red circles. Overall Judgment: Answer B is better.";
        let ids = tokenizer.encode(plain).expect("encodes");
        assert!(mark_tokens(&judge_format::token_spans(&tokenizer, &ids), plain).is_empty());
    }

    #[test]
    fn balancing_equalises_letters_and_drops_unparseable() {
        let mk = |i: usize, v: &str| {
            (
                i,
                "p".to_string(),
                format!("r Overall Judgment: Answer {v} is better."),
            )
        };
        let items = vec![
            mk(0, "A"),
            mk(1, "A"),
            mk(2, "A"),
            mk(3, "B"),
            (4, "p".into(), "no verdict".into()),
        ];
        let out = balance_verdicts(items, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out.iter()
                .filter(|(_, _, r)| r.contains("Answer A"))
                .count(),
            1
        );
        assert!(out.iter().any(|(i, _, _)| *i == 3));
    }

    #[test]
    fn format_examples_carry_no_preference() {
        let rows = Rows {
            images: vec![vec![]; 400],
            prompts: (0..400)
                .map(|i| format!("How many circles are there? {i}"))
                .collect(),
            responses: (0..400)
                .map(|i| format!("There are {} red circles.", ["two", "three"][i % 2]))
                .collect(),
        };
        let ex = format_examples(&rows, 1.0, &mut ChaCha8Rng::seed_from_u64(7));
        assert!(ex.len() > 350, "{}", ex.len());
        // How often the verdict names the gold answer's position: about half, i.e. no signal.
        let gold_wins = ex
            .iter()
            .filter(|(i, prompt, response)| {
                let gold = &rows.responses[*i];
                let gold_is_a = prompt.contains(&format!("Answer A: {gold}"));
                let verdict = parse_verdict(response).expect("format examples parse").0;
                (verdict == Verdict::A) == gold_is_a
            })
            .count() as f64
            / ex.len() as f64;
        assert!((0.4..0.6).contains(&gold_wins), "{gold_wins}");
    }
}
