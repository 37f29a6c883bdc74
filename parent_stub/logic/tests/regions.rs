// SPDX-License-Identifier: GPL-2.0

//! The regions table against a model: handles unique and never reused,
//! unknown handles refused, a failed adopt frees exactly what it stored.

use hotup_parent_logic::regions::Table;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const N: usize = 4;

#[derive(Debug, PartialEq)]
enum E {
    Full,
    NoMem,
}

#[test]
fn a_freed_handle_names_nothing_even_when_its_slot_is_reused() {
    let mut t = Table::<u32, 1>::new();
    let a = t.insert_with(E::Full, || Ok(1)).unwrap();
    assert_eq!(
        t.insert_with(E::Full, || -> Result<u32, E> { panic!("full") }),
        Err(E::Full)
    );
    assert_eq!(t.remove(a), Some(1));
    let b = t.insert_with(E::Full, || Ok(2)).unwrap();
    assert_ne!(a, b);
    assert_eq!((t.get_mut(a).copied(), t.remove(a)), (None, None));
    assert_eq!(t.get_mut(b), Some(&mut 2));
    for bogus in [0, u64::MAX, b ^ 0x100, b | 0xff] {
        assert_eq!(t.remove(bogus), None);
    }
}

#[test]
fn a_failed_allocation_stores_nothing() {
    let mut t = Table::<u32, N>::new();
    assert_eq!(t.insert_with(E::Full, || Err(E::NoMem)), Err(E::NoMem));
    assert_eq!(t.iter().count(), 0);
}

#[test]
fn abort_frees_only_the_adopts_regions() {
    let mut t = Table::<u32, N>::new();
    let kept = t.insert_with(E::Full, || Ok(1)).unwrap();
    t.begin_adopt();
    let a = t.insert_with(E::Full, || Ok(2)).unwrap();
    t.insert_with(E::Full, || Ok(3)).unwrap();
    assert_eq!(t.abort(), 2);
    assert_eq!(
        (t.get_mut(kept).copied(), t.get_mut(a).copied()),
        (Some(1), None)
    );
    // After the adopt, regions are no longer tentative.
    t.insert_with(E::Full, || Ok(4)).unwrap();
    assert_eq!(t.abort(), 0);
    t.begin_adopt();
    t.insert_with(E::Full, || Ok(5)).unwrap();
    t.commit();
    assert_eq!(t.abort(), 0);
    assert_eq!(t.iter().count(), 3);
    t.clear();
    assert_eq!((t.iter().count(), t.get_mut(kept).copied()), (0, None));
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        fail: bool,
    },
    /// Of a handle ever issued (by index), or of any number.
    Remove(prop::sample::Index),
    RemoveRaw(u64),
    Get(prop::sample::Index),
    BeginAdopt,
    Commit,
    Abort,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::bool::weighted(0.2).prop_map(|fail| Op::Insert { fail }),
        3 => any::<prop::sample::Index>().prop_map(Op::Remove),
        1 => any::<u64>().prop_map(Op::RemoveRaw),
        2 => any::<prop::sample::Index>().prop_map(Op::Get),
        1 => Just(Op::BeginAdopt),
        1 => Just(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #[test]
    fn matches_the_model(ops in prop::collection::vec(op(), 0..200)) {
        let mut t = Table::<u64, N>::new();
        // Live regions: handle -> (value, tentative).
        let mut live = BTreeMap::<u64, (u64, bool)>::new();
        let mut issued = Vec::<u64>::new();
        let mut adopting = false;
        for (i, op) in ops.into_iter().enumerate() {
            let i = i as u64;
            match op {
                Op::Insert { fail } => {
                    let got = t.insert_with(E::Full, || if fail { Err(E::NoMem) } else { Ok(i) });
                    match got {
                        Ok(h) => {
                            prop_assert!(!fail && live.len() < N);
                            // Unique among live ones and never issued before.
                            prop_assert!(!issued.contains(&h));
                            issued.push(h);
                            live.insert(h, (i, adopting));
                        }
                        Err(E::Full) => prop_assert_eq!(live.len(), N),
                        Err(E::NoMem) => prop_assert!(fail && live.len() < N),
                    }
                }
                Op::Remove(ix) if !issued.is_empty() => {
                    let h = issued[ix.index(issued.len())];
                    prop_assert_eq!(t.remove(h), live.remove(&h).map(|v| v.0));
                }
                Op::Remove(_) => {}
                Op::RemoveRaw(h) => {
                    prop_assert_eq!(t.remove(h), live.remove(&h).map(|v| v.0));
                }
                Op::Get(ix) if !issued.is_empty() => {
                    let h = issued[ix.index(issued.len())];
                    prop_assert_eq!(t.get_mut(h).copied(), live.get(&h).map(|v| v.0));
                }
                Op::Get(_) => {}
                Op::BeginAdopt => {
                    t.begin_adopt();
                    adopting = true;
                }
                Op::Commit => {
                    t.commit();
                    adopting = false;
                    live.values_mut().for_each(|v| v.1 = false);
                }
                Op::Abort => {
                    let before = live.len();
                    live.retain(|_, v| !v.1);
                    prop_assert_eq!(t.abort(), before - live.len());
                    adopting = false;
                }
                Op::Clear => {
                    t.clear();
                    live.clear();
                }
            }
            let values: BTreeSet<u64> = t.iter().copied().collect();
            let model: BTreeSet<u64> = live.values().map(|v| v.0).collect();
            prop_assert_eq!(values, model);
            for (&h, v) in &live {
                prop_assert_eq!(t.get_mut(h).copied(), Some(v.0));
            }
        }
    }
}
