//! Building hotup's kernel modules (and the test-only fixtures) against the
//! guest kernel, and publishing them to $HOTUP_MODULES for the guest.

use crate::kernel::{self, KernelBuild};
use crate::paths::Ctx;
use crate::progress::run_quiet;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Where each module is built, relative to the checkout.
pub const MODULES: &[&str] = &[
    "parent_stub/hotup_parent.ko",
    "child_driver/hotup_child_v1.ko",
    "child_driver/hotup_child_v2.ko",
    // Test-only: never shipped, built from userspace-tests/fixtures.
    "userspace-tests/fixtures/hotup_warn_fixture.ko",
    "userspace-tests/fixtures/hotup_kasan_fixture.ko",
    "userspace-tests/fixtures/hotup_lockdep_fixture.ko",
    "userspace-tests/fixtures/hotup_kmemleak_fixture.ko",
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

pub fn build_with(ctx: &Ctx, k: &KernelBuild) -> Result<PathBuf> {
    let fixtures = format!("M={}", ctx.repo.join("userspace-tests/fixtures").display());
    // The objects in the source tree belong to one kernel: switching between
    // the release and the debug kernel (gcc and clang) starts from clean.
    let stamp = ctx.out().join("modules-built-for");
    let built_for = k.dir.display().to_string();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(built_for.as_str()) {
        let kdir = format!("KDIR={}", k.dir.display());
        make_quiet(
            Command::new("make")
                .current_dir(&ctx.repo)
                .arg(&kdir)
                .args(k.profile.make_args())
                .arg("clean"),
            "module clean (make KDIR=... clean)",
        )?;
        make_quiet(
            Command::new("make")
                .arg("-C")
                .arg(&k.dir)
                .arg(&fixtures)
                .args(k.profile.make_args())
                .arg("clean"),
            "test fixture clean",
        )?;
    }
    let before: Vec<_> = MODULES.iter().map(|m| mtime(&ctx.repo.join(m))).collect();
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    make_quiet(
        Command::new("make")
            .current_dir(&ctx.repo)
            .arg(format!("-j{jobs}"))
            .arg(format!("KDIR={}", k.dir.display()))
            .args(k.profile.make_args()),
        "module build (make KDIR=...)",
    )?;
    make_quiet(
        Command::new("make")
            .arg("-C")
            .arg(&k.dir)
            .arg(&fixtures)
            .args(k.profile.make_args())
            .arg("modules"),
        "test fixture module build",
    )?;
    std::fs::create_dir_all(ctx.out())?;
    std::fs::write(&stamp, &built_for).with_context(|| format!("writing {}", stamp.display()))?;
    let dest = ctx.module_dir();
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut rebuilt = Vec::new();
    for (m, old) in MODULES.iter().zip(before) {
        let src = ctx.repo.join(m);
        let name = src.file_name().context("module path has a file name")?;
        if mtime(&src) != old {
            rebuilt.push(name.to_string_lossy().into_owned());
        }
        std::fs::copy(&src, dest.join(name))
            .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    }
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
