//! Where things live: the checkout, the cache, and the pinned versions.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Debian package version of the guest kernel source (linux-source-7.2).
pub const KERNEL_SOURCE_PKG: &str = "linux-source-7.2";
pub const KERNEL_SOURCE_VERSION: &str = "7.2.12-1";
/// The rust-src package matching rustc 1.95.0 exactly (TOOLCHAIN.md).
pub const RUST_SRC_VERSION: &str = "1.95.0+dfsg1-2~bpo13+1";
pub const RUSTC_VERSION: &str = "1.95.0";
pub const BINDGEN_VERSION: &str = "0.72.1";
pub const LIBCLANG_PATH: &str = "/usr/lib/llvm-19/lib";

/// Which guest kernel a command uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    /// tinyconfig + qemu/kernel.config, built with gcc: the fast loop.
    Release,
    /// Release + qemu/kernel-debug.config (KASAN, lockdep, kmemleak, UBSAN,
    /// KFENCE, ...), built with clang (`LLVM=-19`): the oracle.
    Debug,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Debug => "debug",
        }
    }

    /// Extra `make` arguments for the kernel and for modules built against it.
    pub fn make_args(self) -> &'static [&'static str] {
        match self {
            Profile::Release => &[],
            Profile::Debug => &["LLVM=-19"],
        }
    }
}

/// Paths shared by every subcommand.
pub struct Ctx {
    /// The checkout (workspace root).
    pub repo: PathBuf,
    /// Persistent cache outside the work tree ($HOTUP_CACHE, ~/.cache/hotup).
    pub cache: PathBuf,
    /// The guest kernel this command uses (`--debug`: the debug kernel).
    pub profile: Profile,
}

impl Ctx {
    pub fn discover(profile: Profile) -> Result<Self> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask is not inside the hotup workspace")?
            .to_path_buf();
        let cache = match std::env::var_os("HOTUP_CACHE") {
            Some(c) => PathBuf::from(c),
            None => {
                let home = std::env::var_os("HOME")
                    .context("HOME is not set; set HOTUP_CACHE to a cache folder")?;
                PathBuf::from(home).join(".cache/hotup")
            }
        };
        if repo.to_string_lossy().contains(char::is_whitespace) {
            bail!("the checkout path {} contains whitespace, which the guest's kernel command line cannot carry; clone it to a path without spaces", repo.display());
        }
        Ok(Ctx {
            repo,
            cache,
            profile,
        })
    }

    /// `target/hotup` of this checkout: run folders, built modules, reports.
    pub fn out(&self) -> PathBuf {
        self.repo.join("target/hotup")
    }

    /// Built modules as the guest sees them ($HOTUP_MODULES), one folder
    /// per kernel profile (modules only load into the kernel they were built for).
    pub fn module_dir(&self) -> PathBuf {
        match self.profile {
            Profile::Release => self.out().join("modules"),
            Profile::Debug => self.out().join("modules-debug"),
        }
    }

    pub fn kernel_source(&self) -> PathBuf {
        self.cache.join(KERNEL_SOURCE_PKG)
    }

    pub fn rust_src_root(&self) -> PathBuf {
        self.cache.join("rust-src")
    }

    /// RUST_LIB_SRC for the kernel build.
    pub fn rust_lib_src(&self) -> PathBuf {
        self.rust_src_root()
            .join(format!("usr/src/rustc-{RUSTC_VERSION}/library"))
    }

    pub fn bindgen(&self) -> PathBuf {
        cargo_home().join("bin/bindgen")
    }
}

pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}
