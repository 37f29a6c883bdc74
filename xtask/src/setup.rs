//! Prerequisites, installed idempotently. Measured facts behind each step are
//! in ../shared/TOOLCHAIN.md: Debian bookworm plus low-pinned newer suites for
//! QEMU 10 (bookworm-backports), the kernel source (linux-source-7.2) and the
//! rust-src matching rustc 1.95.0 (trixie-backports); bindgen-cli from crates.io.

use crate::paths::*;
use crate::progress::{run_logged, run_quiet};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Packages from the base suite.
const APT_PACKAGES: &[&str] = &[
    "make",
    "gcc",
    "libc6-dev",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "cpio",
    "kmod",
    "xz-utils",
    "clang-19",
    "libclang-19-dev",
    // The debug guest kernel (KASAN with Rust) is built with clang: LLVM=-19.
    "lld-19",
    "llvm-19",
    "fio",
    "busybox-static",
    "e2fsprogs",
    "util-linux",
    // The controller node's real client (`nvme id-ctrl /dev/hotup0`, ...).
    "nvme-cli",
    // `cargo xtask bench` profiles hotup in the guest (the parent's CPU share).
    "linux-perf",
];
/// QEMU 10 from bookworm-backports (bookworm's own 7.2 is older than measured).
const QEMU_PACKAGE: &str = "qemu-system-x86";
const QEMU_SUITE: &str = "bookworm-backports";

const SOURCES_FILE: &str = "/etc/apt/sources.list.d/hotup-extra.sources";
const SOURCES: &str = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
/// Newer suites are pinned low so a plain `apt-get install` never upgrades
/// the base system; packages from them are named with an explicit version/suite.
const PIN_FILE: &str = "/etc/apt/preferences.d/hotup-pin";
const PIN: &str = "\
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50

Package: *
Pin: release n=forky
Pin-Priority: 50
";

fn is_root() -> bool {
    run_quiet(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

fn missing_packages(pkgs: &[&str]) -> Vec<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(pkgs)
        .output();
    let installed: Vec<String> = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("ii"))
            .filter_map(|l| {
                l.split_whitespace()
                    .next()
                    .map(|p| p.split(':').next().unwrap_or(p).to_owned())
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    pkgs.iter()
        .filter(|p| !installed.iter().any(|i| i == *p))
        .map(|p| p.to_string())
        .collect()
}

fn qemu_is_backport() -> bool {
    run_quiet(Command::new("dpkg-query").args(["-W", "-f=${Version}", QEMU_PACKAGE]))
        .map(|v| v.starts_with("1:1") && !v.starts_with("1:7"))
        .unwrap_or(false)
}

fn bindgen_ok(ctx: &Ctx) -> bool {
    run_quiet(Command::new(ctx.bindgen()).arg("--version"))
        .map(|v| v.trim() == format!("bindgen {BINDGEN_VERSION}"))
        .unwrap_or(false)
}

fn kernel_source_ok(ctx: &Ctx) -> bool {
    std::fs::read_to_string(ctx.kernel_source().join(".hotup-source-version"))
        .map(|v| v.trim() == KERNEL_SOURCE_VERSION)
        .unwrap_or(false)
}

fn rust_src_ok(ctx: &Ctx) -> bool {
    ctx.rust_lib_src().join("core/src/lib.rs").exists()
}

fn file_is(path: &str, content: &str) -> bool {
    std::fs::read_to_string(path)
        .map(|c| c == content)
        .unwrap_or(false)
}

/// Checks every prerequisite and installs what is missing.
pub fn ensure(ctx: &Ctx) -> Result<()> {
    let rustc = run_quiet(Command::new("rustc").arg("-V"))
        .context("running rustc -V (install Rust with rustup)")?;
    if !rustc.contains(&format!("rustc {RUSTC_VERSION} ")) {
        bail!(
            "this project pins rustc {RUSTC_VERSION} (the kernel build needs rust-src of exactly that version) but found `{}`; \
             install {RUSTC_VERSION} with rustup or update RUSTC_VERSION/RUST_SRC_VERSION in xtask/src/paths.rs",
            rustc.trim()
        );
    }
    let sources_ok = file_is(SOURCES_FILE, SOURCES) && file_is(PIN_FILE, PIN);
    let missing = missing_packages(APT_PACKAGES);
    let qemu_ok = qemu_is_backport();
    let todo = !sources_ok
        || !missing.is_empty()
        || !qemu_ok
        || !rust_src_ok(ctx)
        || !kernel_source_ok(ctx)
        || !bindgen_ok(ctx);
    if !todo {
        return Ok(());
    }
    if !is_root() {
        let mut cmds = vec![
            format!("# as root:\ncat > {SOURCES_FILE} <<'EOF'\n{SOURCES}EOF"),
            format!("cat > {PIN_FILE} <<'EOF'\n{PIN}EOF"),
            "apt-get update".to_owned(),
            format!(
                "apt-get install -y --no-install-recommends {}",
                APT_PACKAGES.join(" ")
            ),
            format!("apt-get install -y --no-install-recommends -t {QEMU_SUITE} {QEMU_PACKAGE}"),
        ];
        cmds.push("# then, as the user running cargo xtask: cargo xtask setup".to_owned());
        bail!(
            "prerequisites are missing (apt sources: {}, packages: [{}], QEMU 10: {}) and this is not root.\nRun:\n{}",
            if sources_ok { "ok" } else { "missing" },
            missing.join(" "),
            if qemu_ok { "ok" } else { "missing" },
            cmds.join("\n")
        );
    }
    std::fs::create_dir_all(&ctx.cache)
        .with_context(|| format!("creating cache {}", ctx.cache.display()))?;
    let log = |n: &str| ctx.cache.join(format!("setup-{n}.log"));
    if !sources_ok {
        eprintln!("setup: adding low-pinned apt suites ({SOURCES_FILE}, {PIN_FILE})");
        std::fs::write(SOURCES_FILE, SOURCES).with_context(|| format!("writing {SOURCES_FILE}"))?;
        std::fs::write(PIN_FILE, PIN).with_context(|| format!("writing {PIN_FILE}"))?;
    }
    let need_apt = !sources_ok
        || !missing.is_empty()
        || !qemu_ok
        || !rust_src_ok(ctx)
        || !kernel_source_ok(ctx);
    if need_apt {
        run_logged(
            "setup: apt-get update",
            Command::new("apt-get").arg("update"),
            &log("apt-update"),
        )?;
    }
    if !missing.is_empty() {
        run_logged(
            &format!("setup: apt-get install {}", missing.join(" ")),
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&missing),
            &log("apt-install"),
        )?;
    }
    if !qemu_ok {
        run_logged(
            &format!("setup: apt-get install {QEMU_PACKAGE} from {QEMU_SUITE}"),
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "-t",
                    QEMU_SUITE,
                    QEMU_PACKAGE,
                ]),
            &log("apt-qemu"),
        )?;
    }
    let dl = ctx.cache.join("dl");
    std::fs::create_dir_all(&dl)?;
    if !rust_src_ok(ctx) {
        let deb = download(&dl, "rust-src", RUST_SRC_VERSION, &log("rust-src"))?;
        let dest = ctx.rust_src_root();
        let _ = std::fs::remove_dir_all(&dest);
        run_logged(
            "setup: unpack rust-src",
            Command::new("dpkg").arg("-x").arg(&deb).arg(&dest),
            &log("rust-src-x"),
        )?;
        if !rust_src_ok(ctx) {
            bail!("rust-src {RUST_SRC_VERSION} unpacked to {} but has no core library; delete that folder and rerun", dest.display());
        }
    }
    if !kernel_source_ok(ctx) {
        let deb = download(
            &dl,
            KERNEL_SOURCE_PKG,
            KERNEL_SOURCE_VERSION,
            &log("kernel-source"),
        )?;
        let dest = ctx.kernel_source();
        let tmp = ctx.cache.join("kernel-source.tmp");
        let _ = std::fs::remove_dir_all(&dest);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let script = format!(
            "set -o pipefail; dpkg-deb --fsys-tarfile '{}' | tar -xO ./usr/src/{KERNEL_SOURCE_PKG}.tar.xz | xz -dT0 | tar -x -C '{}'",
            deb.display(),
            tmp.display()
        );
        run_logged(
            "setup: unpack kernel source",
            Command::new("bash").arg("-c").arg(&script),
            &log("kernel-source-x"),
        )?;
        std::fs::rename(tmp.join(KERNEL_SOURCE_PKG), &dest)
            .context("moving the unpacked kernel source into place")?;
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::write(dest.join(".hotup-source-version"), KERNEL_SOURCE_VERSION)?;
    }
    if !bindgen_ok(ctx) {
        run_logged(
            &format!("setup: cargo install bindgen-cli {BINDGEN_VERSION} (about 2 min)"),
            Command::new("cargo").args([
                "install",
                "bindgen-cli",
                "--version",
                BINDGEN_VERSION,
                "--locked",
            ]),
            &log("bindgen"),
        )?;
    }
    eprintln!("setup: all prerequisites present");
    Ok(())
}

/// `apt-get download pkg=version` into `dir` (idempotent).
fn download(dir: &Path, pkg: &str, version: &str, log: &Path) -> Result<std::path::PathBuf> {
    let file = dir.join(format!("{pkg}_{}_all.deb", version.replace(':', "%3a")));
    if !file.exists() {
        run_logged(
            &format!("setup: apt-get download {pkg}={version}"),
            Command::new("apt-get")
                .current_dir(dir)
                .arg("download")
                .arg(format!("{pkg}={version}")),
            log,
        )?;
    }
    if !file.exists() {
        bail!(
            "downloaded {pkg}={version} but {} is not there; check {}",
            file.display(),
            log.display()
        );
    }
    Ok(file)
}
