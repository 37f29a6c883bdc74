// SPDX-License-Identifier: GPL-2.0

//! [`Event`]: a counting wake-up that any context may signal, hard IRQ
//! included. The kernel crate's `Completion` has only `complete_all`, which
//! is final; the drain wait needs a wake-up per "maybe done", with no lost
//! wake-up between a waiter's check and its sleep.

use kernel::{bindings, prelude::*, types::Opaque};

/// A `struct completion` used as a counting semaphore: every [`signal`]
/// lets one [`wait`] return, whether the wait started before or after.
///
/// [`signal`]: Event::signal
/// [`wait`]: Event::wait
#[pin_data]
pub(crate) struct Event {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: a `struct completion` is made to be signalled and waited on from
// any thread; it has its own lock.
unsafe impl Send for Event {}
// SAFETY: see `Send`; every operation goes through the completion's lock.
unsafe impl Sync for Event {}

impl Event {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- Opaque::ffi_init(|slot: *mut bindings::completion| {
                // SAFETY: `slot` is valid for writing an uninitialised completion.
                unsafe { bindings::init_completion(slot) };
            }),
        })
    }

    /// Lets one waiter (present or future) go. Callable from any context.
    pub(crate) fn signal(&self) {
        // SAFETY: `inner` was initialised by `init_completion` and is pinned;
        // `complete` takes the completion's raw spinlock with IRQs saved.
        unsafe { bindings::complete(self.inner.get()) };
    }

    /// Takes every signal available now, without sleeping.
    pub(crate) fn clear(&self) {
        // SAFETY: as in `signal`; `try_wait_for_completion` never sleeps.
        while unsafe { bindings::try_wait_for_completion(self.inner.get()) } {}
    }

    /// Sleeps (uninterruptibly) until a signal is available and takes it
    /// (true), or until `jiffies` have passed (false). Process context only.
    pub(crate) fn wait_timeout(&self, jiffies: kernel::time::Jiffies) -> bool {
        // SAFETY: as in `signal`; the caller may sleep (process context).
        unsafe { bindings::wait_for_completion_timeout(self.inner.get(), jiffies) != 0 }
    }

    /// Sleeps (uninterruptibly) until a signal is available, and takes it.
    /// Process context only.
    pub(crate) fn wait(&self) {
        // SAFETY: as in `signal`; the caller may sleep (process context).
        unsafe { bindings::wait_for_completion(self.inner.get()) };
    }
}
