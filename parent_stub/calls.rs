// SPDX-License-Identifier: GPL-2.0

//! Syscalls through the parent's device nodes: the controller node's and
//! the block device's ioctls go to the active child through the same gate
//! as block I/O, and park while there is none.
//!
//! **The gate.** A call enters the in-flight gate on a lane of its own
//! (the last of [`super::inflight::InFlight`]'s counters, after the
//! hardware queues), so a switch that closes the gate waits for every call
//! inside the old child as it waits for `submit`: no switch exports while
//! a call runs in the child it exports, and no module leaves under one. A
//! call that was inside the child when the gate closed is counted drained.
//!
//! **Parking.** A call that finds no active child sleeps on
//! [`Hub::calls_wait`] until a child is active, and then enters the gate
//! again. The sleep is interruptible: a signal ends it with
//! `-ERESTARTNOINTR`, so a fatal signal ends the task at once and an
//! ordinary one runs its handler and restarts the call (it was never in a
//! child, so the restart is transparent). With `park_timeout_ms`, a call
//! parked that long while no switch runs fails with `ETIMEDOUT`; while a
//! switch runs it waits for the switch to end, as parked block I/O does.
//!
//! Every place that makes the mode `Active` (the release after a switch)
//! or `Parked`, and the shutdown, wakes the sleepers; they re-check under
//! the parking lot's lock, so no wake-up is lost between the check and the
//! sleep. A restarted call parks anew: its deadline starts again.
//!
//! **Nothing inside the gate waits for the device.** A call in the child
//! holds a switch off, and a switch holds the device's I/O: so a call must
//! not wait for that I/O (a user page that lives on this device, an
//! allocation that writes back to it). The child copies user memory with
//! faults disabled and, on a fault, returns [`CALL_FAULT_IN`] with the
//! range, having changed nothing; the parent leaves the gate, faults the
//! range in (which may park, harmlessly, outside the gate) and calls again.
//! And the call runs in a `memalloc_noio` scope (`blk::NoIo`).
//!
//! **Unload.** Open files pin the module, so no call is in flight at
//! unload; nor after a failed load, whose last fallible step is adding the
//! disk (nothing could be opened before). `shutdown` still wakes parked
//! calls and waits until every caller has left
//! ([`Hub::wait_callers_gone`]): a guard that costs nothing.

use super::blk::{capable_sys_admin, fault_in, NoIo};
use super::hub::Hub;
use super::inflight::Mode;
use super::state_abi::{CallDesc, CALL_FAULT_IN, CALL_FLAG_ADMIN, CALL_FLAG_WRITE};
use crate::hotup_event;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    error::code::ERESTARTNOINTR,
    prelude::*,
    sync::{ArcBorrow, CondVarTimeoutResult},
    time::{msecs_to_jiffies, Delta, Instant, Monotonic},
};

/// What happened to one call while it waited.
enum Waited {
    /// A child may be active: try the gate again.
    Again,
    /// End the call with this errno.
    End(Error),
}

/// How one sleep in the parking lot ended.
enum Slept {
    Woken,
    Signalled,
    /// Not slept: the deadline had passed with no switch running.
    Expired,
}

impl Slept {
    fn from_signal(signalled: bool) -> Self {
        if signalled {
            Slept::Signalled
        } else {
            Slept::Woken
        }
    }
}

/// Most rounds of fault-in and retry for one call before it fails with
/// EFAULT (each round means the range was evicted again in between).
const MAX_FAULT_ROUNDS: u32 = 64;

/// Where a call came from: the node (`NODE_*`), its disk's index, and
/// whether the file was opened for writing.
#[derive(Clone, Copy)]
pub(crate) struct CallSite {
    pub(crate) node: u32,
    pub(crate) disk: u32,
    pub(crate) write: bool,
}

impl Hub {
    /// An id for a newly opened controller-node file, never reused.
    pub(crate) fn next_file_id(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::Relaxed)
    }

    /// An ioctl through the node `at` names, of the open file `file` (an
    /// id; 0 for none): the descriptor is built here, the caller's
    /// privilege read once. `touched` is set once the file is registered as
    /// open (`Hub::open_files`), before its first call can reach a child.
    pub(crate) fn ioctl(
        this: ArcBorrow<'_, Hub>,
        at: CallSite,
        cmd: u32,
        arg: u64,
        file: u64,
        touched: &AtomicBool,
    ) -> isize {
        let CallSite { node, disk, write } = at;
        let mut flags = 0;
        if write {
            flags |= CALL_FLAG_WRITE;
        }
        if capable_sys_admin() {
            flags |= CALL_FLAG_ADMIN;
        }
        let desc = CallDesc {
            size: core::mem::size_of::<CallDesc>() as u32,
            node,
            cmd,
            flags,
            arg,
            file,
            fault_addr: 0,
            fault_len: 0,
            fault_write: 0,
            disk,
            reserved: 0,
        };
        // A file's first call: it may leave per-file state in a child, so
        // it is registered as open until its close (`Hub::open_files`).
        if file != 0 && !touched.load(Ordering::Acquire) {
            if let Err(e) = this.note_file_open(file) {
                return e.to_errno() as isize;
            }
            // Release: whoever sees `touched` sees the registration.
            touched.store(true, Ordering::Release);
        }
        this.callers.fetch_add(1, Ordering::SeqCst);
        let rc = Hub::call(this, &desc);
        // Under the lock `shutdown` waits with: once it is released, this
        // caller touches the hub no more.
        let p = this.park.lock();
        if this.callers.fetch_sub(1, Ordering::SeqCst) == 1 && p.unloading {
            this.wake_calls();
        }
        drop(p);
        rc
    }

    /// One call: forwarded to the active child, or parked until there is
    /// one. The child's result, or a negative errno.
    fn call(this: ArcBorrow<'_, Hub>, desc: &CallDesc) -> isize {
        let lane = this.io.call_lane();
        let mut parked_at = None;
        let mut rounds = 0;
        loop {
            match this.io.enter(lane, true) {
                Ok(child) => {
                    let mut d = *desc;
                    let rc = {
                        let _noio = NoIo::enter();
                        child.ioctl(&mut d)
                    };
                    drop(child);
                    if rc != CALL_FAULT_IN {
                        return isize::try_from(rc).unwrap_or(EIO.to_errno() as isize);
                    }
                    // Outside the gate now: a fault that needs this device
                    // waits for a switch, not the other way round.
                    rounds += 1;
                    if rounds > MAX_FAULT_ROUNDS
                        || !fault_in(d.fault_addr, d.fault_len, d.fault_write != 0)
                    {
                        return EFAULT.to_errno() as isize;
                    }
                    parked_at = None;
                    continue;
                }
                // No child although the mode is active: a broken invariant.
                Err(Mode::Active) => return EIO.to_errno() as isize,
                Err(_) => {}
            }
            match Hub::park_call(this, &mut parked_at) {
                // Released into an active child: a later park is a new one.
                Waited::Again => parked_at = None,
                Waited::End(e) => return e.to_errno() as isize,
            }
        }
    }

    /// Sleeps until a child may be active. `parked_at` is when this call
    /// first parked (set, and counted, on its first wait).
    fn park_call(this: ArcBorrow<'_, Hub>, parked_at: &mut Option<Instant<Monotonic>>) -> Waited {
        let mut p = this.park.lock();
        loop {
            let mode = this.io.mode();
            if mode == Mode::Active {
                return Waited::Again;
            }
            if p.unloading {
                return Waited::End(ENODEV);
            }
            let now = Instant::<Monotonic>::now();
            let since = *parked_at.get_or_insert_with(|| {
                p.calls_parked_total += 1;
                now
            });
            p.calls_waiting += 1;
            let slept = if this.park_timeout_ms == 0 {
                Slept::from_signal(this.calls_wait.wait_interruptible(&mut p))
            } else {
                let left = since + Delta::from_millis(i64::from(this.park_timeout_ms)) - now;
                if left.as_nanos() > 0 {
                    let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
                    // One jiffy more, so the deadline has passed on timeout.
                    let j = msecs_to_jiffies(ms).saturating_add(1);
                    match this.calls_wait.wait_interruptible_timeout(&mut p, j) {
                        CondVarTimeoutResult::Signal { .. } => Slept::Signalled,
                        _ => Slept::Woken,
                    }
                } else if mode == Mode::Parked {
                    Slept::Expired
                } else {
                    // Past the deadline while a switch runs: its end
                    // (active or parked) wakes this sleep.
                    Slept::from_signal(this.calls_wait.wait_interruptible(&mut p))
                }
            };
            p.calls_waiting -= 1;
            match slept {
                Slept::Woken => {}
                // Never inside a child: the call restarts from the top
                // after the handler, or the task dies of a fatal signal.
                Slept::Signalled => return Waited::End(ERESTARTNOINTR),
                Slept::Expired => {
                    p.call_timeouts += 1;
                    drop(p);
                    hotup_event!(
                        "park-timeout calls=1 timeout_ms={} waited_ms={} status=ETIMEDOUT",
                        this.park_timeout_ms,
                        (now - since).as_millis()
                    );
                    return Waited::End(ETIMEDOUT);
                }
            }
        }
    }

    /// A controller-node file through which a call reached a child was
    /// closed: the active child hears of it (inside the gate); with none
    /// active it is kept for the next one ([`Hub::deliver_closed`]), so
    /// per-file state that travelled in a blob is still forgotten.
    pub(crate) fn file_closed(this: ArcBorrow<'_, Hub>, file: u64) {
        // First: from here an adopt that finds the file in a blob forgets
        // it (`prune_closed_files`), whatever happens to this close below.
        this.note_file_closed(file);
        let lane = this.io.call_lane();
        loop {
            match this.io.enter(lane, false) {
                Ok(child) => {
                    let _noio = NoIo::enter();
                    child.release(file);
                    return;
                }
                Err(Mode::Active) => return,
                Err(_) => {}
            }
            let mut p = this.park.lock();
            // The release that makes a child active empties the queue and
            // sets the mode under this lock: a file queued before it is
            // delivered, one closed after it finds the mode active here.
            if this.io.mode() == Mode::Active {
                continue;
            }
            // Preallocated: no allocation under the lock. When it is full
            // the next child keeps a stale entry: a slot, never a wrong
            // answer (ids are never reused).
            if p.closed.push_within_capacity(file).is_err() {
                p.closed_dropped += 1;
            }
            return;
        }
    }

    /// Called by the release that makes `child` active (under the switch
    /// lock, the mode still `Switching`): tells it of the files closed
    /// while no child was active, before any parked call can run in it.
    /// Returns with the parking lot locked and the queue empty, so the
    /// caller sets the mode in the same lock hold.
    pub(crate) fn deliver_closed<'a>(
        this: &'a Hub,
        child: &super::edge::ActiveChild,
    ) -> kernel::sync::lock::Guard<
        'a,
        super::park::ParkLot,
        kernel::sync::lock::spinlock::SpinLockBackend,
    > {
        let lane = this.io.call_lane();
        loop {
            let mut p = this.park.lock();
            let Some(file) = p.closed.pop() else {
                let dropped = core::mem::take(&mut p.closed_dropped);
                if dropped > 0 {
                    drop(p);
                    hotup_event!("error reason=closed-files-not-queued count={}", dropped);
                    continue;
                }
                return p;
            };
            drop(p);
            let _inside = this.io.enter_forced(lane);
            let _noio = NoIo::enter();
            child.release(file);
        }
    }

    /// Registers `file` as open with per-file state possibly in a child.
    /// In a NOIO scope under the lock: a switch takes it with the gate
    /// closed, so its holder must not wait for reclaim that writes here.
    fn note_file_open(&self, file: u64) -> Result {
        let _noio = NoIo::enter();
        let mut open = self.open_files.lock();
        if !open.contains(&file) {
            open.push(file, GFP_KERNEL)?;
        }
        Ok(())
    }

    fn note_file_closed(&self, file: u64) {
        let mut open = self.open_files.lock();
        if let Some(i) = open.iter().position(|f| *f == file) {
            let _ = open.remove(i);
        }
    }

    /// After `child` adopted `blob` (the switch holds the gate closed; the
    /// caller has not spent the stash yet):
    /// tells it of every file in the blob's per-file section that is no
    /// longer open. Closes reach a child by `release`, or queued for the
    /// next one; but a blob can name files closed since it was written (the
    /// last good state, an old child that ignored closes, a queue that
    /// overflowed). Returns how many it forgot.
    pub(crate) fn prune_closed_files(
        &self,
        child: &super::edge::ActiveChild,
        blob: &[u8],
    ) -> usize {
        let Some(files) = super::state_abi::BlobReader::parse(blob)
            .ok()
            .and_then(|r| r.find(super::state_abi::TAG_FILES))
            .filter(|s| s.version == super::state_abi::FILE_V1)
            .and_then(|s| super::state_abi::FileStates::decode(s.payload).ok())
        else {
            return 0;
        };
        let lane = self.io.call_lane();
        let mut pruned = 0;
        for f in files.as_slice() {
            if self.open_files.lock().contains(&f.file) {
                continue;
            }
            // Closed while no child was active: the release that follows
            // delivers it (`deliver_closed`).
            if self.park.lock().closed.contains(&f.file) {
                continue;
            }
            let _inside = self.io.enter_forced(lane);
            child.release(f.file);
            pruned += 1;
        }
        pruned
    }

    /// Wakes every parked call to look at the mode again. Called after the
    /// mode changed under the parking lot's lock.
    pub(crate) fn wake_calls(&self) {
        self.calls_wait.notify_all();
    }

    /// At unload, once `unloading` is set and the parked calls woken: waits
    /// until every caller has left the hub (they end with ENODEV).
    pub(crate) fn wait_callers_gone(&self) {
        let mut p = self.park.lock();
        while self.callers.load(Ordering::SeqCst) > 0 {
            self.calls_wait.wait(&mut p);
        }
    }
}
