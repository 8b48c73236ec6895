//! Text-level corruption of free-text answers, used to make rejected answers from a model's
//! own outputs. Edits are word-boundary aware and keep the case of the word they replace.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::language::article;
use crate::scene::{Color, Shape, Size};

/// Kind of injected error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorruptionKind {
    /// A colour, size or shape word swapped for another of its list.
    Attribute,
    /// A number (digits or word) changed by one or two.
    Count,
    /// A relation word swapped for its opposite ("left" and "right").
    Spatial,
    /// A mention of an extra object added.
    Hallucination,
}

impl CorruptionKind {
    /// Every kind, in a fixed order.
    pub const ALL: [CorruptionKind; 4] = [
        CorruptionKind::Attribute,
        CorruptionKind::Count,
        CorruptionKind::Spatial,
        CorruptionKind::Hallucination,
    ];

    /// Lowercase name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            CorruptionKind::Attribute => "attribute",
            CorruptionKind::Count => "count",
            CorruptionKind::Spatial => "spatial",
            CorruptionKind::Hallucination => "hallucination",
        }
    }
}

/// Where a hallucination edit puts the object it adds.
///
/// Why it is a choice: with `After`, every hallucinated answer starts with the claims of the
/// answer it was made from, so in a judge's restatement of it the first claim is always true and
/// only a later one false. Session 26 suspected that prior behind a judge that calls Answer A's
/// claim true when it is not; session 27 tried `Anywhere` (the added object first as often as
/// after any sentence) in the CPU lab and the bench did not move (notes/science.md), so `After`
/// stays the default and `Anywhere` an ablation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// After one of the answer's sentences, drawn uniformly, or appended with "and" to an
    /// answer without a sentence end: the added claim never comes first.
    #[default]
    After,
    /// Before the first sentence or after any sentence, each place equally likely (before or
    /// after an answer without a sentence end, on a fair coin).
    Anywhere,
}

/// Vocabulary the corrupter recognises. Entries are single lowercase words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WordLists {
    /// Colour words.
    pub colors: Vec<String>,
    /// Size words.
    pub sizes: Vec<String>,
    /// Singular shape nouns; plurals ("circles", "boxes") are recognised by rule.
    pub shapes: Vec<String>,
    /// Number words indexed by value: `numbers[3]` is "three".
    pub numbers: Vec<String>,
    /// Pairs of opposite relation words.
    pub relations: Vec<(String, String)>,
}

impl Default for WordLists {
    /// The world's own vocabulary.
    fn default() -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect();
        WordLists {
            colors: Color::ALL.iter().map(|c| c.name().to_string()).collect(),
            sizes: Size::ALL.iter().map(|s| s.name().to_string()).collect(),
            shapes: Shape::ALL.iter().map(|s| s.name().to_string()).collect(),
            numbers: owned(&[
                "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve",
            ]),
            relations: [("left", "right"), ("above", "below"), ("top", "bottom")]
                .iter()
                .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
                .collect(),
        }
    }
}

/// A corrupted answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corruption {
    /// The edited text.
    pub text: String,
    /// What was injected.
    pub kind: CorruptionKind,
}

fn plural(word: &str) -> String {
    if ["s", "x", "ch", "sh"].iter().any(|end| word.ends_with(end)) {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

/// Gives `replacement` the case pattern of `original`: UPPER, Capitalised or lower.
fn match_case(original: &str, replacement: &str) -> String {
    let letters: Vec<char> = original.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        replacement.to_uppercase()
    } else if letters.first().is_some_and(|c| c.is_uppercase()) {
        crate::language::capitalise(replacement)
    } else {
        replacement.to_string()
    }
}

/// Byte span of one alphanumeric word.
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
}

/// Maximal alphanumeric runs: these are the word boundaries every edit respects.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Token { start: s, end: i });
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Token {
            start: s,
            end: text.len(),
        });
    }
    out
}

/// One candidate edit: replace these byte spans (non-overlapping, ascending) with these strings.
type Edit = Vec<(usize, usize, String)>;

fn apply(text: &str, edit: &Edit) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut at = 0;
    for (start, end, with) in edit {
        out.push_str(&text[at..*start]);
        out.push_str(with);
        at = *end;
    }
    out.push_str(&text[at..]);
    out
}

/// Word lists lowercased once, with shape plurals.
struct Lexicon<'a> {
    words: &'a WordLists,
    shape_plurals: Vec<String>,
}

impl<'a> Lexicon<'a> {
    fn new(words: &'a WordLists) -> Self {
        Lexicon {
            words,
            shape_plurals: words.shapes.iter().map(|s| plural(s)).collect(),
        }
    }

    fn number_value(&self, word: &str) -> Option<usize> {
        if word.bytes().all(|b| b.is_ascii_digit()) {
            // Long digit strings are identifiers or years, not counts.
            return if word.len() <= 3 {
                word.parse().ok()
            } else {
                None
            };
        }
        self.words.numbers.iter().position(|n| n == word)
    }

    fn attribute_edits(&self, text: &str, toks: &[Token]) -> Vec<Edit> {
        let lists: [&[String]; 4] = [
            &self.words.colors,
            &self.words.sizes,
            &self.words.shapes,
            &self.shape_plurals,
        ];
        let mut out = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let word = text[t.start..t.end].to_lowercase();
            for list in lists {
                if list.contains(&word) {
                    for other in list.iter().filter(|o| **o != word) {
                        let with = match_case(&text[t.start..t.end], other);
                        let mut edit = Vec::new();
                        // "an orange" must become "a red", not "an red".
                        if let Some(prev) = i.checked_sub(1).map(|p| toks[p]) {
                            let article_word = &text[prev.start..prev.end];
                            let is_article =
                                matches!(article_word.to_lowercase().as_str(), "a" | "an");
                            if is_article && text[prev.end..t.start].trim().is_empty() {
                                // A lone "A" could be capitalised or shouting; the word
                                // after it decides.
                                let word = &text[t.start..t.end];
                                let shouting = word.len() > 1 && word == word.to_uppercase();
                                let fixed = if article_word == "A" && shouting {
                                    article(other).to_uppercase()
                                } else {
                                    match_case(article_word, article(other))
                                };
                                edit.push((prev.start, prev.end, fixed));
                            }
                        }
                        edit.push((t.start, t.end, with));
                        out.push(edit);
                    }
                }
            }
        }
        out
    }

    /// Number edits. Going from one to two also pluralises a shape noun within the next three
    /// words, so the error is in the count and not in the grammar.
    fn count_edits<R: Rng + ?Sized>(&self, text: &str, toks: &[Token], rng: &mut R) -> Vec<Edit> {
        let mut out = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let original = &text[t.start..t.end];
            let lower = original.to_lowercase();
            let Some(value) = self.number_value(&lower) else {
                continue;
            };
            // Never produce "1" from a plural count: "1 circles" would give the error away.
            let new = match value {
                0 | 1 => 2,
                2 => 3,
                v if rng.random_bool(0.5) => v - 1,
                v => v + 1,
            };
            let digits = lower.bytes().all(|b| b.is_ascii_digit());
            let with = match self.words.numbers.get(new) {
                Some(word) if !digits => match_case(original, word),
                _ => new.to_string(),
            };
            let mut edit = Vec::new();
            if value == 1 {
                // "There is one circle" must become "There are two circles".
                let verb = toks[..i]
                    .iter()
                    .rev()
                    .take(2)
                    .find(|v| text[v.start..v.end].eq_ignore_ascii_case("is"));
                if let Some(v) = verb {
                    edit.push((v.start, v.end, match_case(&text[v.start..v.end], "are")));
                }
            }
            edit.push((t.start, t.end, with));
            if value == 1 {
                let noun = toks[i + 1..].iter().take(3).find(|n| {
                    let w = text[n.start..n.end].to_lowercase();
                    self.words.shapes.contains(&w)
                });
                if let Some(n) = noun {
                    let w = &text[n.start..n.end];
                    edit.push((n.start, n.end, match_case(w, &plural(&w.to_lowercase()))));
                }
            }
            out.push(edit);
        }
        out
    }

    fn spatial_edits(&self, text: &str, toks: &[Token]) -> Vec<Edit> {
        let mut out = Vec::new();
        for t in toks {
            let original = &text[t.start..t.end];
            let word = original.to_lowercase();
            for (a, b) in &self.words.relations {
                let opposite = if word == *a {
                    b
                } else if word == *b {
                    a
                } else {
                    continue;
                };
                out.push(vec![(t.start, t.end, match_case(original, opposite))]);
            }
        }
        out
    }

    /// Adds a mention of an object whose colour the answer never mentions. Only applies to
    /// answers that already talk about shapes: appending an object to "yes" would be no
    /// hallucination but a non sequitur.
    fn hallucination_edit<R: Rng + ?Sized>(
        &self,
        text: &str,
        toks: &[Token],
        placement: Placement,
        rng: &mut R,
    ) -> Option<Edit> {
        let lower: Vec<String> = toks
            .iter()
            .map(|t| text[t.start..t.end].to_lowercase())
            .collect();
        let mentions_shape = lower
            .iter()
            .any(|w| self.words.shapes.contains(w) || self.shape_plurals.contains(w));
        if !mentions_shape {
            return None;
        }
        let unused: Vec<&String> = self
            .words
            .colors
            .iter()
            .filter(|c| !lower.contains(c))
            .collect();
        let color = unused.choose(rng)?;
        let shape = self.words.shapes.choose(rng)?;
        let phrase = match self.words.sizes.choose(rng) {
            Some(size) => format!("{size} {color} {shape}"),
            None => format!("{color} {shape}"),
        };
        let trimmed = text.trim_end();
        let end = trimmed.len();
        if trimmed.ends_with(['.', '!', '?']) {
            // Insert as its own sentence after a randomly chosen sentence end.
            let ends: Vec<usize> = trimmed
                .char_indices()
                .filter(|&(i, c)| {
                    matches!(c, '.' | '!' | '?')
                        && (i + 1 == end || trimmed[i + 1..].starts_with(' '))
                })
                .map(|(i, _)| i + 1)
                .collect();
            // Before the first sentence (only with `Anywhere`) or after any sentence end,
            // uniformly.
            let start = trimmed.len() - trimmed.trim_start().len();
            let anywhere = placement == Placement::Anywhere;
            let places: Vec<usize> = anywhere.then_some(start).into_iter().chain(ends).collect();
            let at = *places.choose(rng)?;
            Some(vec![(
                at,
                at,
                object_sentence(&phrase, anywhere && at == start, rng),
            )])
        } else if placement == Placement::Anywhere && rng.random_bool(0.5) {
            // "a red circle" -> "a blue square and a red circle"; a capitalised first article
            // ("A red circle") moves to the front: "A blue square and a red circle".
            let first = toks.first()?;
            let word = &text[first.start..first.end];
            let leading_article = matches!(word.to_lowercase().as_str(), "a" | "an" | "the");
            let capital = word.chars().next().is_some_and(char::is_uppercase);
            let added = format!("{} {phrase} and ", article(&phrase));
            let (added, word) = if capital && leading_article {
                (crate::language::capitalise(&added), word.to_lowercase())
            } else {
                (added, word.to_string())
            };
            Some(vec![(first.start, first.end, format!("{added}{word}"))])
        } else {
            Some(vec![(
                end,
                end,
                format!(" and {} {phrase}", article(&phrase)),
            )])
        }
    }
}

/// An added object as a sentence of its own, on a fair coin "There is (also) a small blue
/// circle." or "A small blue circle is (also) visible.": before the answer's first sentence
/// (`first`, no "also", a space after) or after one of its sentences (a space before).
fn object_sentence<R: Rng + ?Sized>(phrase: &str, first: bool, rng: &mut R) -> String {
    let also = if first { "" } else { " also" };
    let article = article(phrase);
    let sentence = if rng.random_bool(0.5) {
        format!("There is{also} {article} {phrase}.")
    } else {
        format!(
            "{} {phrase} is{also} visible.",
            crate::language::capitalise(article)
        )
    };
    if first {
        format!("{sentence} ")
    } else {
        format!(" {sentence}")
    }
}

/// The kinds of [`corrupt_text`] that can edit `answer` with these word lists.
pub fn applicable_kinds(answer: &str, words: &WordLists) -> Vec<CorruptionKind> {
    // Applicability does not depend on random choices, so any fixed seed will do here.
    let mut rng = crate::rng(0);
    CorruptionKind::ALL
        .into_iter()
        .filter(|&k| corrupt_as(answer, words, k, Placement::After, &mut rng).is_some())
        .collect()
}

/// Corrupts `answer` with one edit of a kind drawn uniformly from those in `kinds` that apply,
/// or `None` when none applies. Seed `rng` (e.g. [`crate::rng`]) for reproducible edits.
///
/// The edit always changes the text but cannot consult the scene, so it is false only with
/// high probability: renaming the object of a spatial claim can, rarely, name another object
/// that satisfies it too (about 0.3% of edits on the world's own captions, see the tests).
pub fn corrupt_text<R: Rng + ?Sized>(
    answer: &str,
    words: &WordLists,
    kinds: &[CorruptionKind],
    rng: &mut R,
) -> Option<Corruption> {
    corrupt_text_placed(answer, words, kinds, Placement::After, rng)
}

/// [`corrupt_text`] with the added object of a hallucination edit placed by `placement`
/// ([`Placement::After`] is `corrupt_text` itself, draw for draw).
pub fn corrupt_text_placed<R: Rng + ?Sized>(
    answer: &str,
    words: &WordLists,
    kinds: &[CorruptionKind],
    placement: Placement,
    rng: &mut R,
) -> Option<Corruption> {
    let mut candidates: Vec<Corruption> = kinds
        .iter()
        .filter_map(|&k| corrupt_as(answer, words, k, placement, rng))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let i = rng.random_range(0..candidates.len());
    Some(candidates.swap_remove(i))
}

fn corrupt_as<R: Rng + ?Sized>(
    answer: &str,
    words: &WordLists,
    kind: CorruptionKind,
    placement: Placement,
    rng: &mut R,
) -> Option<Corruption> {
    let lexicon = Lexicon::new(words);
    let toks = tokens(answer);
    let edit = match kind {
        CorruptionKind::Attribute => lexicon.attribute_edits(answer, &toks).choose(rng).cloned(),
        CorruptionKind::Count => lexicon.count_edits(answer, &toks, rng).choose(rng).cloned(),
        CorruptionKind::Spatial => lexicon.spatial_edits(answer, &toks).choose(rng).cloned(),
        CorruptionKind::Hallucination => lexicon.hallucination_edit(answer, &toks, placement, rng),
    }?;
    Some(Corruption {
        text: apply(answer, &edit),
        kind,
    })
}
