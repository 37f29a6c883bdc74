//! `hotupctl doctor`: can hotup's modules be built and loaded on this
//! kernel, and is hotup running? Each check reads one thing from the
//! running system, says what it found, and when it fails, what to do next
//! (`../shared/DISTRO.md` has the facts behind them). The facts are gathered
//! once ([`Facts::gather`]); the checks ([`checks`]) are pure functions of
//! them, so every one is tested on the host with made-up facts.

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// In place.
    Ok,
    /// Works, but worth knowing (e.g. the parent is not loaded yet).
    Note,
    /// hotup cannot work here until it is fixed.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A short name (`rust`, `rust-metadata`, ...).
    pub name: &'static str,
    pub verdict: Verdict,
    /// What was found.
    pub found: String,
    /// What to do next (empty when nothing needs doing).
    pub fix: String,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, found: String, fix: &str) -> Self {
        Check {
            name,
            verdict,
            found,
            fix: fix.to_owned(),
        }
    }
}

/// What the checks look at, read from the running system (or, in tests,
/// made up).
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// `uname -r`.
    pub release: String,
    /// The running kernel's configuration, and where it was read from.
    pub config: Option<(BTreeMap<String, String>, String)>,
    /// The kernel build directory the modules build against.
    pub kdir: PathBuf,
    /// Whether `$kdir/rust/libkernel.rmeta` and `$kdir/scripts/target.json`
    /// exist.
    pub rmeta: bool,
    pub target_json: bool,
    /// The kernel release the build directory was configured for
    /// (`include/config/kernel.release`), if it says.
    pub kdir_release: Option<String>,
    /// `rustc --version` on the PATH, if it ran.
    pub rustc: Option<String>,
    /// Secure Boot: the EFI variable's value byte, if the machine has EFI.
    pub secure_boot: Option<u8>,
    /// `/sys/kernel/security/lockdown` (e.g. `[none] integrity confidentiality`).
    pub lockdown: Option<String>,
    /// `/sys/module/module/parameters/sig_enforce` (`Y` or `N`).
    pub sig_enforce: Option<String>,
    /// `/proc/modules`.
    pub modules: String,
    /// The parent's status line (`/dev/hotup-ctl`), if it could be read.
    pub status: Option<String>,
}

/// `KEY=VALUE` lines of a kernel `.config` (`# KEY is not set` is absent).
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// The EFI `SecureBoot` variable's file: 4 attribute bytes, then the value.
const SECURE_BOOT_VAR: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e0e8e2f0ec6e";

impl Facts {
    /// Reads the facts from this system; `kdir` overrides the build
    /// directory (default `/lib/modules/$(uname -r)/build`), `ctl` is the
    /// parent's control node.
    pub fn gather(kdir: Option<&Path>, ctl: &Path) -> Result<Facts> {
        let release = nix::sys::utsname::uname()
            .context("uname failed")?
            .release()
            .to_string_lossy()
            .into_owned();
        let kdir = kdir.map_or_else(
            || PathBuf::from(format!("/lib/modules/{release}/build")),
            Path::to_path_buf,
        );
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        Ok(Facts {
            config: read_config(&release, &kdir),
            rmeta: kdir.join("rust/libkernel.rmeta").is_file(),
            target_json: kdir.join("scripts/target.json").is_file(),
            kdir_release: read(&kdir.join("include/config/kernel.release"))
                .map(|r| r.trim().to_owned()),
            rustc: std::process::Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()),
            secure_boot: std::fs::read(SECURE_BOOT_VAR)
                .ok()
                .and_then(|b| b.get(4).copied()),
            lockdown: read(Path::new("/sys/kernel/security/lockdown")),
            sig_enforce: read(Path::new("/sys/module/module/parameters/sig_enforce")),
            modules: read(Path::new("/proc/modules")).unwrap_or_default(),
            status: read(ctl),
            kdir,
            release,
        })
    }
}

/// Whether this kernel refuses unsigned modules (Secure Boot, lockdown or
/// signature enforcement): the signing check's finding and fix if so.
pub fn unsigned_refused() -> Option<Check> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let f = Facts {
        secure_boot: std::fs::read(SECURE_BOOT_VAR)
            .ok()
            .and_then(|b| b.get(4).copied()),
        lockdown: read("/sys/kernel/security/lockdown"),
        sig_enforce: read("/sys/module/module/parameters/sig_enforce"),
        ..Facts::default()
    };
    Some(check_signing(&f)).filter(|c| c.verdict == Verdict::Fail)
}

/// The running kernel's configuration: `/proc/config.gz`, else
/// `/boot/config-RELEASE`, else the build directory's `.config`.
fn read_config(release: &str, kdir: &Path) -> Option<(BTreeMap<String, String>, String)> {
    let gz = Path::new("/proc/config.gz");
    if let Ok(f) = std::fs::File::open(gz) {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some((parse_config(&text), gz.display().to_string()));
        }
    }
    [
        PathBuf::from(format!("/boot/config-{release}")),
        kdir.join(".config"),
    ]
    .into_iter()
    .find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        Some((parse_config(&text), p.display().to_string()))
    })
}

/// Every check, in order.
pub fn checks(f: &Facts) -> Vec<Check> {
    vec![
        check_rust(f),
        check_metadata(f),
        check_rustc(f),
        check_modversions(f),
        check_signing(f),
        check_parent(f),
    ]
}

fn cfg<'a>(f: &'a Facts, key: &str) -> Option<&'a str> {
    f.config.as_ref()?.0.get(key).map(String::as_str)
}

fn check_rust(f: &Facts) -> Check {
    let Some((_, from)) = &f.config else {
        return Check::new(
            "rust",
            Verdict::Fail,
            format!("no configuration for kernel {} (no /proc/config.gz, /boot/config-{0}, or .config in {})", f.release, f.kdir.display()),
            "install the kernel's headers package (Debian: linux-headers-$(uname -r)), or pass --kdir to the kernel's build directory",
        );
    };
    match cfg(f, "CONFIG_RUST") {
        Some("y") => Check::new("rust", Verdict::Ok, format!("CONFIG_RUST=y ({from})"), ""),
        _ => Check::new(
            "rust",
            Verdict::Fail,
            format!("CONFIG_RUST is not set ({from})"),
            "hotup's modules are Rust: run a kernel built with CONFIG_RUST=y (Debian's 7.2 kernels are; a self-built one needs it in its config)",
        ),
    }
}

/// `scripts/target.json` exists only for x86 builds (other architectures
/// use a built-in rustc target).
fn needs_target_json() -> bool {
    cfg!(target_arch = "x86_64") || cfg!(target_arch = "x86")
}

fn check_metadata(f: &Facts) -> Check {
    if let Some(r) = f.kdir_release.as_deref().filter(|r| *r != f.release) {
        return Check::new(
            "rust-metadata",
            Verdict::Fail,
            format!("{} is the build directory of kernel {r}, not of the running {}", f.kdir.display(), f.release),
            "build against the running kernel's own headers (/lib/modules/$(uname -r)/build), or boot the kernel that directory belongs to",
        );
    }
    let missing: Vec<&str> = [
        (!f.rmeta).then_some("rust/libkernel.rmeta"),
        (!f.target_json && needs_target_json()).then_some("scripts/target.json"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Check::new(
            "rust-metadata",
            Verdict::Ok,
            format!(
                "rust/libkernel.rmeta and scripts/target.json in {}",
                f.kdir.display()
            ),
            "",
        );
    }
    Check::new(
        "rust-metadata",
        Verdict::Fail,
        format!("{} missing in {}", missing.join(" and "), f.kdir.display()),
        "the headers lack the kernel's Rust build metadata: on Debian (whose headers never carry it) rebuild it from the matching linux-source with the kernel's exact rustc and copy rust/*.rmeta, rust/*.so and scripts/target.json into the headers tree (README: on a real host); on Ubuntu install linux-lib-rust-$(uname -r); on a self-built kernel pass --kdir to its build tree",
    )
}

fn check_rustc(f: &Facts) -> Check {
    let want = cfg(f, "CONFIG_RUSTC_VERSION_TEXT");
    match (&f.rustc, want) {
        (_, None) => Check::new(
            "rustc",
            Verdict::Fail,
            "the kernel's configuration names no rustc (CONFIG_RUSTC_VERSION_TEXT)".into(),
            "see the `rust` check: the kernel has no Rust support",
        ),
        (None, Some(w)) => Check::new(
            "rustc",
            Verdict::Fail,
            format!("no rustc on the PATH; the kernel was built with {w:?}"),
            "install exactly that rustc (rustup toolchain install X.Y.Z, or the distribution's rustc package of that version) and put it first on the PATH",
        ),
        (Some(have), Some(w)) if have == w => {
            Check::new("rustc", Verdict::Ok, format!("{have} (the kernel's)"), "")
        }
        (Some(have), Some(w)) => Check::new(
            "rustc",
            Verdict::Fail,
            format!("{have} on the PATH; the kernel was built with {w}"),
            "Rust modules must be built by the exact rustc the kernel was (its .rmeta files are rustc-version specific): install that version and put it first on the PATH",
        ),
    }
}

fn check_modversions(f: &Facts) -> Check {
    if cfg(f, "CONFIG_MODVERSIONS") != Some("y") {
        return Check::new(
            "modversions",
            Verdict::Ok,
            "CONFIG_MODVERSIONS is not set (no symbol CRCs to match)".into(),
            "",
        );
    }
    let ext = cfg(f, "CONFIG_EXTENDED_MODVERSIONS") == Some("y");
    let dwarf = cfg(f, "CONFIG_GENDWARFKSYMS") == Some("y");
    if ext && dwarf {
        Check::new(
            "modversions",
            Verdict::Ok,
            "CONFIG_MODVERSIONS with EXTENDED_MODVERSIONS and GENDWARFKSYMS (Rust symbols get CRCs)".into(),
            "",
        )
    } else {
        Check::new(
            "modversions",
            Verdict::Fail,
            format!(
                "CONFIG_MODVERSIONS=y without {}",
                [(!ext).then_some("EXTENDED_MODVERSIONS"), (!dwarf).then_some("GENDWARFKSYMS")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            "Rust modules cannot get symbol CRCs on this kernel, so it refuses them: use a kernel with EXTENDED_MODVERSIONS and GENDWARFKSYMS, or without MODVERSIONS",
        )
    }
}

fn check_signing(f: &Facts) -> Check {
    // Lockdown refuses unsigned modules only where signatures are checked
    // at all (`sig_enforce` exists with CONFIG_MODULE_SIG); Secure Boot
    // counts by itself only when the lockdown state cannot be read.
    let locked =
        f.sig_enforce.is_some() && f.lockdown.as_deref().is_some_and(|l| !l.contains("[none]"));
    let enforce = f.sig_enforce.as_deref().map(str::trim) == Some("Y")
        || cfg(f, "CONFIG_MODULE_SIG_FORCE") == Some("y");
    let sb = f.secure_boot == Some(1) && f.lockdown.is_none();
    let found = format!(
        "Secure Boot {}, lockdown {}, signature enforcement {}",
        match f.secure_boot {
            Some(1) => "on",
            Some(_) => "off",
            None => "absent (no EFI)",
        },
        f.lockdown
            .as_deref()
            .map_or("unknown".to_owned(), |l| l.trim().to_owned()),
        if enforce { "on" } else { "off" }
    );
    if locked || enforce || sb {
        Check::new(
            "signing",
            Verdict::Fail,
            found,
            "unsigned modules are refused here: sign hotup's modules with a key the kernel trusts, e.g. a MOK: `openssl req -new -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=hotup -keyout MOK.priv -outform DER -out MOK.der`, `mokutil --import MOK.der` and reboot to enroll it, then `$KDIR/scripts/sign-file sha256 MOK.priv MOK.der FILE.ko` for each module",
        )
    } else {
        Check::new(
            "signing",
            Verdict::Ok,
            found + " (unsigned modules load; the kernel is tainted 'E')",
            "",
        )
    }
}

fn check_parent(f: &Facts) -> Check {
    let loaded: Vec<&str> = f
        .modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|m| m.starts_with("hotup_"))
        .collect();
    if !loaded.contains(&"hotup_parent") {
        return Check::new(
            "parent",
            Verdict::Note,
            "hotup_parent is not loaded".into(),
            "load it (insmod hotup_parent.ko), then a child",
        );
    }
    let get = |k: &str| {
        f.status.as_deref().and_then(|s| {
            s.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
        })
    };
    let children: Vec<&str> = loaded
        .iter()
        .copied()
        .filter(|m| *m != "hotup_parent")
        .collect();
    let found = format!(
        "hotup_parent loaded; state {}, active child {} (version {}); child modules loaded: {}",
        get("state").unwrap_or("?"),
        get("child").unwrap_or("?"),
        get("child_version").unwrap_or("?"),
        if children.is_empty() {
            "none".to_owned()
        } else {
            children.join(", ")
        }
    );
    Check::new("parent", Verdict::Ok, found, "")
}

/// The checks as a person reads them.
pub fn render(release: &str, checks: &[Check]) -> String {
    let mut out = format!("hotup doctor, kernel {release}\n");
    for c in checks {
        let tag = match c.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Note => "note",
            Verdict::Fail => "FAIL",
        };
        out += &format!("  {tag} {:<14} {}\n", c.name, c.found);
        if !c.fix.is_empty() {
            out += &format!("       {:<14} -> {}\n", "", c.fix);
        }
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    out += &if failed == 0 {
        "hotup can build and load its modules on this kernel\n".to_owned()
    } else {
        format!("hotup cannot work on this kernel yet: {failed} check(s) failed (each says what to do)\n")
    };
    out
}

/// Whether every check passed or only noted something.
pub fn all_ok(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.verdict != Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian-like kernel with everything hotup needs.
    fn good() -> Facts {
        let config = "CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT=\"rustc 1.97.1 (e4d0a7c8b 2026-10-01)\"\n# CONFIG_MODVERSIONS is not set\nCONFIG_MODULE_SIG=y\n";
        Facts {
            release: "7.2.12+deb14-amd64".into(),
            config: Some((
                parse_config(config),
                "/boot/config-7.2.12+deb14-amd64".into(),
            )),
            kdir: "/lib/modules/7.2.12+deb14-amd64/build".into(),
            rmeta: true,
            target_json: true,
            kdir_release: None,
            rustc: Some("rustc 1.97.1 (e4d0a7c8b 2026-10-01)".into()),
            secure_boot: None,
            lockdown: Some("[none] integrity confidentiality\n".into()),
            sig_enforce: Some("N\n".into()),
            modules:
                "hotup_nvme_v1 90112 0 - Live 0x0\nhotup_parent 126976 1 hotup_nvme_v1, Live 0x0\n"
                    .into(),
            status: Some(
                "state=active generation=3 child=hotup_nvme_v1 child_version=1 parked=0\n".into(),
            ),
        }
    }

    fn verdict(f: &Facts, name: &str) -> Verdict {
        checks(f)
            .into_iter()
            .find(|c| c.name == name)
            .unwrap()
            .verdict
    }

    #[test]
    fn config_lines() {
        let m = parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nFOO=1\n");
        assert_eq!(m.get("CONFIG_A").map(String::as_str), Some("y"));
        assert_eq!(m.get("CONFIG_C").map(String::as_str), Some("x y"));
        assert!(!m.contains_key("CONFIG_B") && !m.contains_key("FOO"));
    }

    #[test]
    fn everything_in_place() {
        let c = checks(&good());
        assert!(all_ok(&c), "{c:?}");
        assert!(c.iter().all(|c| c.verdict == Verdict::Ok));
        let text = render("7.2.12+deb14-amd64", &c);
        assert!(
            text.contains("active child hotup_nvme_v1 (version 1)"),
            "{text}"
        );
        assert!(text.ends_with("hotup can build and load its modules on this kernel\n"));
    }

    #[test]
    fn no_rust_in_the_kernel() {
        let mut f = good();
        f.config = Some((parse_config("# CONFIG_RUST is not set\n"), "x".into()));
        assert_eq!(verdict(&f, "rust"), Verdict::Fail);
        assert_eq!(verdict(&f, "rustc"), Verdict::Fail);
        f.config = None;
        assert_eq!(verdict(&f, "rust"), Verdict::Fail);
        assert!(!all_ok(&checks(&f)));
    }

    #[test]
    fn missing_metadata_names_the_piece_and_the_fix() {
        let mut f = good();
        f.rmeta = false;
        let c = checks(&f)
            .into_iter()
            .find(|c| c.name == "rust-metadata")
            .unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.found.contains("rust/libkernel.rmeta") && !c.found.contains("target.json"));
        assert!(c.fix.contains("linux-lib-rust") && c.fix.contains("linux-source"));
        f.target_json = false;
        let c = checks(&f)
            .into_iter()
            .find(|c| c.name == "rust-metadata")
            .unwrap();
        assert!(c
            .found
            .contains("rust/libkernel.rmeta and scripts/target.json"));
    }

    #[test]
    fn the_build_directory_must_be_the_running_kernels() {
        let mut f = good();
        f.kdir_release = Some("7.2.12+deb14-amd64".into());
        assert_eq!(verdict(&f, "rust-metadata"), Verdict::Ok);
        f.kdir_release = Some("7.2.11+deb14-amd64".into());
        let c = checks(&f)
            .into_iter()
            .find(|c| c.name == "rust-metadata")
            .unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.found.contains("7.2.11") && c.found.contains("7.2.12"));
    }

    #[test]
    fn rustc_must_be_the_kernels() {
        let mut f = good();
        f.rustc = Some("rustc 1.95.0 (59807616e 2026-04-01)".into());
        let c = checks(&f).into_iter().find(|c| c.name == "rustc").unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.found.contains("1.95.0") && c.found.contains("1.97.1"));
        f.rustc = None;
        assert_eq!(verdict(&f, "rustc"), Verdict::Fail);
    }

    #[test]
    fn modversions_needs_extended_crcs() {
        let mut f = good();
        let base = "CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT=\"rustc 1.97.1 (e4d0a7c8b 2026-10-01)\"\nCONFIG_MODVERSIONS=y\n";
        f.config = Some((parse_config(base), "x".into()));
        let c = checks(&f)
            .into_iter()
            .find(|c| c.name == "modversions")
            .unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.found.contains("EXTENDED_MODVERSIONS and GENDWARFKSYMS"));
        let full = format!("{base}CONFIG_EXTENDED_MODVERSIONS=y\nCONFIG_GENDWARFKSYMS=y\n");
        f.config = Some((parse_config(&full), "x".into()));
        assert_eq!(verdict(&f, "modversions"), Verdict::Ok);
    }

    #[test]
    fn secure_boot_and_lockdown_refuse_unsigned_modules() {
        let mut f = good();
        f.secure_boot = Some(1);
        f.lockdown = Some("none [integrity] confidentiality\n".into());
        let c = checks(&f)
            .into_iter()
            .find(|c| c.name == "signing")
            .unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.found.contains("Secure Boot on") && c.fix.contains("mokutil --import"));
        let mut f = good();
        f.sig_enforce = Some("Y\n".into());
        assert_eq!(verdict(&f, "signing"), Verdict::Fail);
        let mut f = good();
        f.secure_boot = Some(0);
        assert_eq!(verdict(&f, "signing"), Verdict::Ok);
        // Secure Boot with lockdown off (shim validation disabled): loads.
        let mut f = good();
        f.secure_boot = Some(1);
        assert_eq!(verdict(&f, "signing"), Verdict::Ok);
        // Secure Boot and no lockdown file to say otherwise: refused.
        f.lockdown = None;
        assert_eq!(verdict(&f, "signing"), Verdict::Fail);
    }

    #[test]
    fn parent_not_loaded_is_a_note() {
        let mut f = good();
        f.modules = "ext4 1 0 - Live 0x0\n".into();
        f.status = None;
        let c = checks(&f);
        assert_eq!(verdict(&f, "parent"), Verdict::Note);
        assert!(all_ok(&c));
    }
}
