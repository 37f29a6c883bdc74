//! The guest kernel: `make tinyconfig` + `qemu/kernel.config` (+
//! `qemu/kernel-bench.config` for the release profile, or
//! `qemu/kernel-debug.config` and clang for the debug profile), built once and
//! cached in $HOTUP_CACHE/kbuild[-debug]-<source version>-<key>, where the key
//! hashes the config fragments, the profile and the rustc version (Rust
//! modules must be built by the very compiler that built the kernel).

use crate::paths::{Ctx, Profile, KERNEL_SOURCE_VERSION, LIBCLANG_PATH};
use crate::progress::{run_logged, run_quiet};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

/// A finished guest kernel build.
pub struct KernelBuild {
    /// The `O=` build folder: `make -C <dir> M=...` builds modules against it.
    pub dir: PathBuf,
    pub profile: Profile,
}

/// The config fragments of a profile, merged in this order onto tinyconfig.
fn fragments(profile: Profile) -> &'static [&'static str] {
    match profile {
        Profile::Release => &["qemu/kernel.config", "qemu/kernel-bench.config"],
        Profile::Debug => &["qemu/kernel.config", "qemu/kernel-debug.config"],
    }
}

/// Symbols the built kernel must have: olddefconfig silently drops what a
/// fragment asks for when a dependency is missing (KASAN with gcc, say).
fn required(profile: Profile) -> &'static [&'static str] {
    match profile {
        Profile::Release => &[
            "CONFIG_RUST=y",
            "CONFIG_EXT4_FS=y",
            "CONFIG_BLK_DEV_RAM=m",
            "CONFIG_PCI_MSI=y",
            "CONFIG_BLK_DEV_NVME=m",
        ],
        Profile::Debug => &[
            "CONFIG_RUST=y",
            "CONFIG_EXT4_FS=y",
            "CONFIG_CC_IS_CLANG=y",
            "CONFIG_KASAN=y",
            "CONFIG_KFENCE=y",
            "CONFIG_PROVE_LOCKING=y",
            "CONFIG_DEBUG_ATOMIC_SLEEP=y",
            "CONFIG_DEBUG_LIST=y",
            "CONFIG_UBSAN=y",
            "CONFIG_DEBUG_KMEMLEAK=y",
            "CONFIG_DETECT_HUNG_TASK=y",
            "CONFIG_DEBUG_FS=y",
            "CONFIG_DEBUG_KMAP_LOCAL_FORCE_MAP=y",
            "CONFIG_PCI_MSI=y",
            "CONFIG_BLK_DEV_NVME=m",
        ],
    }
}

impl KernelBuild {
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("arch/x86/boot/bzImage")
    }

    /// brd, the kernel's RAM disk, built as a module (`cargo xtask bench`'s
    /// peer; release kernel only); the guest insmods it from here (its root
    /// is the host's).
    pub fn brd_ko(&self) -> PathBuf {
        self.dir.join("drivers/block/brd.ko")
    }
}

const STAMP: &str = ".hotup-built";

/// The cache key: the profile, its config fragments and the rustc version.
pub fn cache_key(ctx: &Ctx) -> Result<String> {
    let rustc =
        run_quiet(Command::new("rustc").arg("-V")).context("asking rustc for its version")?;
    let mut h = Sha256::new();
    for f in fragments(ctx.profile) {
        let path = ctx.repo.join(f);
        h.update(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    h.update(ctx.profile.make_args().join(" ").as_bytes());
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
        .arg(format!("BINDGEN={}", ctx.bindgen().display()))
        .args(ctx.profile.make_args());
    cmd
}

/// Returns the cached kernel build, building it first when needed.
pub fn ensure(ctx: &Ctx, force: bool) -> Result<KernelBuild> {
    let key = cache_key(ctx)?;
    let prefix = match ctx.profile {
        Profile::Release => "kbuild",
        Profile::Debug => "kbuild-debug",
    };
    let dir = ctx
        .cache
        .join(format!("{prefix}-{KERNEL_SOURCE_VERSION}-{key}"));
    let k = KernelBuild {
        dir: dir.clone(),
        profile: ctx.profile,
    };
    let stamp = dir.join(STAMP);
    if !force && stamp.exists() && k.bzimage().exists() && dir.join("Module.symvers").exists() {
        return Ok(k);
    }
    crate::setup::ensure(ctx)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(&stamp);
    eprintln!(
        "{} guest kernel {KERNEL_SOURCE_VERSION} (key {key}): configuring in {}",
        ctx.profile.name(),
        dir.display()
    );
    let log = |n: &str| dir.join(format!("hotup-{n}.log"));
    run_logged(
        "kernel: tinyconfig",
        make(ctx, &dir).arg("tinyconfig"),
        &log("config"),
    )?;
    let merge = ctx.kernel_source().join("scripts/kconfig/merge_config.sh");
    let frags = fragments(ctx.profile);
    let mut merge_cmd = Command::new(&merge);
    merge_cmd
        .current_dir(&dir)
        .args(["-m", "-O"])
        .arg(&dir)
        .arg(dir.join(".config"));
    for f in frags {
        merge_cmd.arg(ctx.repo.join(f));
    }
    run_logged(
        &format!("kernel: merge {}", frags.join(" + ")),
        &mut merge_cmd,
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
    let lost: Vec<&str> = required(ctx.profile)
        .iter()
        .copied()
        .filter(|want| !config.lines().any(|l| l == *want))
        .collect();
    if !lost.is_empty() {
        bail!(
            "olddefconfig dropped {} from the {} kernel config (a dependency is missing; see {}); fix the fragments in qemu/",
            lost.join(", "),
            ctx.profile.name(),
            dir.join(".config").display()
        );
    }
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let what = match ctx.profile {
        Profile::Release => "kernel: build bzImage + modules (about 7.5 min on 2 cores)",
        Profile::Debug => {
            "kernel: build the debug bzImage + modules with clang (about 12 min on 2 cores)"
        }
    };
    run_logged(
        what,
        make(ctx, &dir)
            .arg(format!("-j{jobs}"))
            .args(["bzImage", "modules"]),
        &log("build"),
    )?;
    std::fs::write(&stamp, format!("{KERNEL_SOURCE_VERSION} {key}\n"))?;
    Ok(k)
}
