// SPDX-License-Identifier: GPL-2.0

//! The park ring against a `VecDeque`: FIFO order, nothing lost or
//! duplicated, the capacity respected.

use hotup_parent_logic::ring::Ring;
use proptest::prelude::*;
use std::collections::VecDeque;

fn ring(cap: usize) -> Ring<u32, Vec<Option<u32>>> {
    Ring::over(vec![None; cap])
}

#[test]
fn wraps_around_in_order() {
    let mut r = ring(3);
    for round in 0..5 {
        for i in 0..3 {
            r.push(round * 10 + i).unwrap();
        }
        assert_eq!(r.push(99), Err(99));
        for i in 0..3 {
            assert_eq!(r.front(), Some(&(round * 10 + i)));
            assert_eq!(r.pop(), Some(round * 10 + i));
        }
        assert_eq!((r.len(), r.pop(), r.front()), (0, None, None));
    }
}

#[test]
fn zero_capacity_refuses_everything() {
    let mut r = ring(0);
    assert_eq!(r.push(1), Err(1));
    assert_eq!((r.len(), r.pop(), r.front()), (0, None, None));
}

#[test]
fn over_drops_what_the_storage_held() {
    let mut r = Ring::over(vec![Some(7u32), Some(8)]);
    assert_eq!((r.len(), r.pop()), (0, None));
    r.push(1).unwrap();
    r.push(2).unwrap();
    assert_eq!(r.push(3), Err(3));
}

#[derive(Clone, Debug)]
enum Op {
    Push,
    Pop,
}

proptest! {
    #[test]
    fn behaves_like_a_bounded_fifo(
        cap in 0usize..9,
        ops in prop::collection::vec(prop_oneof![Just(Op::Push), Just(Op::Pop)], 0..200),
    ) {
        let mut r = ring(cap);
        let mut model = VecDeque::new();
        // Every value pushed is new, so a duplicate or a loss shows.
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::Push => {
                    next += 1;
                    let got = r.push(next);
                    if model.len() < cap {
                        prop_assert_eq!(got, Ok(()));
                        model.push_back(next);
                    } else {
                        prop_assert_eq!(got, Err(next));
                    }
                }
                Op::Pop => prop_assert_eq!(r.pop(), model.pop_front()),
            }
            prop_assert_eq!(r.len(), model.len());
            prop_assert_eq!(r.front(), model.front());
        }
        while let Some(v) = model.pop_front() {
            prop_assert_eq!(r.pop(), Some(v));
        }
        prop_assert_eq!(r.pop(), None);
    }
}
