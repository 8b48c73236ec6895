//! A model directory's own chat template (Jinja), rendered as transformers'
//! `apply_chat_template` renders it.
//!
//! The promise: for a checkpoint that ships a template (`chat_template.jinja`, else
//! `chat_template.json`, else `chat_template` in `tokenizer_config.json`: the order
//! transformers' processor uses), [`ChatTemplate::prompt_ids`] gives the token ids transformers
//! gives for `apply_chat_template(messages, add_generation_prompt=True, tokenize=True)` on one
//! user turn holding an image and a question. Rendering uses Jinja with transformers'
//! settings (`trim_blocks`, `lstrip_blocks`, loop controls) and its helpers
//! (`raise_exception`, `strftime_now`, `bos_token`, `eos_token`); the rendered text is encoded
//! without adding special tokens, since the template writes them itself.
//!
//! The synthetic world's checkpoints have no template; [`crate::chat`] builds their ids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};

use crate::tokenizer::JudgeTokenizer;

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ChatTemplateError {
    #[error("cannot read the chat template in {}: {message}", path.display())]
    #[diagnostic(
        code(judgeflow::chat_template::read),
        help(
            "the template is a string (or a list of {{name, template}} with one named \"default\") \
             under `chat_template`"
        )
    )]
    Read { path: PathBuf, message: String },

    #[error("the chat template in {} does not render: {message}", path.display())]
    #[diagnostic(
        code(judgeflow::chat_template::render),
        help(
            "judgeflow renders Jinja as transformers does (trim_blocks, lstrip_blocks, \
             raise_exception, strftime_now); Python string methods inside templates are not \
             supported"
        )
    )]
    Render { path: PathBuf, message: String },

    #[error("the chat template of {} rendered text that does not tokenize: {message}", path.display())]
    #[diagnostic(code(judgeflow::chat_template::encode))]
    Encode { path: PathBuf, message: String },
}

/// A loaded chat template and the special-token strings it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    /// The file it came from.
    pub source: PathBuf,
    text: String,
    bos_token: String,
    eos_token: String,
}

/// A token entry of `tokenizer_config.json`: a string or `{"content": ...}`.
fn token_string(value: &serde_json::Value) -> Option<String> {
    value
        .as_str()
        .or_else(|| value["content"].as_str())
        .map(String::from)
}

/// The template text out of a `chat_template` value (a string, or a list of named ones).
fn template_text(value: &serde_json::Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        return Some(text.to_string());
    }
    value.as_array()?.iter().find_map(|entry| {
        (entry["name"].as_str() == Some("default"))
            .then(|| entry["template"].as_str().map(String::from))
            .flatten()
    })
}

fn to_jinja(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(to_jinja).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_jinja(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Today's UTC date formatted with the strftime codes chat templates use (`%d %b %Y`, ...).
fn strftime_now(format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

impl ChatTemplate {
    /// The template of a model directory, or `None` when it ships none.
    pub fn from_dir(dir: &Path) -> Result<Option<Self>, ChatTemplateError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| ChatTemplateError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        };
        let json = |path: &Path| -> Result<serde_json::Value, ChatTemplateError> {
            serde_json::from_str(&read(path)?).map_err(|e| ChatTemplateError::Read {
                path: path.to_path_buf(),
                message: format!("invalid JSON: {e}"),
            })
        };
        let tokenizer_config = dir.join("tokenizer_config.json");
        let settings = if tokenizer_config.is_file() {
            json(&tokenizer_config)?
        } else {
            serde_json::Value::Null
        };
        let jinja = dir.join("chat_template.jinja");
        let processor = dir.join("chat_template.json");
        let (source, text) = if jinja.is_file() {
            let text = read(&jinja)?;
            (jinja, text)
        } else if processor.is_file() {
            let text = template_text(&json(&processor)?["chat_template"]).ok_or_else(|| {
                ChatTemplateError::Read {
                    path: processor.clone(),
                    message: "no `chat_template` string".into(),
                }
            })?;
            (processor, text)
        } else if !settings["chat_template"].is_null() {
            let text = template_text(&settings["chat_template"]).ok_or_else(|| {
                ChatTemplateError::Read {
                    path: tokenizer_config.clone(),
                    message: "`chat_template` is neither a string nor a list holding a \"default\""
                        .into(),
                }
            })?;
            (tokenizer_config.clone(), text)
        } else {
            return Ok(None);
        };
        let template = Self {
            source,
            text,
            bos_token: token_string(&settings["bos_token"])
                .unwrap_or_else(|| crate::tokenizer::BEGIN_OF_TEXT.into()),
            eos_token: token_string(&settings["eos_token"])
                .unwrap_or_else(|| crate::tokenizer::EOT_ID.into()),
        };
        // Refuse a template that cannot render a judge prompt now, not at the first row.
        template.render(&Self::user_turn("?"), true)?;
        Ok(Some(template))
    }

    /// The messages of one user turn: an image, then `question`.
    pub fn user_turn(question: &str) -> serde_json::Value {
        serde_json::json!([{
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": question}],
        }])
    }

    /// Renders `messages` (transformers' list of `{role, content}`).
    pub fn render(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        let fail = |e: JinjaError| ChatTemplateError::Render {
            path: self.source.clone(),
            message: match e.detail() {
                Some(detail) => format!("{}: {detail}", e.kind()),
                None => e.kind().to_string(),
            },
        };
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default delimiters"),
        );
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, JinjaError> {
                Err(JinjaError::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |format: String| strftime_now(&format));
        let template = env.template_from_str(&self.text).map_err(fail)?;
        let context = BTreeMap::from([
            ("messages", to_jinja(messages)),
            ("add_generation_prompt", Value::from(add_generation_prompt)),
            ("bos_token", Value::from(self.bos_token.as_str())),
            ("eos_token", Value::from(self.eos_token.as_str())),
        ]);
        template.render(context).map_err(fail)
    }

    /// Ids of the generation prompt for one user turn with an image and `question`.
    pub fn prompt_ids(
        &self,
        tokenizer: &JudgeTokenizer,
        question: &str,
    ) -> Result<Vec<u32>, ChatTemplateError> {
        let text = self.render(&Self::user_turn(question), true)?;
        tokenizer
            .encode(&text)
            .map_err(|e| ChatTemplateError::Encode {
                path: self.source.clone(),
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::strftime_now;

    #[test]
    fn strftime_now_formats_todays_date() {
        let date = strftime_now("%d %b %Y");
        let parts: Vec<&str> = date.split(' ').collect();
        assert_eq!(parts.len(), 3, "{date}");
        assert_eq!(parts[0].len(), 2);
        assert_eq!(parts[1].len(), 3);
        assert!(parts[2].parse::<i64>().unwrap() >= 2024);
        assert_eq!(strftime_now("100%%"), "100%");
    }
}
