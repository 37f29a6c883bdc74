//! The kernel log from a point on (`/dev/kmsg`, opened at its end): the
//! parent's lines an operation produced.

use crate::event::{self, Event};
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

pub struct Kmsg(Option<File>);

impl Kmsg {
    /// Starts reading at the end of the log. Without access to /dev/kmsg
    /// (not root, or no such device) it reads nothing: the operation's
    /// result still comes from its return code.
    pub fn at_end() -> Kmsg {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open("/dev/kmsg")
            .ok()
            .and_then(|mut f| f.seek(SeekFrom::End(0)).ok().map(|_| f));
        Kmsg(f)
    }

    /// Every record logged since the last call, its first line with its
    /// header (`prio,seq,usec,flags;text`; one `read` per record, until
    /// EAGAIN).
    pub fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = self.0.as_mut() else { return out };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    // Continuation lines (` KEY=value`) follow the first.
                    out.push(rec.lines().next().unwrap_or("").to_owned());
                }
                // A record overwritten before we read it: go on.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        out
    }

    /// The parent's events among [`Kmsg::lines`] (the header is
    /// [`event::parse`]'s to strip).
    pub fn events(&mut self) -> Vec<Event> {
        self.lines()
            .iter()
            .filter_map(|l| event::parse(l))
            .collect()
    }
}
