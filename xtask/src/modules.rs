//! Building hotup's kernel modules (and the test-only fixtures) against the
//! guest kernel, and publishing them to $HOTUP_MODULES for the guest.

use crate::kernel::{self, KernelBuild};
use crate::paths::Ctx;
use crate::progress::run_quiet;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Where each module is built, relative to the profile's object folder.
pub const MODULES: &[&str] = &[
    "parent_stub/hotup_parent.ko",
    "child_driver/hotup_child_v1.ko",
    "child_driver/hotup_child_v2.ko",
    // The driver of QEMU's NVMe controller (nvme_pci=1).
    "child_driver/nvme_pci/hotup_nvme_v1.ko",
    "child_driver/nvme_pci/hotup_nvme_v2.ko",
    // The same driver with no parent: `cargo xtask bench`'s baseline.
    "child_driver/hotup_mono.ko",
    // Test-only: never shipped, built from userspace-tests/fixtures.
    "fixtures/hotup_warn_fixture.ko",
    "fixtures/hotup_kasan_fixture.ko",
    "fixtures/hotup_lockdep_fixture.ko",
    "fixtures/hotup_kmemleak_fixture.ko",
];

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn make_quiet(cmd: &mut Command, what: &str) -> Result<()> {
    run_quiet(cmd)
        .map(drop)
        .with_context(|| format!("{what} failed; fix the error and rerun `cargo xtask build`"))
}

/// Builds every module, prints which ones were rebuilt, and copies them to
/// the guest's module folder. Returns that folder.
pub fn build_all(ctx: &Ctx) -> Result<PathBuf> {
    let k = kernel::ensure(ctx, false)?;
    build_with(ctx, &k)
}

/// `make TARGET` for the modules (the top-level Makefile) and for the test
/// fixtures, against the kernel `k`, with objects in `obj` (`MO=`: the
/// release and debug builds live side by side, the source tree stays clean).
fn make_target(ctx: &Ctx, k: &KernelBuild, obj: &Path, target: &str) -> Result<()> {
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    make_quiet(
        Command::new("make")
            .current_dir(&ctx.repo)
            .arg(format!("-j{jobs}"))
            .arg(format!("KDIR={}", k.dir.display()))
            .arg(format!("MO={}", obj.display()))
            .args(k.profile.make_args())
            .arg(target),
        &format!("module {target} (make KDIR=... MO=... {target})"),
    )?;
    let fixtures_obj = obj.join("fixtures");
    std::fs::create_dir_all(&fixtures_obj)
        .with_context(|| format!("creating {}", fixtures_obj.display()))?;
    make_quiet(
        Command::new("make")
            .arg("-C")
            .arg(&k.dir)
            .arg(format!(
                "M={}",
                ctx.repo.join("userspace-tests/fixtures").display()
            ))
            .arg(format!("MO={}", fixtures_obj.display()))
            .args(k.profile.make_args())
            .arg(target),
        &format!("test fixture {target}"),
    )
}

/// Kbuild refuses `MO=` while the source tree holds an in-tree build (a
/// `make KDIR=...` by hand): clean that first, and say so.
fn clean_in_tree(ctx: &Ctx, k: &KernelBuild) -> Result<()> {
    let fixtures = ctx.repo.join("userspace-tests/fixtures");
    for (dir, top) in [(&ctx.repo, true), (&fixtures, false)] {
        if !dir.join("modules.order").exists() {
            continue;
        }
        eprintln!(
            "modules: removing the in-tree build in {} (xtask builds in target/hotup/obj-*)",
            dir.display()
        );
        let mut cmd = Command::new("make");
        if top {
            cmd.current_dir(&ctx.repo)
                .arg(format!("KDIR={}", k.dir.display()));
        } else {
            cmd.arg("-C")
                .arg(&k.dir)
                .arg(format!("M={}", dir.display()));
        }
        make_quiet(
            cmd.args(k.profile.make_args()).arg("clean"),
            "in-tree clean",
        )?;
    }
    Ok(())
}

pub fn build_with(ctx: &Ctx, k: &KernelBuild) -> Result<PathBuf> {
    clean_in_tree(ctx, k)?;
    let obj = ctx.out().join(format!("obj-{}", k.profile.name()));
    std::fs::create_dir_all(&obj).with_context(|| format!("creating {}", obj.display()))?;
    let before: Vec<_> = MODULES.iter().map(|m| mtime(&obj.join(m))).collect();
    make_target(ctx, k, &obj, "modules")?;
    let dest = ctx.module_dir();
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut rebuilt = Vec::new();
    for (m, old) in MODULES.iter().zip(before) {
        let src = obj.join(m);
        let name = src.file_name().context("module path has a file name")?;
        if mtime(&src) != old {
            rebuilt.push(name.to_string_lossy().into_owned());
        }
        std::fs::copy(&src, dest.join(name))
            .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    }
    for m in MODULES {
        check_stack_frames(&obj.join(m))?;
    }
    build_hotupctl(ctx, &dest)?;
    if rebuilt.is_empty() {
        eprintln!("modules: up to date ({})", dest.display());
    } else {
        eprintln!(
            "modules: rebuilt {} ({})",
            rebuilt.join(", "),
            dest.display()
        );
    }
    Ok(dest)
}

/// Largest stack frame one function of a module may have. A kernel stack
/// is 16 KiB for the whole call chain, and Rust has no `-Wframe-larger-than`:
/// a state blob decoded into a value on the stack (kilobyte arrays, copied
/// by moves) once overflowed it. The largest today is `Hub::new` (4160
/// bytes), which runs once, at module load, on a shallow stack.
const MAX_FRAME: u64 = 4608;

/// Fails if a function of module `ko` reserves more than [`MAX_FRAME`]
/// bytes of stack (`sub $N,%rsp` in its code).
fn check_stack_frames(ko: &Path) -> Result<()> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(ko)
        .output()
        .with_context(|| format!("running objdump -d {} (binutils)", ko.display()))?;
    if !out.status.success() {
        bail!(
            "objdump -d {} failed: {}",
            ko.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut func = "";
    let mut worst: Vec<(u64, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_suffix(">:").and_then(|l| l.split_once(" <")) {
            func = name.1;
            continue;
        }
        let Some(rest) = line.split("sub    $0x").nth(1) else {
            continue;
        };
        let Some((hex, reg)) = rest.split_once(',') else {
            continue;
        };
        if reg.trim() != "%rsp" {
            continue;
        }
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            if n > MAX_FRAME {
                worst.push((n, func.to_owned()));
            }
        }
    }
    if !worst.is_empty() {
        let list: Vec<String> = worst
            .iter()
            .map(|(n, f)| format!("{n} bytes: {f}"))
            .collect();
        bail!(
            "{}: stack frames larger than {MAX_FRAME} bytes (a kernel stack is 16 KiB for the whole chain): {}. Keep kilobyte-sized values (state arrays, blob buffers) on the heap or behind references",
            ko.display(),
            list.join("; ")
        );
    }
    Ok(())
}

/// The guest's programs built from this workspace: the operator's tool,
/// the scenarios' ioctl client and the soak's upgrade loop.
const GUEST_BINS: [&str; 3] = ["hotupctl", "hotup-ioctl", "hotup-soak"];

/// Builds the [`GUEST_BINS`] (release) and puts them beside the
/// modules, where the guest's scripts find them (`$MODULES/hotupctl`; the
/// guest's root is the host's, so the host binaries run there).
pub fn build_hotupctl(ctx: &Ctx, dest: &Path) -> Result<()> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&ctx.repo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "hotupctl",
            "-p",
            "userspace-tests",
        ])
        .args(GUEST_BINS.iter().flat_map(|b| ["--bin", b]))
        .status()
        .context("running cargo build of the guest programs")?;
    if !status.success() {
        bail!(
            "building {} failed ({status}): run `cargo build --release -p hotupctl -p userspace-tests` to see why",
            GUEST_BINS.join(", ")
        );
    }
    for b in GUEST_BINS {
        let bin = ctx.repo.join("target/release").join(b);
        std::fs::copy(&bin, dest.join(b))
            .with_context(|| format!("copying {} to {}", bin.display(), dest.display()))?;
    }
    Ok(())
}
