//! What a `.ko` file says about itself, read before anything is loaded:
//! that it is an ELF object with a module's `.modinfo` strings, its module
//! name and the kernel it was built for (`vermagic`).

use anyhow::{bail, Context, Result};
use std::path::Path;

/// The `.modinfo` facts hotupctl checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModInfo {
    /// `name=`: the module name (what `rmmod` and `/proc/modules` use).
    pub name: String,
    /// `vermagic=`: starts with the kernel release the module was built for.
    pub vermagic: String,
    /// The file ends with a module signature (`scripts/sign-file`'s).
    pub signed: bool,
    /// `hotup_schema=`: the newest device-state schema a hotup child reads
    /// (absent in other modules and in children built before it existed).
    pub schema: Option<u32>,
}

/// The marker `scripts/sign-file` appends after a module's signature.
const SIGNATURE_MARKER: &[u8] = b"~Module signature appended~\n";

impl ModInfo {
    /// The kernel release the module was built for (vermagic's first word).
    pub fn release(&self) -> &str {
        self.vermagic.split_whitespace().next().unwrap_or("")
    }
}

/// Finds the `.modinfo` strings (`key=value\0`) in the bytes of a module.
/// Scans the whole file rather than parsing section headers: the strings are
/// unique enough (`vermagic=` and `name=` after a NUL) and this also works
/// on a module whose section table was stripped oddly.
pub fn parse(bytes: &[u8], file: &str) -> Result<ModInfo> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        bail!("{file} is not a kernel module: it is not an ELF file");
    }
    let field = |key: &str| -> Option<String> {
        let pat = format!("\0{key}=");
        let at = bytes.windows(pat.len()).position(|w| w == pat.as_bytes())? + pat.len();
        let end = bytes[at..].iter().position(|b| *b == 0)? + at;
        String::from_utf8(bytes[at..end].to_vec()).ok()
    };
    let Some(vermagic) = field("vermagic") else {
        bail!("{file} is not a kernel module: it has no vermagic (.modinfo) string");
    };
    let Some(name) = field("name") else {
        bail!("{file} has no module name in its .modinfo: was it built with kbuild?");
    };
    Ok(ModInfo {
        name,
        vermagic,
        signed: bytes.ends_with(SIGNATURE_MARKER),
        schema: field("hotup_schema").and_then(|v| v.parse().ok()),
    })
}

/// Reads and checks `path`: a module built for the running kernel
/// `release`.
pub fn inspect(path: &Path, release: &str) -> Result<ModInfo> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let m = parse(&bytes, &path.display().to_string())?;
    if m.release() != release {
        bail!(
            "{} was built for kernel {}, but this kernel is {release}: rebuild it against this kernel's build tree (make KDIR=/lib/modules/{release}/build)",
            path.display(),
            m.release()
        );
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ko(strings: &str) -> Vec<u8> {
        let mut b = b"\x7fELF\x02\x01\x01\0".to_vec();
        b.extend_from_slice(&[0u8; 32]);
        b.extend_from_slice(strings.as_bytes());
        b
    }

    #[test]
    fn reads_name_and_vermagic() {
        let b = ko("\0license=GPL\0name=hotup_child_v2\0vermagic=7.2.12 SMP preempt mod_unload \0");
        let m = parse(&b, "x.ko").unwrap();
        assert_eq!(m.name, "hotup_child_v2");
        assert_eq!(m.release(), "7.2.12");
        assert!(!m.signed);
        assert_eq!(m.schema, None);
        let b = ko("\0name=hotup_child_v1\0hotup_schema=1\0vermagic=7.2.12 SMP \0");
        assert_eq!(parse(&b, "x.ko").unwrap().schema, Some(1));
        let mut signed = b.clone();
        signed.extend_from_slice(b"sig\0\0~Module signature appended~\n");
        assert!(parse(&signed, "x.ko").unwrap().signed);
    }

    #[test]
    fn refuses_what_is_not_a_module() {
        let e = parse(b"#!/bin/sh\necho hi\n", "script.ko").unwrap_err();
        assert!(e.to_string().contains("not an ELF file"), "{e}");
        let e = parse(&ko("\0name=x\0"), "x.ko").unwrap_err();
        assert!(e.to_string().contains("no vermagic"), "{e}");
    }

    #[test]
    fn another_kernel_is_named() {
        let dir = std::env::temp_dir().join(format!("hotupctl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("old.ko");
        std::fs::write(
            &p,
            ko("\0name=hotup_child_v1\0vermagic=6.1.0 SMP mod_unload \0"),
        )
        .unwrap();
        let e = inspect(&p, "7.2.12").unwrap_err().to_string();
        assert!(
            e.contains("built for kernel 6.1.0") && e.contains("this kernel is 7.2.12"),
            "{e}"
        );
        assert_eq!(inspect(&p, "6.1.0").unwrap().name, "hotup_child_v1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
