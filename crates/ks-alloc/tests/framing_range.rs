//! `FrameRange::contains` honours the stepping, and `FrameRange::intersect` yields exactly the
//! sizes legal in both ranges (checked against brute force).

use ks_alloc::FrameRange;
use proptest::prelude::*;

#[test]
fn contains_table() {
    let r = FrameRange {
        min: 100,
        max: 200,
        stepping: 25,
    };
    for (s, ok) in [
        (99, false),
        (100, true),
        (110, false),
        (125, true),
        (200, true),
        (201, false),
        (225, false),
    ] {
        assert_eq!(r.contains(s), ok, "size {s}");
    }
    let any = FrameRange {
        min: 5,
        max: 9,
        stepping: 0,
    };
    assert!((5..=9).all(|s| any.contains(s)));
    assert!(!any.contains(4) && !any.contains(10));
    assert!(FrameRange::DONT_CARE.contains(0) && FrameRange::DONT_CARE.contains(u32::MAX));
    assert!(!FrameRange::new(10, 5).contains(7));
}

#[test]
fn intersect_examples() {
    let a = FrameRange {
        min: 0,
        max: 100,
        stepping: 10,
    };
    let b = FrameRange {
        min: 5,
        max: 100,
        stepping: 10,
    };
    assert_eq!(
        a.intersect(&b),
        None,
        "grids 0 mod 10 and 5 mod 10 never meet"
    );
    let c = FrameRange {
        min: 0,
        max: 100,
        stepping: 4,
    };
    let d = FrameRange {
        min: 0,
        max: 100,
        stepping: 6,
    };
    assert_eq!(
        c.intersect(&d),
        Some(FrameRange {
            min: 0,
            max: 96,
            stepping: 12
        })
    );
    assert_eq!(
        FrameRange::DONT_CARE.intersect(&FrameRange::new(188, 188)),
        Some(FrameRange::exactly(188))
    );
    assert_eq!(
        FrameRange::DONT_CARE.intersect(&FrameRange::DONT_CARE),
        Some(FrameRange::DONT_CARE)
    );
    // Steppings whose lcm exceeds u32 leave at most one common size.
    let e = FrameRange {
        min: 0,
        max: u32::MAX,
        stepping: 0xFFFF_FFFB,
    };
    let f = FrameRange {
        min: 0,
        max: u32::MAX,
        stepping: 0xFFFF_FFF1,
    };
    assert_eq!(e.intersect(&f), Some(FrameRange::exactly(0)));
}

fn small_range() -> impl Strategy<Value = FrameRange> {
    (0u32..60, 0u32..60, 0u32..13).prop_map(|(a, b, s)| FrameRange {
        min: a,
        max: b,
        stepping: s,
    })
}

proptest! {
    #[test]
    fn intersect_is_exact(a in small_range(), b in small_range()) {
        let r = a.intersect(&b);
        for s in 0u32..70 {
            let both = a.contains(s) && b.contains(s);
            prop_assert_eq!(r.is_some_and(|r| r.contains(s)), both, "size {} a {:?} b {:?} r {:?}", s, a, b, r);
        }
        if let Some(r) = r {
            prop_assert!(a.contains(r.min) && b.contains(r.min));
            prop_assert!(a.contains(r.max) && b.contains(r.max));
            prop_assert_eq!(Some(r), b.intersect(&a));
        }
    }

    #[test]
    fn intersect_large_values_is_consistent(
        a in (any::<u32>(), any::<u32>(), 0u32..100_000),
        b in (any::<u32>(), any::<u32>(), 0u32..100_000),
    ) {
        let a = FrameRange { min: a.0.min(a.1), max: a.0.max(a.1), stepping: a.2 };
        let b = FrameRange { min: b.0.min(b.1), max: b.0.max(b.1), stepping: b.2 };
        if let Some(r) = a.intersect(&b) {
            for s in [r.min, r.max, r.largest().unwrap()] {
                prop_assert!(a.contains(s) && b.contains(s), "{} not in both", s);
            }
        }
    }

    #[test]
    fn largest_is_contained(r in small_range()) {
        match r.largest() {
            Some(l) => {
                prop_assert!(r.contains(l));
                prop_assert!(!(l + 1..=r.max).any(|s| r.contains(s)));
            }
            None => prop_assert!(r.is_empty()),
        }
    }
}
