//! Checks every structure layout, constant and GUID of ks-sys against the values that
//! `tools/abi-probe/probe.sh` extracted from mingw-w64's headers (`tests/data/abi-*.txt`), plus
//! the hand-maintained `abi-spec-only.txt` for items mingw lacks.
//!
//! * Every line of the data file for this target's pointer width must have a Rust counterpart
//!   with the same value, and every Rust item listed here must appear in a data file.
//! * The other pointer width's file is checked too: structures without pointers must have the
//!   same layout on both; for structures with pointers the expected x86 (resp. x86_64) numbers
//!   are kept in a table below that mirrors the `#[cfg(target_pointer_width)]` compile-time
//!   assertions next to each struct.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};

use ks_sys::*;

type Table = BTreeMap<String, u128>;

/// Values as stored in the data files: integers as their 32-bit pattern, GUIDs as `u128`.
trait Bits {
    fn bits(self) -> u128;
}
impl Bits for u32 {
    fn bits(self) -> u128 {
        u128::from(self)
    }
}
impl Bits for i32 {
    fn bits(self) -> u128 {
        u128::from(self as u32)
    }
}
impl Bits for usize {
    fn bits(self) -> u128 {
        self as u128
    }
}
impl Bits for GUID {
    fn bits(self) -> u128 {
        self.to_u128()
    }
}
/// A braced GUID string, `{8-4-4-4-12}`, as the headers' `KSSTRING_*` spell them.
impl Bits for &str {
    fn bits(self) -> u128 {
        let hex = self
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{self}: not a braced GUID"));
        let groups: Vec<usize> = hex.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{self}: not a GUID's groups");
        u128::from_str_radix(&hex.replace('-', ""), 16).unwrap_or_else(|e| panic!("{self}: {e}"))
    }
}

macro_rules! field_offset {
    ($t:ty, $c:ident) => {
        offset_of!($t, $c)
    };
    ($t:ty, $c:ident, $($r:ident).+) => {
        offset_of!($t, $($r).+)
    };
}

/// `layout!(m, T { CField, CField = rust.path, .. })`: size, alignment and every field offset.
macro_rules! layout {
    ($m:ident, $t:ident { $($c:ident $(= $($r:ident).+)?),* $(,)? }) => {{
        $m.insert(format!("size {}", stringify!($t)), size_of::<$t>().bits());
        $m.insert(format!("align {}", stringify!($t)), align_of::<$t>().bits());
        $(
            $m.insert(
                format!("offset {} {}", stringify!($t), stringify!($c)),
                field_offset!($t, $c $(, $($r).+)?).bits(),
            );
        )*
    }};
}

macro_rules! consts {
    ($m:ident, $($n:ident),* $(,)?) => {{
        $( $m.insert(format!("const {}", stringify!($n)), $n.bits()); )*
    }};
}

macro_rules! guids {
    ($m:ident, $($n:ident),* $(,)?) => {{
        $( $m.insert(format!("guid {}", stringify!($n)), $n.bits()); )*
    }};
}

/// Every Rust item the data files describe, keyed like the data lines.
fn rust_items() -> Table {
    let mut m = Table::new();
    layout!(m, GUID { Data1 = data1, Data2 = data2, Data3 = data3, Data4 = data4 });
    layout!(m, KSIDENTIFIER {
        Set = Anonymous.Anonymous.Set,
        Id = Anonymous.Anonymous.Id,
        Flags = Anonymous.Anonymous.Flags,
        Alignment = Anonymous.Alignment,
    });
    layout!(m, KSPROPERTY {});
    layout!(m, KSMETHOD {});
    layout!(m, KSEVENT {});
    layout!(m, KSPIN_INTERFACE {});
    layout!(m, KSPIN_MEDIUM {});
    layout!(m, KSALLOCATOR_FRAMING {
        OptionsFlags = Anonymous1.OptionsFlags,
        RequirementsFlags = Anonymous1.RequirementsFlags,
        PoolType,
        Frames,
        FrameSize,
        FileAlignment = Anonymous2.FileAlignment,
        FramePitch = Anonymous2.FramePitch,
        Reserved,
    });
    layout!(
        m,
        KS_FRAMING_RANGE {
            MinFrameSize,
            MaxFrameSize,
            Stepping
        }
    );
    layout!(
        m,
        KS_FRAMING_RANGE_WEIGHTED {
            Range,
            InPlaceWeight,
            NotInPlaceWeight
        }
    );
    layout!(
        m,
        KS_COMPRESSION {
            RatioNumerator,
            RatioDenominator,
            RatioConstantMargin
        }
    );
    layout!(m, KS_FRAMING_ITEM {
        MemoryType,
        BusType,
        MemoryFlags,
        BusFlags,
        Flags,
        Frames,
        FileAlignment = Anonymous.FileAlignment,
        FramePitch = Anonymous.FramePitch,
        MemoryTypeWeight,
        PhysicalRange,
        FramingRange,
    });
    layout!(
        m,
        KSALLOCATOR_FRAMING_EX {
            CountItems,
            PinFlags,
            OutputCompression,
            PinWeight,
            FramingItem,
        }
    );
    layout!(
        m,
        KSSTREAMALLOCATOR_STATUS {
            Framing,
            AllocatedFrames,
            Reserved
        }
    );
    layout!(
        m,
        KSSTREAMALLOCATOR_STATUS_EX {
            Framing,
            AllocatedFrames,
            Reserved
        }
    );
    layout!(
        m,
        KSSTREAMALLOCATOR_FUNCTIONTABLE {
            AllocateFrame,
            FreeFrame
        }
    );
    layout!(
        m,
        KSALLOCATOR_DISPATCH {
            InitializeAllocator,
            DeleteAllocator,
            Allocate,
            Free
        }
    );
    layout!(
        m,
        KSTIME {
            Time,
            Numerator,
            Denominator
        }
    );
    layout!(
        m,
        KSSTREAM_HEADER {
            Size,
            TypeSpecificFlags,
            PresentationTime,
            Duration,
            FrameExtent,
            DataUsed,
            Data,
            OptionsFlags,
        }
    );
    #[cfg(target_pointer_width = "64")]
    layout!(m, KSSTREAM_HEADER { Reserved });
    layout!(
        m,
        KSMAPPING {
            PhysicalAddress,
            ByteCount,
            Alignment
        }
    );
    layout!(m, KSSTREAM_POINTER_OFFSET {
        Data = Anonymous.Data,
        Mappings = Anonymous.Mappings,
        Count,
        Remaining,
    });
    #[cfg(target_pointer_width = "32")]
    layout!(m, KSSTREAM_POINTER_OFFSET { Alignment });
    layout!(
        m,
        KSSTREAM_POINTER {
            Context,
            Pin,
            StreamHeader,
            Offset,
            OffsetIn,
            OffsetOut
        }
    );
    layout!(
        m,
        KSPIN_DISPATCH {
            Create,
            Close,
            Process,
            Reset,
            SetDataFormat,
            SetDeviceState,
            Connect,
            Disconnect,
            Clock,
            Allocator,
        }
    );
    layout!(m, KSPIN_DESCRIPTOR {
        InterfacesCount,
        Interfaces,
        MediumsCount,
        Mediums,
        DataRangesCount,
        DataRanges,
        DataFlow,
        Communication,
        Category,
        Name,
        Reserved = Anonymous.Reserved,
        ConstrainedDataRangesCount = Anonymous.Anonymous.ConstrainedDataRangesCount,
        ConstrainedDataRanges = Anonymous.Anonymous.ConstrainedDataRanges,
    });
    layout!(
        m,
        KSPIN_DESCRIPTOR_EX {
            Dispatch,
            AutomationTable,
            PinDescriptor,
            Flags,
            InstancesPossible,
            InstancesNecessary,
            AllocatorFraming,
            IntersectHandler,
        }
    );
    layout!(
        m,
        OPTIMAL_WEIGHT_TOTALS {
            MinTotalNominator,
            MaxTotalNominator,
            TotalDenominator
        }
    );
    layout!(
        m,
        PIPE_DIMENSIONS {
            AllocatorPin,
            MaxExpansionPin,
            EndPin
        }
    );
    layout!(
        m,
        PIPE_TERMINATION {
            Flags,
            OutsideFactors,
            Weigth,
            PhysicalRange,
            OptimalRange,
            Compression,
        }
    );
    layout!(
        m,
        ALLOCATOR_PROPERTIES_EX {
            cBuffers,
            cbBuffer,
            cbAlign,
            cbPrefix,
            MemoryType,
            BusType,
            State,
            Input,
            Output,
            Strategy,
            Flags,
            Weight,
            LogicalMemoryType,
            AllocatorPlace,
            Dimensions,
            PhysicalRange,
            PrevSegment,
            CountNextSegments,
            NextSegments,
            InsideFactors,
            NumberPins,
        }
    );

    consts!(
        m,
        STATUS_SUCCESS,
        STATUS_PENDING,
        STATUS_MORE_ENTRIES,
        STATUS_BUFFER_OVERFLOW,
        STATUS_UNSUCCESSFUL,
        STATUS_NOT_IMPLEMENTED,
        STATUS_INVALID_PARAMETER,
        STATUS_INVALID_DEVICE_REQUEST,
        STATUS_BUFFER_TOO_SMALL,
        STATUS_INTEGER_OVERFLOW,
        STATUS_INSUFFICIENT_RESOURCES,
        STATUS_DEVICE_NOT_READY,
        STATUS_NOT_SUPPORTED,
        STATUS_CANCELLED,
        STATUS_INVALID_DEVICE_STATE,
        STATUS_INVALID_BUFFER_SIZE,
        STATUS_NOT_FOUND,
        STATUS_PROPSET_NOT_FOUND,
    );
    consts!(
        m,
        FILE_DEVICE_KS,
        METHOD_BUFFERED,
        METHOD_IN_DIRECT,
        METHOD_OUT_DIRECT,
        METHOD_NEITHER,
        FILE_ANY_ACCESS,
        FILE_READ_ACCESS,
        FILE_WRITE_ACCESS,
        IOCTL_KS_PROPERTY,
        IOCTL_KS_ENABLE_EVENT,
        IOCTL_KS_DISABLE_EVENT,
        IOCTL_KS_METHOD,
        IOCTL_KS_WRITE_STREAM,
        IOCTL_KS_READ_STREAM,
        IOCTL_KS_RESET_STATE,
        IOCTL_KS_HANDSHAKE,
    );
    consts!(
        m,
        KSPROPERTY_TYPE_GET,
        KSPROPERTY_TYPE_SET,
        KSPROPERTY_TYPE_SETSUPPORT,
        KSPROPERTY_TYPE_BASICSUPPORT,
        KSPROPERTY_TYPE_RELATIONS,
        KSPROPERTY_TYPE_SERIALIZESET,
        KSPROPERTY_TYPE_UNSERIALIZESET,
        KSPROPERTY_TYPE_SERIALIZERAW,
        KSPROPERTY_TYPE_UNSERIALIZERAW,
        KSPROPERTY_TYPE_SERIALIZESIZE,
        KSPROPERTY_TYPE_DEFAULTVALUES,
        KSPROPERTY_TYPE_TOPOLOGY,
        KSMETHOD_TYPE_NONE,
        KSMETHOD_TYPE_READ,
        KSMETHOD_TYPE_WRITE,
        KSMETHOD_TYPE_MODIFY,
        KSMETHOD_TYPE_SOURCE,
        KSMETHOD_TYPE_SEND,
        KSMETHOD_TYPE_SETSUPPORT,
        KSMETHOD_TYPE_BASICSUPPORT,
        KSMETHOD_TYPE_TOPOLOGY,
        KSEVENT_TYPE_ENABLE,
        KSEVENT_TYPE_ONESHOT,
        KSEVENT_TYPE_ENABLEBUFFERED,
        KSEVENT_TYPE_SETSUPPORT,
        KSEVENT_TYPE_BASICSUPPORT,
        KSEVENT_TYPE_QUERYBUFFER,
        KSEVENT_TYPE_TOPOLOGY,
    );
    consts!(
        m,
        KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
        KSPROPERTY_STREAMALLOCATOR_STATUS,
        KSMETHOD_STREAMALLOCATOR_ALLOC,
        KSMETHOD_STREAMALLOCATOR_FREE,
        KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME,
        KSEVENT_STREAMALLOCATOR_FREEFRAME,
        KSPROPERTY_CONNECTION_STATE,
        KSPROPERTY_CONNECTION_PRIORITY,
        KSPROPERTY_CONNECTION_DATAFORMAT,
        KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        KSPROPERTY_CONNECTION_PROPOSEDATAFORMAT,
        KSPROPERTY_CONNECTION_ACQUIREORDERING,
        KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        KSPROPERTY_CONNECTION_STARTAT,
        KSPROPERTY_STREAM_ALLOCATOR,
        KSPROPERTY_STREAM_QUALITY,
        KSPROPERTY_STREAM_DEGRADATION,
        KSPROPERTY_STREAM_MASTERCLOCK,
        KSPROPERTY_STREAM_TIMEFORMAT,
        KSPROPERTY_STREAM_PRESENTATIONTIME,
        KSPROPERTY_STREAM_PRESENTATIONEXTENT,
        KSPROPERTY_STREAM_FRAMETIME,
        KSPROPERTY_STREAM_RATECAPABILITY,
        KSPROPERTY_STREAM_RATE,
        KSPROPERTY_STREAM_PIPE_ID,
        KSPROPERTY_MEMORY_TRANSPORT,
    );
    consts!(
        m,
        KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER,
        KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY,
        KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY,
        KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE,
        KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION,
        KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY,
        KSALLOCATOR_OPTIONF_COMPATIBLE,
        KSALLOCATOR_OPTIONF_SYSTEM_MEMORY,
        KSALLOCATOR_OPTIONF_VALID,
        KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT,
        KSALLOCATOR_FLAG_DEVICE_SPECIFIC,
        KSALLOCATOR_FLAG_CAN_ALLOCATE,
        KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO,
        KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY,
        KSALLOCATOR_FLAG_MULTIPLE_OUTPUT,
        KSALLOCATOR_FLAG_CYCLE,
        KSALLOCATOR_FLAG_ALLOCATOR_EXISTS,
        KSALLOCATOR_FLAG_INDEPENDENT_RANGES,
        KSALLOCATOR_FLAG_ATTENTION_STEPPING,
        KSALLOCATOR_FLAG_ENABLE_CACHED_MDL,
        KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED,
        FILE_BYTE_ALIGNMENT,
        FILE_WORD_ALIGNMENT,
        FILE_LONG_ALIGNMENT,
        FILE_QUAD_ALIGNMENT,
        FILE_OCTA_ALIGNMENT,
        FILE_32_BYTE_ALIGNMENT,
        FILE_64_BYTE_ALIGNMENT,
        FILE_128_BYTE_ALIGNMENT,
        FILE_256_BYTE_ALIGNMENT,
        FILE_512_BYTE_ALIGNMENT,
    );
    consts!(
        m,
        NonPagedPool,
        NonPagedPoolExecute,
        PagedPool,
        NonPagedPoolMustSucceed,
        DontUseThisType,
        NonPagedPoolCacheAligned,
        PagedPoolCacheAligned,
        NonPagedPoolCacheAlignedMustS,
        MaxPoolType,
        NonPagedPoolBase,
        NonPagedPoolBaseMustSucceed,
        NonPagedPoolBaseCacheAligned,
        NonPagedPoolBaseCacheAlignedMustS,
        NonPagedPoolSession,
        PagedPoolSession,
        NonPagedPoolMustSucceedSession,
        DontUseThisTypeSession,
        NonPagedPoolCacheAlignedSession,
        PagedPoolCacheAlignedSession,
        NonPagedPoolCacheAlignedMustSSession,
        NonPagedPoolNx,
        NonPagedPoolNxCacheAligned,
        NonPagedPoolSessionNx,
    );
    consts!(
        m,
        KSSTATE_STOP,
        KSSTATE_ACQUIRE,
        KSSTATE_PAUSE,
        KSSTATE_RUN,
        KSPIN_DATAFLOW_IN,
        KSPIN_DATAFLOW_OUT,
        KSPIN_COMMUNICATION_NONE,
        KSPIN_COMMUNICATION_SINK,
        KSPIN_COMMUNICATION_SOURCE,
        KSPIN_COMMUNICATION_BOTH,
        KSPIN_COMMUNICATION_BRIDGE,
        KSSTREAM_POINTER_STATE_UNLOCKED,
        KSSTREAM_POINTER_STATE_LOCKED,
        KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING,
        KSFILTER_FLAG_CRITICAL_PROCESSING,
        KSFILTER_FLAG_HYPERCRITICAL_PROCESSING,
        KSFILTER_FLAG_RECEIVE_ZERO_LENGTH_SAMPLES,
        KSFILTER_FLAG_DENY_USERMODE_ACCESS,
        KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING,
        KSPIN_FLAG_CRITICAL_PROCESSING,
        KSPIN_FLAG_HYPERCRITICAL_PROCESSING,
        KSPIN_FLAG_ASYNCHRONOUS_PROCESSING,
        KSPIN_FLAG_DO_NOT_INITIATE_PROCESSING,
        KSPIN_FLAG_INITIATE_PROCESSING_ON_EVERY_ARRIVAL,
        KSPIN_FLAG_FRAMES_NOT_REQUIRED_FOR_PROCESSING,
        KSPIN_FLAG_ENFORCE_FIFO,
        KSPIN_FLAG_GENERATE_MAPPINGS,
        KSPIN_FLAG_DISTINCT_TRAILING_EDGE,
        KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY,
        KSPIN_FLAG_SPLITTER,
        KSPIN_FLAG_USE_STANDARD_TRANSPORT,
        KSPIN_FLAG_DO_NOT_USE_STANDARD_TRANSPORT,
        KSPIN_FLAG_FIXED_FORMAT,
        KSPIN_FLAG_GENERATE_EOS_EVENTS,
        KSPIN_FLAG_RENDERER,
        KSPIN_FLAG_IMPLEMENT_CLOCK,
        KSPIN_FLAG_SOME_FRAMES_REQUIRED_FOR_PROCESSING,
        KSPIN_FLAG_PROCESS_IF_ANY_IN_RUN_STATE,
        KSPIN_FLAG_DENY_USERMODE_ACCESS,
        KSSTREAM_HEADER_OPTIONSF_SPLICEPOINT,
        KSSTREAM_HEADER_OPTIONSF_PREROLL,
        KSSTREAM_HEADER_OPTIONSF_DATADISCONTINUITY,
        KSSTREAM_HEADER_OPTIONSF_TYPECHANGED,
        KSSTREAM_HEADER_OPTIONSF_TIMEVALID,
        KSSTREAM_HEADER_OPTIONSF_TIMEDISCONTINUITY,
        KSSTREAM_HEADER_OPTIONSF_FLUSHONPAUSE,
        KSSTREAM_HEADER_OPTIONSF_DURATIONVALID,
        KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM,
        KSSTREAM_HEADER_OPTIONSF_BUFFEREDTRANSFER,
        KSSTREAM_HEADER_OPTIONSF_VRAM_DATA_TRANSFER,
        KSSTREAM_HEADER_OPTIONSF_LOOPEDDATA,
    );
    consts!(
        m,
        KsAllocatorMode_User,
        KsAllocatorMode_Kernel,
        FramingProp_Uninitialized,
        FramingProp_None,
        FramingProp_Old,
        FramingProp_Ex,
        Framing_Cache_Update,
        Framing_Cache_ReadLast,
        Framing_Cache_ReadOrig,
        Framing_Cache_Write,
        AllocatorStrategy_DontCare,
        AllocatorStrategy_MinimizeNumberOfFrames,
        AllocatorStrategy_MinimizeFrameSize,
        AllocatorStrategy_MinimizeNumberOfAllocators,
        AllocatorStrategy_MaximizeSpeed,
        PipeFactor_None,
        PipeFactor_UserModeUpstream,
        PipeFactor_UserModeDownstream,
        PipeFactor_MemoryTypes,
        PipeFactor_Flags,
        PipeFactor_PhysicalRanges,
        PipeFactor_OptimalRanges,
        PipeFactor_FixedCompression,
        PipeFactor_UnknownCompression,
        PipeFactor_Buffers,
        PipeFactor_Align,
        PipeFactor_PhysicalEnd,
        PipeFactor_LogicalEnd,
        PipeState_DontCare,
        PipeState_RangeNotFixed,
        PipeState_RangeFixed,
        PipeState_CompressionUnknown,
        PipeState_Finalized,
        Pipe_Allocator_None,
        Pipe_Allocator_FirstPin,
        Pipe_Allocator_LastPin,
        Pipe_Allocator_MiddlePin,
        KS_MemoryTypeDontCare,
        KS_MemoryTypeKernelPaged,
        KS_MemoryTypeKernelNonPaged,
        KS_MemoryTypeDeviceHostMapped,
        KS_MemoryTypeDeviceSpecific,
        KS_MemoryTypeUser,
        KS_MemoryTypeAnyHost,
        KsPeekOperation_PeekOnly,
        KsPeekOperation_AddRef,
    );

    guids!(
        m,
        GUID_NULL,
        KSNAME_Allocator,
        KSSTRING_Allocator,
        KSSTRING_AllocatorEx,
        KSPROPSETID_StreamAllocator,
        KSMETHODSETID_StreamAllocator,
        KSEVENTSETID_StreamAllocator,
        KSPROPSETID_Connection,
        KSPROPSETID_Stream,
        KSPROPSETID_MemoryTransport,
        KSMEMORY_TYPE_WILDCARD,
        KSMEMORY_TYPE_DONT_CARE,
        KS_TYPE_DONT_CARE,
        KSMEMORY_TYPE_SYSTEM,
        KSMEMORY_TYPE_USER,
        KSMEMORY_TYPE_KERNEL_PAGED,
        KSMEMORY_TYPE_KERNEL_NONPAGED,
        KSMEMORY_TYPE_DEVICE_UNKNOWN,
        KSMEDIUMSETID_Standard,
        KSINTERFACESETID_Standard,
        GUID_BUS_TYPE_PCI,
        GUID_BUS_TYPE_USB,
        GUID_BUS_TYPE_1394,
        GUID_BUS_TYPE_AVC,
        GUID_DEVCLASS_61883,
        GUID_61883_CLASS,
        IID_IKsAllocator,
        IID_IKsAllocatorEx,
        IID_IKsPinPipe,
        IID_IKsPin,
    );
    m
}

/// Structures whose layout depends on the pointer width.
const POINTER_STRUCTS: &[&str] = &[
    "KSSTREAMALLOCATOR_FUNCTIONTABLE",
    "KSALLOCATOR_DISPATCH",
    "KSSTREAM_HEADER",
    "KSSTREAM_POINTER_OFFSET",
    "KSSTREAM_POINTER",
    "KSPIN_DISPATCH",
    "KSPIN_DESCRIPTOR",
    "KSPIN_DESCRIPTOR_EX",
    "ALLOCATOR_PROPERTIES_EX",
];

/// x86 layouts of the pointer-dependent structures: the numbers of the
/// `#[cfg(target_pointer_width = "32")]` assertions in `src/` (and ks-spec.md Appendix A).
const X86: &[(&str, u128)] = &[
    ("size KSSTREAMALLOCATOR_FUNCTIONTABLE", 8),
    ("align KSSTREAMALLOCATOR_FUNCTIONTABLE", 4),
    ("offset KSSTREAMALLOCATOR_FUNCTIONTABLE AllocateFrame", 0),
    ("offset KSSTREAMALLOCATOR_FUNCTIONTABLE FreeFrame", 4),
    ("size KSALLOCATOR_DISPATCH", 16),
    ("align KSALLOCATOR_DISPATCH", 4),
    ("offset KSALLOCATOR_DISPATCH InitializeAllocator", 0),
    ("offset KSALLOCATOR_DISPATCH DeleteAllocator", 4),
    ("offset KSALLOCATOR_DISPATCH Allocate", 8),
    ("offset KSALLOCATOR_DISPATCH Free", 12),
    ("size KSSTREAM_HEADER", 48),
    ("align KSSTREAM_HEADER", 8),
    ("offset KSSTREAM_HEADER Size", 0),
    ("offset KSSTREAM_HEADER TypeSpecificFlags", 4),
    ("offset KSSTREAM_HEADER PresentationTime", 8),
    ("offset KSSTREAM_HEADER Duration", 24),
    ("offset KSSTREAM_HEADER FrameExtent", 32),
    ("offset KSSTREAM_HEADER DataUsed", 36),
    ("offset KSSTREAM_HEADER Data", 40),
    ("offset KSSTREAM_HEADER OptionsFlags", 44),
    ("size KSSTREAM_POINTER_OFFSET", 16),
    ("align KSSTREAM_POINTER_OFFSET", 4),
    ("offset KSSTREAM_POINTER_OFFSET Data", 0),
    ("offset KSSTREAM_POINTER_OFFSET Mappings", 0),
    ("offset KSSTREAM_POINTER_OFFSET Alignment", 4),
    ("offset KSSTREAM_POINTER_OFFSET Count", 8),
    ("offset KSSTREAM_POINTER_OFFSET Remaining", 12),
    ("size KSSTREAM_POINTER", 48),
    ("align KSSTREAM_POINTER", 4),
    ("offset KSSTREAM_POINTER Context", 0),
    ("offset KSSTREAM_POINTER Pin", 4),
    ("offset KSSTREAM_POINTER StreamHeader", 8),
    ("offset KSSTREAM_POINTER Offset", 12),
    ("offset KSSTREAM_POINTER OffsetIn", 16),
    ("offset KSSTREAM_POINTER OffsetOut", 32),
    ("size KSPIN_DISPATCH", 40),
    ("align KSPIN_DISPATCH", 4),
    ("offset KSPIN_DISPATCH Create", 0),
    ("offset KSPIN_DISPATCH Close", 4),
    ("offset KSPIN_DISPATCH Process", 8),
    ("offset KSPIN_DISPATCH Reset", 12),
    ("offset KSPIN_DISPATCH SetDataFormat", 16),
    ("offset KSPIN_DISPATCH SetDeviceState", 20),
    ("offset KSPIN_DISPATCH Connect", 24),
    ("offset KSPIN_DISPATCH Disconnect", 28),
    ("offset KSPIN_DISPATCH Clock", 32),
    ("offset KSPIN_DISPATCH Allocator", 36),
    ("size KSPIN_DESCRIPTOR", 48),
    ("align KSPIN_DESCRIPTOR", 8),
    ("offset KSPIN_DESCRIPTOR InterfacesCount", 0),
    ("offset KSPIN_DESCRIPTOR Interfaces", 4),
    ("offset KSPIN_DESCRIPTOR MediumsCount", 8),
    ("offset KSPIN_DESCRIPTOR Mediums", 12),
    ("offset KSPIN_DESCRIPTOR DataRangesCount", 16),
    ("offset KSPIN_DESCRIPTOR DataRanges", 20),
    ("offset KSPIN_DESCRIPTOR DataFlow", 24),
    ("offset KSPIN_DESCRIPTOR Communication", 28),
    ("offset KSPIN_DESCRIPTOR Category", 32),
    ("offset KSPIN_DESCRIPTOR Name", 36),
    ("offset KSPIN_DESCRIPTOR Reserved", 40),
    ("offset KSPIN_DESCRIPTOR ConstrainedDataRangesCount", 40),
    ("offset KSPIN_DESCRIPTOR ConstrainedDataRanges", 44),
    ("size KSPIN_DESCRIPTOR_EX", 80),
    ("align KSPIN_DESCRIPTOR_EX", 8),
    ("offset KSPIN_DESCRIPTOR_EX Dispatch", 0),
    ("offset KSPIN_DESCRIPTOR_EX AutomationTable", 4),
    ("offset KSPIN_DESCRIPTOR_EX PinDescriptor", 8),
    ("offset KSPIN_DESCRIPTOR_EX Flags", 56),
    ("offset KSPIN_DESCRIPTOR_EX InstancesPossible", 60),
    ("offset KSPIN_DESCRIPTOR_EX InstancesNecessary", 64),
    ("offset KSPIN_DESCRIPTOR_EX AllocatorFraming", 68),
    ("offset KSPIN_DESCRIPTOR_EX IntersectHandler", 72),
    ("size ALLOCATOR_PROPERTIES_EX", 252),
    ("align ALLOCATOR_PROPERTIES_EX", 4),
    ("offset ALLOCATOR_PROPERTIES_EX cBuffers", 0),
    ("offset ALLOCATOR_PROPERTIES_EX cbBuffer", 4),
    ("offset ALLOCATOR_PROPERTIES_EX cbAlign", 8),
    ("offset ALLOCATOR_PROPERTIES_EX cbPrefix", 12),
    ("offset ALLOCATOR_PROPERTIES_EX MemoryType", 16),
    ("offset ALLOCATOR_PROPERTIES_EX BusType", 32),
    ("offset ALLOCATOR_PROPERTIES_EX State", 48),
    ("offset ALLOCATOR_PROPERTIES_EX Input", 52),
    ("offset ALLOCATOR_PROPERTIES_EX Output", 108),
    ("offset ALLOCATOR_PROPERTIES_EX Strategy", 164),
    ("offset ALLOCATOR_PROPERTIES_EX Flags", 168),
    ("offset ALLOCATOR_PROPERTIES_EX Weight", 172),
    ("offset ALLOCATOR_PROPERTIES_EX LogicalMemoryType", 176),
    ("offset ALLOCATOR_PROPERTIES_EX AllocatorPlace", 180),
    ("offset ALLOCATOR_PROPERTIES_EX Dimensions", 184),
    ("offset ALLOCATOR_PROPERTIES_EX PhysicalRange", 220),
    ("offset ALLOCATOR_PROPERTIES_EX PrevSegment", 232),
    ("offset ALLOCATOR_PROPERTIES_EX CountNextSegments", 236),
    ("offset ALLOCATOR_PROPERTIES_EX NextSegments", 240),
    ("offset ALLOCATOR_PROPERTIES_EX InsideFactors", 244),
    ("offset ALLOCATOR_PROPERTIES_EX NumberPins", 248),
];

/// x86_64 layouts of the same structures (the `"64"` assertions; Appendix A).
const X64: &[(&str, u128)] = &[
    ("size KSSTREAMALLOCATOR_FUNCTIONTABLE", 16),
    ("align KSSTREAMALLOCATOR_FUNCTIONTABLE", 8),
    ("offset KSSTREAMALLOCATOR_FUNCTIONTABLE AllocateFrame", 0),
    ("offset KSSTREAMALLOCATOR_FUNCTIONTABLE FreeFrame", 8),
    ("size KSALLOCATOR_DISPATCH", 32),
    ("align KSALLOCATOR_DISPATCH", 8),
    ("offset KSALLOCATOR_DISPATCH InitializeAllocator", 0),
    ("offset KSALLOCATOR_DISPATCH DeleteAllocator", 8),
    ("offset KSALLOCATOR_DISPATCH Allocate", 16),
    ("offset KSALLOCATOR_DISPATCH Free", 24),
    ("size KSSTREAM_HEADER", 56),
    ("align KSSTREAM_HEADER", 8),
    ("offset KSSTREAM_HEADER Size", 0),
    ("offset KSSTREAM_HEADER TypeSpecificFlags", 4),
    ("offset KSSTREAM_HEADER PresentationTime", 8),
    ("offset KSSTREAM_HEADER Duration", 24),
    ("offset KSSTREAM_HEADER FrameExtent", 32),
    ("offset KSSTREAM_HEADER DataUsed", 36),
    ("offset KSSTREAM_HEADER Data", 40),
    ("offset KSSTREAM_HEADER OptionsFlags", 48),
    ("offset KSSTREAM_HEADER Reserved", 52),
    ("size KSSTREAM_POINTER_OFFSET", 16),
    ("align KSSTREAM_POINTER_OFFSET", 8),
    ("offset KSSTREAM_POINTER_OFFSET Data", 0),
    ("offset KSSTREAM_POINTER_OFFSET Mappings", 0),
    ("offset KSSTREAM_POINTER_OFFSET Count", 8),
    ("offset KSSTREAM_POINTER_OFFSET Remaining", 12),
    ("size KSSTREAM_POINTER", 64),
    ("align KSSTREAM_POINTER", 8),
    ("offset KSSTREAM_POINTER Context", 0),
    ("offset KSSTREAM_POINTER Pin", 8),
    ("offset KSSTREAM_POINTER StreamHeader", 16),
    ("offset KSSTREAM_POINTER Offset", 24),
    ("offset KSSTREAM_POINTER OffsetIn", 32),
    ("offset KSSTREAM_POINTER OffsetOut", 48),
    ("size KSPIN_DISPATCH", 80),
    ("align KSPIN_DISPATCH", 8),
    ("offset KSPIN_DISPATCH Create", 0),
    ("offset KSPIN_DISPATCH Close", 8),
    ("offset KSPIN_DISPATCH Process", 16),
    ("offset KSPIN_DISPATCH Reset", 24),
    ("offset KSPIN_DISPATCH SetDataFormat", 32),
    ("offset KSPIN_DISPATCH SetDeviceState", 40),
    ("offset KSPIN_DISPATCH Connect", 48),
    ("offset KSPIN_DISPATCH Disconnect", 56),
    ("offset KSPIN_DISPATCH Clock", 64),
    ("offset KSPIN_DISPATCH Allocator", 72),
    ("size KSPIN_DESCRIPTOR", 88),
    ("align KSPIN_DESCRIPTOR", 8),
    ("offset KSPIN_DESCRIPTOR InterfacesCount", 0),
    ("offset KSPIN_DESCRIPTOR Interfaces", 8),
    ("offset KSPIN_DESCRIPTOR MediumsCount", 16),
    ("offset KSPIN_DESCRIPTOR Mediums", 24),
    ("offset KSPIN_DESCRIPTOR DataRangesCount", 32),
    ("offset KSPIN_DESCRIPTOR DataRanges", 40),
    ("offset KSPIN_DESCRIPTOR DataFlow", 48),
    ("offset KSPIN_DESCRIPTOR Communication", 52),
    ("offset KSPIN_DESCRIPTOR Category", 56),
    ("offset KSPIN_DESCRIPTOR Name", 64),
    ("offset KSPIN_DESCRIPTOR Reserved", 72),
    ("offset KSPIN_DESCRIPTOR ConstrainedDataRangesCount", 72),
    ("offset KSPIN_DESCRIPTOR ConstrainedDataRanges", 80),
    ("size KSPIN_DESCRIPTOR_EX", 136),
    ("align KSPIN_DESCRIPTOR_EX", 8),
    ("offset KSPIN_DESCRIPTOR_EX Dispatch", 0),
    ("offset KSPIN_DESCRIPTOR_EX AutomationTable", 8),
    ("offset KSPIN_DESCRIPTOR_EX PinDescriptor", 16),
    ("offset KSPIN_DESCRIPTOR_EX Flags", 104),
    ("offset KSPIN_DESCRIPTOR_EX InstancesPossible", 108),
    ("offset KSPIN_DESCRIPTOR_EX InstancesNecessary", 112),
    ("offset KSPIN_DESCRIPTOR_EX AllocatorFraming", 120),
    ("offset KSPIN_DESCRIPTOR_EX IntersectHandler", 128),
    ("size ALLOCATOR_PROPERTIES_EX", 264),
    ("align ALLOCATOR_PROPERTIES_EX", 8),
    ("offset ALLOCATOR_PROPERTIES_EX cBuffers", 0),
    ("offset ALLOCATOR_PROPERTIES_EX cbBuffer", 4),
    ("offset ALLOCATOR_PROPERTIES_EX cbAlign", 8),
    ("offset ALLOCATOR_PROPERTIES_EX cbPrefix", 12),
    ("offset ALLOCATOR_PROPERTIES_EX MemoryType", 16),
    ("offset ALLOCATOR_PROPERTIES_EX BusType", 32),
    ("offset ALLOCATOR_PROPERTIES_EX State", 48),
    ("offset ALLOCATOR_PROPERTIES_EX Input", 52),
    ("offset ALLOCATOR_PROPERTIES_EX Output", 108),
    ("offset ALLOCATOR_PROPERTIES_EX Strategy", 164),
    ("offset ALLOCATOR_PROPERTIES_EX Flags", 168),
    ("offset ALLOCATOR_PROPERTIES_EX Weight", 172),
    ("offset ALLOCATOR_PROPERTIES_EX LogicalMemoryType", 176),
    ("offset ALLOCATOR_PROPERTIES_EX AllocatorPlace", 180),
    ("offset ALLOCATOR_PROPERTIES_EX Dimensions", 184),
    ("offset ALLOCATOR_PROPERTIES_EX PhysicalRange", 220),
    ("offset ALLOCATOR_PROPERTIES_EX PrevSegment", 232),
    ("offset ALLOCATOR_PROPERTIES_EX CountNextSegments", 240),
    ("offset ALLOCATOR_PROPERTIES_EX NextSegments", 248),
    ("offset ALLOCATOR_PROPERTIES_EX InsideFactors", 256),
    ("offset ALLOCATOR_PROPERTIES_EX NumberPins", 260),
];

/// One parsed data line: key ("offset T F", "const N", ...), value, and its line for messages.
struct Entry {
    key: String,
    value: u128,
    line: String,
}

fn parse_value(kind: &str, text: &str) -> Result<u128, String> {
    match kind {
        "size" | "align" | "offset" => text.parse::<u128>().map_err(|e| e.to_string()),
        "const" => text
            .strip_prefix("0x")
            .ok_or_else(|| "constant without 0x prefix".to_string())
            .and_then(|h| u128::from_str_radix(h, 16).map_err(|e| e.to_string())),
        "guid" => {
            let hex: String = text.chars().filter(|c| *c != '-').collect();
            if text.len() != 36 || hex.len() != 32 {
                return Err("GUID is not in 8-4-4-4-12 form".into());
            }
            u128::from_str_radix(&hex, 16).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown kind {other:?}")),
    }
}

fn load(name: &str) -> Vec<Entry> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut entries = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (kind, value) = (words[0], words[words.len() - 1]);
        let expected_words = if kind == "offset" { 4 } else { 3 };
        assert_eq!(
            words.len(),
            expected_words,
            "{name}:{}: malformed line {raw:?}",
            n + 1
        );
        let value = parse_value(kind, value)
            .unwrap_or_else(|e| panic!("{name}:{}: bad value in {raw:?}: {e}", n + 1));
        entries.push(Entry {
            key: words[..words.len() - 1].join(" "),
            value,
            line: format!("{name}:{}: {raw}", n + 1),
        });
    }
    assert!(!entries.is_empty(), "{path} has no entries");
    entries
}

fn describe(key: &str, v: u128) -> String {
    if key.starts_with("guid ") {
        GUID::from_u128(v).to_string()
    } else if key.starts_with("const ") {
        format!("{v:#010x}")
    } else {
        v.to_string()
    }
}

/// Compares data entries with expected values; returns one message per problem.
fn compare(entries: &[Entry], expected: &dyn Fn(&str) -> Option<u128>) -> Vec<String> {
    let mut problems = Vec::new();
    for e in entries {
        match expected(&e.key) {
            None => problems.push(format!("{}: no Rust counterpart", e.line)),
            Some(v) if v != e.value => problems.push(format!(
                "{}: Rust has {}, header has {}",
                e.line,
                describe(&e.key, v),
                describe(&e.key, e.value)
            )),
            Some(_) => {}
        }
    }
    problems
}

fn struct_of(key: &str) -> Option<&str> {
    let mut words = key.split(' ');
    match words.next() {
        Some("size" | "align" | "offset") => words.next(),
        _ => None,
    }
}

#[cfg(target_pointer_width = "64")]
const NATIVE: &str = "abi-x86_64.txt";
#[cfg(target_pointer_width = "32")]
const NATIVE: &str = "abi-i686.txt";
#[cfg(target_pointer_width = "64")]
const OTHER: (&str, &[(&str, u128)]) = ("abi-i686.txt", X86);
#[cfg(target_pointer_width = "32")]
const OTHER: (&str, &[(&str, u128)]) = ("abi-x86_64.txt", X64);

#[test]
fn every_header_item_matches_rust() {
    let rust = rust_items();
    let mut entries = load(NATIVE);
    entries.extend(load("abi-spec-only.txt"));
    let problems = compare(&entries, &|k| rust.get(k).copied());
    assert!(
        problems.is_empty(),
        "ABI mismatches:\n{}",
        problems.join("\n")
    );

    // The reverse direction: nothing in the Rust table escapes the check.
    let listed: std::collections::BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let unchecked: Vec<&String> = rust
        .keys()
        .filter(|k| !listed.contains(k.as_str()))
        .collect();
    assert!(
        unchecked.is_empty(),
        "Rust items absent from the data files: {unchecked:?}"
    );
}

#[test]
fn spec_only_items_are_marked_and_absent_from_mingw() {
    let native = load(NATIVE);
    let spec_path = format!(
        "{}/tests/data/abi-spec-only.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&spec_path).unwrap_or_else(|e| panic!("{spec_path}: {e}"));
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        assert!(
            line.contains("# from ks-spec.md"),
            "spec-only line without its source: {line}"
        );
        let key: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let key = key[..key.len() - 1].join(" ");
        assert!(
            native.iter().all(|e| e.key != key),
            "{key} is in the mingw data now: remove it from abi-spec-only.txt"
        );
    }
}

#[test]
fn other_pointer_width_matches_tables_and_pointer_free_layouts() {
    let rust = rust_items();
    let (file, table) = OTHER;
    let table: BTreeMap<&str, u128> = table.iter().copied().collect();
    let entries = load(file);
    let expected = |k: &str| -> Option<u128> {
        match struct_of(k) {
            Some(s) if POINTER_STRUCTS.contains(&s) => table.get(k).copied(),
            _ => rust.get(k).copied(),
        }
    };
    let problems = compare(&entries, &expected);
    assert!(
        problems.is_empty(),
        "{file} mismatches:\n{}",
        problems.join("\n")
    );
    for key in table.keys() {
        assert!(
            entries.iter().any(|e| e.key == *key),
            "{key} of the table is not in {file}"
        );
    }
}

#[test]
fn native_pointer_layouts_match_the_native_table() {
    #[cfg(target_pointer_width = "64")]
    let table = X64;
    #[cfg(target_pointer_width = "32")]
    let table = X86;
    let rust = rust_items();
    for (key, value) in table {
        assert_eq!(rust.get(*key), Some(value), "{key}");
    }
}

#[test]
fn both_targets_probe_the_same_items_except_pointer_padding() {
    let keys = |f: &str| -> std::collections::BTreeSet<String> {
        load(f).into_iter().map(|e| e.key).collect()
    };
    let x64 = keys("abi-x86_64.txt");
    let x86 = keys("abi-i686.txt");
    let only64: Vec<_> = x64.difference(&x86).collect();
    let only86: Vec<_> = x86.difference(&x64).collect();
    assert_eq!(only64, ["offset KSSTREAM_HEADER Reserved"]);
    assert_eq!(only86, ["offset KSSTREAM_POINTER_OFFSET Alignment"]);
}

#[test]
fn guid_conversions_round_trip() {
    let g = KSMEMORY_TYPE_KERNEL_NONPAGED;
    assert_eq!(GUID::from_u128(g.to_u128()), g);
    assert_eq!(GUID::from_le_bytes(g.to_le_bytes()), g);
    assert_eq!(g.to_le_bytes()[..4], 0x4a6d5fc4u32.to_le_bytes());
    assert_eq!(g.data4, [0xb0, 0x69, 0x00, 0xa0, 0xc9, 0x06, 0x28, 0x02]);
    assert_eq!(g.to_string(), "4A6D5FC4-7895-11D1-B069-00A0C9062802");
}

#[test]
fn simple_framing_ex_matches_the_header_macro() {
    // DECLARE_SIMPLE_FRAMING_EX as spelled out in mingw-w64 ks.h (ks-spec.md §3.3).
    let f = DECLARE_SIMPLE_FRAMING_EX(
        KSMEMORY_TYPE_KERNEL_NONPAGED,
        KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY | KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY,
        2,
        FILE_LONG_ALIGNMENT,
        4096,
        8192,
    );
    assert_eq!((f.CountItems, f.PinFlags, f.PinWeight), (1, 0, 0));
    assert_eq!(
        f.OutputCompression,
        KS_COMPRESSION {
            RatioNumerator: 1,
            RatioDenominator: 1,
            RatioConstantMargin: 0
        }
    );
    let item = &f.FramingItem[0];
    assert_eq!(item.MemoryType, KSMEMORY_TYPE_KERNEL_NONPAGED);
    assert_eq!(item.BusType, GUID_NULL);
    assert_eq!(
        (
            item.MemoryFlags,
            item.BusFlags,
            item.Frames,
            item.MemoryTypeWeight
        ),
        (0, 0, 2, 0)
    );
    assert_eq!(item.Flags, 0x8000_0002);
    assert_eq!(
        item.PhysicalRange,
        KS_FRAMING_RANGE {
            MinFrameSize: 0,
            MaxFrameSize: u32::MAX,
            Stepping: 1
        }
    );
    assert_eq!(
        item.FramingRange.Range,
        KS_FRAMING_RANGE {
            MinFrameSize: 4096,
            MaxFrameSize: 8192,
            Stepping: 1
        }
    );
    assert_eq!(
        (
            item.FramingRange.InPlaceWeight,
            item.FramingRange.NotInPlaceWeight
        ),
        (0, 0)
    );
}
