//! Graph descriptions: [`GraphSpec`], written as a TOML document or as a gst-launch-like
//! pipeline string, and turned into a [`Graph`](crate::Graph) by
//! [`filters::build`](crate::filters::build).
//!
//! # Pipeline strings
//!
//! ```text
//! testsrc frames=1000 size=4096 ! invert ! nullsink
//! testsrc ! tee name=t ! checksum ! nullsink  t. ! copy ! filesink location=out.bin
//! ```
//!
//! * Elements are separated by `!`, which connects the left element's next free output pin
//!   to the right element's next free input pin.
//! * An element is a filter type followed by `key=value` settings:
//!   `name=N` names the instance (default: the type, numbered `type0`, `type1`, … when the
//!   type occurs more than once), `mode=kernel|user` overrides the filter's mode,
//!   `PIN.FIELD=VALUE` overrides a pin's framing (fields as in [`FramingOverride`]), and every
//!   other key is a property of the filter type. A key given twice is an error. Values may
//!   be quoted (`"a b"`), and a quoted value is text even when it reads as a number
//!   (`location="123"` names the file 123); integers accept `0x` hex and the binary suffixes
//!   `k`/`K` (×1024) and `M` (×1024²).
//! * `NAME.` refers to an instance declared elsewhere (its next free pin), `NAME.PIN` to a
//!   given pin. A reference at the start of a chain continues from that filter, which is how
//!   tee branches are written; a reference after `!` connects into that filter.
//! * A new chain starts at any element or reference not preceded by `!`; a reference that
//!   starts a chain must be followed by `!` (alone, it would link to nothing).
//! * Named pins (`t.out0`) are resolved before bare references (`t.`), so a bare reference
//!   takes the pins left over, whatever the order they are written in. A name that reads both
//!   as an instance and as another instance's pin is refused as ambiguous.
//!
//! # TOML documents
//!
//! ```toml
//! [[filter]]
//! name = "src"          # instance name
//! type = "testsrc"      # filter type
//! frames = 1000         # properties of the type
//! size = 4096
//! mode = "kernel"       # optional: kernel | user
//! [filter.framing.out]  # optional framing override of pin "out"
//! frames = 8
//! alignment = 64
//!
//! [[filter]]
//! name = "sink"
//! type = "nullsink"
//!
//! [[connect]]
//! from = "src.out"      # "filter.pin", or "filter" for its next free pin
//! to = "sink"
//! ```
//!
//! A document may instead (or in addition) hold `pipeline = "…"`, parsed as above.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::model::FilterMode;

/// A whole graph description.
///
/// ```
/// use ks_graph::runtime::spec::GraphSpec;
/// let spec: GraphSpec = serde_json::from_str(
///     r#"{ "filter": [ { "name": "src", "type": "testsrc", "frames": 2 },
///                      { "name": "sink", "type": "nullsink" } ],
///          "connect": [ { "from": "src.out", "to": "sink" } ] }"#,
/// )?;
/// assert_eq!(spec.filters[0].kind, "testsrc");
/// assert_eq!(ks_graph::filters::build(spec)?.graph.filter_count(), 2);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// A pipeline string whose elements and links are added before `filter` / `connect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Filter instances, in order.
    #[serde(default, rename = "filter")]
    pub filters: Vec<FilterSpec>,
    /// Connections, in order.
    #[serde(default, rename = "connect")]
    pub connections: Vec<ConnectionSpec>,
}

/// One filter instance.
///
/// Deserialized from a table whose keys other than `name`, `type`, `mode` and `framing` are
/// the properties. Each value is read in place (not buffered, as `#[serde(flatten)]` would),
/// so a format that tracks positions, like TOML, reports a wrongly typed value at its own
/// line and column.
///
/// ```
/// use ks_graph::runtime::spec::{GraphSpec, ModeSpec, PropValue};
/// let spec = GraphSpec::parse_pipeline("testsrc name=cam frames=8 mode=user out.frames=2")?;
/// let f = &spec.filters[0];
/// assert_eq!((f.name.as_str(), f.kind.as_str()), ("cam", "testsrc"));
/// assert_eq!(f.mode, Some(ModeSpec::User));
/// assert_eq!(f.properties["frames"], PropValue::Int(8));
/// assert_eq!(f.framing["out"].frames, Some(2));
///
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterSpec {
    /// Instance name, unique in the graph.
    pub name: String,
    /// Filter type (`testsrc`, `invert`, …; see [`crate::filters::registry`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// Mode override (`kernel` or `user`); `None` keeps the type's mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ModeSpec>,
    /// Framing overrides by pin name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub framing: BTreeMap<String, FramingOverride>,
    /// Properties of the filter type.
    #[serde(flatten)]
    pub properties: BTreeMap<String, PropValue>,
}

/// A filter mode as written in a description.
///
/// ```
/// use ks_graph::runtime::spec::{GraphSpec, ModeSpec};
/// use ks_graph::FilterMode;
/// let spec = GraphSpec::parse_pipeline("testsrc ! invert mode=user ! nullsink")?;
/// assert_eq!(spec.filters[1].mode, Some(ModeSpec::User));
/// assert_eq!(FilterMode::from(ModeSpec::User), FilterMode::User);
/// assert_eq!(spec.filters[0].mode, None); // the type's own mode
///
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
///
/// Deserializes from the strings `"kernel"` and `"user"` only; anything else (another
/// string, a number, a table) is refused with a message that names the field and both
/// values.
///
/// ```
/// use ks_graph::runtime::spec::ModeSpec;
/// assert_eq!(serde_json::from_str::<ModeSpec>(r#""user""#)?, ModeSpec::User);
/// let err = serde_json::from_str::<ModeSpec>(r#"{"user": null}"#).unwrap_err();
/// assert!(err.to_string().contains(r#"expected `mode` to be "kernel" or "user""#), "{err}");
///
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeSpec {
    /// A kernel-mode filter.
    Kernel,
    /// A user-mode filter.
    User,
}

impl<'de> Deserialize<'de> for ModeSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ModeSpec, D::Error> {
        // Not the derived enum form, which also takes a table (`{ user = {} }`) and names
        // neither the field nor the values when given a number.
        deserializer.deserialize_any(ModeSpecVisitor)
    }
}

struct ModeSpecVisitor;

impl Visitor<'_> for ModeSpecVisitor {
    type Value = ModeSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`mode` to be \"kernel\" or \"user\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ModeSpec, E> {
        match v {
            "kernel" => Ok(ModeSpec::Kernel),
            "user" => Ok(ModeSpec::User),
            other => Err(E::invalid_value(Unexpected::Str(other), &self)),
        }
    }
}

impl From<ModeSpec> for FilterMode {
    fn from(m: ModeSpec) -> FilterMode {
        match m {
            ModeSpec::Kernel => FilterMode::Kernel,
            ModeSpec::User => FilterMode::User,
        }
    }
}

/// Overrides of a pin's declared framing (KsEdit of the instance's framing, behaviour 9).
/// Every field is optional; the rest of the pin's framing is kept. A pin without framing
/// gets a simple framing built from the given fields.
///
/// ```
/// use ks_graph::runtime::spec::{FramingOverride, GraphSpec};
/// let spec = GraphSpec::parse_pipeline("testsrc out.frames=8 out.alignment=64 ! nullsink")?;
/// let expected = FramingOverride {
///     frames: Some(8),
///     alignment: Some(64),
///     ..FramingOverride::default()
/// };
/// assert_eq!(spec.filters[0].framing["out"], expected);
///
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramingOverride {
    /// Frames the pin holds at once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_frames"
    )]
    pub frames: Option<u32>,
    /// Exact frame size in bytes (sets both minimum and maximum).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_frame_size"
    )]
    pub frame_size: Option<u32>,
    /// Smallest acceptable frame size in bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_min_size"
    )]
    pub min_size: Option<u32>,
    /// Largest acceptable frame size in bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_max_size"
    )]
    pub max_size: Option<u32>,
    /// Alignment in bytes (a power of two).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_alignment"
    )]
    pub alignment: Option<u32>,
    /// Memory type: `any`, `system`, `user`, `paged`, `nonpaged`, `device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// What each integer framing field allows (as `apply_override` checks it), for the messages
/// of a value that is no such integer, in a pipeline string and in a TOML table alike.
const FRAMES_ALLOWED: &str = "a number of frames from 1 to 4294967295";
const BYTES_ALLOWED: &str = "a number of bytes from 1 to 4294967295";
const MAX_SIZE_ALLOWED: &str = "a number of bytes from 0 to 4294967295";
const ALIGNMENT_ALLOWED: &str = "a power of two from 1 to 2147483648 (bytes)";

/// Deserializes an integer framing field of a TOML table: any value that is no `u32` is
/// refused with the field's name and what it allows.
struct FramingField {
    field: &'static str,
    allowed: &'static str,
}

impl Visitor<'_> for FramingField {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "framing field '{}' to be {}", self.field, self.allowed)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u32>, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u32>, E> {
        u32::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
}

macro_rules! framing_field {
    ($name:ident, $field:literal, $allowed:ident) => {
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
            d.deserialize_any(FramingField {
                field: $field,
                allowed: $allowed,
            })
        }
    };
}
framing_field!(de_frames, "frames", FRAMES_ALLOWED);
framing_field!(de_frame_size, "frame_size", BYTES_ALLOWED);
framing_field!(de_min_size, "min_size", BYTES_ALLOWED);
framing_field!(de_max_size, "max_size", MAX_SIZE_ALLOWED);
framing_field!(de_alignment, "alignment", ALIGNMENT_ALLOWED);

impl FramingOverride {
    /// Sets one field from its textual name (pipeline `PIN.FIELD=VALUE` form).
    ///
    /// ```
    /// use ks_graph::runtime::spec::{FramingOverride, PropValue, SpecErrorKind};
    /// let mut o = FramingOverride::default();
    /// o.set("frames", &PropValue::parse("8"))?;
    /// o.set("size", &PropValue::parse("4k"))?; // "size" is short for frame_size
    /// o.set("memory", &PropValue::parse("nonpaged"))?;
    /// assert_eq!((o.frames, o.frame_size), (Some(8), Some(4096)));
    /// assert_eq!(o.memory.as_deref(), Some("nonpaged"));
    /// let err = o.set("colour", &PropValue::parse("red")).unwrap_err();
    /// assert_eq!(err.kind, SpecErrorKind::UnknownProperty);
    /// // A value that is no integer: the message gives the field's own range.
    /// let err = o.set("alignment", &PropValue::parse("wide")).unwrap_err();
    /// assert!(err.message.contains("needs a power of two"), "{}", err.message);
    ///
    /// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
    /// ```
    pub fn set(&mut self, field: &str, value: &PropValue) -> Result<(), SpecError> {
        // What each field allows, as `apply_override` checks it: a value that is no integer
        // at all is refused here with the same range.
        let int = |allowed: &str| -> Result<u32, SpecError> {
            value.as_u32().ok_or_else(|| {
                SpecError::new(
                    SpecErrorKind::BadValue,
                    format!("framing field '{field}' needs {allowed}, got '{value}'"),
                )
            })
        };
        match field {
            "frames" => self.frames = Some(int(FRAMES_ALLOWED)?),
            "frame_size" | "size" => self.frame_size = Some(int(BYTES_ALLOWED)?),
            "min_size" => self.min_size = Some(int(BYTES_ALLOWED)?),
            "max_size" => self.max_size = Some(int(MAX_SIZE_ALLOWED)?),
            "alignment" => self.alignment = Some(int(ALIGNMENT_ALLOWED)?),
            "memory" => self.memory = Some(value.to_string()),
            other => {
                return Err(SpecError::new(
                    SpecErrorKind::UnknownProperty,
                    format!(
                        "unknown framing field '{other}'; known: frames, frame_size, min_size, max_size, alignment, memory"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A connection between two pins (`"filter.pin"`, or `"filter"` for its next free pin of
/// the right direction).
///
/// ```
/// use ks_graph::runtime::spec::{ConnectionSpec, GraphSpec};
/// let spec = GraphSpec::parse_pipeline("testsrc ! tee name=t ! nullsink t.out1 ! filesink location=x")?;
/// let tee_branch = ConnectionSpec { from: "t.out1".into(), to: "filesink".into() };
/// assert_eq!(spec.connections[2], tee_branch);
/// assert_eq!(spec.connections[0].from, "testsrc"); // its next free output pin
///
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// The output side.
    pub from: String,
    /// The input side.
    pub to: String,
}

impl<'de> Deserialize<'de> for FilterSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FilterSpec, D::Error> {
        deserializer.deserialize_map(FilterSpecVisitor)
    }
}

struct FilterSpecVisitor;

impl<'de> Visitor<'de> for FilterSpecVisitor {
    type Value = FilterSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a filter table (name, type, and the type's properties)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FilterSpec, A::Error> {
        /// Stores the value of a key that may be given once.
        fn once<T>(slot: &mut Option<T>, key: &'static str, value: T) -> Result<(), String> {
            match slot.replace(value) {
                Some(_) => Err(format!("duplicate field `{key}`")),
                None => Ok(()),
            }
        }
        let mut name = None;
        let mut kind = None;
        let mut mode = None;
        let mut framing = None;
        let mut properties = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let stored = match key.as_str() {
                "name" => once(&mut name, "name", map.next_value()?),
                "type" => once(&mut kind, "type", map.next_value()?),
                "mode" => once(&mut mode, "mode", map.next_value::<ModeSpec>()?),
                "framing" => once(&mut framing, "framing", map.next_value()?),
                _ if properties.contains_key(&key) => Err(format!("duplicate property `{key}`")),
                _ => {
                    let value = map.next_value::<PropValue>()?;
                    properties.insert(key, value);
                    Ok(())
                }
            };
            stored.map_err(de::Error::custom)?;
        }
        Ok(FilterSpec {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            kind: kind.ok_or_else(|| de::Error::missing_field("type"))?,
            mode,
            framing: framing.unwrap_or_default(),
            properties,
        })
    }
}

/// A property value.
///
/// Deserializes from a boolean, an integer or a string; any other value is refused with
/// "expected an integer, a boolean or a string".
///
/// ```
/// use ks_graph::runtime::spec::{GraphSpec, PropValue};
/// let spec = GraphSpec::parse_pipeline("filesrc location=in.bin size=64k ! nullsink")?;
/// let props = &spec.filters[0].properties;
/// assert_eq!(props["size"], PropValue::Int(65536));
/// assert_eq!(props["location"], PropValue::Str("in.bin".into()));
/// assert_eq!(props["size"].to_string(), "65536");
///
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PropValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Text.
    Str(String),
}

impl PropValue {
    /// Parses a pipeline value: `true`/`false`, integers (decimal, `0x` hex, `k`/`K`/`M`
    /// binary suffixes), otherwise text.
    ///
    /// ```
    /// use ks_graph::runtime::spec::PropValue;
    /// assert_eq!(PropValue::parse("false"), PropValue::Bool(false));
    /// assert_eq!(PropValue::parse("0x20"), PropValue::Int(32));
    /// assert_eq!(PropValue::parse("2M"), PropValue::Int(2 * 1024 * 1024));
    /// assert_eq!(PropValue::parse("ramp"), PropValue::Str("ramp".into()));
    /// ```
    pub fn parse(text: &str) -> PropValue {
        match text {
            "true" => return PropValue::Bool(true),
            "false" => return PropValue::Bool(false),
            _ => {}
        }
        parse_int(text).map_or_else(|| PropValue::Str(text.to_owned()), PropValue::Int)
    }

    /// The value as a `u32`, when it is an integer in range (or text that parses as one).
    ///
    /// ```
    /// use ks_graph::runtime::spec::PropValue;
    /// assert_eq!(PropValue::parse("4k").as_u32(), Some(4096));
    /// assert_eq!(PropValue::Str("16".into()).as_u32(), Some(16));
    /// assert_eq!(PropValue::Int(1 << 32).as_u32(), None); // out of range
    /// ```
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// The value as a `u64`, when it is a non-negative integer (or text that parses as one).
    ///
    /// ```
    /// use ks_graph::runtime::spec::PropValue;
    /// assert_eq!(PropValue::Int(1 << 32).as_u64(), Some(1 << 32));
    /// assert_eq!(PropValue::Int(-1).as_u64(), None);
    /// assert_eq!(PropValue::Bool(true).as_u64(), None);
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            PropValue::Int(i) => u64::try_from(*i).ok(),
            PropValue::Str(s) => parse_int(s).and_then(|i| u64::try_from(i).ok()),
            PropValue::Bool(_) => None,
        }
    }

    /// The value as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
    ///
    /// ```
    /// use ks_graph::runtime::spec::PropValue;
    /// assert_eq!(PropValue::parse("true").as_bool(), Some(true));
    /// assert_eq!(PropValue::parse("off").as_bool(), Some(false));
    /// assert_eq!(PropValue::Int(1).as_bool(), Some(true));
    /// assert_eq!(PropValue::Int(2).as_bool(), None);
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            PropValue::Bool(b) => Some(*b),
            PropValue::Int(0) => Some(false),
            PropValue::Int(1) => Some(true),
            PropValue::Int(_) => None,
            PropValue::Str(s) => match s.as_str() {
                "yes" | "on" | "true" => Some(true),
                "no" | "off" | "false" => Some(false),
                _ => None,
            },
        }
    }
}

impl<'de> Deserialize<'de> for PropValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PropValue, D::Error> {
        deserializer.deserialize_any(PropValueVisitor)
    }
}

struct PropValueVisitor;

impl Visitor<'_> for PropValueVisitor {
    type Value = PropValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, a boolean or a string")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PropValue, E> {
        Ok(PropValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PropValue, E> {
        Ok(PropValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PropValue, E> {
        i64::try_from(v)
            .map(PropValue::Int)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &"an integer up to 2^63 - 1"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PropValue, E> {
        Ok(PropValue::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PropValue, E> {
        Ok(PropValue::Str(v))
    }
}

impl fmt::Display for PropValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropValue::Bool(b) => write!(f, "{b}"),
            PropValue::Int(i) => write!(f, "{i}"),
            PropValue::Str(s) => f.write_str(s),
        }
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let (digits, mult) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1024),
        b'M' => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    v.checked_mul(mult)
}

/// What kind of mistake a description has (the CLI maps every kind to exit code 2).
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::{GraphSpec, SpecErrorKind};
/// let kind = |p: &str| match GraphSpec::parse_pipeline(p) {
///     Ok(spec) => filters::build(spec).unwrap_err().kind,
///     Err(e) => e.kind,
/// };
/// assert_eq!(kind("testsrc ! ! nullsink"), SpecErrorKind::Syntax);
/// assert_eq!(kind("blur ! nullsink"), SpecErrorKind::UnknownFilter);
/// assert_eq!(kind("testsrc colour=red ! nullsink"), SpecErrorKind::UnknownProperty);
/// assert_eq!(kind("testsrc size=0 ! nullsink"), SpecErrorKind::BadValue);
/// assert_eq!(kind("testsrc ! nullsink ! nullsink"), SpecErrorKind::UnknownPin);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// The text does not parse (pipeline syntax, TOML syntax).
    Syntax,
    /// No filter type of that name.
    UnknownFilter,
    /// The filter type has no such property, or a framing override names an unknown field.
    UnknownProperty,
    /// No pin of that name, or no free pin of the needed direction.
    UnknownPin,
    /// A property or framing value is out of range or of the wrong type.
    BadValue,
    /// The graph itself is wrong (duplicate names, a cycle, a required pin left
    /// unconnected, an invalid framing), as reported by the graph builder.
    Graph,
    /// A file named by the description cannot be read or written.
    Io,
}

/// Where in a description the value an error is about was given: a filter instance and the
/// path of keys inside its description, as in its TOML table.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::{GraphSpec, SpecLocation};
/// let spec = GraphSpec::parse_pipeline("testsrc name=src frames=four ! nullsink").unwrap();
/// let err = filters::build(spec).unwrap_err();
/// assert_eq!(err.location, Some(SpecLocation::property("src", "frames")));
/// assert_eq!(err.location.unwrap().keys, ["frames"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecLocation {
    /// The filter instance's name.
    pub filter: String,
    /// The keys leading to the value inside the filter's description: `["frames"]` for a
    /// property, `["type"]` for its type, `["framing", "out", "memory"]` for a field of a
    /// pin's framing override.
    pub keys: Vec<String>,
}

impl SpecLocation {
    /// A property (or any other key) of filter instance `filter`.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::{GraphSpec, SpecLocation};
    /// let spec = GraphSpec::parse_pipeline("testsrc name=src size=0 ! nullsink")?;
    /// let err = filters::build(spec).unwrap_err();
    /// assert_eq!(err.location, Some(SpecLocation::property("src", "size")));
    ///
    /// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
    /// ```
    pub fn property(filter: &str, key: &str) -> SpecLocation {
        SpecLocation {
            filter: filter.to_owned(),
            keys: vec![key.to_owned()],
        }
    }

    /// Field `field` of the framing override of pin `pin` of filter instance `filter`.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::{GraphSpec, SpecLocation};
    /// let spec = GraphSpec::parse_pipeline("testsrc name=src out.alignment=3 ! nullsink")?;
    /// let err = filters::build(spec).unwrap_err();
    /// let at = SpecLocation::framing("src", "out", "alignment");
    /// assert_eq!(at.keys, ["framing", "out", "alignment"]);
    /// assert_eq!(err.location, Some(at));
    ///
    /// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
    /// ```
    pub fn framing(filter: &str, pin: &str, field: &str) -> SpecLocation {
        SpecLocation {
            filter: filter.to_owned(),
            keys: vec!["framing".to_owned(), pin.to_owned(), field.to_owned()],
        }
    }
}

/// A description that cannot be turned into a graph: one line saying what and where.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::{GraphSpec, SpecErrorKind};
/// let spec = GraphSpec::parse_pipeline("testsrc ! nullsink name=sink ! nullsink")?;
/// let err = filters::build(spec).unwrap_err();
/// assert_eq!(err.kind, SpecErrorKind::UnknownPin);
/// assert_eq!(err.message, "filter 'sink' (nullsink) has no free output pin left to connect");
/// assert_eq!(err.location, None); // not about one value
///
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The kind of mistake.
    pub kind: SpecErrorKind,
    /// The whole message, on one line.
    pub message: String,
    /// The value the error is about, when it is one value of one filter's description; a
    /// tool that kept the description's source can turn it into a line and column.
    pub location: Option<SpecLocation>,
}

impl SpecError {
    /// An error of `kind` with `message`, about no value in particular.
    ///
    /// ```
    /// use ks_graph::runtime::spec::{SpecError, SpecErrorKind};
    /// let err = SpecError::new(SpecErrorKind::Io, "cannot read 'in.bin'");
    /// assert_eq!(err.to_string(), "cannot read 'in.bin'");
    /// assert_eq!(err.location, None);
    /// ```
    pub fn new(kind: SpecErrorKind, message: impl Into<String>) -> SpecError {
        SpecError {
            kind,
            message: message.into(),
            location: None,
        }
    }

    /// The same error, about the value at `location`.
    ///
    /// ```
    /// use ks_graph::runtime::spec::{SpecError, SpecErrorKind, SpecLocation};
    /// let err = SpecError::new(SpecErrorKind::BadValue, "size must be at least 1")
    ///     .at(SpecLocation::property("src", "size"));
    /// assert_eq!(err.location.map(|l| l.keys), Some(vec!["size".to_owned()]));
    /// ```
    pub fn at(self, location: SpecLocation) -> SpecError {
        SpecError {
            location: Some(location),
            ..self
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Bang,
    /// A word; `quoted`: a quote opened after its first `=`, so a setting's value is text
    /// as written (`location="123"` is the file 123, not a number).
    Word {
        text: String,
        at: usize,
        quoted: bool,
    },
}

fn tokenize(text: &str) -> Result<Vec<Token>, SpecError> {
    let mut tokens = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '!' {
            tokens.push(Token::Bang);
            i += 1;
            continue;
        }
        let start = i;
        let mut word = String::new();
        let (mut eq_seen, mut quoted) = (false, false);
        while i < bytes.len() && !bytes[i].is_whitespace() && bytes[i] != '!' {
            if bytes[i] == '"' || bytes[i] == '\'' {
                quoted |= eq_seen;
                let quote = bytes[i];
                i += 1;
                let open = i;
                while i < bytes.len() && bytes[i] != quote {
                    word.push(bytes[i]);
                    i += 1;
                }
                if i == bytes.len() {
                    return Err(SpecError::new(
                        SpecErrorKind::Syntax,
                        format!("pipeline: unterminated quote starting at column {open}"),
                    ));
                }
                i += 1;
            } else {
                eq_seen |= bytes[i] == '=';
                word.push(bytes[i]);
                i += 1;
            }
        }
        tokens.push(Token::Word {
            text: word,
            at: start + 1,
            quoted,
        });
    }
    Ok(tokens)
}

/// One side of a `!` link while parsing.
#[derive(Debug, Clone)]
enum Endpoint {
    /// An element declared here: index into `filters`.
    Element(usize),
    /// A reference `name.` or `name.pin`.
    Ref { filter: String, pin: Option<String> },
}

fn is_reference(word: &str) -> Option<(String, Option<String>)> {
    if word.contains('=') {
        return None;
    }
    let (f, p) = word.split_once('.')?;
    if f.is_empty() {
        return None;
    }
    Some((f.to_owned(), (!p.is_empty()).then(|| p.to_owned())))
}

impl GraphSpec {
    /// Parses a pipeline string (see the [module documentation](self)).
    ///
    /// ```
    /// use ks_graph::runtime::spec::GraphSpec;
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=10 ! invert ! invert ! nullsink").unwrap();
    /// let names: Vec<_> = spec.filters.iter().map(|f| f.name.as_str()).collect();
    /// assert_eq!(names, ["testsrc", "invert0", "invert1", "nullsink"]);
    /// assert_eq!(spec.connections[1].from, "invert0");
    /// ```
    pub fn parse_pipeline(text: &str) -> Result<GraphSpec, SpecError> {
        let mut spec = GraphSpec::default();
        spec.add_pipeline(text)?;
        Ok(spec)
    }

    /// Adds the elements and links of a pipeline string to this description.
    ///
    /// ```
    /// use ks_graph::runtime::spec::GraphSpec;
    /// let mut spec = GraphSpec::parse_pipeline("testsrc ! tee name=t ! nullsink")?;
    /// spec.add_pipeline("t. ! checksum ! nullsink name=sink2")?; // a second tee branch
    /// assert_eq!(spec.filters.len(), 5);
    /// let last = spec.connections.last().unwrap();
    /// assert_eq!((last.from.as_str(), last.to.as_str()), ("checksum", "sink2"));
    ///
    /// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
    /// ```
    pub fn add_pipeline(&mut self, text: &str) -> Result<(), SpecError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(SpecError::new(
                SpecErrorKind::Syntax,
                "pipeline: the pipeline is empty",
            ));
        }
        // Elements declared without a name get one after parsing (they need the counts).
        let mut unnamed: Vec<usize> = Vec::new();
        let mut prev: Option<Endpoint> = None;
        let mut linked = false; // a `!` is waiting for its right-hand side
        // A reference that starts a chain, until the `!` after it: one followed by anything
        // else links to nothing, which is a mistake rather than something to ignore.
        let mut dangling: Option<(String, usize)> = None;
        let dangling_error = |text: &str, at: usize| {
            SpecError::new(
                SpecErrorKind::Syntax,
                format!(
                    "pipeline: reference '{text}' at column {at} links to nothing; a reference \
                     starts a chain ('{text} ! …') or ends one ('… ! {text}')"
                ),
            )
        };
        let mut links: Vec<(Endpoint, Endpoint)> = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Bang => {
                    if prev.is_none() || linked {
                        return Err(SpecError::new(
                            SpecErrorKind::Syntax,
                            "pipeline: '!' must stand between two elements",
                        ));
                    }
                    linked = true;
                    dangling = None;
                    i += 1;
                }
                Token::Word { text, at, .. } => {
                    if let Some((text, at)) = dangling.take() {
                        return Err(dangling_error(&text, at));
                    }
                    let endpoint = if let Some((filter, pin)) = is_reference(text) {
                        if !linked {
                            dangling = Some((text.clone(), *at));
                        }
                        i += 1;
                        Endpoint::Ref { filter, pin }
                    } else if text.contains('=') {
                        return Err(SpecError::new(
                            SpecErrorKind::Syntax,
                            format!(
                                "pipeline: setting '{text}' at column {at} does not follow an element"
                            ),
                        ));
                    } else {
                        let mut f = FilterSpec {
                            name: String::new(),
                            kind: text.clone(),
                            mode: None,
                            framing: BTreeMap::new(),
                            properties: BTreeMap::new(),
                        };
                        i += 1;
                        let mut keys = BTreeSet::new();
                        while let Some(Token::Word { text, at, quoted }) = tokens.get(i) {
                            let Some((key, value)) = text.split_once('=') else {
                                break;
                            };
                            // As in a TOML graph, a key given twice is an error, not the
                            // last one winning.
                            if !keys.insert(key) {
                                return Err(SpecError::new(
                                    SpecErrorKind::Syntax,
                                    format!(
                                        "pipeline: filter '{}' sets '{key}' twice (again at \
                                         column {at})",
                                        f.kind
                                    ),
                                ));
                            }
                            apply_setting(&mut f, key, value, *at, *quoted)?;
                            i += 1;
                        }
                        if f.name.is_empty() {
                            unnamed.push(self.filters.len());
                        }
                        self.filters.push(f);
                        Endpoint::Element(self.filters.len() - 1)
                    };
                    if linked {
                        if let Some(p) = prev.take() {
                            links.push((p, endpoint.clone()));
                        }
                        linked = false;
                    }
                    prev = Some(endpoint);
                }
            }
        }
        if linked {
            return Err(SpecError::new(
                SpecErrorKind::Syntax,
                "pipeline: the pipeline ends with '!' (an element must follow it)",
            ));
        }
        if let Some((text, at)) = dangling {
            return Err(dangling_error(&text, at));
        }
        // Default names: the type, or type0, type1, … when the type repeats.
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for &idx in &unnamed {
            *counts.entry(self.filters[idx].kind.clone()).or_default() += 1;
        }
        let mut next: BTreeMap<String, usize> = BTreeMap::new();
        for &idx in &unnamed {
            let kind = self.filters[idx].kind.clone();
            let mut name = if counts[&kind] == 1 {
                kind.clone()
            } else {
                let n = next.entry(kind.clone()).or_default();
                *n += 1;
                format!("{kind}{}", *n - 1)
            };
            while self.filters.iter().any(|f| f.name == name) {
                name.push('_');
            }
            self.filters[idx].name = name;
        }
        for (from, to) in links {
            let side = |e: &Endpoint| match e {
                Endpoint::Element(i) => self.filters[*i].name.clone(),
                Endpoint::Ref { filter, pin: None } => filter.clone(),
                Endpoint::Ref {
                    filter,
                    pin: Some(p),
                } => format!("{filter}.{p}"),
            };
            self.connections.push(ConnectionSpec {
                from: side(&from),
                to: side(&to),
            });
        }
        Ok(())
    }

    /// Merges an embedded `pipeline` string into `filters` / `connections` (called by
    /// [`crate::filters::build`]; idempotent).
    ///
    /// ```
    /// use ks_graph::runtime::spec::GraphSpec;
    /// let mut spec = GraphSpec {
    ///     pipeline: Some("testsrc ! nullsink".into()),
    ///     ..GraphSpec::default()
    /// };
    /// spec.expand()?;
    /// assert!(spec.pipeline.is_none());
    /// assert_eq!(spec.filters.len(), 2);
    /// spec.expand()?; // nothing left to merge
    /// assert_eq!(spec.filters.len(), 2);
    ///
    /// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
    /// ```
    pub fn expand(&mut self) -> Result<(), SpecError> {
        if let Some(p) = self.pipeline.take() {
            // Parsed beside the description's own filters, so that the default names the
            // pipeline gives its elements avoid theirs; then the pipeline's come first.
            let own = self.filters.len();
            let mut inner = GraphSpec {
                filters: std::mem::take(&mut self.filters),
                ..GraphSpec::default()
            };
            inner.add_pipeline(&p)?;
            inner.filters.rotate_left(own);
            inner.connections.append(&mut self.connections);
            self.filters = inner.filters;
            self.connections = inner.connections;
        }
        Ok(())
    }
}

fn apply_setting(
    f: &mut FilterSpec,
    key: &str,
    value: &str,
    at: usize,
    quoted: bool,
) -> Result<(), SpecError> {
    let value_of = |v: &str| {
        if quoted {
            PropValue::Str(v.to_owned())
        } else {
            PropValue::parse(v)
        }
    };
    match key {
        "name" => {
            if value.is_empty() || value.contains('.') {
                return Err(SpecError::new(
                    SpecErrorKind::BadValue,
                    format!(
                        "pipeline: name '{value}' at column {at} must be non-empty and contain no '.'"
                    ),
                ));
            }
            f.name = value.to_owned();
        }
        "mode" => {
            f.mode = Some(match value {
                "kernel" => ModeSpec::Kernel,
                "user" => ModeSpec::User,
                other => {
                    return Err(SpecError::new(
                        SpecErrorKind::BadValue,
                        format!(
                            "filter '{}': mode '{other}' is not allowed; use kernel or user",
                            f.kind
                        ),
                    ));
                }
            })
        }
        _ => {
            if let Some((pin, field)) = key.split_once('.') {
                let kind = &f.kind;
                f.framing
                    .entry(pin.to_owned())
                    .or_default()
                    .set(field, &value_of(value))
                    .map_err(|e| {
                        SpecError::new(
                            e.kind,
                            format!(
                                "pipeline: filter '{kind}', setting '{key}={value}' at column \
                                 {at}: {}",
                                e.message
                            ),
                        )
                    })?;
            } else {
                f.properties.insert(key.to_owned(), value_of(value));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_chain_and_settings() {
        let s = GraphSpec::parse_pipeline(
            "testsrc frames=1000 size=4k pattern=none out.frames=8 ! invert mode=user ! nullsink",
        )
        .unwrap();
        assert_eq!(s.filters.len(), 3);
        assert_eq!(s.filters[0].properties["size"], PropValue::Int(4096));
        assert_eq!(
            s.filters[0].properties["pattern"],
            PropValue::Str("none".into())
        );
        assert_eq!(s.filters[0].framing["out"].frames, Some(8));
        assert_eq!(s.filters[1].mode, Some(ModeSpec::User));
        assert_eq!(
            s.connections,
            vec![
                ConnectionSpec {
                    from: "testsrc".into(),
                    to: "invert".into()
                },
                ConnectionSpec {
                    from: "invert".into(),
                    to: "nullsink".into()
                },
            ]
        );
    }

    #[test]
    fn tee_branches_with_references() {
        let s = GraphSpec::parse_pipeline(
            "testsrc ! tee name=t ! nullsink t. ! checksum ! nullsink t.out1 ! filesink location=\"a b.bin\"",
        )
        .unwrap();
        let names: Vec<_> = s.filters.iter().map(|f| f.name.clone()).collect();
        assert_eq!(
            names,
            [
                "testsrc",
                "t",
                "nullsink0",
                "checksum",
                "nullsink1",
                "filesink"
            ]
        );
        let links: Vec<_> = s
            .connections
            .iter()
            .map(|c| (c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("testsrc", "t"),
                ("t", "nullsink0"),
                ("t", "checksum"),
                ("checksum", "nullsink1"),
                ("t.out1", "filesink"),
            ]
        );
        assert_eq!(
            s.filters[5].properties["location"],
            PropValue::Str("a b.bin".into())
        );
    }

    #[test]
    fn syntax_errors_are_one_line() {
        for bad in ["", "a ! ! b", "a !", "! a", "size=3 a", "a location=\"x"] {
            let e = GraphSpec::parse_pipeline(bad).unwrap_err();
            assert_eq!(e.kind, SpecErrorKind::Syntax, "{bad}: {e}");
            assert!(!e.message.contains('\n'));
        }
        let e = GraphSpec::parse_pipeline("a out.bogus=1").unwrap_err();
        assert_eq!(e.kind, SpecErrorKind::UnknownProperty);
        let e = GraphSpec::parse_pipeline("a mode=sideways").unwrap_err();
        assert_eq!(e.kind, SpecErrorKind::BadValue);
    }

    #[test]
    fn filter_tables_deserialize_each_value_in_place() {
        let spec: GraphSpec = serde_json::from_str(
            r#"{"filter": [{"name": "a", "type": "testsrc", "frames": 7, "pattern": "zero",
                "check": true, "mode": "user", "framing": {"out": {"frames": 2}}}]}"#,
        )
        .expect("a valid description");
        let f = &spec.filters[0];
        assert_eq!((f.name.as_str(), f.kind.as_str()), ("a", "testsrc"));
        assert_eq!(f.mode, Some(ModeSpec::User));
        assert_eq!(f.framing["out"].frames, Some(2));
        assert_eq!(f.properties.len(), 3);
        assert_eq!(f.properties["frames"], PropValue::Int(7));
        assert_eq!(f.properties["pattern"], PropValue::Str("zero".into()));
        assert_eq!(f.properties["check"], PropValue::Bool(true));
        // The serialized form reads back the same.
        let text = serde_json::to_string(&spec).expect("serializes");
        assert_eq!(serde_json::from_str::<GraphSpec>(&text).ok(), Some(spec));

        // A value of the wrong type is reported on its own line, not where the table ends
        // (as it was while the properties were a buffered `#[serde(flatten)]`).
        let err = serde_json::from_str::<GraphSpec>(
            "{\"filter\": [{\"name\": \"a\", \"type\": \"testsrc\",\n\"frames\": 4.5,\n\"size\": 1\n}]}",
        )
        .expect_err("a float property is refused");
        assert_eq!(err.line(), 2, "{err}");
        assert!(
            err.to_string()
                .contains("expected an integer, a boolean or a string"),
            "{err}"
        );
        let err = serde_json::from_str::<GraphSpec>(r#"{"filter": [{"name": "a"}]}"#)
            .expect_err("type is required");
        assert!(err.to_string().contains("missing field `type`"), "{err}");
        let err =
            serde_json::from_str::<PropValue>("9223372036854775808").expect_err("past i64::MAX");
        assert!(err.to_string().contains("up to 2^63 - 1"), "{err}");
    }

    #[test]
    fn a_framing_field_that_is_no_integer_names_the_field_s_own_range() {
        for (field, allowed) in [
            ("frames", "a number of frames from 1 to 4294967295"),
            ("frame_size", "a number of bytes from 1 to 4294967295"),
            ("size", "a number of bytes from 1 to 4294967295"),
            ("min_size", "a number of bytes from 1 to 4294967295"),
            ("max_size", "a number of bytes from 0 to 4294967295"),
            ("alignment", "a power of two from 1 to 2147483648 (bytes)"),
        ] {
            for bad in ["x", "-1", "4294967296", "true"] {
                let pipeline = format!("testsrc out.{field}={bad} ! nullsink");
                let e = GraphSpec::parse_pipeline(&pipeline).unwrap_err();
                assert_eq!(e.kind, SpecErrorKind::BadValue, "{pipeline}: {e}");
                assert!(
                    e.message.ends_with(&format!(
                        "framing field '{field}' needs {allowed}, got '{bad}'"
                    )),
                    "{pipeline}: {e}"
                );
            }
        }
    }

    #[test]
    fn values() {
        assert_eq!(PropValue::parse("0x10"), PropValue::Int(16));
        assert_eq!(PropValue::parse("2M"), PropValue::Int(2 * 1024 * 1024));
        assert_eq!(PropValue::parse("true"), PropValue::Bool(true));
        assert_eq!(PropValue::parse("12ab"), PropValue::Str("12ab".into()));
        assert_eq!(PropValue::Str("7".into()).as_u32(), Some(7));
        assert_eq!(PropValue::Int(-1).as_u32(), None);
    }
}
