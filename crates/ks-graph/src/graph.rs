//! Building and inspecting filter graphs: [`GraphBuilder`] adds filter instances and connects
//! output pins to input pins; [`GraphBuilder::build`] checks the whole graph and yields a
//! [`Graph`], which carries per-instance state (framing edits, allocator assignments, the KS
//! state and, from ACQUIRE on, the pipes' allocators).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ks_alloc::FramingEx;

use crate::error::GraphError;
use crate::model::{FilterDescriptor, FilterMode, PinDescriptor, PinDirection, check_framing};
use crate::props::{AllocatorRegistry, Assignment};
use crate::state::{Active, KsState};

/// A filter instance in a graph (index in insertion order).
///
/// ```
/// use std::sync::Arc;
/// use ks_graph::{FilterDescriptor, GraphBuilder};
/// let mut b = GraphBuilder::new();
/// let id = b.add_filter("src", Arc::new(FilterDescriptor::kernel("src")))?;
/// assert_eq!(id.index(), 0);
/// # Ok::<(), ks_graph::GraphError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterId {
    /// The graph's id ([`Filters::id`]): a filter of another graph is refused, not taken for
    /// this graph's filter with the same index.
    pub(crate) graph: u32,
    pub(crate) index: u32,
}

impl FilterId {
    /// The index of the filter in insertion order.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let app = g.filter("app")?;
    /// assert_eq!(app.index(), 1);
    /// assert_eq!(g.filter_name(app), "app");
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// A pin instance: its filter and the pin's index in the filter descriptor.
///
/// ```
/// use std::sync::Arc;
/// use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// let mut b = GraphBuilder::new();
/// b.add_filter("x", Arc::new(FilterDescriptor::kernel("x")
///     .with_pin(PinDescriptor::input("in")).with_pin(PinDescriptor::output("out"))))?;
/// let out = b.pin("x.out")?;
/// assert_eq!((out.filter().index(), out.index()), (0, 1));
/// # Ok::<(), ks_graph::GraphError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PinId {
    /// Its filter, which names the graph too.
    pub(crate) filter: FilterId,
    pub(crate) pin: u32,
}

impl PinId {
    /// The filter the pin belongs to.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let pin = g.pin("app.in")?;
    /// assert_eq!(pin.filter(), g.filter("app")?);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn filter(self) -> FilterId {
        self.filter
    }

    /// The pin's index in its filter descriptor's `pins`.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let pin = g.pin("app.in")?;
    /// assert_eq!(g.filter_descriptor(pin.filter()).pins[pin.index()].name, "in");
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn index(self) -> usize {
        self.pin as usize
    }
}

/// A connection from an output pin to an input pin.
///
/// ```
/// use std::sync::Arc;
/// use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// let mut b = GraphBuilder::new();
/// b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out"))))?;
/// b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in"))))?;
/// let c = b.connect("a.out", "b.in")?;
/// assert_eq!((c.from, c.to), (b.pin("a.out")?, b.pin("b.in")?));
/// # Ok::<(), ks_graph::GraphError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The output (source) pin.
    pub from: PinId,
    /// The input (sink) pin.
    pub to: PinId,
}

#[derive(Debug, Default)]
pub(crate) struct PinNode {
    pub(crate) peer: Option<PinId>,
    /// The instance's own framing after a KsEdit (behaviour 9); `None` = the descriptor's.
    pub(crate) edited: Option<FramingEx>,
    /// The allocator assigned through `KSPROPERTY_STREAM_ALLOCATOR`.
    pub(crate) assigned: Option<Assignment>,
    /// The frame-return callback that puts the pin in injection mode (behaviour 45).
    pub(crate) frame_return: Option<Arc<crate::runtime::inject::Injection>>,
}

#[derive(Debug)]
pub(crate) struct FilterNode {
    pub(crate) name: String,
    pub(crate) desc: Arc<FilterDescriptor>,
    pub(crate) pins: Vec<PinNode>,
}

/// Splits `"filter.pin"` at its last `.` (filter names may contain dots, pin names may not).
fn split_pin_ref(text: &str) -> Result<(&str, &str), GraphError> {
    match text.rsplit_once('.') {
        Some((f, p)) if !f.is_empty() && !p.is_empty() => Ok((f, p)),
        _ => Err(GraphError::BadPinName {
            text: text.to_owned(),
        }),
    }
}

/// Shared lookups over the filter table, used by both the builder and the graph.
#[derive(Debug)]
pub(crate) struct Filters {
    /// Unique per builder (and the graph it builds) in the process, carried by every
    /// [`FilterId`] and so every [`PinId`] (0 is never used).
    pub(crate) id: u32,
    pub(crate) nodes: Vec<FilterNode>,
    names: HashMap<String, FilterId>,
}

/// The id the next [`Filters`] gets.
static NEXT_GRAPH_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl Default for Filters {
    fn default() -> Filters {
        Filters {
            // Relaxed: only uniqueness matters (after 2³² builders the ids wrap, 0 skipped).
            id: loop {
                let id = NEXT_GRAPH_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if id != 0 {
                    break id;
                }
            },
            nodes: Vec::new(),
            names: HashMap::new(),
        }
    }
}

impl Filters {
    /// The id of this graph's filter with index `index`.
    pub(crate) fn filter_id(&self, index: usize) -> FilterId {
        FilterId {
            graph: self.id,
            index: index as u32,
        }
    }

    /// This graph's filter `id`; panics, naming the problem, if `id` is another graph's (for
    /// the accessors documented to panic on such an id).
    #[track_caller]
    pub(crate) fn filter_node(&self, id: FilterId) -> &FilterNode {
        assert!(
            id.graph == self.id,
            "filter #{} belongs to another graph (its ids are not this graph's)",
            id.index
        );
        &self.nodes[id.index()]
    }

    /// The id of pin `pi` of this graph's filter with index `fi`.
    pub(crate) fn pin_at(&self, fi: usize, pi: usize) -> PinId {
        self.pin_id(self.filter_id(fi), pi)
    }

    /// The id of pin `pin` of filter `filter` of this graph.
    pub(crate) fn pin_id(&self, filter: FilterId, pin: usize) -> PinId {
        debug_assert_eq!(filter.graph, self.id);
        PinId {
            filter,
            pin: pin as u32,
        }
    }

    fn filter(&self, name: &str) -> Result<FilterId, GraphError> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| GraphError::UnknownFilter {
                filter: name.to_owned(),
            })
    }

    fn pin(&self, text: &str) -> Result<PinId, GraphError> {
        let (f, p) = split_pin_ref(text)?;
        let filter = self.filter(f)?;
        let idx = self.nodes[filter.index()]
            .desc
            .pin_index(p)
            .ok_or_else(|| GraphError::UnknownPin {
                filter: f.to_owned(),
                pin: p.to_owned(),
            })?;
        Ok(self.pin_id(filter, idx))
    }

    pub(crate) fn check_pin(&self, pin: PinId) -> Result<(), GraphError> {
        if pin.filter.graph != self.id {
            return Err(GraphError::ForeignPin {
                filter: pin.filter.index,
                pin: pin.pin,
            });
        }
        let node = self
            .nodes
            .get(pin.filter.index())
            .ok_or_else(|| GraphError::UnknownFilter {
                filter: format!("#{}", pin.filter.index),
            })?;
        if pin.index() >= node.pins.len() {
            return Err(GraphError::UnknownPin {
                filter: node.name.clone(),
                pin: format!("#{}", pin.pin),
            });
        }
        Ok(())
    }

    /// Panics with [`check_pin`](Self::check_pin)'s message if `pin` is not of this graph
    /// (for the accessors documented to panic on such a pin).
    #[track_caller]
    pub(crate) fn expect_own(&self, pin: PinId) {
        if let Err(e) = self.check_pin(pin) {
            panic!("{e}");
        }
    }

    #[track_caller]
    pub(crate) fn pin_name(&self, pin: PinId) -> String {
        self.expect_own(pin);
        let f = &self.nodes[pin.filter.index()];
        format!("{}.{}", f.name, f.desc.pins[pin.index()].name)
    }

    #[track_caller]
    pub(crate) fn pin_desc(&self, pin: PinId) -> &PinDescriptor {
        self.expect_own(pin);
        &self.nodes[pin.filter.index()].desc.pins[pin.index()]
    }

    pub(crate) fn node(&self, pin: PinId) -> &PinNode {
        &self.nodes[pin.filter.index()].pins[pin.index()]
    }

    pub(crate) fn node_mut(&mut self, pin: PinId) -> &mut PinNode {
        &mut self.nodes[pin.filter.index()].pins[pin.index()]
    }

    fn connect(&mut self, from: PinId, to: PinId) -> Result<Connection, GraphError> {
        self.check_pin(from)?;
        self.check_pin(to)?;
        for (pin, expected) in [(from, PinDirection::Out), (to, PinDirection::In)] {
            let actual = self.pin_desc(pin).direction;
            if actual != expected {
                return Err(GraphError::WrongDirection {
                    pin: self.pin_name(pin),
                    expected,
                    actual,
                });
            }
        }
        if from.filter == to.filter {
            return Err(GraphError::SelfConnection {
                filter: self.nodes[from.filter.index()].name.clone(),
            });
        }
        for pin in [from, to] {
            if let Some(peer) = self.node(pin).peer {
                return Err(GraphError::AlreadyConnected {
                    pin: self.pin_name(pin),
                    peer: self.pin_name(peer),
                });
            }
        }
        self.node_mut(from).peer = Some(to);
        self.node_mut(to).peer = Some(from);
        Ok(Connection { from, to })
    }

    /// Every pin marked required is connected.
    fn check_required(&self) -> Result<(), GraphError> {
        for (fi, f) in self.nodes.iter().enumerate() {
            for (pi, p) in f.desc.pins.iter().enumerate() {
                if p.required && f.pins[pi].peer.is_none() {
                    return Err(GraphError::Unconnected {
                        pin: self.pin_name(self.pin_at(fi, pi)),
                        direction: p.direction,
                    });
                }
            }
        }
        Ok(())
    }

    /// Kahn's algorithm over filter-level edges. On a cycle, reports one cycle found by
    /// walking upstream from a filter that was never freed.
    fn topological_order(&self, connections: &[Connection]) -> Result<Vec<FilterId>, GraphError> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for c in connections {
            indegree[c.to.filter.index()] += 1;
            out[c.from.filter.index()].push(c.to.filter.index());
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        ready.reverse(); // pop() then yields filters in insertion order
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(self.filter_id(i));
            for &j in out[i].iter().rev() {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push(j);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Every remaining filter has an upstream filter that also remains; walking upstream
        // must revisit one, which closes a cycle.
        let mut upstream: Vec<Option<usize>> = vec![None; n];
        for c in connections {
            let (a, b) = (c.from.filter.index(), c.to.filter.index());
            if indegree[a] > 0 && indegree[b] > 0 {
                upstream[b] = Some(a);
            }
        }
        let start = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
        let mut seen = vec![usize::MAX; n];
        let mut path = Vec::new();
        let mut cur = start;
        while seen[cur] == usize::MAX {
            seen[cur] = path.len();
            path.push(cur);
            match upstream[cur] {
                Some(u) => cur = u,
                None => break,
            }
        }
        let from = if seen[cur] != usize::MAX {
            seen[cur]
        } else {
            0
        };
        let mut cycle: Vec<String> = path[from..]
            .iter()
            .rev()
            .map(|&i| self.nodes[i].name.clone())
            .collect();
        if let Some(first) = cycle.first().cloned() {
            cycle.push(first);
        }
        Err(GraphError::Cycle { filters: cycle })
    }
}

/// Builds a [`Graph`]: add filter instances, connect pins, then [`build`](Self::build).
///
/// Errors are reported at the call that causes them (unknown names, wrong direction, a pin
/// already connected, self-connection) or by `build` for whole-graph rules (cycles, required
/// pins left unconnected).
///
/// ```
/// use std::sync::Arc;
/// use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// let src = Arc::new(FilterDescriptor::kernel("source").with_pin(PinDescriptor::output("out").required()));
/// let sink = Arc::new(FilterDescriptor::user("sink").with_pin(PinDescriptor::input("in")));
/// let mut b = GraphBuilder::new();
/// b.add_filter("cam", src)?;
/// b.add_filter("app", sink)?;
/// b.connect("cam.out", "app.in")?;
/// let graph = b.build()?;
/// assert_eq!(graph.connections().len(), 1);
/// # Ok::<(), ks_graph::GraphError>(())
/// ```
#[derive(Debug, Default)]
pub struct GraphBuilder {
    filters: Filters,
    connections: Vec<Connection>,
}

impl GraphBuilder {
    /// An empty builder.
    ///
    /// ```
    /// let g = ks_graph::GraphBuilder::new().build()?;
    /// assert_eq!(g.filter_count(), 0);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// Adds an instance of `descriptor` named `name` (unique in the graph; the descriptor is
    /// validated with [`FilterDescriptor::validate`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_graph::{FilterDescriptor, GraphBuilder, GraphError};
    /// let src = Arc::new(FilterDescriptor::kernel("src"));
    /// let mut b = GraphBuilder::new();
    /// let first = b.add_filter("s1", src.clone())?;
    /// let second = b.add_filter("s2", src.clone())?; // a second instance of the same type
    /// assert_ne!(first, second);
    /// assert!(matches!(b.add_filter("s1", src), Err(GraphError::DuplicateFilter { .. })));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::DuplicateFilter`] for a name already used; the errors of
    /// [`FilterDescriptor::validate`] for a malformed descriptor.
    pub fn add_filter(
        &mut self,
        name: impl Into<String>,
        descriptor: Arc<FilterDescriptor>,
    ) -> Result<FilterId, GraphError> {
        let name = name.into();
        if name.is_empty() {
            return Err(GraphError::InvalidDescriptor {
                filter: descriptor.name.clone(),
                detail: "the instance name is empty".into(),
            });
        }
        if self.filters.names.contains_key(&name) {
            return Err(GraphError::DuplicateFilter { filter: name });
        }
        descriptor.validate()?;
        let id = self.filters.filter_id(self.filters.nodes.len());
        let pins = descriptor.pins.iter().map(|_| PinNode::default()).collect();
        self.filters.names.insert(name.clone(), id);
        self.filters.nodes.push(FilterNode {
            name,
            desc: descriptor,
            pins,
        });
        Ok(id)
    }

    /// The pin named `"filter.pin"`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_graph::{FilterDescriptor, GraphBuilder, GraphError, PinDescriptor};
    /// let mut b = GraphBuilder::new();
    /// b.add_filter("src", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"))))?;
    /// assert_eq!(b.pin("src.out")?.index(), 0);
    /// assert!(matches!(b.pin("src.nope"), Err(GraphError::UnknownPin { .. })));
    /// assert!(matches!(b.pin("src"), Err(GraphError::BadPinName { .. })));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn pin(&self, name: &str) -> Result<PinId, GraphError> {
        self.filters.pin(name)
    }

    /// Connects output pin `from` to input pin `to`, both given as `"filter.pin"`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_graph::{FilterDescriptor, GraphBuilder, GraphError, PinDescriptor};
    /// let mut b = GraphBuilder::new();
    /// b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out"))))?;
    /// b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in"))))?;
    /// assert!(matches!(b.connect("b.in", "a.out"), Err(GraphError::WrongDirection { .. })));
    /// b.connect("a.out", "b.in")?;
    /// assert!(matches!(b.connect("a.out", "b.in"), Err(GraphError::AlreadyConnected { .. })));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::BadPinName`], [`GraphError::UnknownFilter`], [`GraphError::UnknownPin`],
    /// [`GraphError::WrongDirection`], [`GraphError::AlreadyConnected`] or
    /// [`GraphError::SelfConnection`], naming the pins.
    pub fn connect(&mut self, from: &str, to: &str) -> Result<Connection, GraphError> {
        let from = self.filters.pin(from)?;
        let to = self.filters.pin(to)?;
        self.connect_pins(from, to)
    }

    /// Connects output pin `from` to input pin `to`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
    /// let mut b = GraphBuilder::new();
    /// b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out"))))?;
    /// b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in"))))?;
    /// let (from, to) = (b.pin("a.out")?, b.pin("b.in")?);
    /// assert_eq!(b.connect_pins(from, to)?.to, to);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect), except the name errors.
    pub fn connect_pins(&mut self, from: PinId, to: PinId) -> Result<Connection, GraphError> {
        let c = self.filters.connect(from, to)?;
        self.connections.push(c);
        Ok(c)
    }

    /// Checks the graph (no cycle, every required pin connected) and returns it, in STOP.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_graph::{FilterDescriptor, GraphBuilder, GraphError, KsState, PinDescriptor};
    /// let mut b = GraphBuilder::new();
    /// b.add_filter("src", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").required())))?;
    /// assert!(matches!(b.build(), Err(GraphError::Unconnected { .. })));
    /// let g = GraphBuilder::new().build()?;
    /// assert_eq!(g.state(), KsState::Stop);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::Cycle`] naming the filters on the cycle; [`GraphError::Unconnected`]
    /// naming a required pin left unconnected.
    pub fn build(self) -> Result<Graph, GraphError> {
        let topo = self.filters.topological_order(&self.connections)?;
        self.filters.check_required()?;
        Ok(Graph {
            filters: self.filters,
            connections: self.connections,
            topo,
            state: KsState::Stop,
            active: None,
            registry: AllocatorRegistry::default(),
        })
    }
}

/// A checked filter graph (acyclic; required pins connected when built).
///
/// The graph owns per-instance state: framing edits made in STOP
/// ([`set_pin_framing`](Self::set_pin_framing), behaviour 9), allocator assignments
/// (`KSPROPERTY_STREAM_ALLOCATOR`, see [`crate::props`]), the KS state
/// ([`set_state`](Self::set_state)) and, from ACQUIRE on, the allocators of the negotiated
/// [`AllocationPlan`](crate::AllocationPlan).
///
/// ```
/// use std::sync::Arc;
/// use ks_graph::{negotiate, FilterDescriptor, GraphBuilder, KsState, PinDescriptor};
/// let mut b = GraphBuilder::new();
/// b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(PinDescriptor::output("out"))))?;
/// b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// b.connect("cam.out", "app.in")?;
/// let mut g = b.build()?;
/// assert_eq!(negotiate(&g)?.pipes.len(), 1);
/// g.set_state(KsState::Acquire)?; // creates the pipe's allocator
/// assert_eq!(g.allocators().len(), 1);
/// g.set_state(KsState::Stop)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Graph {
    pub(crate) filters: Filters,
    pub(crate) connections: Vec<Connection>,
    pub(crate) topo: Vec<FilterId>,
    pub(crate) state: KsState,
    pub(crate) active: Option<Active>,
    pub(crate) registry: AllocatorRegistry,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("filters", &self.filters.nodes.len())
            .field("connections", &self.connections.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Graph {
    /// Number of filter instances.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.filter_count(), 2);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn filter_count(&self) -> usize {
        self.filters.nodes.len()
    }

    /// Every filter instance, in insertion order.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let names: Vec<&str> = g.filter_ids().map(|f| g.filter_name(f)).collect();
    /// assert_eq!(names, ["cam", "app"]);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn filter_ids(&self) -> impl ExactSizeIterator<Item = FilterId> + '_ {
        (0..self.filters.nodes.len()).map(|i| self.filters.filter_id(i))
    }

    /// The filter instance named `name`.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.filter("app")?.index(), 1);
    /// assert!(matches!(g.filter("nope"), Err(GraphError::UnknownFilter { .. })));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::UnknownFilter`].
    pub fn filter(&self, name: &str) -> Result<FilterId, GraphError> {
        self.filters.filter(name)
    }

    /// The instance name of a filter.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.filter_name(g.filter("cam")?), "cam");
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `id` does not come from this graph.
    #[track_caller]
    pub fn filter_name(&self, id: FilterId) -> &str {
        &self.filters.filter_node(id).name
    }

    /// The descriptor of a filter instance.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.filter_descriptor(g.filter("cam")?).name, "src"); // the type's name
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `id` does not come from this graph.
    #[track_caller]
    pub fn filter_descriptor(&self, id: FilterId) -> &Arc<FilterDescriptor> {
        &self.filters.filter_node(id).desc
    }

    /// The mode of a filter instance.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.filter_mode(g.filter("app")?), FilterMode::User);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `id` does not come from this graph.
    #[track_caller]
    pub fn filter_mode(&self, id: FilterId) -> FilterMode {
        self.filters.filter_node(id).desc.mode
    }

    /// The pins of a filter instance, in descriptor order.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let pins: Vec<String> = g.pins(g.filter("cam")?).map(|p| g.pin_name(p)).collect();
    /// assert_eq!(pins, ["cam.out"]);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `id` does not come from this graph.
    #[track_caller]
    pub fn pins(&self, id: FilterId) -> impl ExactSizeIterator<Item = PinId> + '_ {
        let n = self.filters.filter_node(id).pins.len();
        (0..n).map(move |i| self.filters.pin_id(id, i))
    }

    /// The pin named `"filter.pin"`.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let pin = g.pin("app.in")?;
    /// assert_eq!(g.pin_name(pin), "app.in");
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::BadPinName`], [`GraphError::UnknownFilter`] or [`GraphError::UnknownPin`].
    pub fn pin(&self, name: &str) -> Result<PinId, GraphError> {
        self.filters.pin(name)
    }

    /// `"filter.pin"` for a pin.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.pin_name(g.pin("cam.out")?), "cam.out");
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `pin` does not come from this graph.
    pub fn pin_name(&self, pin: PinId) -> String {
        self.filters.pin_name(pin)
    }

    /// The descriptor of a pin.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.pin_descriptor(g.pin("app.in")?).direction, PinDirection::In);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `pin` does not come from this graph.
    pub fn pin_descriptor(&self, pin: PinId) -> &PinDescriptor {
        self.filters.pin_desc(pin)
    }

    /// The pin connected to `pin`, if any.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert_eq!(g.peer(g.pin("cam.out")?), Some(g.pin("app.in")?));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `pin` does not come from this graph.
    #[track_caller]
    pub fn peer(&self, pin: PinId) -> Option<PinId> {
        self.filters.expect_own(pin);
        self.filters.node(pin).peer
    }

    /// Every connection, in the order made.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let c = g.connections()[0];
    /// assert_eq!((g.pin_name(c.from), g.pin_name(c.to)), ("cam.out".into(), "app.in".into()));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The filters in an order where every filter comes after the filters feeding it.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let order: Vec<&str> = g.topological_order().iter().map(|&f| g.filter_name(f)).collect();
    /// assert_eq!(order, ["cam", "app"]);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    pub fn topological_order(&self) -> &[FilterId] {
        &self.topo
    }

    /// The pin instance's current framing: its KsEdit replacement if one was made, otherwise
    /// the descriptor's (behaviour 9). `None` = the pin does not support framing.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert!(g.pin_framing(g.pin("cam.out")?).is_none()); // declared none
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Panics
    /// If `pin` does not come from this graph.
    pub fn pin_framing(&self, pin: PinId) -> Option<&FramingEx> {
        self.filters
            .node(pin)
            .edited
            .as_ref()
            .or(self.filters.pin_desc(pin).framing.as_ref())
    }

    pub(crate) fn require_stop(&self, operation: &'static str) -> Result<(), GraphError> {
        if self.state != KsState::Stop {
            return Err(GraphError::WrongState {
                operation,
                state: self.state,
                required: KsState::Stop,
            });
        }
        Ok(())
    }

    /// Replaces this pin instance's framing (KsEdit of `AllocatorFraming`, behaviour 9).
    /// Other instances of the same filter descriptor keep the descriptor's framing.
    ///
    /// Only legal in STOP (the framing feeds negotiation at STOP → ACQUIRE):
    /// [`GraphError::WrongState`] otherwise. A malformed framing is
    /// [`GraphError::InvalidFraming`].
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// let pin = g.pin("cam.out")?;
    /// let fx = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 6, Alignment::BYTE, 1024, 1024);
    /// g.set_pin_framing(pin, fx)?;
    /// assert_eq!(g.pin_framing(pin).unwrap().items[0].frames, 6);
    /// assert_eq!(negotiate(&g).unwrap().pipes[0].framing.frames, 6);
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    #[doc(alias = "KsEdit")]
    pub fn set_pin_framing(&mut self, pin: PinId, framing: FramingEx) -> Result<(), GraphError> {
        self.filters.check_pin(pin)?;
        self.require_stop("editing a pin's framing")?;
        check_framing(&framing).map_err(|detail| GraphError::InvalidFraming {
            pin: self.filters.pin_name(pin),
            detail,
        })?;
        self.filters.node_mut(pin).edited = Some(framing);
        Ok(())
    }

    /// Drops this pin instance's framing edit: queries return the descriptor's framing again.
    /// Only legal in STOP.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// let pin = g.pin("cam.out")?;
    /// g.set_pin_framing(pin, FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 6, Alignment::BYTE, 0, 0))?;
    /// g.reset_pin_framing(pin)?;
    /// assert!(g.pin_framing(pin).is_none());
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::WrongState`] outside STOP.
    pub fn reset_pin_framing(&mut self, pin: PinId) -> Result<(), GraphError> {
        self.filters.check_pin(pin)?;
        self.require_stop("resetting a pin's framing")?;
        self.filters.node_mut(pin).edited = None;
        Ok(())
    }

    /// Removes the connection of `pin` (either end). Any allocator assigned to either pin
    /// through `KSPROPERTY_STREAM_ALLOCATOR` is released (behaviour 46). Only legal in STOP.
    /// The graph may then have a required pin unconnected; STOP → ACQUIRE reports it.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// let c = g.disconnect(g.pin("app.in")?)?;
    /// assert_eq!(g.pin_name(c.from), "cam.out");
    /// assert!(g.peer(c.from).is_none() && g.connections().is_empty());
    /// assert!(matches!(g.disconnect(c.from), Err(GraphError::NotConnected { .. })));
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::NotConnected`]; [`GraphError::WrongState`] outside STOP.
    pub fn disconnect(&mut self, pin: PinId) -> Result<Connection, GraphError> {
        self.filters.check_pin(pin)?;
        self.require_stop("disconnecting a pin")?;
        let peer = self
            .filters
            .node(pin)
            .peer
            .ok_or_else(|| GraphError::NotConnected {
                pin: self.filters.pin_name(pin),
            })?;
        for p in [pin, peer] {
            let node = self.filters.node_mut(p);
            node.peer = None;
            node.assigned = None; // drops the reference (behaviour 46)
        }
        let pos = self
            .connections
            .iter()
            .position(|c| c.from == pin || c.to == pin)
            .ok_or_else(|| GraphError::NotConnected {
                pin: self.filters.pin_name(pin),
            })?;
        Ok(self.connections.remove(pos))
    }

    /// Checks the rules `build` checked that later edits can break (required pins connected).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::user("dst").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("app", Arc::new(dst))?;
    /// # b.connect("cam.out", "app.in")?;
    /// # #[allow(unused_mut)] let mut g = b.build()?;
    /// assert!(g.validate().is_ok());
    /// # Ok::<(), ks_graph::GraphError>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::Unconnected`] naming a required pin left unconnected.
    pub fn validate(&self) -> Result<(), GraphError> {
        self.filters.check_required()
    }
}
