// SPDX-License-Identifier: GPL-2.0

//! The switch phase machine: the transition table, the word, and the
//! shared phase under any sequence of events (and under a racing abort).

use hotup_parent_logic::phase::{Event, Illegal, Phase, SwitchPhase, Word};
use proptest::prelude::*;
use std::sync::Arc;

const PHASES: [Phase; 4] = [
    Phase::Idle,
    Phase::Draining,
    Phase::Aborted,
    Phase::Committing,
];
const EVENTS: [Event; 4] = [Event::Begin, Event::Abort, Event::Commit, Event::End];

#[test]
fn the_table_allows_exactly_the_documented_transitions() {
    use {Event::*, Phase::*};
    let legal = [
        (Idle, Begin, Draining),
        (Draining, Abort, Aborted),
        (Draining, Commit, Committing),
        (Draining, End, Idle),
        (Aborted, End, Idle),
        (Committing, End, Idle),
    ];
    for p in PHASES {
        for e in EVENTS {
            let want = legal.iter().find(|l| l.0 == p && l.1 == e).map(|l| l.2);
            assert_eq!(p.on(e).ok(), want, "{p:?} on {e:?}");
        }
    }
}

#[test]
fn a_stale_abort_is_refused() {
    let s = SwitchPhase::new();
    assert!(s.begin());
    let seen = s.get();
    assert!(!s.end());
    assert!(s.begin());
    assert_eq!(s.apply(seen, Event::Abort), Err(Illegal));
    assert_eq!(s.get().phase(), Phase::Draining);
    assert!(s.abort() && s.aborted() && !s.commit() && s.end());
}

proptest! {
    #[test]
    fn every_word_is_a_legal_state(w in any::<u64>(), e in 0usize..4) {
        let w = Word(w);
        prop_assert!(PHASES.contains(&w.phase()));
        let e = EVENTS[e];
        match w.on(e) {
            Ok(n) => {
                prop_assert_eq!(Ok(n.phase()), w.phase().on(e));
                let g = if e == Event::Begin { w.generation().wrapping_add(1) } else { w.generation() };
                prop_assert_eq!(n.generation(), g & (u64::MAX >> 2));
            }
            Err(_) => prop_assert!(w.phase().on(e).is_err()),
        }
    }

    /// Any sequence of calls: each succeeds exactly when the table allows
    /// it, a refused one changes nothing, and Committing is reached only by
    /// begin then commit with no abort between.
    #[test]
    fn calls_follow_the_table(events in prop::collection::vec(0usize..5, 0..100)) {
        let s = SwitchPhase::new();
        let mut begins = 0u64;
        // Successful events since the last end.
        let mut path = Vec::new();
        for e in events {
            let before = s.get();
            let ok = match e {
                0 => s.begin(),
                1 => s.abort(),
                2 => s.commit(),
                3 => {
                    let aborted = s.end();
                    prop_assert_eq!(aborted, before.phase() == Phase::Aborted);
                    before.phase() != Phase::Idle
                }
                _ => {
                    prop_assert_eq!(s.aborted(), before.phase() == Phase::Aborted);
                    false
                }
            };
            if e < 4 {
                let ev = EVENTS[e];
                prop_assert_eq!(ok, before.phase().on(ev).is_ok());
                if ok {
                    path.push(ev);
                    begins += u64::from(ev == Event::Begin);
                }
            }
            if !ok {
                prop_assert_eq!(s.get(), before);
            }
            if s.get().phase() == Phase::Idle {
                path.clear();
            }
            if s.get().phase() == Phase::Committing {
                prop_assert_eq!(&path, &[Event::Begin, Event::Commit]);
            }
            prop_assert_eq!(s.get().generation(), begins);
        }
    }
}

/// The switch holder and a racing operator: every switch either commits
/// or reports the abort, never both, never neither.
#[test]
fn commit_and_abort_exclude_each_other() {
    let s = Arc::new(SwitchPhase::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let op = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += u32::from(s.abort());
            }
            n
        })
    };
    let (mut commits, mut aborts) = (0u32, 0u32);
    for _ in 0..20_000 {
        assert!(s.begin());
        let committed = s.commit();
        let aborted = s.end();
        assert!(committed != aborted);
        commits += u32::from(committed);
        aborts += u32::from(aborted);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(op.join().unwrap(), aborts);
    assert_eq!(commits + aborts, 20_000);
}
