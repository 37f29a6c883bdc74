//! Booting the guest kernel under QEMU and running a script in it.
//!
//! The guest's root file system is the host's root, read-only over 9p (as
//! virtme-ng does), so host tools and this checkout are at their usual paths.
//! A per-run folder `target/hotup/runs/<name>/` is shared writable (9p tag
//! `hotupout`): the host writes `env.sh` there, the guest's init
//! (`qemu/init.sh`) writes `dmesg.txt`, `ktap.txt` and `exit-status` back, and
//! the host saves the console to `console.log`.

use crate::kernel::{self, KernelBuild};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use userspace_tests::GuestOutcome;
use wait_timeout::ChildExt;

/// Guest memory. The block device's data lives in guest RAM.
pub const GUEST_MEM: &str = "2G";
/// Lines of console shown when a guest is killed or fails.
const TAIL_LINES: usize = 30;

/// Options of one guest run.
pub struct RunOpts<'a> {
    pub name: &'a str,
    pub script: &'a Path,
    pub timeout: Duration,
    pub stream: bool,
    /// Extra environment for the guest script, e.g. `HOTUP_INJECT`
    /// (fault-injection parameters for upgraded children).
    pub env: Vec<(&'static str, String)>,
    /// Guest memory, when [`GUEST_MEM`] is not enough (the bench's 1 GiB
    /// device beside its peers).
    pub mem: Option<&'static str>,
    /// How the guest caches its root; [`RootCache::Loose`] unless the host
    /// changes files the guest reads while it runs.
    pub root_cache: RootCache,
    /// QEMU NVMe controllers to attach ([`nvme_args`]); 0 for none.
    pub nvme: u32,
    /// A throttle on each controller's drive (I/Os per second); 0: none.
    pub nvme_iops: u32,
}

/// Result of one guest run, with where its files are.
pub struct RunResult {
    pub outcome: GuestOutcome,
    pub run_dir: PathBuf,
    pub console_tail: Vec<String>,
    pub wall: Duration,
}

/// `cargo xtask qemu run --script`: builds what is missing, runs the script,
/// returns the exit status to use for the process.
pub fn run_script_cmd(ctx: &Ctx, script: &Path, timeout_s: u64, stream: bool) -> Result<i32> {
    let script = script
        .canonicalize()
        .with_context(|| format!("script {} not found", script.display()))?;
    let k = kernel::ensure(ctx, false)?;
    crate::modules::build_all(ctx)?;
    let name = script
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("script")
        .to_owned();
    let r = run(
        ctx,
        &k,
        &RunOpts {
            root_cache: RootCache::for_script(),
            name: &name,
            script: &script,
            timeout: Duration::from_secs(timeout_s),
            stream,
            env: vec![],
            mem: None,
            nvme: 0,
            nvme_iops: 0,
        },
    )?;
    eprintln!(
        "guest run saved in {} ({:.1?} wall)",
        r.run_dir.display(),
        r.wall
    );
    match r.outcome.exit_status {
        Some(s) => Ok(s),
        None => {
            let why = if r.outcome.timed_out {
                format!("guest killed after the {timeout_s} s timeout (raise it with --timeout)")
            } else {
                "guest stopped before the script finished (panic or init failure)".to_owned()
            };
            eprintln!(
                "error: {why}; last console lines:\n{}",
                r.console_tail.join("\n")
            );
            Ok(125)
        }
    }
}

/// Which accelerator to use: `HOTUP_ACCEL` if set, else KVM only if a trial
/// boot of this kernel under KVM worked (cached per kernel build), else TCG.
pub fn accel(ctx: &Ctx, k: &KernelBuild) -> Result<&'static str> {
    match std::env::var("HOTUP_ACCEL").as_deref() {
        Ok("kvm") => return Ok("kvm"),
        Ok("tcg") => return Ok("tcg"),
        Ok(other) => {
            bail!("HOTUP_ACCEL={other} is not understood; use 'tcg' or 'kvm', or unset it")
        }
        Err(_) => {}
    }
    if !Path::new("/dev/kvm").exists() {
        return Ok("tcg");
    }
    let probe = k.dir.join(".hotup-kvm-probe");
    if let Ok(s) = std::fs::read_to_string(&probe) {
        return Ok(if s.trim() == "kvm" { "kvm" } else { "tcg" });
    }
    eprintln!("checking whether KVM can run this guest kernel (one trial boot, cached)...");
    let script = ctx.out().join("kvm-probe.sh");
    std::fs::create_dir_all(ctx.out())?;
    std::fs::write(&script, "exit 0\n")?;
    let r = boot(
        ctx,
        k,
        &RunOpts {
            root_cache: RootCache::for_script(),
            name: "kvm-probe",
            script: &script,
            timeout: Duration::from_secs(60),
            stream: false,
            env: vec![],
            mem: None,
            nvme: 0,
            nvme_iops: 0,
        },
        "kvm",
    )?;
    let works = r.outcome.exit_status == Some(0);
    eprintln!(
        "KVM {}; using {}",
        if works {
            "works"
        } else {
            "does not work for this kernel"
        },
        if works { "kvm" } else { "tcg" }
    );
    std::fs::write(&probe, if works { "kvm" } else { "tcg" })?;
    Ok(if works { "kvm" } else { "tcg" })
}

/// Boots a fresh guest that runs `opts.script`, waits for it (up to the
/// timeout) and collects the outcome.
pub fn run(ctx: &Ctx, k: &KernelBuild, opts: &RunOpts) -> Result<RunResult> {
    let accel = accel(ctx, k)?;
    boot(ctx, k, opts, accel)
}

/// How the guest caches the host's read-only root (9p).
#[derive(Clone, Copy)]
pub enum RootCache {
    /// Every read goes to the host: a long-lived guest sees modules the
    /// host rebuilds while it runs (the agent guest of `upgrade-child`).
    None,
    /// The guest keeps what it read in its page cache (`cache=loose`):
    /// starting a program costs a few page faults instead of hundreds of
    /// 9p round trips. Only for a guest that runs one script and exits,
    /// whose files the host does not change while it runs.
    Loose,
}

impl RootCache {
    /// The cache of a guest that runs one script: loose, unless
    /// `HOTUP_ROOT_CACHE=none` asks for the uncached root (to compare, or to
    /// rule the cache out when a guest seems to run stale files).
    pub fn for_script() -> RootCache {
        match std::env::var("HOTUP_ROOT_CACHE").as_deref() {
            Ok("none") => RootCache::None,
            _ => RootCache::Loose,
        }
    }
}

pub fn qemu_command(
    ctx: &Ctx,
    k: &KernelBuild,
    run_dir: &Path,
    accel: &str,
    mem: &str,
    cache: RootCache,
) -> Command {
    let init = ctx.repo.join("qemu/init.sh");
    // no5lvl: `-cpu max` offers 5-level paging, and the debug kernel's KASAN
    // then reported a wild access in an interrupt taken during early boot
    // (identify_cpu), before the scenario ran; 4-level paging avoids it.
    // loglevel=5: warnings and worse reach the console (a crash report is
    // seen even if the guest dies before saving dmesg), the info lines of
    // every upgrade only the log buffer: printing them on the emulated
    // serial port took milliseconds inside each blackout.
    // log_buf_len=16M: the saved dmesg holds a whole soak (a thousand
    // upgrades log about 1.5 MB; the default ring keeps 128 KiB).
    let append = format!(
        "console=ttyS0 root=/dev/root rootfstype=9p \
         rootflags=trans=virtio,version=9p2000.L,msize=512000{} ro init={} \
         panic=-1 oops=panic softlockup_panic=1 hung_task_panic=1 \
         printk.devkmsg=on no5lvl loglevel=5 log_buf_len=16M",
        match cache {
            RootCache::None => "",
            RootCache::Loose => ",cache=loose",
        },
        init.display()
    );
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", accel, "-cpu", "max", "-smp", "2", "-m", mem])
        .args([
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        // A guest that dies with nothing on its console (a triple fault, an
        // emulated device it misused): QEMU's own account, in the run folder.
        .args(["-d", "guest_errors,cpu_reset", "-D"])
        .arg(run_dir.join("qemu-debug.log"))
        .arg("-kernel")
        .arg(k.bzimage())
        .args(["-append", &append])
        .args([
            "-fsdev",
            "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
        ])
        .args(["-device", "virtio-9p-pci,fsdev=root,mount_tag=/dev/root"])
        .arg("-fsdev")
        .arg(format!(
            "local,id=out,path={},security_model=none",
            run_dir.display()
        ))
        .args(["-device", "virtio-9p-pci,fsdev=out,mount_tag=hotupout"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// [`run`], printing the guest's `PREFIX: i/TOTAL ...` progress lines
/// (see [`crate::progress::follow`]) while it runs.
pub fn run_following(
    ctx: &Ctx,
    k: &KernelBuild,
    opts: &RunOpts,
    prefix: &'static str,
    total: u32,
) -> Result<RunResult> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let done = Arc::new(AtomicBool::new(false));
    let console = ctx.out().join("runs").join(opts.name).join("console.log");
    let follower = {
        let done = done.clone();
        std::thread::spawn(move || crate::progress::follow(console, prefix, total, done))
    };
    let r = run(ctx, k, opts);
    done.store(true, Ordering::Relaxed);
    let _ = follower.join();
    r
}

/// Prepares a clean run folder `target/hotup/runs/<name>` with the guest's `env.sh`.
fn prepare_run_dir(ctx: &Ctx, opts: &RunOpts) -> Result<PathBuf> {
    let dir = prepare_dir(
        ctx,
        &ctx.out().join("runs").join(opts.name),
        opts.name,
        opts.script,
    )?;
    guest_env(&dir, &opts.env)?;
    Ok(dir)
}

/// Appends exported variables to the guest's `env.sh` in `dir`.
fn guest_env(dir: &Path, vars: &[(&str, String)]) -> Result<()> {
    if vars.is_empty() {
        return Ok(());
    }
    let env = dir.join("env.sh");
    let mut text =
        std::fs::read_to_string(&env).with_context(|| format!("reading {}", env.display()))?;
    for (k, v) in vars {
        if v.contains('\'') {
            bail!("guest environment value {k}={v} must not contain a single quote");
        }
        text.push_str(&format!("{k}='{v}'\nexport {k}\n"));
    }
    std::fs::write(&env, text).with_context(|| format!("writing {}", env.display()))
}

/// Size of each NVMe controller's namespace (its image on the host), the
/// RAM device's size, so one workload fits both.
pub const NVME_IMAGE_BYTES: u64 = 256 << 20;

/// QEMU's trace events hotup's scenarios read: the controller's start,
/// stop, reset and shutdown, queue creation and deletion, every error, and
/// each range a discard deallocates.
const NVME_TRACE_EVENTS: &str = "pci_nvme_mmio_start_success\npci_nvme_mmio_stopped\n\
pci_nvme_mmio_shutdown_set\npci_nvme_mmio_shutdown_cleared\npci_nvme_pci_reset\n\
pci_nvme_create_sq\npci_nvme_create_cq\npci_nvme_del_sq\npci_nvme_del_cq\npci_nvme_err_*\n\
pci_nvme_dsm_deallocate\npci_nvme_dbbuf_config\n";

/// The QEMU arguments of `n` emulated NVMe controllers (PCI 1b36:0010),
/// each over a fresh sparse raw image of [`NVME_IMAGE_BYTES`] in `run_dir`
/// (`nvmeI.img`), serial `hotup-nvmeI`, one namespace with 4096-byte
/// logical blocks, two I/O queue pairs (one per vCPU); QEMU's `pci_nvme_*`
/// trace events to `run_dir/nvme-trace.log` (the `log` backend, the one
/// Debian's QEMU is built with; it flushes each line, so the guest can read
/// the file over its shared folder while it runs). `-boot strict=on` keeps
/// the firmware from starting the controllers before the kernel does.
pub fn nvme_args(run_dir: &Path, n: u32, iops: u32) -> Result<Vec<String>> {
    if n == 0 {
        return Ok(vec![]);
    }
    let events = run_dir.join("nvme-trace-events");
    std::fs::write(&events, NVME_TRACE_EVENTS)
        .with_context(|| format!("writing {}", events.display()))?;
    let mut args = vec![
        "-boot".to_owned(),
        "strict=on".to_owned(),
        "-trace".to_owned(),
        format!(
            "events={},file={}",
            events.display(),
            run_dir.join("nvme-trace.log").display()
        ),
    ];
    for i in 0..n {
        let img = run_dir.join(format!("nvme{i}.img"));
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(NVME_IMAGE_BYTES))
            .with_context(|| format!("creating the NVMe image {}", img.display()))?;
        args.extend([
            "-drive".to_owned(),
            format!(
                "file={},if=none,id=nvm{i},format=raw{}",
                img.display(),
                if iops > 0 {
                    // QEMU's block throttling: requests beyond the rate
                    // wait in QEMU, so the controller holds commands.
                    format!(",throttling.iops-total={iops}")
                } else {
                    String::new()
                }
            ),
            "-device".to_owned(),
            format!("nvme,id=nvme{i},serial=hotup-nvme{i},max_ioqpairs=2"),
            "-device".to_owned(),
            format!(
                "nvme-ns,drive=nvm{i},bus=nvme{i},nsid=1,logical_block_size=4096,physical_block_size=4096"
            ),
        ]);
    }
    Ok(args)
}

/// Prepares `run_dir` (emptied) as a guest's shared folder running `script`.
pub fn prepare_dir(ctx: &Ctx, run_dir: &Path, name: &str, script: &Path) -> Result<PathBuf> {
    let run_dir = run_dir.to_path_buf();
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("clearing {}", run_dir.display()))?;
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    // The debug kernel runs several times slower: the guest helpers scale
    // their timeouts by this.
    let scale = match ctx.profile {
        crate::paths::Profile::Release => 1,
        crate::paths::Profile::Debug => 5,
    };
    let env = format!(
        "HOTUP_REPO='{}'\nHOTUP_MODULES='{}'\nHOTUP_SCRIPT='{}'\nHOTUP_RUN_NAME='{}'\nHOTUP_TIME_SCALE={scale}\nexport HOTUP_TIME_SCALE\n",
        ctx.repo.display(),
        ctx.module_dir().display(),
        script.display(),
        name
    );
    std::fs::write(run_dir.join("env.sh"), env)?;
    Ok(run_dir)
}

fn spawn_console_reader(
    child: &mut Child,
    log: PathBuf,
    stream: bool,
) -> Result<std::thread::JoinHandle<Vec<String>>> {
    let stdout = child.stdout.take().context("no QEMU stdout pipe")?;
    let stderr = child.stderr.take().context("no QEMU stderr pipe")?;
    // QEMU's own errors (bad option, KVM failure) go to stderr: keep them in the log too.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("qemu: {l}"));
        }
    });
    let mut file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    Ok(std::thread::spawn(move || {
        let mut tail = Vec::new();
        for l in rx {
            let l = l.trim_end_matches('\r').to_owned();
            let _ = writeln!(file, "{l}");
            if stream {
                println!("{l}");
            }
            tail.push(l);
            if tail.len() > TAIL_LINES {
                tail.remove(0);
            }
        }
        tail
    }))
}

fn boot(ctx: &Ctx, k: &KernelBuild, opts: &RunOpts, accel: &str) -> Result<RunResult> {
    let (timeout, stream) = (opts.timeout, opts.stream);
    let run_dir = prepare_run_dir(ctx, opts)?;
    // The kernel build tree, for the kernel's own modules (nvme.ko), and
    // the rustc that built the modules (the toolchain's binary, not
    // rustup's proxy, which needs the host's $HOME): `hotupctl doctor`
    // checks the guest's kernel against both.
    let sysroot = crate::progress::run_quiet(Command::new("rustc").args(["--print", "sysroot"]))
        .context("asking rustc for its sysroot (the guest's `hotupctl doctor` runs that rustc)")?;
    let rustc = Path::new(sysroot.trim()).join("bin/rustc");
    guest_env(
        &run_dir,
        &[
            ("HOTUP_KBUILD", k.dir.display().to_string()),
            ("HOTUP_RUSTC", rustc.display().to_string()),
        ],
    )?;
    let started = Instant::now();
    let mut cmd = qemu_command(
        ctx,
        k,
        &run_dir,
        accel,
        opts.mem.unwrap_or(GUEST_MEM),
        opts.root_cache,
    );
    cmd.args(nvme_args(&run_dir, opts.nvme, opts.nvme_iops)?);
    let mut child = cmd
        .spawn()
        .context("starting qemu-system-x86_64 (run `cargo xtask setup` to install it)")?;
    let reader = spawn_console_reader(&mut child, run_dir.join("console.log"), stream)?;
    let status = child.wait_timeout(timeout).context("waiting for QEMU")?;
    let timed_out = status.is_none();
    if timed_out {
        let _ = child.kill();
        let _ = child.wait();
    }
    let console_tail = reader.join().unwrap_or_default();
    let read = |f: &str| std::fs::read_to_string(run_dir.join(f)).ok();
    let exit_status = read("exit-status").and_then(|s| s.trim().parse().ok());
    // If the guest died before saving dmesg (panic, timeout), judge its console instead.
    let dmesg = read("dmesg.txt")
        .or_else(|| read("console.log"))
        .unwrap_or_default();
    Ok(RunResult {
        outcome: GuestOutcome {
            exit_status,
            timed_out,
            ktap: read("ktap.txt").unwrap_or_default(),
            dmesg,
        },
        run_dir,
        console_tail,
        wall: started.elapsed(),
    })
}
