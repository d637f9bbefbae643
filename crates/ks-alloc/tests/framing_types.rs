//! Flag sets, memory/bus/pool types and the old ⇄ extended framing conversion policy.

use ks_alloc::{
    Alignment, BusType, Framing, FramingEx, ItemFlags, MemoryType, OptionFlags, PoolType,
    RequirementFlags,
};

#[test]
fn flag_values_match_ks_sys() {
    use ks_sys::*;
    let req = [
        (
            RequirementFlags::INPLACE_MODIFIER,
            KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER,
        ),
        (
            RequirementFlags::SYSTEM_MEMORY,
            KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY,
        ),
        (
            RequirementFlags::FRAME_INTEGRITY,
            KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY,
        ),
        (
            RequirementFlags::MUST_ALLOCATE,
            KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE,
        ),
        (
            RequirementFlags::SYSTEM_MEMORY_CUSTOM_ALLOCATION,
            KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION,
        ),
        (
            RequirementFlags::PREFERENCES_ONLY,
            KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY,
        ),
    ];
    for (f, v) in req {
        assert_eq!(f.bits(), v);
    }
    assert_eq!(
        OptionFlags::COMPATIBLE.bits(),
        KSALLOCATOR_OPTIONF_COMPATIBLE
    );
    assert_eq!(
        OptionFlags::SYSTEM_MEMORY.bits(),
        KSALLOCATOR_OPTIONF_SYSTEM_MEMORY
    );
    assert_eq!(OptionFlags::VALID.bits(), KSALLOCATOR_OPTIONF_VALID);
    let item = [
        (
            ItemFlags::PARTIAL_READ_SUPPORT,
            KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT,
        ),
        (ItemFlags::DEVICE_SPECIFIC, KSALLOCATOR_FLAG_DEVICE_SPECIFIC),
        (ItemFlags::CAN_ALLOCATE, KSALLOCATOR_FLAG_CAN_ALLOCATE),
        (
            ItemFlags::INSIST_ON_FRAMESIZE_RATIO,
            KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO,
        ),
        (
            ItemFlags::NO_FRAME_INTEGRITY,
            KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY,
        ),
        (ItemFlags::MULTIPLE_OUTPUT, KSALLOCATOR_FLAG_MULTIPLE_OUTPUT),
        (ItemFlags::CYCLE, KSALLOCATOR_FLAG_CYCLE),
        (
            ItemFlags::ALLOCATOR_EXISTS,
            KSALLOCATOR_FLAG_ALLOCATOR_EXISTS,
        ),
        (
            ItemFlags::INDEPENDENT_RANGES,
            KSALLOCATOR_FLAG_INDEPENDENT_RANGES,
        ),
        (
            ItemFlags::ATTENTION_STEPPING,
            KSALLOCATOR_FLAG_ATTENTION_STEPPING,
        ),
        (
            ItemFlags::ENABLE_CACHED_MDL,
            KSALLOCATOR_FLAG_ENABLE_CACHED_MDL,
        ),
        (
            ItemFlags::BUFFER_2D_REQUIRED,
            KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED,
        ),
        (
            ItemFlags::PREFERENCES_ONLY,
            KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY,
        ),
        (
            ItemFlags::MUST_ALLOCATE,
            KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE,
        ),
    ];
    for (f, v) in item {
        assert_eq!(f.bits(), v);
    }
}

#[test]
fn flag_operators_and_debug() {
    let f = RequirementFlags::SYSTEM_MEMORY | RequirementFlags::MUST_ALLOCATE;
    assert!(f.contains(RequirementFlags::MUST_ALLOCATE));
    assert!(!f.contains(RequirementFlags::MUST_ALLOCATE | RequirementFlags::FRAME_INTEGRITY));
    assert_eq!(
        (f & RequirementFlags::SYSTEM_MEMORY),
        RequirementFlags::SYSTEM_MEMORY
    );
    assert_eq!(
        f.difference(RequirementFlags::SYSTEM_MEMORY),
        RequirementFlags::MUST_ALLOCATE
    );
    assert_eq!(
        format!("{f:?}"),
        "RequirementFlags(SYSTEM_MEMORY | MUST_ALLOCATE)"
    );
    assert_eq!(
        format!("{:?}", RequirementFlags::empty()),
        "RequirementFlags(empty)"
    );
    assert_eq!(
        format!("{:?}", RequirementFlags(0x40)),
        "RequirementFlags(0x40)"
    );
    assert_eq!(RequirementFlags(0x8000_0041).unknown_bits(), 0x40);
    // 0x10 is named once in an item (the pipe-flag meaning).
    assert_eq!(
        format!("{:?}", ItemFlags(0x10)),
        "ItemFlags(PARTIAL_READ_SUPPORT)"
    );
    assert_eq!(
        format!("{:?}", OptionFlags::VALID),
        "OptionFlags(COMPATIBLE | SYSTEM_MEMORY)"
    );
    let mut o = OptionFlags::empty();
    o |= OptionFlags::COMPATIBLE;
    assert_eq!(o.as_requirements(), RequirementFlags::INPLACE_MODIFIER);
    assert_eq!(
        (ItemFlags(0xFFFF_FFFF)).requirements().bits(),
        0x8000_000F,
        "0x10 (PARTIAL_READ_SUPPORT) is not a requirement bit in an item"
    );
}

#[test]
fn memory_and_bus_type_names_and_values() {
    use ks_sys::*;
    let mem = [
        (
            MemoryType::WILDCARD,
            KSMEMORY_TYPE_WILDCARD,
            "KSMEMORY_TYPE_WILDCARD",
        ),
        (
            MemoryType::SYSTEM,
            KSMEMORY_TYPE_SYSTEM,
            "KSMEMORY_TYPE_SYSTEM",
        ),
        (MemoryType::USER, KSMEMORY_TYPE_USER, "KSMEMORY_TYPE_USER"),
        (
            MemoryType::KERNEL_PAGED,
            KSMEMORY_TYPE_KERNEL_PAGED,
            "KSMEMORY_TYPE_KERNEL_PAGED",
        ),
        (
            MemoryType::KERNEL_NONPAGED,
            KSMEMORY_TYPE_KERNEL_NONPAGED,
            "KSMEMORY_TYPE_KERNEL_NONPAGED",
        ),
        (
            MemoryType::DEVICE_UNKNOWN,
            KSMEMORY_TYPE_DEVICE_UNKNOWN,
            "KSMEMORY_TYPE_DEVICE_UNKNOWN",
        ),
    ];
    for (t, g, n) in mem {
        assert_eq!(t.0, g);
        assert_eq!(t.name(), Some(n));
        assert_eq!(t.to_string(), n);
        assert_eq!(MemoryType::from(g), t);
    }
    let bus = [
        (BusType::DONT_CARE, KS_TYPE_DONT_CARE, "KS_TYPE_DONT_CARE"),
        (BusType::PCI, GUID_BUS_TYPE_PCI, "GUID_BUS_TYPE_PCI"),
        (BusType::USB, GUID_BUS_TYPE_USB, "GUID_BUS_TYPE_USB"),
        (BusType::IEEE1394, GUID_BUS_TYPE_1394, "GUID_BUS_TYPE_1394"),
        (BusType::AVC, GUID_BUS_TYPE_AVC, "GUID_BUS_TYPE_AVC"),
        (BusType::CLASS_61883, GUID_61883_CLASS, "GUID_61883_CLASS"),
    ];
    for (t, g, n) in bus {
        assert_eq!(t.0, g);
        assert_eq!(t.name(), Some(n));
        assert_eq!(format!("{t:?}"), format!("BusType({n})"));
    }
    let other = MemoryType(KSNAME_Allocator);
    assert_eq!(other.name(), None);
    assert_eq!(other.to_string(), "{642F5D00-4791-11D0-A5D6-28DB04C10000}");
    assert!(!other.is_wildcard());
}

#[test]
fn pool_type_names() {
    assert_eq!(PoolType::NON_PAGED.0, ks_sys::NonPagedPool);
    assert_eq!(PoolType::PAGED.0, ks_sys::PagedPool);
    assert_eq!(
        PoolType(ks_sys::NonPagedPoolNx).name(),
        Some("NonPagedPoolNx")
    );
    assert_eq!(PoolType(99).name(), None);
    assert_eq!(PoolType(99).to_string(), "pool type 99");
}

#[test]
fn to_framing_policy() {
    let mut ex = FramingEx::simple(
        MemoryType::KERNEL_NONPAGED,
        ItemFlags::PREFERENCES_ONLY | ItemFlags::CAN_ALLOCATE | ItemFlags::FRAME_INTEGRITY,
        6,
        Alignment::BYTES_64,
        1000,
        3000,
    );
    let f = ex.to_framing().unwrap();
    assert_eq!(
        f,
        Framing {
            flags: 0x8000_0006, // PREFERENCES_ONLY | FRAME_INTEGRITY | SYSTEM_MEMORY (system type)
            pool_type: PoolType::NON_PAGED,
            frames: 6,
            frame_size: 3000,
            alignment: Alignment::BYTES_64,
        }
    );
    // The physical range caps the frame size; the first item wins.
    ex.items[0].physical_range.max = 2048;
    ex.items.push(ex.items[0].clone());
    ex.items[1].frames = 99;
    let f = ex.to_framing().unwrap();
    assert_eq!((f.frame_size, f.frames), (2048, 6));
    // USER memory: no SYSTEM_MEMORY flag added, non-paged pool.
    let u = FramingEx::simple(
        MemoryType::USER,
        ItemFlags::empty(),
        1,
        Alignment::BYTE,
        1,
        8,
    );
    assert_eq!(u.to_framing().unwrap().flags, 0);
    ex.items.clear();
    assert!(ex.to_framing().is_err());
}

#[test]
fn from_framing_round_trips_through_to_framing() {
    for (flags, pool) in [
        (2, PoolType::PAGED),
        (2, PoolType::NON_PAGED),
        (0, PoolType::NON_PAGED),
        (0x8000_000B, PoolType::PAGED),
    ] {
        let f = Framing {
            flags,
            pool_type: pool,
            frames: 3,
            frame_size: 777,
            alignment: Alignment::QUAD,
        };
        let ex = FramingEx::from_framing(&f);
        assert_eq!(ex.to_framing().unwrap(), f, "{f:?}");
    }
}

#[test]
fn from_framing_takes_every_paged_pool_type_for_paged_memory() {
    // PagedPool, PagedPoolCacheAligned and the two paged session pools.
    for pool in [1, 5, 33, 37] {
        let f = Framing {
            flags: 2, // SYSTEM_MEMORY
            pool_type: PoolType(pool),
            frames: 2,
            frame_size: 64,
            alignment: Alignment::QUAD,
        };
        let ex = FramingEx::from_framing(&f);
        assert_eq!(
            ex.items[0].memory_type,
            MemoryType::KERNEL_PAGED,
            "pool {pool}"
        );
        assert_eq!(ex.to_framing().unwrap().pool_type, PoolType::PAGED);
    }
}
