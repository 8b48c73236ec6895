//! Independent oracle: reads captions, questions and justifications as plain text and checks
//! them against the scene graph with its own geometry, sharing no logic with the generators.

#![allow(dead_code)] // each test binary uses a different subset of the oracle

use std::collections::BTreeMap;

use judgeflow_world::{Color, Object, Scene, Shape, Size};

pub type Kind = (Size, Color, Shape);

pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub fn number(word: &str) -> Option<usize> {
    const NUMBERS: [&str; 14] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen",
    ];
    match word {
        "a" | "an" => Some(1),
        "no" => Some(0),
        _ => word
            .parse()
            .ok()
            .or_else(|| NUMBERS.iter().position(|n| *n == word)),
    }
}

pub fn size(word: &str) -> Option<Size> {
    Size::ALL.into_iter().find(|s| s.name() == word)
}

pub fn color(word: &str) -> Option<Color> {
    Color::ALL.into_iter().find(|c| c.name() == word)
}

/// Singular or plural shape noun.
pub fn shape(word: &str) -> Option<Shape> {
    Shape::ALL
        .into_iter()
        .find(|s| s.name() == word || s.plural() == word)
}

/// Attribute constraints named by a run of words; other words are ignored.
#[derive(Debug, Default, Clone, Copy)]
pub struct Constraint {
    pub size: Option<Size>,
    pub color: Option<Color>,
    pub shape: Option<Shape>,
}

impl Constraint {
    pub fn parse(ws: &[String]) -> Constraint {
        let mut c = Constraint::default();
        for w in ws {
            c.size = c.size.or(size(w));
            c.color = c.color.or(color(w));
            c.shape = c.shape.or(shape(w));
        }
        c
    }

    pub fn matches(&self, o: &Object) -> bool {
        self.size.is_none_or(|s| s == o.size)
            && self.color.is_none_or(|c| c == o.color)
            && self.shape.is_none_or(|s| s == o.shape)
    }

    pub fn select<'a>(&self, scene: &'a Scene) -> Vec<&'a Object> {
        scene.objects.iter().filter(|o| self.matches(o)).collect()
    }

    /// The single object this describes, if exactly one matches.
    pub fn unique<'a>(&self, scene: &'a Scene) -> Result<&'a Object, String> {
        match self.select(scene).as_slice() {
            [one] => Ok(one),
            many => Err(format!("{self:?} matches {} objects", many.len())),
        }
    }
}

/// Relation rule recomputed from the documented definition: centre offset beyond 1/8 side.
pub fn holds(scene: &Scene, phrase: &str, a: &Object, b: &Object) -> bool {
    let m = (scene.width.max(scene.height) / 8) as i64;
    let dx = b.x as i64 - a.x as i64;
    let dy = b.y as i64 - a.y as i64;
    match phrase {
        "left" | "to the left of" => dx > m,
        "right" | "to the right of" => -dx > m,
        "above" => dy > m,
        "below" => -dy > m,
        other => panic!("unknown relation {other}"),
    }
}

pub fn scene_kinds(scene: &Scene) -> BTreeMap<Kind, usize> {
    let mut m = BTreeMap::new();
    for o in &scene.objects {
        *m.entry((o.size, o.color, o.shape)).or_insert(0) += 1;
    }
    m
}

/// The counted "<n> <size> <colour> <shape>" phrases of a caption, summed per kind.
pub fn claimed_kinds(caption: &str) -> BTreeMap<Kind, usize> {
    let ws = words(caption);
    let mut claimed: BTreeMap<Kind, usize> = BTreeMap::new();
    for win in ws.windows(4) {
        if let (Some(n), Some(sz), Some(c), Some(sh)) = (
            number(&win[0]),
            size(&win[1]),
            color(&win[2]),
            shape(&win[3]),
        ) {
            *claimed.entry((sz, c, sh)).or_insert(0) += n;
        }
    }
    claimed
}

const RELATIONS: [&str; 4] = [
    " to the left of ",
    " to the right of ",
    " above ",
    " below ",
];

/// Checks every claim a caption makes: the counted "<n> <size> <colour> <shape>" phrases must
/// list exactly the scene's objects, "<n> objects/shapes" must be the total, and each
/// "The X ... <relation> the Y." sentence must name unique objects in that relation.
pub fn check_caption(scene: &Scene, caption: &str) -> Result<(), String> {
    let ws = words(caption);
    let claimed = claimed_kinds(caption);
    if claimed.is_empty() {
        return Err("no objects listed".into());
    }
    if claimed != scene_kinds(scene) {
        return Err(format!(
            "listed {claimed:?}, scene has {:?}",
            scene_kinds(scene)
        ));
    }
    for win in ws.windows(2) {
        let total = (win[1] == "objects" || win[1] == "shapes")
            .then(|| number(&win[0]))
            .flatten();
        if let Some(n) = total.filter(|&n| n != scene.objects.len()) {
            return Err(format!("total {n} but {} objects", scene.objects.len()));
        }
    }
    for sentence in caption.split(". ") {
        let sentence = sentence.trim_end_matches('.');
        let Some(rest) = sentence.strip_prefix("The ") else {
            continue;
        };
        let Some(phrase) = RELATIONS.iter().find(|p| rest.contains(*p)) else {
            continue;
        };
        let (subject, object) = rest.split_once(phrase).expect("phrase found");
        let object = object.strip_prefix("the ").ok_or("object lacks 'the'")?;
        let a = Constraint::parse(&words(subject)).unique(scene)?;
        let b = Constraint::parse(&words(object)).unique(scene)?;
        if !holds(scene, phrase.trim(), a, b) {
            return Err(format!("relation false: {sentence}"));
        }
    }
    Ok(())
}

/// Words of `question` strictly between the first `from` and the following `to`.
fn between(ws: &[String], from: &str, to: &[&str]) -> Vec<String> {
    let start = ws.iter().position(|w| w == from).expect("marker present") + 1;
    ws[start..]
        .iter()
        .take_while(|w| !to.contains(&w.as_str()))
        .cloned()
        .collect()
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Gold answer of a closed question, recomputed from its text and the scene graph.
pub fn oracle(scene: &Scene, question: &str) -> Result<String, String> {
    let ws = words(question);
    let q = question;
    if q.starts_with("How many ") {
        let c = Constraint::parse(&between(&ws, "many", &["are", "can"]));
        Ok(c.select(scene).len().to_string())
    } else if q.contains(" colour ") {
        let noun = if q.starts_with("What") {
            between(&ws, "the", &[])
        } else {
            between(&ws, "the", &["have"])
        };
        Ok(Constraint::parse(&noun)
            .unique(scene)?
            .color
            .name()
            .to_string())
    } else if q.contains(" shape is ") {
        let o = Constraint::parse(&between(&ws, "the", &["object"])).unique(scene)?;
        Ok(o.shape.name().to_string())
    } else if q.starts_with("Are there more ") {
        let first = Constraint::parse(&between(&ws, "more", &["than"]));
        let second = Constraint::parse(&between(&ws, "than", &[]));
        Ok(yes_no(
            first.select(scene).len() > second.select(scene).len(),
        ))
    } else if q.contains(" or ") {
        let rest = q.strip_prefix("Is the ").ok_or("spatial question form")?;
        let (subject, tail) = rest
            .split_once(" to the left or to the right of the ")
            .map(|(s, t)| (s, (t, ["left", "right"])))
            .or_else(|| {
                rest.split_once(" above or below the ")
                    .map(|(s, t)| (s, (t, ["above", "below"])))
            })
            .ok_or("unknown either-or question")?;
        let (object, options) = tail;
        let a = Constraint::parse(&words(subject)).unique(scene)?;
        let b = Constraint::parse(&words(object)).unique(scene)?;
        let true_options: Vec<&str> = options
            .into_iter()
            .filter(|o| holds(scene, o, a, b))
            .collect();
        match true_options.as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(format!("ambiguous side question: {q}")),
        }
    } else if let Some(rest) = q.strip_prefix("Is the ") {
        let phrase = RELATIONS
            .iter()
            .find(|p| rest.contains(*p))
            .ok_or("no relation")?;
        let (subject, object) = rest.split_once(phrase).expect("found");
        let a = Constraint::parse(&words(subject)).unique(scene)?;
        let b = Constraint::parse(&words(object)).unique(scene)?;
        Ok(yes_no(holds(scene, phrase.trim(), a, b)))
    } else if q.starts_with("Is there ") || q.starts_with("Does ") || q.starts_with("Can you see ")
    {
        let thing = ws
            .iter()
            .position(|w| w == "a" || w == "an")
            .map(|i| ws[i + 1..].to_vec())
            .ok_or("no article")?;
        let c = Constraint::parse(&thing);
        Ok(yes_no(!c.select(scene).is_empty()))
    } else {
        Err(format!("unrecognised question: {q}"))
    }
}

/// The final answer of a justified reasoning answer ("..., so the answer is 3.").
pub fn final_answer(text: &str) -> &str {
    text.rsplit_once("the answer is ")
        .expect("reasoning answers end with 'the answer is X.'")
        .1
        .trim_end_matches('.')
}
