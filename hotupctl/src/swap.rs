//! The system calls of a swap: control-node writes, module loads and
//! unloads, real-time priority, and the classic swap built of them (the one
//! implementation: `hotupctl upgrade --mode classic`, the scenarios'
//! `upgrade_ko` through it, and the soak's `hotup-soak`).

use nix::errno::Errno;
use nix::kmod::{delete_module, finit_module, DeleteModuleFlags, ModuleInitFlags};
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

/// Writes one command to the control node in one `write`.
pub fn ctl_write(ctl: &Path, cmd: &str) -> Result<(), Errno> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(ctl)
        .map_err(|e| errno_of(&e))?;
    f.write_all(cmd.as_bytes()).map_err(|e| errno_of(&e))
}

/// `delete_module(name, O_NONBLOCK)`, as `rmmod` does.
pub fn rmmod(name: &str) -> Result<(), Errno> {
    let n = CString::new(name).map_err(|_| Errno::EINVAL)?;
    delete_module(&n, DeleteModuleFlags::O_NONBLOCK)
}

/// Real-time priority (SCHED_FIFO 50) while it lives: the switch (or the
/// classic unload and load) happens in this process's system calls, and the
/// I/O threads it pauses must not preempt it, or their time slices would
/// count in the blackout. Dropped as soon as that step is done: what comes
/// after (reading the log, unloading the retired child) must not starve
/// the I/O that just resumed. Best effort: a failure only costs latency,
/// and is said.
pub struct Realtime;

impl Realtime {
    pub fn enter() -> Realtime {
        set_policy(
            nix::libc::SCHED_FIFO,
            50,
            "real-time priority (the blackout may include other threads' time slices)",
        );
        Realtime
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        set_policy(nix::libc::SCHED_OTHER, 0, "normal priority again");
    }
}

fn set_policy(policy: nix::libc::c_int, priority: nix::libc::c_int, what: &str) {
    let p = nix::libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler reads the parameter struct for the calling
    // process (pid 0); `p` is a valid, initialised sched_param.
    let rc = unsafe { nix::libc::sched_setscheduler(0, policy, &p) };
    if rc != 0 {
        eprintln!(
            "hotupctl: could not run at {what}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Why a classic swap failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapError {
    /// The old child could not be unloaded: it is still active, nothing
    /// changed.
    Unload { module: String, errno: Errno },
    /// The new child did not load (or refused the state): the old one is
    /// gone, the device is parked with its state kept.
    Load { file: PathBuf, errno: Errno },
}

impl SwapError {
    pub fn errno(&self) -> Errno {
        match self {
            SwapError::Unload { errno, .. } | SwapError::Load { errno, .. } => *errno,
        }
    }
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapError::Unload { module, errno } => write!(
                f,
                "unloading the active child {module} failed: {}; nothing else was done (`hotupctl status` shows which children are loaded)",
                errno.desc()
            ),
            SwapError::Load { file, errno } => write!(
                f,
                "loading {} failed: {}; the device stays parked with its state kept (no I/O fails): load a child that can adopt it",
                file.display(),
                errno.desc()
            ),
        }
    }
}

impl std::error::Error for SwapError {}

/// A child module opened to be loaded, with its parameters.
pub struct NewChild {
    file: File,
    path: PathBuf,
    params: CString,
}

impl NewChild {
    /// Opens the module file `ko`, before anything is unloaded: a classic
    /// swap's time with no child loaded then holds only the kernel's unload
    /// and load, not the open (or a failure to open).
    pub fn open(ko: &Path, params: &[String]) -> anyhow::Result<NewChild> {
        use anyhow::Context;
        let file = File::open(ko).with_context(|| {
            format!(
                "opening the module {} (give the path of a built child .ko)",
                ko.display()
            )
        })?;
        let params = CString::new(params.join(" "))
            .context("module parameters must not contain a NUL byte")?;
        Ok(NewChild {
            file,
            path: ko.to_owned(),
            params,
        })
    }

    /// `finit_module` on the open file, as `insmod` does.
    pub fn load(&self) -> Result<(), Errno> {
        finit_module(&self.file, &self.params, ModuleInitFlags::empty())
    }

    /// The classic swap: unloads `from` (the active child, which drains and
    /// exports; none when the device is parked after a refused adopt) and
    /// loads this module (it adopts), back to back at real-time priority.
    /// The device-state schema to export is the caller's (`export-schema`
    /// on the control node, before).
    pub fn swap(&self, from: Option<&str>) -> Result<(), SwapError> {
        let _rt = Realtime::enter();
        if let Some(old) = from {
            rmmod(old).map_err(|errno| SwapError::Unload {
                module: old.to_owned(),
                errno,
            })?;
        }
        self.load().map_err(|errno| SwapError::Load {
            file: self.path.clone(),
            errno,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_happened_and_what_to_do() {
        let e = SwapError::Unload {
            module: "hotup_child_v1".into(),
            errno: Errno::EBUSY,
        };
        assert!(e.to_string().contains("hotup_child_v1"), "{e}");
        assert!(e.to_string().contains("hotupctl status"), "{e}");
        assert_eq!(e.errno(), Errno::EBUSY);
        let e = SwapError::Load {
            file: "/m/hotup_child_v2.ko".into(),
            errno: Errno::EPROTO,
        };
        assert!(
            e.to_string().contains("load a child that can adopt it"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_module_is_refused_before_anything_is_unloaded() {
        let e = NewChild::open(Path::new("/nonexistent/x.ko"), &[])
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("opening the module /nonexistent/x.ko"), "{e}");
    }
}
