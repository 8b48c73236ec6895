//! Prompts with gold answers: one open-ended description request plus closed-ended questions
//! whose short canonical answers (lowercase words or digits) suit majority voting.

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::{Deserialize, Serialize};

use crate::language::{Desc, article, caption, decided_pairs, describe_prompt, join_list};
use crate::scene::{Color, Object, Relation, Scene, Shape, Size};

/// Kind of question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    /// Open-ended description; the answer is a caption.
    Caption,
    /// "How many ... are there?"; the answer is digits.
    Count,
    /// "What colour is the ...?"; the answer is a colour word.
    Color,
    /// "What shape is the ... object?"; the answer is a shape word.
    Shape,
    /// "Is there a ...?"; the answer is yes/no, balanced per scene.
    Existence,
    /// Relative position; the answer is yes/no or left/right/above/below.
    Spatial,
    /// "Are there more ... than ...?"; the answer is yes/no.
    Comparison,
    /// A counting, comparison or spatial question asked with its reasoning ("... Explain your
    /// answer."); the answer justifies itself and ends "so the answer is X", the form of the
    /// bench's reasoning pairs. Made by [`reasoning_prompts`], never by [`prompts_for`].
    Reasoning,
}

impl TaskType {
    /// Every task type, in a fixed order.
    pub const ALL: [TaskType; 8] = [
        TaskType::Caption,
        TaskType::Count,
        TaskType::Color,
        TaskType::Shape,
        TaskType::Existence,
        TaskType::Spatial,
        TaskType::Comparison,
        TaskType::Reasoning,
    ];

    /// Lowercase name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            TaskType::Caption => "caption",
            TaskType::Count => "count",
            TaskType::Color => "color",
            TaskType::Shape => "shape",
            TaskType::Existence => "existence",
            TaskType::Spatial => "spatial",
            TaskType::Comparison => "comparison",
            TaskType::Reasoning => "reasoning",
        }
    }
}

/// A question about a scene with its gold answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Task family.
    pub task: TaskType,
    /// True for the open-ended description task, false for closed-ended questions.
    pub open: bool,
    /// Question text.
    pub question: String,
    /// Gold answer: a caption when `open`, otherwise a short canonical answer.
    pub answer: String,
}

impl Prompt {
    fn closed(task: TaskType, question: String, answer: impl Into<String>) -> Prompt {
        Prompt {
            task,
            open: false,
            question,
            answer: answer.into(),
        }
    }
}

pub(crate) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Which objects a counting question is about (`None` matches anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountFilter {
    pub size: Option<Size>,
    pub color: Option<Color>,
    pub shape: Option<Shape>,
}

impl CountFilter {
    pub fn matches(&self, o: &Object) -> bool {
        self.size.is_none_or(|s| o.size == s)
            && self.color.is_none_or(|c| o.color == c)
            && self.shape.is_none_or(|s| o.shape == s)
    }

    /// "red shapes", "small circles", "shapes"; singular when `n == 1`.
    pub fn noun(&self, n: usize) -> String {
        let mut words: Vec<&str> = Vec::new();
        words.extend(self.size.map(Size::name));
        words.extend(self.color.map(Color::name));
        words.push(match (self.shape, n == 1) {
            (Some(s), true) => s.name(),
            (Some(s), false) => s.plural(),
            (None, true) => "shape",
            (None, false) => "shapes",
        });
        words.join(" ")
    }

    /// One matching object described by the attributes the filter leaves open: with shape
    /// fixed "a small red one", otherwise "a large blue square".
    pub fn member(&self, o: &Object) -> String {
        let mut words: Vec<&str> = Vec::new();
        if self.size.is_none() {
            words.push(o.size.name());
        }
        if self.color.is_none() {
            words.push(o.color.name());
        }
        words.push(if self.shape.is_none() {
            o.shape.name()
        } else {
            "one"
        });
        let phrase = words.join(" ");
        format!("{} {phrase}", article(&phrase))
    }
}

/// A counting question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CountItem {
    pub filter: CountFilter,
    pub question: String,
    pub answer: usize,
}

pub(crate) fn count_item<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> CountItem {
    // Attribute values mostly come from an object in the scene, so answers are not dominated
    // by zero; a quarter are drawn from the full vocabulary, which keeps "0" a real answer.
    let anchor = scene
        .objects
        .choose(rng)
        .copied()
        .filter(|_| rng.random_bool(0.75));
    let color = anchor.map_or_else(|| *Color::ALL.choose(rng).expect("non-empty"), |o| o.color);
    let shape = anchor.map_or_else(|| *Shape::ALL.choose(rng).expect("non-empty"), |o| o.shape);
    let size = anchor.map_or_else(|| *Size::ALL.choose(rng).expect("non-empty"), |o| o.size);
    let filter = match rng.random_range(0..6) {
        0 | 1 => CountFilter {
            size: None,
            color: Some(color),
            shape: None,
        },
        2 | 3 => CountFilter {
            size: None,
            color: None,
            shape: Some(shape),
        },
        4 => CountFilter {
            size: Some(size),
            color: None,
            shape: None,
        },
        _ if rng.random_bool(0.5) => CountFilter {
            size: None,
            color: Some(color),
            shape: Some(shape),
        },
        _ => CountFilter {
            size: None,
            color: None,
            shape: None,
        },
    };
    let noun = filter.noun(2);
    let question = match rng.random_range(0..3) {
        0 => format!("How many {noun} are there?"),
        1 => format!("How many {noun} are in the image?"),
        _ => format!("How many {noun} can you see in the picture?"),
    };
    let answer = scene.objects.iter().filter(|o| filter.matches(o)).count();
    CountItem {
        filter,
        question,
        answer,
    }
}

/// A relative-position question between two uniquely describable objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpatialItem {
    pub subject: Desc,
    pub object: Desc,
    /// The relation that holds.
    pub truth: Relation,
    pub question: String,
    pub answer: String,
}

pub(crate) fn spatial_item<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> Option<SpatialItem> {
    let (subject, truth, object) = *decided_pairs(scene).choose(rng)?;
    let (a, b) = (subject.text(), object.text());
    let (question, answer) = if rng.random_bool(0.5) {
        // Yes/no, asking about the true relation or its opposite with equal odds.
        let asked = if rng.random_bool(0.5) {
            truth
        } else {
            truth.opposite()
        };
        (
            format!("Is the {a} {} the {b}?", asked.phrase()),
            yes_no(asked == truth).to_string(),
        )
    } else if truth.is_horizontal() {
        (
            format!("Is the {a} to the left or to the right of the {b}?"),
            truth.word().to_string(),
        )
    } else {
        (
            format!("Is the {a} above or below the {b}?"),
            truth.word().to_string(),
        )
    };
    Some(SpatialItem {
        subject,
        object,
        truth,
        question,
        answer,
    })
}

/// A side of a comparison: objects of one shape, or of one colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Shape(Shape),
    Color(Color),
}

impl Category {
    /// Whether one object can belong to both categories (a shape and a colour, or one category
    /// twice); two shapes or two colours name different objects.
    pub fn overlaps(&self, other: &Category) -> bool {
        self == other
            || matches!(
                (self, other),
                (Category::Shape(_), Category::Color(_)) | (Category::Color(_), Category::Shape(_))
            )
    }

    pub fn count(&self, scene: &Scene) -> usize {
        match *self {
            Category::Shape(s) => scene.count(None, None, Some(s)),
            Category::Color(c) => scene.count(None, Some(c), None),
        }
    }

    /// "circles", "1 circle", "no red shapes" style counted noun phrase.
    pub fn counted(&self, n: usize) -> String {
        let noun = match (*self, n == 1) {
            (Category::Shape(s), true) => s.name().to_string(),
            (Category::Shape(s), false) => s.plural().to_string(),
            (Category::Color(c), true) => format!("{} shape", c.name()),
            (Category::Color(c), false) => format!("{} shapes", c.name()),
        };
        if n == 0 {
            format!("no {noun}")
        } else {
            format!("{n} {noun}")
        }
    }

    pub fn plural(&self) -> String {
        match *self {
            Category::Shape(s) => s.plural().to_string(),
            Category::Color(c) => format!("{} shapes", c.name()),
        }
    }
}

/// "Are there more X than Y?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ComparisonItem {
    pub first: Category,
    pub second: Category,
    pub question: String,
}

impl ComparisonItem {
    pub fn answer(&self, scene: &Scene) -> bool {
        self.first.count(scene) > self.second.count(scene)
    }
}

pub(crate) fn comparison_item<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> ComparisonItem {
    // The first category is always present in the scene so the question is not trivially "no".
    let anchor = *scene
        .objects
        .choose(rng)
        .expect("scenes have at least one object");
    let (first, second) = if rng.random_bool(0.5) {
        let other = *Shape::ALL
            .iter()
            .filter(|&&s| s != anchor.shape)
            .collect::<Vec<_>>()
            .choose(rng)
            .expect("several shapes");
        (Category::Shape(anchor.shape), Category::Shape(*other))
    } else {
        let other = *Color::ALL
            .iter()
            .filter(|&&c| c != anchor.color)
            .collect::<Vec<_>>()
            .choose(rng)
            .expect("several colours");
        (Category::Color(anchor.color), Category::Color(*other))
    };
    let (first, second) = if rng.random_bool(0.5) {
        (first, second)
    } else {
        (second, first)
    };
    let question = format!(
        "Are there more {} than {}?",
        first.plural(),
        second.plural()
    );
    ComparisonItem {
        first,
        second,
        question,
    }
}

/// "What colour is the square?", asked only about an object its shape (or size and shape)
/// identifies uniquely.
fn color_prompt<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> Option<Prompt> {
    let candidates: Vec<(String, Color)> = scene
        .objects
        .iter()
        .filter_map(|o| {
            if scene.count(None, None, Some(o.shape)) == 1 {
                Some((o.shape.name().to_string(), o.color))
            } else if scene.count(Some(o.size), None, Some(o.shape)) == 1 {
                Some((format!("{} {}", o.size.name(), o.shape.name()), o.color))
            } else {
                None
            }
        })
        .collect();
    let (noun, color) = candidates.choose(rng)?;
    let question = if rng.random_bool(0.5) {
        format!("What colour is the {noun}?")
    } else {
        format!("Which colour does the {noun} have?")
    };
    Some(Prompt::closed(TaskType::Color, question, color.name()))
}

/// "What shape is the red object?", asked only when colour (or size and colour) identifies it.
fn shape_prompt<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> Option<Prompt> {
    let candidates: Vec<(String, Shape)> = scene
        .objects
        .iter()
        .filter_map(|o| {
            if scene.count(None, Some(o.color), None) == 1 {
                Some((o.color.name().to_string(), o.shape))
            } else if scene.count(Some(o.size), Some(o.color), None) == 1 {
                Some((format!("{} {}", o.size.name(), o.color.name()), o.shape))
            } else {
                None
            }
        })
        .collect();
    let (adjectives, shape) = candidates.choose(rng)?;
    let question = if rng.random_bool(0.5) {
        format!("What shape is the {adjectives} object?")
    } else {
        format!("Which shape is the {adjectives} object?")
    };
    Some(Prompt::closed(TaskType::Shape, question, shape.name()))
}

fn existence_question<R: Rng + ?Sized>(thing: &str, rng: &mut R) -> String {
    existence_phrasing(thing, rng.random_range(0..3))
}

/// The existence question about `thing` in phrasing `k` (0, 1 or 2).
fn existence_phrasing(thing: &str, k: i32) -> String {
    let a = article(thing);
    match k {
        0 => format!("Is there {a} {thing} in the image?"),
        1 => format!("Does the image contain {a} {thing}?"),
        _ => format!("Can you see {a} {thing} in the picture?"),
    }
}

/// One "yes" and one "no" existence question, so the task is balanced per scene. Absent
/// things are a shape that does not occur, or a colour-shape combination that does not.
fn existence_prompts<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> Vec<Prompt> {
    let absent_shapes: Vec<Shape> = Shape::ALL
        .into_iter()
        .filter(|&s| scene.count(None, None, Some(s)) == 0)
        .collect();
    let absent_combos: Vec<(Color, Shape)> = Color::ALL
        .into_iter()
        .flat_map(|c| Shape::ALL.map(|s| (c, s)))
        .filter(|&(c, s)| scene.count(None, Some(c), Some(s)) == 0)
        .collect();
    let absent = if !absent_shapes.is_empty() && rng.random_bool(0.4) {
        absent_shapes.choose(rng).map(|s| s.name().to_string())
    } else {
        absent_combos
            .choose(rng)
            .map(|(c, s)| format!("{} {}", c.name(), s.name()))
    };
    // Without an absent thing (a scene using every combination) a lone "yes" would unbalance
    // the task, so ask nothing.
    let Some(absent) = absent else {
        return Vec::new();
    };
    let o = scene
        .objects
        .choose(rng)
        .expect("scenes have at least one object");
    let present = if rng.random_bool(0.4) {
        o.shape.name().to_string()
    } else {
        format!("{} {}", o.color.name(), o.shape.name())
    };
    let mut out = vec![
        Prompt::closed(
            TaskType::Existence,
            existence_question(&present, rng),
            "yes",
        ),
        Prompt::closed(TaskType::Existence, existence_question(&absent, rng), "no"),
    ];
    out.shuffle(rng);
    out
}

/// `n` existence questions in minimal pairs: one about a thing in the scene ("Is there a red
/// circle in the image?", "yes") and one with a single word of it changed (its colour or its
/// shape) to a thing the scene lacks ("... a red square ...", "no"), each pair shuffled. The
/// pair's two questions differ in one word and ask about the same image, so neither answer can
/// be told from the image alone: only reading that word against the image gives both. An
/// object whose every one-word change is present (a scene holding all of them) gives no pair.
pub fn binding_pairs<R: Rng + ?Sized>(scene: &Scene, n: usize, rng: &mut R) -> Vec<Prompt> {
    let mut out = Vec::new();
    binding_draws(scene, n, rng, |o, (c, sh), k, rng| {
        let present = format!("{} {}", o.color.name(), o.shape.name());
        let absent = format!("{} {}", c.name(), sh.name());
        // One phrasing for both, so the questions differ in the changed word alone.
        let mut pair = vec![
            Prompt::closed(TaskType::Existence, existence_phrasing(&present, k), "yes"),
            Prompt::closed(TaskType::Existence, existence_phrasing(&absent, k), "no"),
        ];
        pair.shuffle(rng);
        out.extend(pair);
    });
    out
}

/// The pairs of [`binding_pairs`] (the same draws from `rng`) as claims to mark, in the form a
/// `compare` judge reasoning marks an answer's claims: the prompt gives one claim about an
/// object ("a large red circle", true of the scene, or the same with its colour or shape
/// changed to one the scene lacks, false), and the answer restates it with its mark:
/// "a large red square (false)." Every row carries one claim, so a mark follows the claim's
/// content and nothing else (no position, no other answer).
pub fn binding_claims<R: Rng + ?Sized>(scene: &Scene, n: usize, rng: &mut R) -> Vec<Prompt> {
    let mut out = Vec::new();
    binding_draws(scene, n, rng, |o, (c, sh), k, rng| {
        let claim = |color: Color, shape: Shape| {
            let phrase = format!("{} {} {}", o.size.name(), color.name(), shape.name());
            format!("{} {phrase}", article(&phrase))
        };
        let ask = |claim: &str| match k {
            0 => format!("Is this claim about the image true or false? {claim}"),
            1 => format!("Check this claim against the image: {claim}"),
            _ => format!("True or false of the picture: {claim}"),
        };
        let mut pair = vec![
            (claim(o.color, o.shape), "(true)"),
            (claim(c, sh), "(false)"),
        ]
        .into_iter()
        .map(|(claim, mark)| {
            Prompt::closed(TaskType::Existence, ask(&claim), format!("{claim} {mark}."))
        })
        .collect::<Vec<_>>();
        pair.shuffle(rng);
        out.extend(pair);
    });
    out
}

/// The draws behind [`binding_pairs`] and [`binding_claims`]: per pair an object of the scene,
/// a one-word change of it (colour or shape, equally often) that the scene lacks, and a
/// phrasing index in 0..3, handed to `emit` with `rng` for its own draws (the shuffle).
fn binding_draws<R: Rng + ?Sized>(
    scene: &Scene,
    n: usize,
    rng: &mut R,
    mut emit: impl FnMut(&Object, (Color, Shape), i32, &mut R),
) {
    for _ in 0..n {
        let o = scene
            .objects
            .choose(rng)
            .expect("scenes have at least one object");
        let mut changes: Vec<(Color, Shape)> = Color::ALL
            .into_iter()
            .filter(|&c| c != o.color)
            .map(|c| (c, o.shape))
            .chain(
                Shape::ALL
                    .into_iter()
                    .filter(|&s| s != o.shape)
                    .map(|s| (o.color, s)),
            )
            .filter(|&(c, s)| scene.count(None, Some(c), Some(s)) == 0)
            .collect();
        // Colour and shape changes equally often, whatever the two lists' lengths.
        let shape_changes = changes.iter().filter(|(c, _)| *c == o.color).count();
        if shape_changes > 0 && shape_changes < changes.len() {
            let want_shape = rng.random_bool(0.5);
            changes.retain(|(c, _)| (*c == o.color) == want_shape);
        }
        let Some(&change) = changes.choose(rng) else {
            continue;
        };
        let k = rng.random_range(0..3);
        emit(o, change, k, rng);
    }
}

/// The prompts for one scene: a description request with a gold caption first, then closed
/// questions (two counts, colour, shape, two existence, spatial, comparison) wherever the
/// scene makes them unambiguous.
pub fn prompts_for<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> Vec<Prompt> {
    let mut out = vec![Prompt {
        task: TaskType::Caption,
        open: true,
        question: describe_prompt(rng),
        answer: caption(scene, rng),
    }];
    for _ in 0..2 {
        let item = count_item(scene, rng);
        out.push(Prompt::closed(
            TaskType::Count,
            item.question,
            item.answer.to_string(),
        ));
    }
    out.extend(color_prompt(scene, rng));
    out.extend(shape_prompt(scene, rng));
    out.extend(existence_prompts(scene, rng));
    if let Some(item) = spatial_item(scene, rng) {
        out.push(Prompt::closed(
            TaskType::Spatial,
            item.question,
            item.answer,
        ));
    }
    let item = comparison_item(scene, rng);
    let answer = yes_no(item.answer(scene));
    out.push(Prompt::closed(TaskType::Comparison, item.question, answer));
    out
}

/// `n` questions asked with their reasoning, each a counting, comparison or spatial question
/// (a fair choice among the forms the scene supports: spatial needs two objects it can tell
/// apart) drawn as [`prompts_for`] draws them, in one of three phrasings that ask for the
/// reasoning, with the justified gold answer the bench's reasoning pairs prefer: "There is 1
/// red circle: a small one, so the answer is 1." Closed-ended (the final answer is what a vote
/// compares) and of task [`TaskType::Reasoning`].
pub fn reasoning_prompts<R: Rng + ?Sized>(scene: &Scene, n: usize, rng: &mut R) -> Vec<Prompt> {
    let forms = if decided_pairs(scene).is_empty() {
        2
    } else {
        3
    };
    (0..n)
        .map(|_| {
            let (question, answer) = match rng.random_range(0..forms) {
                0 => {
                    let item = count_item(scene, rng);
                    let found: Vec<&Object> = scene
                        .objects
                        .iter()
                        .filter(|o| item.filter.matches(o))
                        .collect();
                    (item.question, count_justification(&item.filter, &found))
                }
                1 => {
                    let item = comparison_item(scene, rng);
                    let (a, b) = (item.first.count(scene), item.second.count(scene));
                    let answer = comparison_justification(&item, a, b);
                    (item.question, answer)
                }
                _ => {
                    let item = spatial_item(scene, rng).expect("the scene has a decided pair");
                    let answer = spatial_justification(&item, item.truth, &item.answer);
                    (item.question, answer)
                }
            };
            let question = match rng.random_range(0..3) {
                0 => format!("{question} Explain your answer."),
                1 => format!("{question} Give your reasoning."),
                _ => format!("Answer with your reasoning: {question}"),
            };
            Prompt::closed(TaskType::Reasoning, question, answer)
        })
        .collect()
}

/// A counting answer that lists what it counted: "There are no red shapes in the image, so
/// the answer is 0.", "There is 1 circle: a small red one, so the answer is 1.", "There are 2
/// ...: ..., so the answer is 2." `found` are the objects the answer claims to have counted.
pub(crate) fn count_justification(filter: &CountFilter, found: &[&Object]) -> String {
    match found.len() {
        0 => format!(
            "There are no {} in the image, so the answer is 0.",
            filter.noun(0)
        ),
        1 => format!(
            "There is 1 {}: {}, so the answer is 1.",
            filter.noun(1),
            members(filter, found)
        ),
        n => format!(
            "There are {n} {}: {}, so the answer is {n}.",
            filter.noun(n),
            members(filter, found)
        ),
    }
}

/// A comparison answer from the counts it claims: "There are 2 circles and no squares, so the
/// answer is yes."
pub(crate) fn comparison_justification(item: &ComparisonItem, a: usize, b: usize) -> String {
    format!(
        "There {} {} and {}, so the answer is {}.",
        if a == 1 { "is" } else { "are" },
        item.first.counted(a),
        item.second.counted(b),
        yes_no(a > b)
    )
}

/// A spatial answer from the relation it claims: "The red circle is to the left of the blue
/// square, so the answer is yes."
pub(crate) fn spatial_justification(item: &SpatialItem, claimed: Relation, answer: &str) -> String {
    format!(
        "The {} is {} the {}, so the answer is {answer}.",
        item.subject.text(),
        claimed.phrase(),
        item.object.text()
    )
}

/// Justification listing the members of a count: "a red one, a blue one and a green one".
pub(crate) fn members(filter: &CountFilter, objects: &[&Object]) -> String {
    let items: Vec<String> = objects.iter().map(|o| filter.member(o)).collect();
    join_list(&items)
}
