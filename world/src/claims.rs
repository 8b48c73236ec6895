//! Checking a free-text description against its scene graph, one claim at a time.
//!
//! The science issue's perception gate asks that at least 85% of what a base model claims in
//! its captions be true of the scene. [`check_caption`] reads a caption in the world's caption
//! grammar (the same words a model trained on the world writes, in whatever order it writes
//! them) and scores every claim it finds.
//!
//! Contract:
//! - The text is split into sentences at `.`, `!` and `?`; words are lowercased, and anything
//!   that is not a letter or a digit separates words.
//! - A sentence holding a relation phrase ("to the left of", "to the right of", "above",
//!   "below") is one **relation** claim: the last noun phrase before the phrase is the subject,
//!   the first one after it the object (a noun phrase: optional size and colour, then a shape
//!   word). It holds when each noun phrase picks out exactly one object and the relation holds
//!   between them by the scene's rule ([`Scene::holds`]). A reference that matches no object,
//!   or several, makes the claim false.
//! - A sentence with "total" or "altogether" is one **total** claim: its first number must be
//!   the number of objects in the scene.
//! - Any other sentence is a listing: each "QUANTITY [size] [colour] SHAPE" in it ("a small red
//!   circle", "two large blue squares") is one **group** claim. It holds when the scene has
//!   exactly that many objects with the attributes named; an attribute left out matches any
//!   value. A listing names disjoint sets of objects, so mentions of the same attributes add
//!   up: "a red circle ... and a red circle" claims two red circles, and both mentions are
//!   false where the scene has one.
//! - A sentence in which none of these is found is counted in [`CaptionCheck::unparsed`], not
//!   as a claim: a model that writes nothing checkable has no claims, and its coverage says so.
//! - **Coverage**: the scene's objects that some true group claim accounts for, over all its
//!   objects. Precision alone rewards saying little; coverage is what keeps it honest.
//!
//! The test oracle in `world/tests/common` reads captions with its own code; the tests check
//! that the two agree on every gold and every corrupted caption of many scenes.

use std::collections::BTreeSet;

use crate::language::NUMBER_WORDS;
use crate::prompts::CountFilter;
use crate::scene::{Color, Object, Relation, Scene, Shape, Size};

/// What a claim is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// "two small red circles": how many objects of a kind there are.
    Group,
    /// "four objects in total".
    Total,
    /// "the red circle is to the left of the blue square".
    Relation,
}

impl ClaimKind {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            ClaimKind::Group => "group",
            ClaimKind::Total => "total",
            ClaimKind::Relation => "relation",
        }
    }
}

/// One claim read from a caption, and whether the scene bears it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// What the claim is about.
    pub kind: ClaimKind,
    /// The words the claim was read from, joined by spaces.
    pub text: String,
    /// Whether it is true of the scene.
    pub holds: bool,
}

/// Every claim of one caption, checked against one scene.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptionCheck {
    /// The claims, in the order the caption makes them.
    pub claims: Vec<Claim>,
    /// Sentences in which no claim was found.
    pub unparsed: usize,
    /// Objects accounted for by a true group claim.
    pub covered: usize,
    /// Objects in the scene.
    pub objects: usize,
}

impl CaptionCheck {
    /// Claims that hold.
    pub fn true_claims(&self) -> usize {
        self.claims.iter().filter(|c| c.holds).count()
    }

    /// Whether every claim holds and at least one was made.
    pub fn all_true(&self) -> bool {
        !self.claims.is_empty() && self.claims.iter().all(|c| c.holds)
    }
}

fn quantity(word: &str) -> Option<usize> {
    match word {
        "a" | "an" => Some(1),
        _ => NUMBER_WORDS
            .iter()
            .position(|w| *w == word)
            .or_else(|| word.parse().ok()),
    }
}

fn size_word(word: &str) -> Option<Size> {
    Size::ALL.into_iter().find(|s| s.name() == word)
}

fn color_word(word: &str) -> Option<Color> {
    Color::ALL.into_iter().find(|c| c.name() == word)
}

fn shape_word(word: &str) -> Option<Shape> {
    Shape::ALL
        .into_iter()
        .find(|s| s.name() == word || s.plural() == word)
}

/// The first relation phrase ([`Relation::phrase`], "to the left of") in `words`: where it
/// starts and ends, and the relation.
fn find_relation(words: &[&str]) -> Option<(usize, usize, Relation)> {
    (0..words.len()).find_map(|i| {
        Relation::ALL.into_iter().find_map(|rel| {
            let end = i + rel.phrase().split(' ').count();
            (end <= words.len() && words[i..end].iter().copied().eq(rel.phrase().split(' ')))
                .then_some((i, end, rel))
        })
    })
}

/// The words of lowercased `text`: anything that is not a letter or a digit separates them.
fn words_of(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The noun phrase ending at the shape word `words[end]`: the size and colour words right
/// before it, in any order.
fn phrase_ending_at(words: &[&str], end: usize) -> Option<CountFilter> {
    Some(attributes_before(words, end, Some(shape_word(words[end])?)))
}

/// `shape` narrowed by the size and colour words right before `words[end]`, in any order (the
/// nearest of each; anything else ends them).
fn attributes_before(words: &[&str], end: usize, shape: Option<Shape>) -> CountFilter {
    let mut phrase = CountFilter {
        size: None,
        color: None,
        shape,
    };
    for w in words[..end].iter().rev() {
        if let (None, Some(s)) = (phrase.size, size_word(w)) {
            phrase.size = Some(s);
        } else if let (None, Some(c)) = (phrase.color, color_word(w)) {
            phrase.color = Some(c);
        } else {
            break;
        }
    }
    phrase
}

/// Where the noun of a mention whose quantity is `words[i]` is: the first word `is_noun`
/// accepts among the three after it, with at most a size and a colour between.
fn mention_end(words: &[&str], i: usize, is_noun: impl Fn(&str) -> bool) -> Option<usize> {
    let end = (i + 1..words.len().min(i + 4)).find(|&j| is_noun(words[j]))?;
    words[i + 1..end]
        .iter()
        .all(|w| size_word(w).is_some() || color_word(w).is_some())
        .then_some(end)
}

fn unique<'a>(scene: &'a Scene, phrase: &CountFilter) -> Option<&'a Object> {
    let mut found = scene.objects.iter().filter(|o| phrase.matches(o));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn relation_claim(scene: &Scene, words: &[&str]) -> Option<Claim> {
    let (start, end, relation) = find_relation(words)?;
    let subject_end = (0..start).rev().find(|&i| shape_word(words[i]).is_some())?;
    let object_end = (end..words.len()).find(|&i| shape_word(words[i]).is_some())?;
    let subject = phrase_ending_at(words, subject_end)?;
    let object = phrase_ending_at(words, object_end)?;
    let holds = match (unique(scene, &subject), unique(scene, &object)) {
        (Some(a), Some(b)) => !std::ptr::eq(a, b) && scene.holds(relation, a, b),
        _ => false,
    };
    Some(Claim {
        kind: ClaimKind::Relation,
        text: words.join(" "),
        holds,
    })
}

fn total_claim(scene: &Scene, words: &[&str]) -> Option<Claim> {
    if !words.iter().any(|w| *w == "total" || *w == "altogether") {
        return None;
    }
    let n = words
        .iter()
        .filter(|w| !matches!(**w, "a" | "an"))
        .find_map(|w| quantity(w))?;
    Some(Claim {
        kind: ClaimKind::Total,
        text: words.join(" "),
        holds: n == scene.objects.len(),
    })
}

/// A group claim found in a listing, before it is checked.
struct GroupMention {
    text: String,
    count: usize,
    phrase: CountFilter,
}

/// The group mentions of a listing sentence.
fn group_mentions(words: &[&str]) -> Vec<GroupMention> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let Some(count) = quantity(words[i]) else {
            i += 1;
            continue;
        };
        let Some(end) = mention_end(words, i, |w| shape_word(w).is_some()) else {
            i += 1;
            continue;
        };
        let Some(phrase) = phrase_ending_at(words, end) else {
            i += 1;
            continue;
        };
        out.push(GroupMention {
            text: words[i..=end].join(" "),
            count,
            phrase,
        });
        i = end + 1;
    }
    out
}

/// Checks group mentions: a listing names disjoint sets of objects, so mentions of the same
/// attributes add up ("a red circle and a red circle" claims two), and each holds when the sum
/// is the scene's count of objects with those attributes. Returns the claims and the objects
/// the true ones account for.
fn group_claims(scene: &Scene, mentions: &[GroupMention]) -> (Vec<Claim>, BTreeSet<usize>) {
    let mut covered = BTreeSet::new();
    let claims = mentions
        .iter()
        .map(|m| {
            let claimed: usize = mentions
                .iter()
                .filter(|other| other.phrase == m.phrase)
                .map(|other| other.count)
                .sum();
            let members: Vec<usize> = (0..scene.objects.len())
                .filter(|&k| m.phrase.matches(&scene.objects[k]))
                .collect();
            let holds = members.len() == claimed;
            if holds {
                covered.extend(members);
            }
            Claim {
                kind: ClaimKind::Group,
                text: m.text.clone(),
                holds,
            }
        })
        .collect();
    (claims, covered)
}

/// The count claims of a justified answer's reasoning ("There is 1 green shape: a small circle",
/// "There are no diamonds and 2 circles"), each checked against `scene`: every "QUANTITY [size]
/// [colour] NOUN" before the first colon, where QUANTITY is a number, "a", "an" or "no" (zero)
/// and NOUN a shape word or "shape(s)" (any shape). It holds when the scene has exactly that
/// many objects with the attributes named. What follows a colon lists the counted objects
/// ("a small one"), which the count already claims, and is not read.
///
/// Why not [`check_caption`]: a caption never says "no" or "shapes", and its listings add
/// mentions up; a justified answer's counts are separate claims about separate kinds.
pub fn count_claims(scene: &Scene, reasoning: &str) -> Vec<Claim> {
    let lower = reasoning.to_lowercase();
    let head = lower.split(':').next().unwrap_or_default();
    let head = head.split("so the answer").next().unwrap_or_default();
    let words = words_of(head);
    let noun = |w: &str| -> Option<Option<Shape>> {
        match w {
            "shape" | "shapes" => Some(None),
            _ => shape_word(w).map(Some),
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let count = if words[i] == "no" {
            Some(0)
        } else {
            quantity(words[i])
        };
        let end = count.and_then(|_| mention_end(&words, i, |w| noun(w).is_some()));
        let (Some(count), Some(end)) = (count, end) else {
            i += 1;
            continue;
        };
        let filter = attributes_before(&words, end, noun(words[end]).expect("the noun found"));
        let have = scene.objects.iter().filter(|o| filter.matches(o)).count();
        out.push(Claim {
            kind: ClaimKind::Group,
            text: words[i..=end].join(" "),
            holds: have == count,
        });
        i = end + 1;
    }
    out
}

/// Reads every claim of `caption` and checks it against `scene` (see the module's contract).
pub fn check_caption(scene: &Scene, caption: &str) -> CaptionCheck {
    let lower = caption.to_lowercase();
    // Claims in caption order: a sentence's relation or total claim, or the index of its first
    // group mention (group claims are checked together, once every mention is known).
    enum Slot {
        One(Claim),
        Groups(usize, usize),
    }
    let mut slots = Vec::new();
    let mut mentions = Vec::new();
    let mut unparsed = 0;
    for sentence in lower.split(['.', '!', '?']) {
        let words = words_of(sentence);
        if words.is_empty() {
            continue;
        }
        if let Some(claim) = relation_claim(scene, &words).or_else(|| total_claim(scene, &words)) {
            slots.push(Slot::One(claim));
            continue;
        }
        let found = group_mentions(&words);
        if found.is_empty() {
            unparsed += 1;
        }
        slots.push(Slot::Groups(mentions.len(), found.len()));
        mentions.extend(found);
    }
    let (groups, covered) = group_claims(scene, &mentions);
    let claims = slots
        .into_iter()
        .flat_map(|slot| match slot {
            Slot::One(claim) => vec![claim],
            Slot::Groups(start, n) => groups[start..start + n].to_vec(),
        })
        .collect();
    CaptionCheck {
        claims,
        unparsed,
        covered: covered.len(),
        objects: scene.objects.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{Background, Pattern};

    fn object(shape: Shape, color: Color, size: Size, x: u32, y: u32) -> Object {
        Object {
            shape,
            color,
            size,
            x,
            y,
            radius: 6,
        }
    }

    /// A large red circle top-left, two small blue squares bottom-right and bottom-left.
    fn scene() -> Scene {
        Scene {
            seed: 1,
            width: 64,
            height: 64,
            objects: vec![
                object(Shape::Circle, Color::Red, Size::Large, 12, 12),
                object(Shape::Square, Color::Blue, Size::Small, 50, 50),
                object(Shape::Square, Color::Blue, Size::Small, 12, 50),
            ],
            background: Background {
                color: [230, 230, 230],
                pattern: Pattern::Plain,
                noise: 0.0,
            },
        }
    }

    fn verdicts(check: &CaptionCheck) -> Vec<(ClaimKind, bool)> {
        check.claims.iter().map(|c| (c.kind, c.holds)).collect()
    }

    #[test]
    fn a_faithful_caption_is_all_true_and_covers_every_object() {
        let c = check_caption(
            &scene(),
            "The image shows a large red circle and two small blue squares. There are three \
             objects in total. The red circle is located above the small blue square.",
        );
        // "the small blue square" names two objects: that reference is false, not true.
        assert_eq!(
            verdicts(&c),
            vec![
                (ClaimKind::Group, true),
                (ClaimKind::Group, true),
                (ClaimKind::Total, true),
                (ClaimKind::Relation, false),
            ]
        );
        assert_eq!((c.covered, c.objects, c.unparsed), (3, 3, 0));
    }

    #[test]
    fn wrong_counts_colours_totals_and_relations_are_false() {
        let c = check_caption(
            &scene(),
            "We can see a large green circle and three small blue squares. Altogether there are \
             four shapes. The red circle sits below the large red circle.",
        );
        assert_eq!(
            verdicts(&c),
            vec![
                (ClaimKind::Group, false),
                (ClaimKind::Group, false),
                (ClaimKind::Total, false),
                (ClaimKind::Relation, false),
            ]
        );
        assert_eq!(c.covered, 0);
        assert!(!c.all_true());
    }

    #[test]
    fn left_out_attributes_match_anything_and_nonsense_is_unparsed() {
        let c = check_caption(
            &scene(),
            "Two squares are shown. Blue blue blue. The circle is to the left of the square.",
        );
        // "the square" is ambiguous (two squares): false.
        assert_eq!(
            verdicts(&c),
            vec![(ClaimKind::Group, true), (ClaimKind::Relation, false)]
        );
        assert_eq!((c.covered, c.unparsed), (2, 1));
        // Mentions of one kind add up: one red circle is not "a red circle and a red circle".
        let twice = check_caption(
            &scene(),
            "A red circle and a red circle. A large red circle.",
        );
        // "a large red circle" is another phrase: it is checked on its own, and holds.
        let holds: Vec<bool> = twice.claims.iter().map(|c| c.holds).collect();
        assert_eq!(holds, vec![false, false, true], "{twice:?}");
        let empty = check_caption(&scene(), "");
        assert!(empty.claims.is_empty() && !empty.all_true());
    }

    fn counts(reasoning: &str) -> Vec<(String, bool)> {
        count_claims(&scene(), reasoning)
            .into_iter()
            .map(|c| (c.text, c.holds))
            .collect()
    }

    #[test]
    fn a_justified_answers_counts_are_its_claims_and_the_listing_is_not() {
        let own = |t: &str, h: bool| (t.to_string(), h);
        assert_eq!(
            counts(
                "There are 2 blue shapes: a small square and a small square, so the answer is 2."
            ),
            vec![own("2 blue shapes", true)]
        );
        assert_eq!(
            counts("There is 1 green shape: a small circle, so the answer is 1."),
            vec![own("1 green shape", false)]
        );
        assert_eq!(
            counts("There are no red shapes in the image, so the answer is 0."),
            vec![own("no red shapes", false)]
        );
        assert_eq!(
            counts("There is 1 circle and no triangles, so the answer is yes."),
            vec![own("1 circle", true), own("no triangles", true)]
        );
        assert_eq!(
            counts("There are no large circles and 2 small squares, so the answer is no."),
            vec![own("no large circles", false), own("2 small squares", true)]
        );
        // A spatial answer counts nothing.
        assert!(
            counts("The red circle is above the blue square, so the answer is yes.").is_empty()
        );
    }

    /// Every gold justified answer of many scenes: its counts hold (a counting or comparison
    /// answer claims at least one), and a spatial answer claims none.
    #[test]
    fn gold_justified_answers_counts_all_hold() {
        let (mut counted, mut none) = (0, 0);
        for i in 0..300 {
            let scene = crate::draw_scene(&crate::WorldConfig::default(), i);
            let mut rng = crate::rng(i ^ 99);
            for p in crate::reasoning_prompts(&scene, 3, &mut rng) {
                let claims = count_claims(&scene, &p.answer);
                if claims.is_empty() {
                    none += 1;
                    assert!(p.answer.starts_with("The "), "{}", p.answer);
                } else {
                    counted += 1;
                    assert!(claims.iter().all(|c| c.holds), "{}: {claims:?}", p.answer);
                }
            }
        }
        assert!(
            counted > 400 && none > 50,
            "{counted} counted, {none} spatial"
        );
    }
}
