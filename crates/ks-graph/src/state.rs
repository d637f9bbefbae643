//! KS states of a graph: STOP → ACQUIRE → PAUSE → RUN and back (`KSSTATE`).
//!
//! * **STOP → ACQUIRE** negotiates the [`AllocationPlan`] and creates every pipe's allocator
//!   (the kernel pipe section is created at this transition, ks-spec §4.5). A vendor's
//!   initialize runs only for vendors the plan chose (behaviour 38). If any creation fails, the
//!   transition fails with that status and every allocator created so far is closed: nothing
//!   leaks, the graph stays in STOP. Each allocator is registered in the graph's allocator
//!   registry and assigned to its pipe's root (source) pin, as a graph manager would do with
//!   `KSPROPERTY_STREAM_ALLOCATOR`, unless that pin does not accept an allocator
//!   (`PinDescriptor::with_accepts_allocator(false)`). A client's allocator already assigned
//!   to a root pin serves its pipe instead, if it can ([`StateError::ClientAllocator`] if
//!   not). One client allocator serves one pipe: assigned to the root pins of two pipes (the
//!   source's and a copy transform's output, say), it is refused with
//!   [`StateError::ClientAllocator`] (`STATUS_INVALID_PARAMETER`) naming both pins, since two
//!   requesters drawing on one pool could starve each other (the upstream pipe holds every
//!   frame, the downstream one never gets the frame that would release them). Like any
//!   refusal of a client's allocator, this creates nothing: the graph stays in STOP and the
//!   allocator stays open and assigned.
//! * **ACQUIRE → STOP** releases those assignments and closes the allocators the graph
//!   created (pending requests are cancelled; a vendor's delete runs after its last frame
//!   comes back — the allocator's own close semantics). A client's allocator stays open and
//!   assigned. A vendor `delete` that panics in one close stops nothing: every allocator is
//!   still closed and unregistered, the graph reaches STOP, and then the panic resumes toward
//!   the caller of `set_state` (a vendor bug is not a KS status, so it is not turned into a
//!   [`StateError`]).
//! * ACQUIRE ↔ PAUSE ↔ RUN change only the state.
//!
//! A request to jump several states walks through the intermediate ones, like KS.

use std::fmt;

use ks_alloc::{Allocator, Frame, Memory};

use crate::error::{DeliveryError, StateError};
use crate::graph::{Graph, PinId};
use crate::model::FilterMode;
use crate::negotiate::negotiate;
use crate::plan::{AllocationPlan, MemoryKind};
use crate::props::AllocatorHandle;

/// The KS streaming state (`KSSTATE`). States are ordered STOP < ACQUIRE < PAUSE < RUN.
///
/// ```
/// use ks_graph::KsState;
/// assert!(KsState::Stop < KsState::Run);
/// assert_eq!(KsState::Acquire as u32, 1); // the KSSTATE value
/// assert_eq!(KsState::Pause.to_string(), "PAUSE");
/// ```
#[doc(alias = "KSSTATE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KsState {
    /// `KSSTATE_STOP` (0): no resources.
    Stop = 0,
    /// `KSSTATE_ACQUIRE` (1): allocators exist.
    Acquire = 1,
    /// `KSSTATE_PAUSE` (2): ready to stream.
    Pause = 2,
    /// `KSSTATE_RUN` (3): streaming.
    Run = 3,
}

impl KsState {
    fn step_towards(self, target: KsState) -> KsState {
        use KsState::*;
        match (self as u8).cmp(&(target as u8)) {
            std::cmp::Ordering::Less => [Acquire, Pause, Run][self as usize],
            std::cmp::Ordering::Greater => [Stop, Acquire, Pause][self as usize - 1],
            std::cmp::Ordering::Equal => self,
        }
    }
}

impl fmt::Display for KsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KsState::Stop => "STOP",
            KsState::Acquire => "ACQUIRE",
            KsState::Pause => "PAUSE",
            KsState::Run => "RUN",
        })
    }
}

/// A pipe's live allocator.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
/// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
/// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
/// # b.add_filter("app", Arc::new(app))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let mut g = b.build()?;
/// g.set_state(KsState::Acquire)?;
/// let pa = &g.allocators()[0];
/// assert_eq!(pa.pipe, 0);
/// // Registered in the graph and assigned to the pipe's root pin.
/// assert_eq!(g.assigned_allocator(g.pin("cam.out")?).map(|a| a.0), Some(pa.handle));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PipeAllocator {
    /// The pipe's index in the plan.
    pub pipe: usize,
    /// The allocator object.
    pub allocator: Allocator,
    /// Its handle in the graph's allocator registry.
    pub handle: AllocatorHandle,
    /// The client's own allocator, installed on the pipe's root pin with
    /// `KSPROPERTY_STREAM_ALLOCATOR` (behaviour 46) before ACQUIRE: the graph uses it and
    /// leaves it as it was at STOP (open, still assigned), rather than creating one.
    pub client_owned: bool,
}

impl fmt::Debug for PipeAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeAllocator")
            .field("pipe", &self.pipe)
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// What exists from ACQUIRE on.
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) plan: AllocationPlan,
    pub(crate) allocators: Vec<PipeAllocator>,
}

/// Whether a client's allocator can serve `pipe`: open, frames at least as large as the
/// pipe's and at least as many, alignment at least as strict, and memory that meets what the
/// pipe's pins require (`MergedFraming::required_memory`: USER on a user pipe, behaviour 40;
/// non-paged or user memory also serve paged; any host memory serves the wildcard). Device
/// memory only comes from the vendor allocator negotiation chose, never from a client's.
fn fits(a: &Allocator, pipe: &crate::PipePlan) -> Result<(), ks_alloc::Status> {
    let need = pipe.allocator_framing();
    let have = a.framing();
    let required = pipe.framing.required_memory;
    let why = if a.is_closed() {
        Some("it is closed".to_owned())
    } else if have.frame_size < need.frame_size {
        Some(format!(
            "its frames are {} bytes, the pipe's {}",
            have.frame_size, need.frame_size
        ))
    } else if have.frames < need.frames {
        Some(format!(
            "it holds {} frames, the pipe needs {}",
            have.frames, need.frames
        ))
    } else if have.alignment < need.alignment {
        Some(format!(
            "it aligns frames to {} bytes, the pipe needs {}",
            have.alignment.bytes(),
            need.alignment.bytes()
        ))
    } else if !crate::negotiate::host_memory_meets(a.memory(), required) {
        Some(format!(
            "its memory is {:?}, which does not meet the memory the pipe requires, {required}{}",
            a.memory(),
            if pipe.allocator.memory == MemoryKind::Device {
                " (device memory: only the pipe's vendor allocator serves it)"
            } else {
                ""
            }
        ))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ks_alloc::Status::InvalidParameter(
            format!(
                "the allocator assigned to '{}' (KSPROPERTY_STREAM_ALLOCATOR) cannot serve pipe {}: {why}",
                pipe.pins[0], pipe.id
            )
            .into(),
        )),
    }
}

/// The refusal of one client allocator assigned to the root pins of two pipes, `first` and
/// `second` (policy, docs/negotiation.md §5): each pipe's frame count is the bound that keeps
/// its circuit moving, and one pool shared by two requesters gives neither its own frames.
/// The pipe upstream can hold every frame while the pipe downstream, which must take frames
/// to release the upstream ones (a copy transform), waits forever.
fn shared_by_two_pipes(first: &crate::PipePlan, second: &crate::PipePlan) -> ks_alloc::Status {
    ks_alloc::Status::InvalidParameter(
        format!(
            "the allocator assigned to '{}' (KSPROPERTY_STREAM_ALLOCATOR) is also assigned to \
             '{}', the root pin of pipe {}: an allocator serves one pipe (two pipes drawing on \
             one pool could starve each other and never move)",
            second.pins[0], first.pins[0], first.id
        )
        .into(),
    )
}

/// Records in `pipe`'s plan that the client's allocator `a`, assigned to its root pin, serves
/// it: the negotiated choice becomes a rejected candidate (placed first, with
/// [`RejectCode::ClientAllocator`](crate::plan::RejectCode::ClientAllocator)).
fn client_serves(pipe: &mut crate::PipePlan, a: &Allocator) {
    use crate::plan::{AllocatorChoice, AllocatorKind, RejectCode, Rejection};
    let root = pipe.pins[0].clone();
    let negotiated = std::mem::replace(
        &mut pipe.allocator,
        AllocatorChoice {
            kind: AllocatorKind::Client,
            name: a.name().to_owned(),
            memory: MemoryKind::from(a.memory()),
            pin: root.clone(),
            pin_id: pipe.pin_ids[0],
            vendor: None,
        },
    );
    let reason = format!(
        "the client's allocator '{}' assigned to '{root}' (KSPROPERTY_STREAM_ALLOCATOR) serves \
         the pipe instead",
        a.name()
    );
    pipe.rejected.insert(
        0,
        Rejection {
            pin: (negotiated.kind == AllocatorKind::Vendor).then_some(negotiated.pin),
            candidate: negotiated.name,
            kind: negotiated.kind,
            reason,
            codes: vec![RejectCode::ClientAllocator],
        },
    );
}

fn memory_of(kind: MemoryKind) -> Memory {
    match kind {
        MemoryKind::Paged => Memory::Paged,
        MemoryKind::User => Memory::User,
        // Device memory only ever comes from a vendor allocator; non-paged otherwise.
        MemoryKind::NonPaged | MemoryKind::Device => Memory::NonPaged,
    }
}

impl Graph {
    /// The current state.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// assert_eq!(g.state(), KsState::Stop);
    /// g.set_state(KsState::Run)?;
    /// assert_eq!(g.state(), KsState::Run);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self) -> KsState {
        self.state
    }

    /// Moves the graph to `target`, one state at a time (STOP → ACQUIRE → PAUSE → RUN or
    /// back). On failure the graph stays in the last state reached.
    ///
    /// # Errors
    /// At STOP → ACQUIRE: [`StateError::Graph`] (a required pin unconnected),
    /// [`StateError::Negotiation`], [`StateError::ClientAllocator`] when a client's allocator
    /// assigned to a root pin cannot serve its pipe or is assigned to the root pins of two
    /// pipes (nothing is created), or [`StateError::Allocator`] with the
    /// failing allocator's status (a vendor initialize failure, for example); every
    /// allocator already created is closed first.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// g.set_state(KsState::Pause)?; // walks through ACQUIRE: allocators are created
    /// assert_eq!(g.allocators().len(), 1);
    /// g.set_state(KsState::Stop)?; // and closed again
    /// assert!(g.allocators().is_empty() && g.plan().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If a vendor's `delete` panics while ACQUIRE → STOP closes its allocator (or one
    /// created so far, when ACQUIRE fails): the panic resumes once every allocator is closed
    /// and the graph is in STOP.
    #[doc(alias = "KSPROPERTY_CONNECTION_STATE")]
    pub fn set_state(&mut self, target: KsState) -> Result<(), StateError> {
        while self.state != target {
            let next = self.state.step_towards(target);
            match (self.state, next) {
                (KsState::Stop, KsState::Acquire) => self.acquire()?,
                (KsState::Acquire, KsState::Stop) => {
                    if let Some(p) = self.release() {
                        // Every allocator was closed and the graph's state cleared all the
                        // same: it is in STOP, and the panic reaches the caller.
                        self.state = KsState::Stop;
                        std::panic::resume_unwind(p);
                    }
                }
                _ => {}
            }
            self.state = next;
        }
        Ok(())
    }

    fn acquire(&mut self) -> Result<(), StateError> {
        self.validate()?;
        let mut plan = negotiate(self)?;
        // A client's allocator on a pipe's root pin is the one the pipe must use (behaviour
        // 46), if it can serve the pipe's framing, and no other pipe's.
        let mut clients: Vec<Option<(AllocatorHandle, Allocator)>> = Vec::new();
        for pipe in &plan.pipes {
            let client = self
                .assigned_allocator(pipe.pin_ids[0])
                .map(|(h, a)| (h, a.clone()));
            if let Some((_, a)) = &client {
                let earlier = plan
                    .pipes
                    .iter()
                    .zip(&clients)
                    .find(|(_, c)| c.as_ref().is_some_and(|(_, other)| other.same(a)));
                if let Some((first, _)) = earlier {
                    return Err(StateError::ClientAllocator {
                        pipe: pipe.id,
                        allocator: a.name().to_owned(),
                        status: shared_by_two_pipes(first, pipe),
                    });
                }
                if let Err(status) = fits(a, pipe) {
                    return Err(StateError::ClientAllocator {
                        pipe: pipe.id,
                        allocator: a.name().to_owned(),
                        status,
                    });
                }
            }
            clients.push(client);
        }
        let mut created: Vec<Allocator> = Vec::with_capacity(plan.pipes.len());
        for (pipe, client) in plan.pipes.iter().zip(&clients) {
            if let Some((_, a)) = client {
                created.push(a.clone());
                continue;
            }
            let framing = pipe.allocator_framing();
            // Named after the pin that owns it, for starvation reports and diagnostics.
            let builder = Allocator::builder(&framing)
                .name(format!("{} ({})", pipe.allocator.pin, pipe.allocator.name));
            let made = match &pipe.allocator.vendor {
                Some(v) => builder.vendor(v.allocator.clone()).build(),
                None => builder.memory(memory_of(pipe.allocator.memory)).build(),
            };
            match made {
                Ok(a) => created.push(a),
                Err(status) => {
                    let ours = created.iter().zip(&clients).filter(|(_, c)| c.is_none());
                    // Each one closed even if a vendor's `delete` panics; then the first
                    // panic resumes (see `release`).
                    let mut first = None;
                    for (a, _) in ours {
                        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            a.close();
                        }));
                        if let Err(p) = closed {
                            first.get_or_insert(p);
                        }
                    }
                    if let Some(p) = first {
                        std::panic::resume_unwind(p);
                    }
                    return Err(StateError::Allocator {
                        pipe: pipe.id,
                        allocator: pipe.allocator.name.clone(),
                        status,
                    });
                }
            }
        }
        // The plan names the allocator that serves each pipe: a client's replaces the
        // negotiated choice, which moves to the rejected candidates with the reason.
        for (pipe, client) in plan.pipes.iter_mut().zip(&clients) {
            if let Some((_, a)) = client {
                client_serves(pipe, a);
            }
        }
        let mut allocators = Vec::with_capacity(created.len());
        for ((pipe, allocator), client) in plan.pipes.iter().zip(created).zip(&clients) {
            let (handle, client_owned) = match client {
                Some((h, _)) => (*h, true),
                None => (self.registry.insert(allocator.clone()), false),
            };
            allocators.push(PipeAllocator {
                pipe: pipe.id,
                allocator,
                handle,
                client_owned,
            });
        }
        let mut failure = None;
        for (pipe, pa) in plan.pipes.iter().zip(&allocators) {
            let root = pipe.pin_ids[0];
            if !pa.client_owned && self.pin_descriptor(root).accepts_allocator {
                // The root pin is where frames enter the pipe: the source pin that must use
                // this allocator. The handle was just registered, so this does not fail; if
                // it ever did, everything created is released below.
                if let Err(status) = self.assign_unchecked(root, Some(pa.handle)) {
                    failure = Some(StateError::Allocator {
                        pipe: pipe.id,
                        allocator: pipe.allocator.name.clone(),
                        status,
                    });
                    break;
                }
            }
        }
        tracing::debug!(pipes = plan.pipes.len(), "graph acquired its allocators");
        self.active = Some(Active { plan, allocators });
        if let Some(e) = failure {
            if let Some(p) = self.release() {
                std::panic::resume_unwind(p);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Releases every assignment and closes every allocator the graph created. A vendor
    /// `delete` that panics in a close (a bug in the vendor, not a status: no `StateError`
    /// stands for it) does not stop the others: every allocator is closed and unregistered,
    /// and the first panic is returned, for the caller to resume once the graph's state is
    /// consistent (STOP, nothing assigned, nothing registered).
    #[must_use = "a vendor panic to resume"]
    fn release(&mut self) -> Option<Box<dyn std::any::Any + Send + 'static>> {
        let active = self.active.take()?;
        let mut first = None;
        for pa in &active.allocators {
            if pa.client_owned {
                // The client's: it stays open and assigned, for the next ACQUIRE too.
                continue;
            }
            for f in &mut self.filters.nodes {
                for p in &mut f.pins {
                    if p.assigned.as_ref().is_some_and(|a| a.handle == pa.handle) {
                        p.assigned = None;
                    }
                }
            }
            self.registry.remove(pa.handle);
            let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pa.allocator.close();
            }));
            if let Err(p) = closed {
                first.get_or_insert(p);
            }
        }
        first
    }

    /// The negotiated plan (from ACQUIRE on; `None` in STOP).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// assert!(g.plan().is_none());
    /// g.set_state(KsState::Acquire)?;
    /// assert_eq!(g.plan().unwrap().pipes[0].pins, ["cam.out", "enc.in"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan(&self) -> Option<&AllocationPlan> {
        self.active.as_ref().map(|a| &a.plan)
    }

    /// The pipes' allocators (empty in STOP), in plan order.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// g.set_state(KsState::Acquire)?;
    /// let frame = g.allocators()[0].allocator.try_allocate()?;
    /// assert_eq!(frame.len(), 4096); // the default frame size: one page
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocators(&self) -> &[PipeAllocator] {
        self.active
            .as_ref()
            .map(|a| a.allocators.as_slice())
            .unwrap_or(&[])
    }

    /// The allocator serving the pipe `pin` belongs to (from ACQUIRE on; `None` for a pin of
    /// another graph).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// let enc = g.pin("enc.in")?;
    /// assert!(g.pipe_allocator(enc).is_none()); // STOP
    /// g.set_state(KsState::Acquire)?;
    /// assert_eq!(g.pipe_allocator(enc).unwrap().framing().frames, 2); // the default count
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pipe_allocator(&self, pin: PinId) -> Option<&Allocator> {
        let active = self.active.as_ref()?;
        let pipe = active.plan.pipe_of(pin)?;
        active.allocators.get(pipe.id).map(|a| &a.allocator)
    }

    /// The delivery rule (behaviour 40): a frame in kernel-side memory (non-paged, paged or
    /// device memory) is never delivered to a pin of a user-mode filter. Runtimes call this
    /// (or [`check_frame_delivery`](Self::check_frame_delivery)) before handing a frame to
    /// `to`.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// use ks_alloc::Memory;
    /// let app = g.pin("app.in")?;
    /// assert!(g.check_delivery(Memory::User, app).is_ok());
    /// let err = g.check_delivery(Memory::NonPaged, app).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_REQUEST");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DeliveryError`] (`STATUS_INVALID_DEVICE_REQUEST`) when the delivery is refused.
    ///
    /// # Panics
    /// If `to` is not a pin of this graph (a pin id of another graph, for instance), like
    /// the other accessors that take a pin id.
    #[track_caller]
    pub fn check_delivery(&self, memory: Memory, to: PinId) -> Result<(), DeliveryError> {
        self.filters.expect_own(to);
        let mode = self.filter_mode(to.filter());
        if mode == FilterMode::User && !matches!(memory, Memory::User) {
            return Err(DeliveryError {
                pin: self.pin_name(to),
                mode,
                memory: format!("{memory:?}"),
            });
        }
        Ok(())
    }

    /// [`check_delivery`](Self::check_delivery) for a frame, by the memory of the allocator
    /// it came from.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// # let dst = FilterDescriptor::kernel("dst").with_pin(PinDescriptor::input("in"));
    /// # let app = FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(src))?; b.add_filter("enc", Arc::new(dst))?;
    /// # b.add_filter("app", Arc::new(app))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let mut g = b.build()?;
    /// g.set_state(KsState::Acquire)?;
    /// let frame = g.pipe_allocator(g.pin("enc.in")?).unwrap().try_allocate()?; // non-paged
    /// assert!(g.check_frame_delivery(&frame, g.pin("enc.in")?).is_ok());
    /// assert!(g.check_frame_delivery(&frame, g.pin("app.in")?).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`DeliveryError`] when the delivery is refused.
    ///
    /// # Panics
    /// As [`check_delivery`](Self::check_delivery).
    #[track_caller]
    pub fn check_frame_delivery(&self, frame: &Frame, to: PinId) -> Result<(), DeliveryError> {
        self.check_delivery(frame.allocator().memory(), to)
    }
}

impl Drop for Graph {
    /// A graph dropped outside STOP closes its allocators, as ACQUIRE → STOP would.
    fn drop(&mut self) {
        if let Some(p) = self.release() {
            // Resumed unless the graph is dropped while its thread unwinds (a second panic
            // would abort the process): then only reported.
            if std::thread::panicking() {
                tracing::error!(
                    "a vendor delete panicked while a graph was dropped during a panic"
                );
            } else {
                std::panic::resume_unwind(p);
            }
        }
    }
}
