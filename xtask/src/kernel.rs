//! The guest kernel: `make tinyconfig` + `qemu/kernel.config`, built once and
//! cached in $HOTUP_CACHE/kbuild-<source version>-<key>, where the key hashes
//! the config fragment and the rustc version (Rust modules must be built by
//! the very compiler that built the kernel).

use crate::paths::{Ctx, KERNEL_SOURCE_VERSION, LIBCLANG_PATH};
use crate::progress::{run_logged, run_quiet};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

/// A finished guest kernel build.
pub struct KernelBuild {
    /// The `O=` build folder: `make -C <dir> M=...` builds modules against it.
    pub dir: PathBuf,
}

impl KernelBuild {
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("arch/x86/boot/bzImage")
    }
}

const STAMP: &str = ".hotup-built";

/// The cache key: config fragment and rustc version.
pub fn cache_key(ctx: &Ctx) -> Result<String> {
    let fragment_path = ctx.repo.join("qemu/kernel.config");
    let fragment = std::fs::read(&fragment_path)
        .with_context(|| format!("reading {}", fragment_path.display()))?;
    let rustc =
        run_quiet(Command::new("rustc").arg("-V")).context("asking rustc for its version")?;
    let mut h = Sha256::new();
    h.update(&fragment);
    h.update(rustc.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(hex[..12].to_owned())
}

/// `make` in the kernel source with the Rust toolchain variables set.
pub fn make(ctx: &Ctx, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(ctx.kernel_source())
        .arg(format!("O={}", dir.display()))
        .arg(format!("LIBCLANG_PATH={LIBCLANG_PATH}"))
        .arg(format!("RUST_LIB_SRC={}", ctx.rust_lib_src().display()))
        .arg(format!("BINDGEN={}", ctx.bindgen().display()));
    cmd
}

/// Returns the cached kernel build, building it first when needed.
pub fn ensure(ctx: &Ctx, force: bool) -> Result<KernelBuild> {
    let key = cache_key(ctx)?;
    let dir = ctx
        .cache
        .join(format!("kbuild-{KERNEL_SOURCE_VERSION}-{key}"));
    let k = KernelBuild { dir: dir.clone() };
    let stamp = dir.join(STAMP);
    if !force && stamp.exists() && k.bzimage().exists() && dir.join("Module.symvers").exists() {
        return Ok(k);
    }
    crate::setup::ensure(ctx)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(&stamp);
    eprintln!(
        "guest kernel {KERNEL_SOURCE_VERSION} (key {key}): configuring in {}",
        dir.display()
    );
    let log = |n: &str| dir.join(format!("hotup-{n}.log"));
    run_logged(
        "kernel: tinyconfig",
        make(ctx, &dir).arg("tinyconfig"),
        &log("config"),
    )?;
    let merge = ctx.kernel_source().join("scripts/kconfig/merge_config.sh");
    run_logged(
        "kernel: merge qemu/kernel.config",
        Command::new(&merge)
            .current_dir(&dir)
            .args(["-m", "-O"])
            .arg(&dir)
            .arg(dir.join(".config"))
            .arg(ctx.repo.join("qemu/kernel.config")),
        &log("merge"),
    )?;
    run_logged(
        "kernel: olddefconfig",
        make(ctx, &dir).arg("olddefconfig"),
        &log("olddefconfig"),
    )?;
    let config =
        std::fs::read_to_string(dir.join(".config")).context("reading the generated .config")?;
    if !config.lines().any(|l| l == "CONFIG_RUST=y") {
        let why =
            run_quiet(make(ctx, &dir).arg("rustavailable")).unwrap_or_else(|e| format!("{e:#}"));
        bail!("the guest kernel config lost CONFIG_RUST=y, so Rust is not usable with this toolchain:\n{why}\nrun `cargo xtask setup` and check the versions it reports");
    }
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    run_logged(
        "kernel: build bzImage + modules (about 7.5 min on 2 cores)",
        make(ctx, &dir)
            .arg(format!("-j{jobs}"))
            .args(["bzImage", "modules"]),
        &log("build"),
    )?;
    std::fs::write(&stamp, format!("{KERNEL_SOURCE_VERSION} {key}\n"))?;
    Ok(k)
}
