//! Typed operator parameters: an operator declares its parameters once, as a struct written
//! with [`operator_params!`](crate::operator_params), and that one declaration yields both the
//! [`ParamSpec`]s the planner validates pipelines against (name, type, range, default and doc,
//! in declaration order) and the struct the operator reads, parsed from the validated
//! [`Params`] before it runs ([`crate::TypedOperator`]). A misspelled parameter is then a
//! compile error, not a panic at run time.
//!
//! Choice parameters are Rust enums written with [`choice_enum!`](crate::choice_enum).
//!
//! ```
//! use judgeflow_engine::{OperatorParams, ParamKind, choice_enum, operator_params};
//!
//! choice_enum! {
//!     /// What the filter keeps.
//!     pub enum Keep {
//!         Agree = "agree",
//!         All = "all",
//!     }
//! }
//!
//! operator_params! {
//!     /// A filter's parameters.
//!     pub struct FilterParams {
//!         /// `all` keeps every parsed judgement
//!         keep: Keep = Keep::Agree,
//!         /// keep at most this many per pair
//!         /// (0: all)
//!         per_order: usize [0..=1024] = 1,
//!         /// the share that must agree
//!         min_agree: f64 [0.0..=1.0] = 0.0,
//!         /// the data file
//!         path: String,
//!     }
//! }
//!
//! let specs = FilterParams::specs();
//! let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
//! assert_eq!(names, ["keep", "per_order", "min_agree", "path"]);
//! assert_eq!(specs[1].kind, ParamKind::Int { min: 0, max: 1024 });
//! assert_eq!(specs[1].doc, "keep at most this many per pair (0: all)");
//! assert!(specs[3].default.is_none(), "no default: required");
//! ```
//!
//! A group of parameters several operators share is a params struct too, flattened into each
//! operator's with `..name: Group { field = value, .. }`, which also overrides the defaults the
//! group declares (checked at compile time: field names and types):
//!
//! ```
//! use judgeflow_engine::{OperatorParams, Value, operator_params};
//!
//! operator_params! {
//!     pub struct Sampling {
//!         /// softmax temperature
//!         temperature: f64 [0.0..=5.0] = 1.0,
//!         /// nucleus mass
//!         top_p: f64 [0.0..=1.0] = 0.9,
//!     }
//! }
//! operator_params! {
//!     pub struct Sample {
//!         /// answers per prompt
//!         n: usize [1..=1024] = 16,
//!         ..sampling: Sampling { temperature = 0.6 },
//!     }
//! }
//! let specs = Sample::specs();
//! assert_eq!(specs[1].name, "temperature");
//! assert_eq!(specs[1].default, Some(Value::Float(0.6)));
//! ```

use std::fmt;
use std::ops::RangeInclusive;

use crate::op::{ParamKind, ParamSpec};
use crate::value::{Params, Value};

/// A struct of parameters, declared with [`operator_params!`](crate::operator_params).
pub trait OperatorParams: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// Every parameter's default (`None`: required), in a struct of the same shape; a
    /// flattened group's defaults are a field of its parent's.
    type Defaults;
    /// The defaults as declared.
    fn declared_defaults() -> Self::Defaults;
    /// The parameters, in declaration order, with `defaults`.
    fn specs_with(defaults: &Self::Defaults) -> Vec<ParamSpec>;
    /// The parameters, in declaration order, with their declared defaults.
    fn specs() -> Vec<ParamSpec> {
        Self::specs_with(&Self::declared_defaults())
    }
    /// Reads validated parameters (defaults filled in) into the struct.
    fn from_params(params: &Params) -> Result<Self, ParamError>;
}

/// No parameters.
impl OperatorParams for () {
    type Defaults = ();
    fn declared_defaults() {}
    fn specs_with(_: &()) -> Vec<ParamSpec> {
        Vec::new()
    }
    fn from_params(_: &Params) -> Result<(), ParamError> {
        Ok(())
    }
}

/// A parameter set that does not fit its declaration: never after validation, so a programming
/// error (parameters built by hand, or read back from a manifest of another version).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameter `{name}` {detail}")]
pub struct ParamError {
    /// The parameter.
    pub name: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

/// A Rust type a parameter can have.
pub trait ParamType: Sized + Clone + fmt::Debug + Send + Sync + 'static {
    /// The value as it is written in a pipeline (and hashed into cache keys).
    fn to_value(&self) -> Value;
    /// The value from a validated parameter; `None` if it is of another type.
    fn from_value(value: &Value) -> Option<Self>;
}

/// A parameter type declared without a range: `flag: bool = true`.
pub trait Unranged: ParamType {
    /// Its kind.
    const KIND: ParamKind;
}

/// A parameter type declared with a range in brackets: `steps: usize [0..=1000] = 0`.
pub trait Ranged: ParamType {
    /// What the brackets hold.
    type Range;
    /// Its kind, given the range.
    fn kind(range: Self::Range) -> ParamKind;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ParamType for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).expect("an integer parameter fits in i64"))
            }
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::Int(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
        }
        impl Ranged for $t {
            type Range = RangeInclusive<i64>;
            fn kind(range: RangeInclusive<i64>) -> ParamKind {
                ParamKind::Int { min: *range.start(), max: *range.end() }
            }
        }
    )*};
}
int_param!(i64, u64, u32, usize);

impl ParamType for f64 {
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl Ranged for f64 {
    type Range = RangeInclusive<f64>;
    fn kind(range: RangeInclusive<f64>) -> ParamKind {
        ParamKind::Float {
            min: *range.start(),
            max: *range.end(),
        }
    }
}

impl ParamType for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl Unranged for bool {
    const KIND: ParamKind = ParamKind::Bool;
}

impl ParamType for String {
    fn to_value(&self) -> Value {
        Value::Str(self.clone())
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl Unranged for String {
    const KIND: ParamKind = ParamKind::Str;
}

/// A string restricted to a list of names, for when no enum is wanted (a family's `kind`):
/// `kind: String [&["jsonl"]]`.
impl Ranged for String {
    type Range = &'static [&'static str];
    fn kind(choices: &'static [&'static str]) -> ParamKind {
        ParamKind::Choice(choices)
    }
}

impl ParamType for Vec<String> {
    fn to_value(&self) -> Value {
        Value::List(self.iter().map(|s| Value::Str(s.clone())).collect())
    }
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::List(items) => items
                .iter()
                .map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

impl Unranged for Vec<String> {
    const KIND: ParamKind = ParamKind::StrList;
}

/// What a default may be written as for a parameter of type `T`: a `T`, or for strings and
/// string lists, borrowed strings.
pub trait IntoDefault<T> {
    /// The default as a `T`.
    fn into_default(self) -> T;
}

impl<T> IntoDefault<T> for T {
    fn into_default(self) -> T {
        self
    }
}

impl IntoDefault<String> for &str {
    fn into_default(self) -> String {
        self.to_string()
    }
}

impl IntoDefault<Vec<String>> for Vec<&str> {
    fn into_default(self) -> Vec<String> {
        self.into_iter().map(str::to_string).collect()
    }
}

impl IntoDefault<Vec<String>> for &[&str] {
    fn into_default(self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }
}

/// A `choice_enum!` name that is not one of its choices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{given}` is not one of {}", crate::op::quote_list(.choices))]
pub struct UnknownChoice {
    /// What was given.
    pub given: String,
    /// What is allowed.
    pub choices: &'static [&'static str],
}

/// Reads one declared parameter (the code `operator_params!` writes).
#[doc(hidden)]
pub fn read<T: ParamType>(params: &Params, name: &'static str) -> Result<T, ParamError> {
    match params.get(name) {
        None => Err(ParamError {
            name,
            detail: "is not set".into(),
        }),
        Some(v) => T::from_value(v).ok_or_else(|| ParamError {
            name,
            detail: format!("is {}, which does not fit its declared type", v.type_name()),
        }),
    }
}

/// Length of a doc comment's lines joined as [`doc_join`] joins them.
#[doc(hidden)]
pub const fn doc_len(lines: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].as_bytes().trim_ascii();
        if !t.is_empty() {
            if n > 0 {
                n += 1;
            }
            n += t.len();
        }
        i += 1;
    }
    n
}

/// A doc comment's lines, each trimmed, joined with single spaces (a parameter's one-line doc).
#[doc(hidden)]
pub const fn doc_join<const N: usize>(lines: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].as_bytes().trim_ascii();
        if !t.is_empty() {
            if at > 0 {
                out[at] = b' ';
                at += 1;
            }
            let mut j = 0;
            while j < t.len() {
                out[at] = t[j];
                at += 1;
                j += 1;
            }
        }
        i += 1;
    }
    out
}

/// Declares an operator's parameters as a struct; see [the module](crate::params).
///
/// Each field is `/// doc` lines (joined into the parameter's one-line doc), then
/// `name: Type`, then for integers and floats the range in brackets (`[1..=64]`), then
/// optionally `= default` (without one the parameter is required). Types: `bool`, `i64`,
/// `u64`, `u32`, `usize`, `f64`, `String`, `Vec<String>` and [`choice_enum!`](crate::choice_enum)
/// enums. Other attributes on a field (`#[allow(dead_code)]`) are kept on it.
/// `..name: Group { a = 1, b.c = 2 }` flattens another params struct in place, overriding
/// its defaults. The struct derives `Clone` and `Debug` and implements
/// [`OperatorParams`].
#[macro_export]
macro_rules! operator_params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        $crate::operator_params!(@munch [$(#[$meta])*] $vis $name [] $($body)*);
    };

    // A flattened group.
    (@munch $metas:tt $vis:vis $name:ident [$($acc:tt)*]
        $(#[$($attr:tt)*])*
        .. $field:ident : $gty:ty $({ $($ovr:tt)* })? $(, $($rest:tt)*)?
    ) => {
        $crate::operator_params!(@munch $metas $vis $name [$($acc)*
            [flat $field ($gty) (<$gty as $crate::OperatorParams>::Defaults)
                [$(#[$($attr)*])*] { ($gty) ($($($ovr)*)?) }]
        ] $($($rest)*)?);
    };
    // A parameter.
    (@munch $metas:tt $vis:vis $name:ident [$($acc:tt)*]
        $(#[$($attr:tt)*])*
        $field:ident : $ty:ty $([$range:expr])? $(= $default:expr)? $(, $($rest:tt)*)?
    ) => {
        $crate::operator_params!(@munch $metas $vis $name [$($acc)*
            [plain $field ($ty) (::core::option::Option<$ty>)
                [$(#[$($attr)*])*] { ($ty) ($($range)?) ($($default)?) }]
        ] $($($rest)*)?);
    };
    (@munch [$(#[$meta:meta])*] $vis:vis $name:ident
        [$([$tag:ident $field:ident ($fty:ty) ($dty:ty) [$(#[$($attr:tt)*])*] $data:tt])*]
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis struct $name {
            $( $(#[$($attr)*])* $vis $field: $fty, )*
        }
        const _: () = {
            pub struct Defaults {
                $( pub $field: $dty, )*
            }
            impl $crate::OperatorParams for $name {
                type Defaults = Defaults;
                fn declared_defaults() -> Defaults {
                    Defaults { $( $field: $crate::operator_params!(@default $tag $data), )* }
                }
                fn specs_with(defaults: &Defaults) -> ::std::vec::Vec<$crate::ParamSpec> {
                    #[allow(unused_mut)]
                    let mut specs = ::std::vec::Vec::new();
                    $( $crate::operator_params!(
                        @spec specs defaults $tag $field [$(#[$($attr)*])*] $data
                    ); )*
                    specs
                }
                fn from_params(
                    params: &$crate::Params,
                ) -> ::core::result::Result<Self, $crate::params::ParamError> {
                    ::core::result::Result::Ok($name {
                        $( $field: $crate::operator_params!(@read params $tag $field $data)?, )*
                    })
                }
            }
        };
    };

    (@default plain { ($ty:ty) $range:tt () }) => { ::core::option::Option::None };
    (@default plain { ($ty:ty) $range:tt ($default:expr) }) => {
        ::core::option::Option::Some(
            <_ as $crate::params::IntoDefault<$ty>>::into_default($default),
        )
    };
    (@default flat { ($gty:ty) ($($($path:ident).+ = $value:expr),* $(,)?) }) => {{
        #[allow(unused_mut)]
        let mut d = <$gty as $crate::OperatorParams>::declared_defaults();
        $( d.$($path).+ = ::core::option::Option::Some(
            $crate::params::IntoDefault::into_default($value),
        ); )*
        d
    }};

    (@spec $specs:ident $d:ident plain $field:ident [$($attrs:tt)*]
        { ($ty:ty) ($($range:expr)?) $default:tt }
    ) => {
        $specs.push($crate::ParamSpec {
            name: ::core::stringify!($field),
            kind: $crate::operator_params!(@kind $ty; $($range)?),
            default: $d.$field.as_ref().map($crate::params::ParamType::to_value),
            doc: $crate::operator_params!(@docs [] $($attrs)*),
        })
    };
    (@spec $specs:ident $d:ident flat $field:ident $attrs:tt { ($gty:ty) $ovr:tt }) => {
        $specs.extend(<$gty as $crate::OperatorParams>::specs_with(&$d.$field))
    };

    (@kind $ty:ty;) => { <$ty as $crate::params::Unranged>::KIND };
    (@kind $ty:ty; $range:expr) => { <$ty as $crate::params::Ranged>::kind($range) };

    (@read $p:ident plain $field:ident { ($ty:ty) $range:tt $default:tt }) => {
        $crate::params::read::<$ty>($p, ::core::stringify!($field))
    };
    (@read $p:ident flat $field:ident { ($gty:ty) $ovr:tt }) => {
        <$gty as $crate::OperatorParams>::from_params($p)
    };

    (@docs [$($d:literal)*]) => {{
        const LINES: &[&str] = &[$($d),*];
        const _: () = ::core::assert!(
            $crate::params::doc_len(LINES) > 0,
            "every parameter needs a `///` doc: it is what `judgeflow ops` shows"
        );
        const BYTES: [u8; $crate::params::doc_len(LINES)] = $crate::params::doc_join(LINES);
        const DOC: &str = match ::core::str::from_utf8(&BYTES) {
            ::core::result::Result::Ok(s) => s,
            ::core::result::Result::Err(_) => ::core::panic!("a doc comment that is not UTF-8"),
        };
        DOC
    }};
    (@docs [$($d:literal)*] #[doc = $line:literal] $($rest:tt)*) => {
        $crate::operator_params!(@docs [$($d)* $line] $($rest)*)
    };
    (@docs [$($d:literal)*] #[$($other:tt)*] $($rest:tt)*) => {
        $crate::operator_params!(@docs [$($d)*] $($rest)*)
    };
}

/// Declares an enum of named choices for a choice parameter: `Variant = "name"` each. It
/// derives `Clone, Copy, Debug, PartialEq, Eq, Hash` and gets `CHOICES` (the names, in order),
/// `as_str`, `FromStr` and `Display`, and is a parameter type whose kind is
/// [`ParamKind::Choice`].
#[macro_export]
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }
        impl $name {
            /// The names a pipeline may write, in declaration order.
            $vis const CHOICES: &'static [&'static str] = &[$($text),+];
            /// The name a pipeline writes for this value.
            $vis const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }
        impl ::core::str::FromStr for $name {
            type Err = $crate::params::UnknownChoice;
            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                match s {
                    $( $text => ::core::result::Result::Ok($name::$variant), )+
                    _ => ::core::result::Result::Err($crate::params::UnknownChoice {
                        given: s.to_string(),
                        choices: Self::CHOICES,
                    }),
                }
            }
        }
        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl $crate::params::ParamType for $name {
            fn to_value(&self) -> $crate::Value {
                $crate::Value::Str(self.as_str().to_string())
            }
            fn from_value(value: &$crate::Value) -> ::core::option::Option<Self> {
                match value {
                    $crate::Value::Str(s) => s.parse().ok(),
                    _ => ::core::option::Option::None,
                }
            }
        }
        impl $crate::params::Unranged for $name {
            const KIND: $crate::ParamKind = $crate::ParamKind::Choice(Self::CHOICES);
        }
    };
}
