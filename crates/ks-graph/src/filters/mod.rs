//! Built-in filters and the registry that turns a [`GraphSpec`] into a runnable graph.
//!
//! | type | routing | pins | what it does |
//! |---|---|---|---|
//! | `testsrc` | source | `out` | deterministic frames (`pattern=ramp`), zeros, or unfilled (`pattern=none`) |
//! | `filesrc` | source | `out` | a file, cut into frames |
//! | `identity` | in place | `in`, `out` | passes frames on untouched |
//! | `invert` | in place (modifier) | `in`, `out` | inverts every data byte |
//! | `copy` | not in place | `in`, `out` | copies into frames of the next pipe's allocator |
//! | `tee` | splitter | `in`, `out0` … | every frame to every branch (shared read-only) |
//! | `checksum` | in place | `in`, `out` (optional) | FNV-1a 64 of the stream, reported at the end |
//! | `commonbuf` | in place | `in` (vendor), `out` | offers the `CommonBuffer` vendor allocator |
//! | `filesink` | sink | `in` | writes the data to a file |
//! | `nullsink` | sink | `in` | discards frames |
//!
//! Every filter accepts `mode=kernel|user` (default kernel) and per-pin framing overrides;
//! [`registry`] lists each type's properties with their defaults, and the documentation of
//! each filter type states its pins' framing.

mod sinks;
mod sources;
mod transforms;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};

use crate::graph::{Graph, GraphBuilder, PinId};
use crate::model::{FilterDescriptor, PinDirection};
use crate::runtime::spec::{
    FramingOverride, GraphSpec, PropValue, SpecError, SpecErrorKind, SpecLocation,
};
use crate::runtime::{Process, RunError, Runtime};

pub use sources::{ramp_fill, ramp_pattern};
pub use transforms::{FNV_OFFSET, fnv1a64, invert_bytes};

/// What kind of value a property takes.
///
/// ```
/// use ks_graph::filters::{self, PropKind};
/// let testsrc = filters::lookup("testsrc").unwrap();
/// let kinds: Vec<(&str, PropKind)> = testsrc.properties.iter().map(|p| (p.name, p.kind)).collect();
/// assert_eq!(kinds[0], ("frames", PropKind::Int));
/// assert_eq!(kinds[2], ("pattern", PropKind::Choice(&["ramp", "zero", "none"])));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropKind {
    /// A non-negative integer (count or bytes; `k`/`M` suffixes allowed in pipelines).
    Int,
    /// A file path.
    Path,
    /// One of the listed words.
    Choice(&'static [&'static str]),
}

/// One documented property of a filter type.
///
/// ```
/// use ks_graph::filters::{self, PropKind};
/// let filesink = filters::lookup("filesink").unwrap();
/// let location = &filesink.properties[0];
/// assert_eq!((location.name, location.kind), ("location", PropKind::Path));
/// assert_eq!(location.default, ""); // required
/// assert!(location.doc.contains("file to write"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PropDef {
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: PropKind,
    /// The default, as text (empty: required).
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// A filter type of the registry.
///
/// ```
/// use ks_graph::filters;
/// let tee = filters::lookup("tee").unwrap();
/// assert_eq!(tee.name, "tee");
/// assert!(tee.pins.starts_with("in: input"));
/// assert_eq!((tee.properties[0].name, tee.properties[0].default), ("branches", "2"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FilterType {
    /// Its name in descriptions.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its pins and their framing, in words.
    pub pins: &'static str,
    /// Its properties.
    pub properties: &'static [PropDef],
    make: fn(&Props<'_>) -> Result<Made, SpecError>,
}

/// What a filter type's constructor returns.
pub(crate) struct Made {
    pub(crate) descriptor: FilterDescriptor,
    pub(crate) process: Box<dyn Process>,
}

/// The validated properties of one filter instance, handed to its constructor.
///
/// ```
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # let build = |p: &str| filters::build(GraphSpec::parse_pipeline(p).unwrap());
/// // A filter type's constructor reads its properties through `Props`, which applies the
/// // registry's defaults and checks every value; `filters::build` reports what it refused.
/// assert!(build("testsrc ! nullsink").is_ok()); // frames, size, pattern: defaults
/// let err = build("testsrc name=cam frames=0 ! nullsink").unwrap_err();
/// assert!(err.message.starts_with("filter 'cam' (testsrc): property frames=0 is invalid"));
/// ```
#[derive(Debug)]
pub struct Props<'a> {
    instance: &'a str,
    ty: &'static FilterType,
    values: &'a BTreeMap<String, PropValue>,
}

impl Props<'_> {
    fn def(&self, name: &str) -> Option<&'static PropDef> {
        self.ty.properties.iter().find(|p| p.name == name)
    }

    fn raw(&self, name: &str) -> Option<PropValue> {
        if let Some(v) = self.values.get(name) {
            return Some(v.clone());
        }
        let d = self.def(name)?;
        (!d.default.is_empty()).then(|| PropValue::parse(d.default))
    }

    fn bad(&self, name: &str, value: &PropValue, allowed: &str) -> SpecError {
        SpecError::new(
            SpecErrorKind::BadValue,
            format!(
                "filter '{}' ({}): property {name}={value} is invalid; {allowed}",
                self.instance, self.ty.name
            ),
        )
        .at(SpecLocation::property(self.instance, name))
    }

    /// An integer property within `min..=max` (and at most `i64::MAX`, the largest property
    /// integer).
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let build = |p: &str| filters::build(GraphSpec::parse_pipeline(p).unwrap());
    /// // `testsrc` reads `frames` with `int("frames", 1, u64::MAX)`:
    /// let err = build("testsrc frames=0 ! nullsink").unwrap_err();
    /// assert!(err.message.ends_with("it must be an integer from 1 to 9223372036854775807"));
    /// let err = build("testsrc frames=many ! nullsink").unwrap_err();
    /// assert!(err.message.contains("property frames=many is invalid"));
    /// ```
    pub fn int(&self, name: &str, min: u64, max: u64) -> Result<u64, SpecError> {
        // Property integers are TOML's, 64-bit signed: nothing above `i64::MAX` is ever read,
        // so the range stated in an error stops there.
        let max = max.min(i64::MAX as u64);
        let v = self.raw(name).ok_or_else(|| self.missing(name))?;
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.bad(
                name,
                &v,
                &format!("it must be an integer from {min} to {max}"),
            )),
        }
    }

    /// A text property.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let build = |p: &str| filters::build(GraphSpec::parse_pipeline(p).unwrap());
    /// // `filesink` reads its required `location` with `text("location")`:
    /// let err = build("testsrc ! filesink").unwrap_err();
    /// assert_eq!(err.message, "filter 'filesink' (filesink): property 'location' is required");
    /// ```
    pub fn text(&self, name: &str) -> Result<String, SpecError> {
        let v = self.raw(name).ok_or_else(|| self.missing(name))?;
        match v {
            PropValue::Str(s) if !s.is_empty() => Ok(s),
            PropValue::Str(_) => Err(self.bad(name, &v, "it must be non-empty text")),
            other => Err(self.bad(
                name,
                &other,
                &format!(
                    "it must be non-empty text (it was read as a number or a boolean; quote it: \
                     {name}=\"...\")"
                ),
            )),
        }
    }

    /// A choice property; returns the index of the chosen word.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let build = |p: &str| filters::build(GraphSpec::parse_pipeline(p).unwrap());
    /// // `testsrc` reads `pattern` with `choice("pattern")`:
    /// let err = build("testsrc pattern=wavy ! nullsink").unwrap_err();
    /// assert!(err.message.ends_with("allowed: ramp, zero, none"));
    /// assert!(build("testsrc pattern=zero ! nullsink").is_ok());
    /// ```
    pub fn choice(&self, name: &str) -> Result<usize, SpecError> {
        let v = self.raw(name).ok_or_else(|| self.missing(name))?;
        let words = match self.def(name).map(|d| d.kind) {
            Some(PropKind::Choice(w)) => w,
            _ => &[][..],
        };
        let text = v.to_string();
        words
            .iter()
            .position(|w| *w == text)
            .ok_or_else(|| self.bad(name, &v, &format!("allowed: {}", words.join(", "))))
    }

    fn missing(&self, name: &str) -> SpecError {
        SpecError::new(
            SpecErrorKind::BadValue,
            format!(
                "filter '{}' ({}): property '{name}' is required",
                self.instance, self.ty.name
            ),
        )
    }

    /// The instance name.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let build = |p: &str| filters::build(GraphSpec::parse_pipeline(p).unwrap());
    /// // `filesrc` names its instance in the error when the file cannot be opened:
    /// let err = build("filesrc name=cam location=/nonexistent/ks-graph.bin ! nullsink").unwrap_err();
    /// assert!(err.message.starts_with("filter 'cam' (filesrc): cannot read"));
    /// ```
    pub fn instance(&self) -> &str {
        self.instance
    }
}

static REGISTRY: [FilterType; 10] = [
    sources::TESTSRC,
    sources::FILESRC,
    transforms::IDENTITY,
    transforms::INVERT,
    transforms::COPY,
    transforms::TEE,
    transforms::CHECKSUM,
    transforms::COMMONBUF,
    sinks::FILESINK,
    sinks::NULLSINK,
];

/// Every built-in filter type.
///
/// ```
/// let names: Vec<&str> = ks_graph::filters::registry().iter().map(|t| t.name).collect();
/// assert_eq!(names.len(), 10);
/// assert!(names.contains(&"testsrc") && names.contains(&"nullsink"));
/// ```
pub fn registry() -> &'static [FilterType] {
    &REGISTRY
}

/// The filter type called `name`.
///
/// ```
/// use ks_graph::filters;
/// assert_eq!(filters::lookup("invert").map(|t| t.name), Some("invert"));
/// assert!(filters::lookup("blur").is_none());
/// ```
pub fn lookup(name: &str) -> Option<&'static FilterType> {
    REGISTRY.iter().find(|t| t.name == name)
}

fn known_types() -> String {
    REGISTRY
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The memory type named in a framing override.
///
/// ```
/// use ks_alloc::MemoryType;
/// use ks_graph::filters::parse_memory;
/// assert_eq!(parse_memory("nonpaged")?, MemoryType::KERNEL_NONPAGED);
/// assert_eq!(parse_memory("any")?, MemoryType::WILDCARD);
/// assert!(parse_memory("fast").unwrap_err().message.contains("use any, system, user"));
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
pub fn parse_memory(text: &str) -> Result<MemoryType, SpecError> {
    Ok(match text {
        "any" | "wildcard" => MemoryType::WILDCARD,
        "system" => MemoryType::SYSTEM,
        "user" => MemoryType::USER,
        "paged" => MemoryType::KERNEL_PAGED,
        "nonpaged" => MemoryType::KERNEL_NONPAGED,
        "device" => MemoryType::DEVICE_UNKNOWN,
        other => {
            return Err(SpecError::new(
                SpecErrorKind::BadValue,
                format!(
                    "memory '{other}' is not allowed; use any, system, user, paged, nonpaged or device"
                ),
            ));
        }
    })
}

/// A one-item framing holding `frames` frames of any memory, any size (1 to `u32::MAX`
/// bytes) at byte alignment: what sinks and transforms declare on their inputs, and the
/// base a framing override starts from on a pin that declares none.
fn any_framing(frames: u32) -> FramingEx {
    FramingEx::simple(
        MemoryType::WILDCARD,
        ItemFlags::empty(),
        frames,
        Alignment::BYTE,
        1,
        u32::MAX,
    )
}

/// Applies a framing override to a pin's framing (or to a simple framing when it has none).
///
/// `pin` is the pin as `"filter.pin"`; an error names it and carries the
/// [`SpecLocation`] of the offending field.
///
/// ```
/// use ks_alloc::Alignment;
/// use ks_graph::filters::apply_override;
/// use ks_graph::runtime::spec::{FramingOverride, SpecLocation};
/// let o = FramingOverride { frames: Some(8), alignment: Some(64), ..FramingOverride::default() };
/// let fx = apply_override(None, &o, "src.out")?;
/// assert_eq!((fx.items[0].frames, fx.items[0].alignment), (8, Alignment::BYTES_64));
/// let zero = FramingOverride { frames: Some(0), ..FramingOverride::default() };
/// let err = apply_override(Some(&fx), &zero, "src.out").unwrap_err();
/// assert_eq!(err.location, Some(SpecLocation::framing("src", "out", "frames")));
/// # Ok::<(), ks_graph::runtime::spec::SpecError>(())
/// ```
pub fn apply_override(
    base: Option<&FramingEx>,
    o: &FramingOverride,
    pin: &str,
) -> Result<FramingEx, SpecError> {
    // Pin names never contain a '.' (instance names of a TOML graph may), so the last one
    // splits "filter.pin".
    let (filter, pin_name) = pin.rsplit_once('.').unwrap_or(("", pin));
    let bad = |field: &str, message: String| {
        SpecError::new(SpecErrorKind::BadValue, format!("pin '{pin}': {message}"))
            .at(SpecLocation::framing(filter, pin_name, field))
    };
    let mut fx = base.cloned().unwrap_or_else(|| any_framing(1));
    let alignment = match o.alignment {
        Some(b) => Some(Alignment::from_bytes(b).map_err(|_| {
            bad(
                "alignment",
                format!("alignment {b} is invalid; it must be a power of two (1, 2, 4, … bytes)"),
            )
        })?),
        None => None,
    };
    // parse_memory names the value and the allowed words; say which pin it was given for.
    let memory = o
        .memory
        .as_deref()
        .map(|m| parse_memory(m).map_err(|e| bad("memory", e.message)))
        .transpose()?;
    if o.frames == Some(0) {
        return Err(bad(
            "frames",
            "frames is 0; a pin holds at least 1 frame".to_owned(),
        ));
    }
    for (field, size) in [("frame_size", o.frame_size), ("min_size", o.min_size)] {
        if size == Some(0) {
            return Err(bad(
                field,
                "frame size 0 is invalid; frames hold at least 1 byte".to_owned(),
            ));
        }
    }
    for item in &mut fx.items {
        if let Some(n) = o.frames {
            item.frames = n;
        }
        if let Some(a) = alignment {
            item.alignment = a;
        }
        if let Some(m) = memory {
            item.memory_type = m;
        }
        for r in [&mut item.physical_range, &mut item.framing_range] {
            if let Some(s) = o.frame_size {
                r.min = s;
                r.max = s;
            }
            if let Some(s) = o.min_size {
                r.min = s;
            }
            if let Some(s) = o.max_size {
                r.max = s;
            }
        }
        if item.physical_range.min > item.physical_range.max {
            // The range is empty because of one of the size fields given: point at the first.
            let field = [
                ("min_size", o.min_size),
                ("max_size", o.max_size),
                ("frame_size", o.frame_size),
            ]
            .into_iter()
            .find_map(|(name, v)| v.map(|_| name))
            .unwrap_or("frame_size");
            return Err(bad(
                field,
                format!(
                    "frame size range {}..{} is empty; min_size must be <= max_size",
                    item.physical_range.min, item.physical_range.max
                ),
            ));
        }
    }
    Ok(fx)
}

/// A graph built from a description, with one process callback per filter.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// let built = filters::build(GraphSpec::parse_pipeline("testsrc ! invert ! nullsink")?)?;
/// assert_eq!(built.graph.filter_count(), 3);
/// assert_eq!(built.graph.state(), ks_graph::KsState::Stop);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Built {
    /// The graph, in STOP, framing overrides applied.
    pub graph: Graph,
    processes: Vec<Box<dyn Process>>,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("filters", &self.graph.filter_count())
            .finish_non_exhaustive()
    }
}

impl Built {
    /// The runtime for this graph.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::RunOptions;
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=2 size=8 ! nullsink")?;
    /// let outcome = filters::build(spec)?.into_runtime()?.run(&RunOptions::default())?;
    /// assert_eq!((outcome.report.frames, outcome.report.bytes), (2, 16));
    /// assert!(outcome.report.all_frames_returned);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Runtime::new`]: [`RunError::Setup`] when the graph has more than
    /// [`MAX_RUN_FILTERS`](crate::runtime::MAX_RUN_FILTERS) filters, or when
    /// [`graph`](Self::graph) was moved out of STOP (a run starts from STOP).
    pub fn into_runtime(self) -> Result<Runtime, RunError> {
        Runtime::new(self.graph, self.processes)
    }

    /// Puts `process` in place of the process callback of the filter named `name` (a filter
    /// of your own, in a graph of built-in ones: for instance where the description has an
    /// `identity`), and returns the callback it had. The filter keeps its pins and framing.
    ///
    /// # Errors
    /// [`GraphError::UnknownFilter`](crate::GraphError::UnknownFilter) if no filter is named
    /// `name`; nothing is replaced then.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::{process_fn, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=2 size=8 ! identity ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// // An identity of our own: every frame travels on as it came.
    /// built.replace_process("identity", Box::new(process_fn(|pins| {
    ///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |_| Ok::<(), ks_alloc::Status>(()))?;
    ///     Ok(())
    /// })))?;
    /// let unknown = built.replace_process("scaler", Box::new(process_fn(|_| Ok(()))));
    /// assert!(matches!(unknown, Err(ks_graph::GraphError::UnknownFilter { .. })));
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert_eq!((report.frames, report.bytes), (2, 16));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace_process(
        &mut self,
        name: &str,
        process: Box<dyn Process>,
    ) -> Result<Box<dyn Process>, crate::GraphError> {
        let id = self.graph.filter(name)?;
        Ok(std::mem::replace(&mut self.processes[id.index()], process))
    }
}

fn graph_err(e: crate::GraphError) -> SpecError {
    SpecError::new(SpecErrorKind::Graph, e.to_string())
}

/// Builds the graph a description asks for: every filter type known, every property known
/// and valid, every pin known, framing overrides applied (KsEdit, behaviour 9).
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// let spec = GraphSpec::parse_pipeline("testsrc frames=3 size=64 ! invert ! nullsink").unwrap();
/// let built = filters::build(spec).unwrap();
/// assert_eq!(built.graph.filter_count(), 3);
/// let bad = GraphSpec::parse_pipeline("testsrc sise=4 ! nullsink").unwrap();
/// let err = filters::build(bad).unwrap_err();
/// assert!(err.message.contains("unknown property 'sise'"));
/// ```
pub fn build(mut spec: GraphSpec) -> Result<Built, SpecError> {
    spec.expand()?;
    if spec.filters.is_empty() {
        return Err(SpecError::new(
            SpecErrorKind::Syntax,
            "the graph has no filters",
        ));
    }
    let mut builder = GraphBuilder::new();
    let mut processes = Vec::with_capacity(spec.filters.len());
    let mut descriptors: BTreeMap<String, Arc<FilterDescriptor>> = BTreeMap::new();
    for f in &spec.filters {
        let ty = lookup(&f.kind).ok_or_else(|| {
            SpecError::new(
                SpecErrorKind::UnknownFilter,
                format!(
                    "unknown filter type '{}' (instance '{}'); known types: {}",
                    f.kind,
                    f.name,
                    known_types()
                ),
            )
            .at(SpecLocation::property(&f.name, "type"))
        })?;
        for key in f.properties.keys() {
            if !ty.properties.iter().any(|p| p.name == key) {
                let known: Vec<&str> = ty.properties.iter().map(|p| p.name).collect();
                return Err(SpecError::new(
                    SpecErrorKind::UnknownProperty,
                    format!(
                        "filter '{}' ({}): unknown property '{key}'; known properties: {}",
                        f.name,
                        ty.name,
                        if known.is_empty() {
                            "none besides mode".to_owned()
                        } else {
                            format!("{}, mode", known.join(", "))
                        }
                    ),
                )
                .at(SpecLocation::property(&f.name, key)));
            }
        }
        let props = Props {
            instance: &f.name,
            ty,
            values: &f.properties,
        };
        let made = (ty.make)(&props)?;
        let mut desc = made.descriptor;
        if let Some(m) = f.mode {
            desc.mode = m.into();
        }
        for (pin, o) in &f.framing {
            let Some(idx) = desc.pin_index(pin) else {
                return Err(unknown_pin(&f.name, ty.name, pin, &desc).at(SpecLocation {
                    filter: f.name.clone(),
                    keys: vec!["framing".to_owned(), pin.clone()],
                }));
            };
            let name = format!("{}.{pin}", f.name);
            desc.pins[idx].framing =
                Some(apply_override(desc.pins[idx].framing.as_ref(), o, &name)?);
        }
        let desc = Arc::new(desc);
        builder
            .add_filter(f.name.clone(), Arc::clone(&desc))
            .map_err(graph_err)?;
        descriptors.insert(f.name.clone(), desc);
        processes.push(made.process);
    }
    // Explicit pins first, then bare filter names take the next free pins: so a bare `t`
    // written before an explicit `t.out0` does not take `out0` from it.
    // Each end split once, before anything resolves (an unknown filter fails here).
    let mut ends: Vec<[End<'_>; 2]> = Vec::new();
    for c in &spec.connections {
        let end = |text, dir| {
            split_reference(&descriptors, text).map(|(filter, pin)| (text, dir, filter, pin))
        };
        ends.push([
            end(c.from.as_str(), PinDirection::Out)?,
            end(c.to.as_str(), PinDirection::In)?,
        ]);
    }
    let mut used: BTreeSet<(String, usize)> = BTreeSet::new();
    let mut resolved: Vec<[Option<PinId>; 2]> = vec![[None, None]; ends.len()];
    for explicit in [true, false] {
        for (c, pair) in ends.iter().enumerate() {
            for (k, &(text, dir, filter, pin)) in pair.iter().enumerate() {
                if pin.is_some() == explicit {
                    resolved[c][k] = Some(resolve(
                        &builder,
                        &descriptors,
                        &mut used,
                        text,
                        filter,
                        pin,
                        dir,
                    )?);
                }
            }
        }
    }
    for [from, to] in resolved {
        if let (Some(from), Some(to)) = (from, to) {
            builder.connect_pins(from, to).map_err(graph_err)?;
        }
    }
    let graph = builder.build().map_err(graph_err)?;
    Ok(Built { graph, processes })
}

/// A connection end as written, with its direction, and split by [`split_reference`] into
/// its filter instance and, if named, its pin.
type End<'t> = (&'t str, PinDirection, &'t str, Option<&'t str>);

fn unknown_pin(instance: &str, ty: &str, pin: &str, desc: &FilterDescriptor) -> SpecError {
    let pins: Vec<&str> = desc.pins.iter().map(|p| p.name.as_str()).collect();
    SpecError::new(
        SpecErrorKind::UnknownPin,
        format!(
            "filter '{instance}' ({ty}) has no pin '{pin}'; its pins: {}",
            pins.join(", ")
        ),
    )
}

/// Splits a connection end into its filter instance and, if named, its pin: `"filter"` or
/// `"filter.pin"` (split at the last dot: pin names have none, TOML instance names may). Text
/// that reads both ways (an instance named `t.out0` beside a filter `t` with a pin `out0`) is
/// refused rather than guessed.
fn split_reference<'t>(
    descriptors: &BTreeMap<String, Arc<FilterDescriptor>>,
    text: &'t str,
) -> Result<(&'t str, Option<&'t str>), SpecError> {
    let whole = descriptors.contains_key(text);
    let split = text
        .rsplit_once('.')
        .filter(|(f, _)| descriptors.contains_key(*f));
    match (whole, split) {
        (true, Some((f, p))) if descriptors[f].pin_index(p).is_some() => Err(SpecError::new(
            SpecErrorKind::UnknownFilter,
            format!(
                "connection '{text}' is ambiguous: it names filter instance '{text}' and pin \
                 '{p}' of filter '{f}'; rename one of the instances"
            ),
        )),
        (true, _) => Ok((text, None)),
        (false, Some((f, p))) => Ok((f, Some(p))),
        (false, None) => {
            let tried = match text.rsplit_once('.') {
                Some((f, _)) => format!("'{text}' or '{f}'"),
                None => format!("'{text}'"),
            };
            Err(SpecError::new(
                SpecErrorKind::UnknownFilter,
                format!(
                    "connection '{text}': no filter instance named {tried}; instances: {}",
                    descriptors.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    }
}

/// Resolves a connection end split by [`split_reference`]: the named pin, or the filter's
/// next free pin of `dir`.
fn resolve(
    builder: &GraphBuilder,
    descriptors: &BTreeMap<String, Arc<FilterDescriptor>>,
    used: &mut BTreeSet<(String, usize)>,
    text: &str,
    filter: &str,
    pin: Option<&str>,
    dir: PinDirection,
) -> Result<PinId, SpecError> {
    let dir_word = match dir {
        PinDirection::In => "input",
        PinDirection::Out => "output",
    };
    let desc = &descriptors[filter];
    let idx = match pin {
        Some(p) => {
            let idx = desc
                .pin_index(p)
                .ok_or_else(|| unknown_pin(filter, &desc.name, p, desc))?;
            if desc.pins[idx].direction != dir {
                return Err(SpecError::new(
                    SpecErrorKind::UnknownPin,
                    format!(
                        "connection '{text}': pin '{p}' of '{filter}' is not an {dir_word} pin"
                    ),
                ));
            }
            idx
        }
        None => desc
            .pins
            .iter()
            .enumerate()
            .position(|(i, p)| p.direction == dir && !used.contains(&(filter.to_owned(), i)))
            .ok_or_else(|| {
                SpecError::new(
                    SpecErrorKind::UnknownPin,
                    format!(
                        "filter '{filter}' ({}) has no free {dir_word} pin left to connect",
                        desc.name
                    ),
                )
            })?,
    };
    used.insert((filter.to_owned(), idx));
    builder
        .pin(&format!("{filter}.{}", desc.pins[idx].name))
        .map_err(graph_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_memory_override_names_the_pin_and_the_allowed_words() {
        for (pipeline, pin) in [
            ("testsrc out.memory=bogus ! nullsink", "testsrc.out"),
            ("testsrc ! nullsink name=n in.memory=bogus", "n.in"),
        ] {
            let spec = GraphSpec::parse_pipeline(pipeline).expect("the pipeline parses");
            let err = build(spec).expect_err("memory=bogus is refused");
            assert_eq!(err.kind, SpecErrorKind::BadValue);
            assert!(
                err.message
                    .starts_with(&format!("pin '{pin}': memory 'bogus'")),
                "{err}"
            );
            for word in ["any", "system", "user", "paged", "nonpaged", "device"] {
                assert!(err.message.contains(word), "'{word}' missing in: {err}");
            }
        }
    }

    #[test]
    fn value_errors_carry_the_location_of_the_value() {
        let location = |pipeline: &str| {
            let spec = GraphSpec::parse_pipeline(pipeline).expect("the pipeline parses");
            build(spec).expect_err("the graph is refused").location
        };
        let framing = |field: &str| Some(SpecLocation::framing("s", "out", field));
        for (pipeline, expected) in [
            (
                "testsrc name=s frames=four ! nullsink",
                Some(SpecLocation::property("s", "frames")),
            ),
            (
                "testsrc name=s pattern=wavy ! nullsink",
                Some(SpecLocation::property("s", "pattern")),
            ),
            (
                "testsrc name=s sise=4 ! nullsink",
                Some(SpecLocation::property("s", "sise")),
            ),
            (
                "blur name=s ! nullsink",
                Some(SpecLocation::property("s", "type")),
            ),
            (
                "testsrc name=s out.memory=bogus ! nullsink",
                framing("memory"),
            ),
            (
                "testsrc name=s out.alignment=3 ! nullsink",
                framing("alignment"),
            ),
            ("testsrc name=s out.frames=0 ! nullsink", framing("frames")),
            (
                "testsrc name=s out.min_size=0 ! nullsink",
                framing("min_size"),
            ),
            (
                "testsrc name=s out.max_size=100 ! nullsink",
                framing("max_size"),
            ),
            (
                "testsrc name=s bogus.frames=2 ! nullsink",
                Some(SpecLocation {
                    filter: "s".into(),
                    keys: vec!["framing".into(), "bogus".into()],
                }),
            ),
            // Not about one value: no location.
            ("filesrc name=s ! nullsink", None),
            ("testsrc name=s ! nullsink name=s", None),
        ] {
            assert_eq!(location(pipeline), expected, "{pipeline}");
        }
    }
}
