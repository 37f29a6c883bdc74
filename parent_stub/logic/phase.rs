// SPDX-License-Identifier: GPL-2.0

//! The standby switch's phase, as the operator's `abort` sees it: the legal
//! transitions are [`Phase::on`]'s; any other is refused and changes
//! nothing. The switch holder (under the switch lock) begins, commits and
//! ends; the operator only aborts, and only a draining switch.

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Where a standby switch is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// No switch runs.
    Idle = 0,
    /// A switch runs, before its drain is over: `abort` can call it off.
    Draining = 1,
    /// The operator aborted it: the switch must be called off.
    Aborted = 2,
    /// Past the drain: `abort` has no effect.
    Committing = 3,
}

/// What happens to a switch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A new switch starts draining.
    Begin,
    /// The operator's abort.
    Abort,
    /// The drain is over.
    Commit,
    /// The switch is over.
    End,
}

/// A transition the machine refuses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Illegal;

impl Phase {
    /// The phase after `ev`, if `ev` is legal now.
    pub fn on(self, ev: Event) -> Result<Phase, Illegal> {
        match (self, ev) {
            (Phase::Idle, Event::Begin) => Ok(Phase::Draining),
            (Phase::Draining, Event::Abort) => Ok(Phase::Aborted),
            (Phase::Draining, Event::Commit) => Ok(Phase::Committing),
            (Phase::Draining | Phase::Aborted | Phase::Committing, Event::End) => Ok(Phase::Idle),
            _ => Err(Illegal),
        }
    }
}

/// A switch's generation (one per `begin`) and phase in one word:
/// `generation << 2 | phase`. Every word is a legal state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Word(pub u64);

impl Word {
    /// The switch's generation.
    pub const fn generation(self) -> u64 {
        self.0 >> 2
    }

    /// Its phase.
    pub const fn phase(self) -> Phase {
        match self.0 & 3 {
            0 => Phase::Idle,
            1 => Phase::Draining,
            2 => Phase::Aborted,
            _ => Phase::Committing,
        }
    }

    /// The word after `ev`: `begin` starts the next generation.
    pub fn on(self, ev: Event) -> Result<Word, Illegal> {
        let p = self.phase().on(ev)?;
        let g = self.generation() + u64::from(ev == Event::Begin);
        Ok(Word(g << 2 | p as u64))
    }
}

/// The phase word, shared by the switch holder and the operator's `abort`.
/// The generation makes a stale `abort`, which read the phase of a switch
/// that has ended since, refused instead of aborting the next switch.
pub struct SwitchPhase(AtomicU64);

impl SwitchPhase {
    /// Idle, generation 0.
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// The word now.
    pub fn get(&self) -> Word {
        Word(self.0.load(SeqCst))
    }

    /// Applies `ev` to the switch `seen` names (a word read earlier); the
    /// phase it left. Refused if `ev` is illegal in the phase now or that
    /// switch has ended since.
    pub fn apply(&self, seen: Word, ev: Event) -> Result<Phase, Illegal> {
        let mut now = seen;
        loop {
            if now.generation() != seen.generation() {
                return Err(Illegal);
            }
            let next = now.on(ev)?;
            match self.0.compare_exchange(now.0, next.0, SeqCst, SeqCst) {
                Ok(_) => return Ok(now.phase()),
                Err(v) => now = Word(v),
            }
        }
    }

    fn now(&self, ev: Event) -> Result<Phase, Illegal> {
        self.apply(self.get(), ev)
    }

    /// A new switch starts draining; false (refused) if one runs.
    #[must_use]
    pub fn begin(&self) -> bool {
        self.now(Event::Begin).is_ok()
    }

    /// Whether the operator aborted the switch.
    pub fn aborted(&self) -> bool {
        self.get().phase() == Phase::Aborted
    }

    /// The drain is over: past this point `abort` has no effect. False if
    /// an `abort` won the race (the switch must be called off).
    pub fn commit(&self) -> bool {
        self.now(Event::Commit).is_ok()
    }

    /// The switch is over; whether an `abort` had been delivered (it then
    /// must be what the switch reports).
    pub fn end(&self) -> bool {
        self.now(Event::End) == Ok(Phase::Aborted)
    }

    /// The operator's abort: only a draining switch can be aborted.
    pub fn abort(&self) -> bool {
        self.now(Event::Abort).is_ok()
    }
}

impl Default for SwitchPhase {
    fn default() -> Self {
        Self::new()
    }
}
