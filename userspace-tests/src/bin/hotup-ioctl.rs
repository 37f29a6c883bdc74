//! `hotup-ioctl`: the guest scenarios' ioctl client for what `nvme` (nvme-cli)
//! cannot do: hold one open file across upgrades, be signalled while parked,
//! send malformed commands, and fuzz the controller node.
//!
//! Results go to stdout as one line of `key=value` pairs (the scenarios grep
//! them); the exit status says whether the mode's own condition held.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `_IOWR('N', 0x41, struct nvme_passthru_cmd)`.
const NVME_IOCTL_ADMIN_CMD: u64 = 0xc048_4e41;
/// `_IOWR('N', 0x43, struct nvme_passthru_cmd)`.
const NVME_IOCTL_IO_CMD: u64 = 0xc048_4e43;
/// `_IO('N', 0x40)`.
const NVME_IOCTL_ID: u64 = 0x4e40;
/// hotup's per-file value on the controller node: `_IOW('H', 1, u64)`.
const HOTUP_IOCTL_FILE_SET: u64 = 0x4008_4801;
/// `_IOR('H', 2, u64)`.
const HOTUP_IOCTL_FILE_GET: u64 = 0x8008_4802;

/// `struct nvme_passthru_cmd` (72 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct Passthru {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

const _: () = assert!(std::mem::size_of::<Passthru>() == 72);

#[derive(Parser)]
#[command(about = "ioctl client for hotup's controller node and namespace (guest scenarios)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Open DEV once and send Identify Controller through that one file
    /// until STOP exists; every call must succeed. Reports the calls and
    /// the firmware revisions (child versions) seen.
    Hold {
        dev: PathBuf,
        /// Stop once this file exists.
        #[arg(long)]
        until: PathBuf,
        /// Fail unless at least this many calls were made.
        #[arg(long, default_value_t = 1)]
        min_calls: u64,
        /// Keep the number of calls made so far in this file (rewritten
        /// every 50 calls), so a scenario can wait for progress.
        #[arg(long)]
        progress: Option<PathBuf>,
        /// Keep each call's command and data buffer in a private mapping of
        /// this file (created, 1 MiB), dropped from memory before every
        /// call (remapped, page cache dropped: needs root): the child then
        /// faults on pages that must be read from the file's device (put
        /// it on the parent's own disk).
        #[arg(long)]
        buffer_file: Option<PathBuf>,
        /// Set this per-file value on the held file first, and check on
        /// every call that it reads back (it must survive upgrades).
        #[arg(long)]
        tag: Option<u64>,
    },
    /// Open DEV, set a per-file value, wait until STOP exists, then close
    /// (the close may happen while no child is loaded).
    Tag {
        dev: PathBuf,
        #[arg(long)]
        value: u64,
        #[arg(long)]
        until: PathBuf,
    },
    /// One Identify Controller with a SIGUSR1 handler installed (no
    /// SA_RESTART): signals while it is parked must not end it. Prints its
    /// result and how many signals arrived; fails unless it succeeded.
    Parked { dev: PathBuf },
    /// poll(2) DEV for POLLIN up to --timeout-ms: prints `ready` or
    /// `timeout` and how long it waited. Exit status 0 either way.
    Poll {
        dev: PathBuf,
        #[arg(long, default_value_t = 1000)]
        timeout_ms: i32,
    },
    /// One passthrough command with the given fields; prints `ret=` (the
    /// ioctl's return, an NVMe status when positive) or `errno=`, and
    /// `result=`. Exit status 0 whatever the outcome.
    Raw {
        dev: PathBuf,
        /// `admin`, `io` or `id` (NVME_IOCTL_ID), or a raw ioctl number.
        #[arg(long, default_value = "admin")]
        ioctl: String,
        #[arg(long, default_value_t = 6, value_parser = parse_u64)]
        opcode: u64,
        #[arg(long, default_value_t = 0, value_parser = parse_u64)]
        flags: u64,
        #[arg(long, default_value_t = 0, value_parser = parse_u64)]
        nsid: u64,
        #[arg(long, default_value_t = 1, value_parser = parse_u64)]
        cdw10: u64,
        #[arg(long, default_value_t = 0, value_parser = parse_u64)]
        cdw11: u64,
        #[arg(long, default_value_t = 0, value_parser = parse_u64)]
        cdw12: u64,
        /// Data length to declare (the buffer is always 4096 bytes unless
        /// --bad-addr).
        #[arg(long, default_value_t = 4096, value_parser = parse_u64)]
        data_len: u64,
        /// Point `addr` at an unmapped address.
        #[arg(long)]
        bad_addr: bool,
        /// Pass an unmapped address as the ioctl's argument itself.
        #[arg(long)]
        bad_arg: bool,
        /// Open the device for writing too.
        #[arg(long)]
        write: bool,
    },
    /// Random ioctls (numbers, sizes, struct contents, pointers) on DEV;
    /// fails only if a call hangs past --max-call-ms or the process dies.
    Fuzz {
        dev: PathBuf,
        #[arg(long, default_value_t = 5000)]
        iterations: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 10_000)]
        max_call_ms: u64,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

fn open(dev: &Path, write: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(dev)
        .with_context(|| format!("opening {} (is hotup_parent loaded?)", dev.display()))
}

/// `ioctl(fd, cmd, arg)`: Ok(return value) or Err(errno).
fn ioctl(f: &File, cmd: u64, arg: u64) -> std::result::Result<i32, i32> {
    // SAFETY: the kernel validates `arg` for every command; a bad pointer
    // comes back as EFAULT, and the buffers passed as good ones outlive the
    // call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), cmd as libc::c_ulong, arg as libc::c_ulong) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EINVAL => "EINVAL".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::EACCES => "EACCES".into(),
        libc::EPERM => "EPERM".into(),
        libc::ENOTTY => "ENOTTY".into(),
        libc::EINTR => "EINTR".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::EIO => "EIO".into(),
        libc::ENOMEM => "ENOMEM".into(),
        libc::ETIMEDOUT => "ETIMEDOUT".into(),
        libc::ENODEV => "ENODEV".into(),
        libc::EBADF => "EBADF".into(),
        libc::ENODATA => "ENODATA".into(),
        libc::ENOSPC => "ENOSPC".into(),
        e => format!("errno{e}"),
    }
}

/// Identify Controller into `page`; the firmware revision on success.
fn identify(f: &File, page: &mut [u8; 4096]) -> std::result::Result<String, String> {
    let mut c = Passthru {
        opcode: 0x06,
        cdw10: 1,
        addr: page.as_mut_ptr() as u64,
        data_len: 4096,
        ..Default::default()
    };
    match ioctl(f, NVME_IOCTL_ADMIN_CMD, std::ptr::addr_of_mut!(c) as u64) {
        Ok(0) => Ok(String::from_utf8_lossy(&page[64..72]).trim().to_string()),
        Ok(s) => Err(format!("status{s:#x}")),
        Err(e) => Err(errno_name(e)),
    }
}

/// Where the buffer file is mapped: fixed, so the commands written into the
/// file beforehand can point at their data pages.
const PAGED_BASE: u64 = 0x5000_0000_0000;
const PAGED_LEN: usize = 1 << 20;

/// The buffer file's commands, one per 8 KiB slot: an Identify Controller
/// in the slot's first page whose data goes to the slot's second page.
struct Paged {
    file: File,
    next: usize,
}

impl Paged {
    fn new(path: &Path) -> Result<Self> {
        let mut content = vec![0u8; PAGED_LEN];
        for slot in 0..PAGED_LEN / 8192 {
            let off = slot * 8192;
            let c = Passthru {
                opcode: 0x06,
                cdw10: 1,
                addr: PAGED_BASE + off as u64 + 4096,
                data_len: 4096,
                ..Default::default()
            };
            // SAFETY: `Passthru` is plain old data of 72 bytes.
            let bytes: [u8; 72] = unsafe { std::mem::transmute(c) };
            content[off..off + 72].copy_from_slice(&bytes);
        }
        std::fs::write(path, &content).with_context(|| format!("writing {}", path.display()))?;
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        file.sync_all().context("fsync of the buffer file")?;
        let mut p = Self { file, next: 0 };
        p.map()?;
        Ok(p)
    }

    /// Maps the file afresh at the fixed address (no page of it present).
    fn map(&mut self) -> Result<()> {
        // SAFETY: a fixed private mapping of our own file at an address
        // nothing else in this process uses (unmapped first, if it was).
        let p = unsafe {
            libc::munmap(PAGED_BASE as *mut libc::c_void, PAGED_LEN);
            libc::mmap(
                PAGED_BASE as *mut libc::c_void,
                PAGED_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED_NOREPLACE,
                self.file.as_raw_fd(),
                0,
            )
        };
        if p as u64 != PAGED_BASE {
            bail!(
                "mmap of the buffer file: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// The next slot's command, with the file out of memory: mapped afresh
    /// and the page cache dropped (the guest kernel has no fadvise), so the
    /// child's copies fault on pages that must be read from the device.
    fn next_cmd(&mut self) -> Result<u64> {
        let off = self.next * 8192;
        self.next = (self.next + 1) % (PAGED_LEN / 8192);
        self.map()?;
        std::fs::write("/proc/sys/vm/drop_caches", "1\n")
            .context("dropping the page cache (needs root)")?;
        Ok(PAGED_BASE + off as u64)
    }

    /// The firmware revision the last call wrote into slot `addr`.
    fn fr(&self, addr: u64) -> String {
        // SAFETY: the data page is inside our mapping and was just written.
        let data = unsafe { std::slice::from_raw_parts((addr + 4096 + 64) as *const u8, 8) };
        String::from_utf8_lossy(data).trim().to_string()
    }
}

fn set_tag(f: &File, v: u64) -> std::result::Result<(), String> {
    ioctl(f, HOTUP_IOCTL_FILE_SET, std::ptr::addr_of!(v) as u64)
        .map(|_| ())
        .map_err(errno_name)
}

fn get_tag(f: &File) -> std::result::Result<u64, String> {
    let mut v = 0u64;
    ioctl(f, HOTUP_IOCTL_FILE_GET, std::ptr::addr_of_mut!(v) as u64)
        .map(|_| v)
        .map_err(errno_name)
}

fn tag(dev: &Path, value: u64, until: &Path) -> Result<()> {
    let f = open(dev, false)?;
    set_tag(&f, value).map_err(|e| anyhow::anyhow!("setting the per-file value: {e}"))?;
    println!("set value={value}");
    while !until.exists() {
        std::thread::sleep(Duration::from_millis(20)); // poll for the stop file
    }
    drop(f);
    println!("closed");
    Ok(())
}

fn hold(
    dev: &Path,
    until: &Path,
    min_calls: u64,
    progress: Option<&Path>,
    buffer_file: Option<&Path>,
    tag: Option<u64>,
) -> Result<()> {
    let f = open(dev, false)?;
    if let Some(v) = tag {
        set_tag(&f, v).map_err(|e| anyhow::anyhow!("setting the per-file value: {e}"))?;
    }
    let mut paged = buffer_file.map(Paged::new).transpose()?;
    let mut page = [0u8; 4096];
    let (mut calls, mut failures) = (0u64, 0u64);
    let mut seen: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut slowest = Duration::ZERO;
    while !until.exists() {
        let t = Instant::now();
        let r = match paged.as_mut() {
            Some(p) => {
                let addr = p.next_cmd()?;
                match ioctl(&f, NVME_IOCTL_ADMIN_CMD, addr) {
                    Ok(0) => Ok(p.fr(addr)),
                    Ok(s) => Err(format!("status{s:#x}")),
                    Err(e) => Err(errno_name(e)),
                }
            }
            None => identify(&f, &mut page),
        };
        // The per-file value, read back through the same file.
        let r = match (r, tag) {
            (Ok(fr), Some(v)) => match get_tag(&f) {
                Ok(got) if got == v => Ok(fr),
                Ok(got) => Err(format!("tag{got}!={v}")),
                Err(e) => Err(format!("tag:{e}")),
            },
            (r, _) => r,
        };
        match r {
            Ok(fr) => {
                if seen.last() != Some(&fr) {
                    seen.push(fr);
                }
            }
            Err(e) => {
                failures += 1;
                if errors.len() < 5 {
                    errors.push(e);
                }
            }
        }
        slowest = slowest.max(t.elapsed());
        calls += 1;
        if let Some(p) = progress.filter(|_| calls % 50 == 0) {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, format!("{calls}\n"))
                .and_then(|()| std::fs::rename(&tmp, p))
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    println!(
        "calls={calls} failures={failures} versions={} slowest_ms={} errors={}",
        seen.join(","),
        slowest.as_millis(),
        if errors.is_empty() {
            "-".into()
        } else {
            errors.join(",")
        }
    );
    if failures > 0 || calls < min_calls {
        bail!("{failures} of {calls} calls through the held file failed (at least {min_calls} wanted)");
    }
    Ok(())
}

static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

fn parked(dev: &Path) -> Result<()> {
    // SAFETY: a plain handler that only bumps an atomic; no SA_RESTART, so
    // only the kernel's own restart can keep the call alive.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        if libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) != 0 {
            bail!("sigaction: {}", std::io::Error::last_os_error());
        }
    }
    let f = open(dev, false)?;
    println!("pid={} ready", std::process::id());
    let mut page = [0u8; 4096];
    let t = Instant::now();
    let r = identify(&f, &mut page);
    let signals = SIGNALS.load(Ordering::Relaxed);
    let ms = t.elapsed().as_millis();
    match r {
        Ok(fr) => {
            println!("result=ok fr={fr} signals={signals} waited_ms={ms}");
            Ok(())
        }
        Err(e) => {
            println!("result={e} signals={signals} waited_ms={ms}");
            bail!("the parked call ended with {e}")
        }
    }
}

/// An address nothing is mapped at (user half, far from the heap).
const BAD: u64 = 0x0000_7fff_dead_0000;

#[allow(clippy::too_many_arguments)]
fn raw(
    dev: &Path,
    which: &str,
    c: Passthru,
    bad_addr: bool,
    bad_arg: bool,
    write: bool,
) -> Result<()> {
    let f = open(dev, write)?;
    let cmd = match which {
        "admin" => NVME_IOCTL_ADMIN_CMD,
        "io" => NVME_IOCTL_IO_CMD,
        "id" => NVME_IOCTL_ID,
        n => parse_u64(n).map_err(anyhow::Error::msg)?,
    };
    let mut page = vec![0u8; 1 << 20];
    let mut c = c;
    c.addr = if bad_addr {
        BAD
    } else {
        page.as_mut_ptr() as u64
    };
    let arg = if bad_arg {
        BAD
    } else {
        std::ptr::addr_of_mut!(c) as u64
    };
    match ioctl(&f, cmd, arg) {
        Ok(r) => println!("ret={r:#x} result={:#x}", c.result),
        Err(e) => println!("errno={} result={:#x}", errno_name(e), c.result),
    }
    Ok(())
}

/// A readable and writable page followed by an inaccessible one; returns
/// the address where the accessible page ends.
fn guarded_page() -> Result<u64> {
    // SAFETY: a fresh anonymous mapping, never unmapped (the process ends
    // with the fuzz run); nothing else refers to it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            bail!("mmap: {}", std::io::Error::last_os_error());
        }
        let guard = p.cast::<u8>().add(4096).cast();
        if libc::mprotect(guard, 4096, libc::PROT_NONE) != 0 {
            bail!("mprotect: {}", std::io::Error::last_os_error());
        }
        Ok(guard as u64)
    }
}

/// xorshift64*: a seeded, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn fuzz(dev: &Path, iterations: u64, seed: u64, max_call_ms: u64) -> Result<()> {
    let f = open(dev, true).or_else(|_| open(dev, false))?;
    let mut rng = Rng(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; 1 << 20];
    let guard_end = guarded_page()?;
    let mut ok = 0u64;
    let mut statuses = 0u64;
    let mut errnos: std::collections::BTreeMap<String, u64> = Default::default();
    let mut slowest = Duration::ZERO;
    for _ in 0..iterations {
        let cmd = match rng.next() % 8 {
            0..=3 => NVME_IOCTL_ADMIN_CMD,
            4 | 5 => NVME_IOCTL_IO_CMD,
            6 => rng.pick(&[NVME_IOCTL_ID, 0x4e44, 0xc050_4e47, 0x4e45, 0x1260]),
            _ => rng.next() & 0xffff_ffff,
        };
        let r = rng.next();
        let mut c = Passthru {
            opcode: rng.pick(&[0x00, 0x01, 0x02, 0x06, 0x09, 0x0a, 0x7f, 0xff, r as u8]),
            flags: if rng.next().is_multiple_of(8) {
                rng.next() as u8
            } else {
                0
            },
            nsid: rng.pick(&[0, 1, 2, u32::MAX, (r >> 8) as u32]),
            cdw10: rng.pick(&[
                0,
                1,
                2,
                3,
                0x02 | 0x7f << 16,
                0x04,
                0x06,
                0x07,
                (r >> 16) as u32,
            ]),
            cdw11: rng.pick(&[0, 1, 0xffff, (r >> 24) as u32]),
            cdw12: rng.pick(&[0, 1, 0xffff, (r >> 32) as u32]),
            cdw13: rng.pick(&[0, (r >> 40) as u32]),
            data_len: rng.pick(&[0, 1, 512, 4096, 8192, 1 << 20, (r >> 3) as u32]),
            ..Default::default()
        };
        if rng.next().is_multiple_of(16) {
            c.metadata_len = rng.next() as u32;
        }
        c.addr = match rng.next() % 6 {
            0 => 0,
            1 => BAD,
            2 => 0xffff_8880_0000_0000, // a kernel address
            // 16 bytes before an inaccessible page: a transfer that starts
            // fine and faults part way.
            3 => guard_end - 16,
            _ => buf.as_mut_ptr() as u64,
        };
        let arg = match rng.next() % 10 {
            0 => 0,
            1 => BAD,
            _ => std::ptr::addr_of_mut!(c) as u64,
        };
        let t = Instant::now();
        match ioctl(&f, cmd, arg) {
            Ok(0) => ok += 1,
            Ok(_) => statuses += 1,
            Err(e) => *errnos.entry(errno_name(e)).or_default() += 1,
        }
        let took = t.elapsed();
        slowest = slowest.max(took);
        if took > Duration::from_millis(max_call_ms) {
            bail!("a call took {} ms (cmd {cmd:#x}, {c:?})", took.as_millis());
        }
    }
    let e: Vec<String> = errnos.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!(
        "iterations={iterations} ok={ok} statuses={statuses} errnos={} slowest_ms={}",
        e.join(","),
        slowest.as_millis()
    );
    Ok(())
}

fn poll(dev: &Path, timeout_ms: i32) -> Result<()> {
    let f = open(dev, false)?;
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let t = Instant::now();
    println!("polling");
    // SAFETY: one valid pollfd for the call.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    let ms = t.elapsed().as_millis();
    match n {
        1 => println!("ready revents={:#x} waited_ms={ms}", p.revents),
        0 => println!("timeout waited_ms={ms}"),
        _ => bail!("poll: {}", std::io::Error::last_os_error()),
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Poll { dev, timeout_ms } => poll(&dev, timeout_ms),
        Cmd::Hold {
            dev,
            until,
            min_calls,
            progress,
            buffer_file,
            tag: t,
        } => hold(
            &dev,
            &until,
            min_calls,
            progress.as_deref(),
            buffer_file.as_deref(),
            t,
        ),
        Cmd::Tag { dev, value, until } => tag(&dev, value, &until),
        Cmd::Parked { dev } => parked(&dev),
        Cmd::Raw {
            dev,
            ioctl,
            opcode,
            flags,
            nsid,
            cdw10,
            cdw11,
            cdw12,
            data_len,
            bad_addr,
            bad_arg,
            write,
        } => raw(
            &dev,
            &ioctl,
            Passthru {
                opcode: opcode as u8,
                flags: flags as u8,
                nsid: nsid as u32,
                cdw10: cdw10 as u32,
                cdw11: cdw11 as u32,
                cdw12: cdw12 as u32,
                data_len: data_len as u32,
                ..Default::default()
            },
            bad_addr,
            bad_arg,
            write,
        ),
        Cmd::Fuzz {
            dev,
            iterations,
            seed,
            max_call_ms,
        } => fuzz(&dev, iterations, seed, max_call_ms),
    }
}
