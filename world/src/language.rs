//! Caption grammar and phrase helpers shared by prompts, corpus and benchmark.
//!
//! A caption is first built as a [`CaptionPlan`] (structured claims plus the template choices)
//! and only then rendered to text. The benchmark corrupts plans, not strings, so a rejected
//! caption differs from the chosen one exactly in the injected error and reads naturally.

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::scene::{Color, Relation, Scene, Shape, Size};

/// Number words of the captions, zero to twelve, by value.
pub(crate) const NUMBER_WORDS: [&str; 13] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

/// English word for small counts, digits beyond twelve.
pub(crate) fn number_word(n: usize) -> String {
    NUMBER_WORDS
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_string())
}

/// "a" or "an" for the word that follows.
pub(crate) fn article(next: &str) -> &'static str {
    if next.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// "x", "x and y", "x, y and z".
pub(crate) fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub(crate) fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// `count` objects of one kind: "a small red circle", "two large blue squares".
pub(crate) fn counted_phrase(count: usize, size: Size, color: Color, shape: Shape) -> String {
    if count == 1 {
        format!(
            "{} {} {} {}",
            article(size.name()),
            size.name(),
            color.name(),
            shape.name()
        )
    } else {
        format!(
            "{} {} {} {}",
            number_word(count),
            size.name(),
            color.name(),
            shape.plural()
        )
    }
}

/// Attributes used to refer to one object: colour and shape always, size only when needed to
/// make the reference unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Desc {
    pub size: Option<Size>,
    pub color: Color,
    pub shape: Shape,
}

impl Desc {
    /// Noun phrase without determiner: "red circle", "small red circle".
    pub fn text(&self) -> String {
        match self.size {
            Some(s) => format!("{} {} {}", s.name(), self.color.name(), self.shape.name()),
            None => format!("{} {}", self.color.name(), self.shape.name()),
        }
    }
}

/// Shortest unique description of object `idx` ("red circle" before "small red circle"), or
/// `None` when an identical twin makes every description ambiguous.
pub(crate) fn referring_desc(scene: &Scene, idx: usize) -> Option<Desc> {
    let o = &scene.objects[idx];
    if scene.count(None, Some(o.color), Some(o.shape)) == 1 {
        Some(Desc {
            size: None,
            color: o.color,
            shape: o.shape,
        })
    } else if scene.count(Some(o.size), Some(o.color), Some(o.shape)) == 1 {
        Some(Desc {
            size: Some(o.size),
            color: o.color,
            shape: o.shape,
        })
    } else {
        None
    }
}

/// Ordered pairs of uniquely describable objects, with every relation that holds between them.
pub(crate) fn decided_pairs(scene: &Scene) -> Vec<(Desc, Relation, Desc)> {
    let descs: Vec<Option<Desc>> = (0..scene.objects.len())
        .map(|i| referring_desc(scene, i))
        .collect();
    scene
        .relations()
        .into_iter()
        .filter_map(|(i, rel, j)| Some((descs[i]?, rel, descs[j]?)))
        .collect()
}

/// Objects of one kind claimed by a caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    pub count: usize,
    pub size: Size,
    pub color: Color,
    pub shape: Shape,
}

impl Group {
    pub fn same_kind(&self, size: Size, color: Color, shape: Shape) -> bool {
        self.size == size && self.color == color && self.shape == shape
    }

    /// Whether `desc` refers to this group's kind.
    pub fn matches(&self, desc: &Desc) -> bool {
        desc.size.is_none_or(|s| s == self.size)
            && desc.color == self.color
            && desc.shape == self.shape
    }
}

/// Groups of identical objects in first-appearance order.
pub(crate) fn groups(scene: &Scene) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for o in &scene.objects {
        match out
            .iter_mut()
            .find(|g| g.same_kind(o.size, o.color, o.shape))
        {
            Some(g) => g.count += 1,
            None => out.push(Group {
                count: 1,
                size: o.size,
                color: o.color,
                shape: o.shape,
            }),
        }
    }
    out
}

/// One spatial claim: "The {subject} {verb} {relation} the {object}."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelationClaim {
    pub subject: Desc,
    pub relation: Relation,
    pub object: Desc,
    pub verb: usize,
}

/// Structured caption: what is claimed plus which templates phrase it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaptionPlan {
    pub groups: Vec<Group>,
    pub opener: usize,
    /// `(template, claimed total)` of the optional "N objects in total" sentence.
    pub total: Option<(usize, usize)>,
    pub relations: Vec<RelationClaim>,
}

const OPENERS: usize = 5;
const TOTALS: usize = 3;
const VERBS: [&str; 4] = ["is", "is located", "sits", "appears"];

impl CaptionPlan {
    /// Number of objects the listing claims.
    pub fn listed_total(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    pub fn render(&self) -> String {
        let items: Vec<String> = self
            .groups
            .iter()
            .map(|g| counted_phrase(g.count, g.size, g.color, g.shape))
            .collect();
        let list = join_list(&items);
        let plural = self.listed_total() > 1;
        let first_plural = self.groups.first().is_some_and(|g| g.count > 1);
        let mut sentences = vec![match self.opener {
            0 => format!("The image shows {list}."),
            1 => format!("This picture contains {list}."),
            2 => format!(
                "In the image there {} {list}.",
                if first_plural { "are" } else { "is" }
            ),
            3 => format!("We can see {list}."),
            _ => format!(
                "{} {} shown.",
                capitalise(&list),
                if plural { "are" } else { "is" }
            ),
        }];
        if let Some((template, n)) = self.total {
            sentences.push(match template {
                0 => format!("There are {} objects in total.", number_word(n)),
                1 => format!("Altogether there are {} shapes.", number_word(n)),
                _ => format!("In total, {} shapes are visible.", number_word(n)),
            });
        }
        for claim in &self.relations {
            sentences.push(format!(
                "The {} {} {} the {}.",
                claim.subject.text(),
                VERBS[claim.verb],
                claim.relation.phrase(),
                claim.object.text()
            ));
        }
        sentences.join(" ")
    }
}

/// Samples a faithful caption plan: every object listed with size, colour and shape (identical
/// objects merged into a counted group), an optional total, and up to two spatial relations.
pub(crate) fn plan_caption<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> CaptionPlan {
    let mut gs = groups(scene);
    gs.shuffle(rng);
    let n = scene.objects.len();
    let total = (n >= 2 && rng.random_bool(0.5)).then(|| (rng.random_range(0..TOTALS), n));
    let mut pairs = decided_pairs(scene);
    pairs.shuffle(rng);
    let mut relations: Vec<RelationClaim> = Vec::new();
    let wanted = rng.random_range(1..=2);
    for (subject, relation, object) in pairs {
        if relations.len() == wanted {
            break;
        }
        // One claim per unordered pair: a second one about the same pair adds little.
        let seen = relations.iter().any(|c| {
            (c.subject == subject && c.object == object)
                || (c.subject == object && c.object == subject)
        });
        if !seen {
            relations.push(RelationClaim {
                subject,
                relation,
                object,
                verb: rng.random_range(0..VERBS.len()),
            });
        }
    }
    CaptionPlan {
        groups: gs,
        opener: rng.random_range(0..OPENERS),
        total,
        relations,
    }
}

/// A faithful caption of the scene in varied phrasing.
pub fn caption<R: Rng + ?Sized>(scene: &Scene, rng: &mut R) -> String {
    plan_caption(scene, rng).render()
}

/// Phrasings of the open-ended description request.
pub const DESCRIBE_PROMPTS: [&str; 4] = [
    "Describe the image.",
    "Describe this image in a few sentences.",
    "What do you see in this picture?",
    "Give a short description of the scene.",
];

pub(crate) fn describe_prompt<R: Rng + ?Sized>(rng: &mut R) -> String {
    (*DESCRIBE_PROMPTS.choose(rng).expect("non-empty")).to_string()
}
