//! What each command does: control-node writes, module loads and unloads,
//! and the summary of what the parent logged meanwhile.

use crate::event::Event;
use crate::kmsg::Kmsg;
use crate::module;
use crate::status::Status;
use crate::swap::{ctl_write, rmmod, NewChild, Realtime, SwapError};
use crate::{Mode, UpgradeArgs};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use serde::Serialize;
use std::path::Path;

/// The result of an upgrade or switch, as printed (or as JSON).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Report {
    pub ok: bool,
    /// `standby-handover`, `standby-drain` or `classic`.
    pub mode: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Why standby mode was not used, when it was asked for by default.
    pub fallback: Option<String>,
    /// The schema the old child was asked to export, when hotupctl chose it
    /// (a downgrade without `--schema`).
    pub schema_note: Option<String>,
    pub error: Option<String>,
    pub blackout_ns: Option<u64>,
    pub drain_ns: Option<u64>,
    /// Of `drain_ns`, the old child's freeze (a handover).
    pub freeze_ns: Option<u64>,
    pub export_ns: Option<u64>,
    pub load_ns: Option<u64>,
    pub adopt_ns: Option<u64>,
    pub parked: Option<u64>,
    pub drained: Option<u64>,
    pub handed_over: Option<u64>,
    /// A handover: completions the old child had under way at its freeze.
    pub completing: Option<u64>,
    /// Nothing was parked, drained, handed over or completing: the device
    /// was idle.
    pub idle: bool,
    /// The retired old child, unloaded after the switch.
    pub unloaded: Option<String>,
    /// The parent's log lines of the operation.
    pub log: Vec<String>,
    /// When the operation's first kernel-visible step began (ms since the
    /// epoch), to place it on a timeline.
    pub started_ms: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Report {
    /// Fills the figures from the operation's `resume` line.
    fn fill_from(&mut self, events: &[Event]) {
        self.log = events
            .iter()
            .map(|e| {
                let f: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {}", e.name, f.join(" "))
            })
            .collect();
        if let Some(r) = events.iter().rev().find(|e| e.name == "resume") {
            self.mode = r.get("mode").unwrap_or("classic").to_owned();
            self.to = r.get("child").map(str::to_owned);
            self.blackout_ns = r.num("blackout_ns");
            self.drain_ns = r.num("drain_ns");
            self.freeze_ns = r.num("freeze_ns");
            self.export_ns = r.num("export_ns");
            self.load_ns = r.num("load_ns");
            self.adopt_ns = r.num("adopt_ns");
            self.parked = r.num("parked");
            self.drained = r.num("drained");
            self.handed_over = r.num("handed_over");
            self.completing = r.num("completing");
            self.idle = self.parked == Some(0)
                && self.drained == Some(0)
                && self.handed_over.unwrap_or(0) == 0
                && self.completing.unwrap_or(0) == 0;
        }
    }

    /// What a human reads.
    pub fn human(&self) -> String {
        let ms = |n: Option<u64>| n.map_or("?".to_owned(), |n| format!("{:.3}", n as f64 / 1e6));
        let mut out = format!(
            "upgrade {} -> {}: {} {}\n",
            self.from.as_deref().unwrap_or("(none)"),
            self.to.as_deref().unwrap_or("?"),
            if self.mode.is_empty() {
                "?"
            } else {
                &self.mode
            },
            if self.ok { "ok" } else { "FAILED" }
        );
        if let Some(f) = &self.fallback {
            out += &format!("  not standby: {f}\n");
        }
        if let Some(n) = &self.schema_note {
            out += &format!("  schema: {n}\n");
        }
        if let Some(e) = &self.error {
            out += &format!("  error: {e}\n");
        }
        if self.blackout_ns.is_some() {
            out += &format!(
                "  blackout {} ms = drain {}{} + export {} + no child {} + adopt {} ms\n  parked {}, drained {}, handed over {}{}\n",
                ms(self.blackout_ns),
                ms(self.drain_ns),
                match self.freeze_ns {
                    Some(f) if f > 0 => format!(" (freeze {})", ms(Some(f))),
                    _ => String::new(),
                },
                ms(self.export_ns),
                ms(self.load_ns),
                ms(self.adopt_ns),
                self.parked.unwrap_or(0),
                self.drained.unwrap_or(0),
                self.handed_over.unwrap_or(0),
                match self.completing {
                    Some(n) if n > 0 => format!(", {n} completing (ended by the old child)"),
                    _ => String::new(),
                }
            );
            if self.idle {
                out += "  the device was idle: no I/O was parked, drained or handed over\n";
            }
        }
        if let Some(u) = &self.unloaded {
            out += &format!("  retired {u}: unloaded\n");
        }
        out
    }

    fn print(&self, json: bool) -> Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
        } else {
            print!("{}", self.human());
        }
        Ok(())
    }
}

fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("this needs root (CAP_SYS_ADMIN for the parent's control node, and module loading): run it with sudo");
    }
    Ok(())
}

/// The parent's explanation of a failure, from its log lines.
fn why(events: &[Event]) -> Option<String> {
    events
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.name.as_str(),
                "refuse" | "refuse-switch" | "rollback" | "abort"
            )
        })
        .map(|e| {
            let mut s = format!("{}:", e.name);
            for k in [
                "child",
                "reason",
                "step",
                "err",
                "child_abi",
                "parent_abi",
                "active",
                "waited_ms",
                "hint",
            ] {
                if let Some(v) = e.get(k) {
                    s += &format!(" {k}={v}");
                }
            }
            if e.get("hint").is_none() {
                if let Some(h) = hint_for(e) {
                    s += &format!(" hint=\"{h}\"");
                }
            }
            s
        })
}

/// What to do next, for a refusal the parent logs by `reason=` only (the
/// parent keeps its lines to key=value facts; the advice lives here).
fn hint_for(e: &Event) -> Option<String> {
    let active = e.get("active").unwrap_or("the active child");
    Some(match (e.name.as_str(), e.get("reason")?) {
        ("refuse-switch", "no-standby") => {
            "insmod the new child first: it registers as the standby".to_owned()
        }
        ("refuse-switch", "active-cannot-standby") => {
            format!("rmmod {active} (a classic upgrade promotes the standby)")
        }
        ("refuse-switch", "no-active-child") => {
            "no child is active: insmod one, it adopts the stashed state".to_owned()
        }
        ("refuse", "busy") => format!("rmmod {active} first (a classic upgrade)"),
        ("refuse", "standby-exists") => format!(
            "rmmod {} first, or switch to it",
            e.get("standby").unwrap_or("the standby")
        ),
        ("refuse", "no-state") => "preserved data exists but no state names it; write \
             discard-stash to /dev/hotup-ctl to start empty (destroys the data)"
            .to_owned(),
        ("refuse-switch", "trial-export") => {
            "the active child cannot export its state; a switch would roll back".to_owned()
        }
        ("refuse-switch", "probe") => {
            format!("the standby cannot adopt the state of {active} (see its line above); rmmod it")
        }
        ("rollback", "refused") if e.get("state") == Some("parked") => format!(
            "load a child that can adopt the stashed state, e.g. {}",
            e.get("from").unwrap_or("the child that wrote it")
        ),
        ("rollback", r) if r.starts_with("inflight") => format!(
            "the old child's blob handed over requests the parent does not have ({r}): \
             {active} resumed; report it as a bug of that child"
        ),
        _ => return None,
    })
}

fn loaded_modules() -> Vec<String> {
    std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

pub fn status(ctl: &Path, json: bool) -> Result<()> {
    let s = Status::read(ctl)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s.0)?);
    } else {
        println!("{}", s.human());
    }
    Ok(())
}

pub fn simple(ctl: &Path, cmd: &str) -> Result<()> {
    require_root()?;
    Status::read(ctl)?;
    let mut k = Kmsg::at_end();
    ctl_write(ctl, cmd).map_err(|e| {
        let hint = match (cmd, e) {
            ("abort", Errno::ENOENT) => "no standby switch is draining, so there is nothing to abort".to_owned(),
            ("discard-stash", Errno::EBUSY) => "a child is attached: the stash can be discarded only with no child (rmmod it first)".to_owned(),
            _ => why(&k.events()).unwrap_or_default(),
        };
        anyhow::anyhow!("{cmd} failed: {} ({hint})", e.desc())
    })?;
    println!("{cmd}: done");
    Ok(())
}

pub fn switch(ctl: &Path, json: bool) -> Result<()> {
    require_root()?;
    let st = Status::read(ctl)?;
    let mut r = Report {
        from: st.module("child").map(str::to_owned),
        ..Default::default()
    };
    if st.module("standby").is_none() {
        bail!(
            "no standby child is loaded: `hotupctl upgrade FILE.ko` loads one and switches to it"
        );
    }
    do_switch(ctl, &mut r)?;
    r.print(json)
}

/// Writes `switch` and fills `r` from what the parent logged. An error says
/// why and that the old child is active again.
fn do_switch(ctl: &Path, r: &mut Report) -> Result<()> {
    let mut k = Kmsg::at_end();
    let rt = Realtime::enter();
    if r.started_ms == 0 {
        r.started_ms = now_ms();
    }
    let rc = ctl_write(ctl, "switch");
    drop(rt);
    let events = k.events();
    r.fill_from(&events);
    match rc {
        Ok(()) => {
            r.ok = true;
            Ok(())
        }
        Err(e) => bail!(
            "the switch failed ({}); {}. The old child {} is active again and nothing was lost; the standby stays loaded (rmmod it, or fix it and retry)",
            e.desc(),
            why(&events).unwrap_or_else(|| "see dmesg".to_owned()),
            r.from.as_deref().unwrap_or("?")
        ),
    }
}

pub fn upgrade(ctl: &Path, a: &UpgradeArgs) -> Result<()> {
    require_root()?;
    let st = Status::read(ctl)?;
    let release = nix::sys::utsname::uname().context("uname")?;
    let release = release.release().to_string_lossy().into_owned();
    let m = module::inspect(&a.file, &release)?;
    if !m.signed {
        if let Some(c) = hotupctl::doctor::unsigned_refused() {
            bail!(
                "{} is not signed and this kernel refuses unsigned modules ({}): {}",
                a.file.display(),
                c.found,
                c.fix
            );
        }
    }
    let active = st.module("child").map(str::to_owned);
    let mut r = Report {
        from: active.clone(),
        to: Some(m.name.clone()),
        ..Default::default()
    };
    let mut mode = a.mode;
    if mode != Mode::Classic {
        if active.is_none() {
            r.fallback =
                Some("no child is active: the new one is loaded and adopts the saved state".into());
            mode = Mode::Classic;
        } else if active.as_deref() == Some(m.name.as_str()) {
            if mode == Mode::Standby {
                bail!(
                    "{} is the active child's module name: a module cannot be loaded twice under one name, so it cannot be a standby. Use --mode classic, or build the new version under another module name",
                    m.name
                );
            }
            r.fallback = Some(format!(
                "{} is already loaded as the active child (same module name): classic upgrade",
                m.name
            ));
            mode = Mode::Classic;
        } else if let Some(s) = st.module("standby").filter(|s| *s != m.name) {
            bail!("a standby child ({s}) is already loaded: `hotupctl switch` to it, or rmmod it first");
        }
    }
    if let Some(schema) = a.schema {
        ctl_write(ctl, &format!("export-schema {schema}"))
            .map_err(|e| anyhow::anyhow!("setting export-schema {schema}: {}", e.desc()))?;
    }
    // Not a standby (`r.fallback` says why) means classic, below.
    if mode != Mode::Classic && load_standby(ctl, &st, &m.name, a, &mut r)? {
        do_switch(ctl, &mut r).inspect_err(|_| {
            let _ = r.print(a.json);
        })?;
        if !a.keep_old {
            if let Some(old) = &active {
                rmmod(old).map_err(|e| {
                    anyhow::anyhow!(
                        "the switch succeeded, but unloading the retired {old} failed: {} (rmmod it later)",
                        e.desc()
                    )
                })?;
                r.unloaded = Some(old.clone());
            }
        }
        return r.print(a.json);
    }
    refuse_classic_if_stuck(&st, active.as_deref())?;
    let negotiated = a.schema.is_none() && negotiate_classic(ctl, &st, &m, &mut r)?;
    if let Err(e) = classic(active.as_deref(), a, &mut r) {
        if negotiated {
            // Not left for the next detach or switch to use (a detach that
            // ran took it already; the parent clears it at every detach).
            let prev = st.num("export_schema").unwrap_or(0);
            let _ = ctl_write(ctl, &format!("export-schema {prev}"));
        }
        return Err(e);
    }
    r.print(a.json)
}

/// Before a classic unload, without `--schema`: when the new child reads
/// only an older schema than the active child's (a downgrade; the module
/// file says, `hotup_schema=`), the active child is asked to export that
/// one; the parent refuses if it cannot, and nothing is unloaded. (A
/// standby switch negotiates the same in the parent, which knows both.)
fn negotiate_classic(ctl: &Path, st: &Status, m: &module::ModInfo, r: &mut Report) -> Result<bool> {
    let (Some(new), Some(old)) = (m.schema, st.num("child_schema")) else {
        return Ok(false);
    };
    if st.get("state") != Some("active") || u64::from(new) >= old {
        return Ok(false);
    }
    ctl_write(ctl, &format!("export-schema {new}")).map_err(|e| match e {
        Errno::EPROTO => anyhow::anyhow!(
            "{} reads device-state schema {new} at most and {} writes {old} and cannot export an older one: no schema both read, so nothing was unloaded; upgrade to a build of {} that reads schema {old}",
            m.name,
            st.get("child").unwrap_or("the active child"),
            m.name
        ),
        e => anyhow::anyhow!("setting export-schema {new} for the downgrade: {}", e.desc()),
    })?;
    r.schema_note = Some(format!(
        "{} reads schema {new} at most: the active child exports schema {new} (schema {old} is its own)",
        m.name
    ));
    Ok(true)
}

/// A classic upgrade unloads the active child, and its unload waits until
/// the child has completed everything it holds: with a request stuck in it
/// (the parent's watch, `stuck=` in status) that wait would not end.
fn refuse_classic_if_stuck(st: &Status, active: Option<&str>) -> Result<()> {
    match (active, st.num("stuck")) {
        (Some(child), Some(n)) if n > 0 => bail!(
            "{child} holds {n} request(s) past the parent's stuck_ms ({} ms; dmesg: `hotup: error reason=stuck-request`): a classic upgrade would wait for them in rmmod. Use --mode standby (its drain is bounded by switch_timeout_ms and the old child resumes if it expires), or end them at the device (unbinding it fails what the child holds)",
            st.get("stuck_ms").unwrap_or("?")
        ),
        _ => Ok(()),
    }
}

/// Loads the new child as the standby. Ok(false): it cannot be one and the
/// mode allows a fallback (`r.fallback` says why).
fn load_standby(
    ctl: &Path,
    st: &Status,
    name: &str,
    a: &UpgradeArgs,
    r: &mut Report,
) -> Result<bool> {
    if st.module("standby") == Some(name) {
        return Ok(true);
    }
    if loaded_modules().iter().any(|n| n == name) {
        // Loaded, neither active nor standby: a retired child of that name.
        rmmod(name)
            .map_err(|e| anyhow::anyhow!("unloading the retired {name} first: {}", e.desc()))?;
    }
    let new = NewChild::open(&a.file, &a.params)?;
    let mut k = Kmsg::at_end();
    match new.load() {
        Ok(()) => {}
        Err(Errno::EBUSY) if a.mode == Mode::Auto => {
            let events = k.events();
            r.fallback = Some(format!(
                "the new child cannot be a standby next to the active one ({}): classic upgrade",
                why(&events).unwrap_or_else(|| "EBUSY".into())
            ));
            return Ok(false);
        }
        Err(e) => bail!(
            "loading {} failed: {}; {}",
            a.file.display(),
            e.desc(),
            why(&k.events()).unwrap_or_else(|| "see dmesg".to_owned())
        ),
    }
    let now = Status::read(ctl)?;
    if now.module("standby") != Some(name) {
        bail!(
            "{name} loaded but did not register as the standby (status says standby={}); see dmesg",
            now.get("standby").unwrap_or("?")
        );
    }
    Ok(true)
}

/// The classic upgrade: unload the active child (it drains and exports),
/// load the new one (it adopts). The file is open before the old child
/// goes, so the time with no child holds only the kernel's unload and load.
fn classic(active: Option<&str>, a: &UpgradeArgs, r: &mut Report) -> Result<()> {
    let new = NewChild::open(&a.file, &a.params)?;
    let mut k = Kmsg::at_end();
    r.started_ms = now_ms();
    let swapped = new.swap(active);
    if let Err(e @ SwapError::Unload { .. }) = &swapped {
        bail!("{e}");
    }
    let events = k.events();
    r.fill_from(&events);
    if r.mode.is_empty() {
        r.mode = "classic".into();
    }
    if let Err(e) = swapped {
        r.error = Some(format!(
            "{}; {}",
            e.errno().desc(),
            why(&events).unwrap_or_else(|| "see dmesg".into())
        ));
        let _ = r.print(a.json);
        bail!("{e}");
    }
    r.ok = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse;

    #[test]
    fn a_classic_upgrade_over_a_stuck_request_is_refused() {
        let st = Status::parse("state=active child=hotup_nvme_v1 stuck=1 stuck_ms=2000\n");
        let e = refuse_classic_if_stuck(&st, Some("hotup_nvme_v1")).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("holds 1 request(s) past the parent's stuck_ms (2000 ms"),
            "{e}"
        );
        assert!(e.contains("--mode standby"), "{e}");
        let ok = Status::parse("state=active child=hotup_nvme_v1 stuck=0 stuck_ms=2000\n");
        assert!(refuse_classic_if_stuck(&ok, Some("hotup_nvme_v1")).is_ok());
        // A parent older than the watch has no `stuck`: nothing to refuse.
        let old = Status::parse("state=active child=hotup_child_v1\n");
        assert!(refuse_classic_if_stuck(&old, Some("hotup_child_v1")).is_ok());
        assert!(refuse_classic_if_stuck(&st, None).is_ok());
    }

    #[test]
    fn report_from_a_standby_resume() {
        let ev: Vec<Event> = [
            "hotup: switch gen=1 from=hotup_child_v1 to=hotup_child_v2 mode=handover inflight=3",
            "hotup: resume gen=2 child=hotup_child_v2 version=2 parked=24 drained=0 blackout_ns=9618961 drain_ns=686137 freeze_ns=12000 export_ns=128721 load_ns=0 adopt_ns=8796599 mode=standby-handover handed_over=3",
        ]
        .iter()
        .filter_map(|l| parse(l))
        .collect();
        let mut r = Report {
            ok: true,
            from: Some("hotup_child_v1".into()),
            ..Default::default()
        };
        r.fill_from(&ev);
        assert_eq!(r.mode, "standby-handover");
        assert_eq!(r.to.as_deref(), Some("hotup_child_v2"));
        assert_eq!(
            (r.blackout_ns, r.handed_over, r.parked),
            (Some(9_618_961), Some(3), Some(24))
        );
        assert!(!r.idle);
        let h = r.human();
        assert!(
            h.contains("upgrade hotup_child_v1 -> hotup_child_v2: standby-handover ok"),
            "{h}"
        );
        assert!(
            h.contains(
                "blackout 9.619 ms = drain 0.686 (freeze 0.012) + export 0.129 + no child 0.000 + adopt 8.797 ms"
            ),
            "{h}"
        );
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["handed_over"], 3);
        assert_eq!(j["log"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_idle_upgrade_says_so() {
        let ev = vec![parse("hotup: resume gen=2 child=c parked=0 drained=0 blackout_ns=5 mode=classic handed_over=0").unwrap()];
        let mut r = Report::default();
        r.fill_from(&ev);
        assert!(r.idle);
        assert!(r.human().contains("the device was idle"));
    }

    #[test]
    fn a_completion_under_way_is_not_idle() {
        let ev = vec![parse("hotup: resume gen=2 child=c parked=0 drained=0 blackout_ns=5 mode=standby-handover handed_over=0 completing=1").unwrap()];
        let mut r = Report::default();
        r.fill_from(&ev);
        assert!(!r.idle);
        let h = r.human();
        assert!(h.contains("handed over 0, 1 completing"), "{h}");
        assert!(!h.contains("the device was idle"), "{h}");
    }

    #[test]
    fn refusals_logged_by_reason_get_their_hint_here() {
        let ev =
            vec![parse("hotup: refuse-switch reason=no-standby active=hotup_child_v1").unwrap()];
        let w = why(&ev).unwrap();
        assert!(w.contains("reason=no-standby"), "{w}");
        assert!(w.contains("insmod the new child first"), "{w}");
        let ev = vec![parse("hotup: refuse-switch reason=active-cannot-standby active=hotup_child_v1 standby=hotup_child_v2").unwrap()];
        assert!(why(&ev)
            .unwrap()
            .contains("rmmod hotup_child_v1 (a classic upgrade"));
        let ev = vec![parse("hotup: refuse child=hotup_child_v2 version=2 reason=busy active=hotup_child_v1 standby_capable=no").unwrap()];
        assert!(why(&ev)
            .unwrap()
            .contains(r#"hint="rmmod hotup_child_v1 first (a classic upgrade)""#));
        let ev = vec![parse("hotup: rollback child=hotup_child_v2 version=2 err=-5 state=parked parked=3 blob=kept freed_regions=0 step=adopt reason=refused from=hotup_child_v1").unwrap()];
        assert!(why(&ev).unwrap().contains("e.g. hotup_child_v1"));
        // A hint the parent gave is kept, not doubled.
        let ev = vec![
            parse(r#"hotup: refuse child=x reason=busy active=a hint="rmmod a first""#).unwrap(),
        ];
        assert_eq!(why(&ev).unwrap().matches("hint=").count(), 1);
    }

    #[test]
    fn failures_are_explained_from_the_log() {
        let ev = vec![
            parse("hotup: refuse child=hotup_child_v9 version=9 reason=abi-mismatch child_abi=2.0 parent_abi=1.1").unwrap(),
        ];
        assert_eq!(
            why(&ev).unwrap(),
            "refuse: child=hotup_child_v9 reason=abi-mismatch child_abi=2.0 parent_abi=1.1"
        );
        let ev = vec![parse(r#"hotup: rollback child=hotup_child_v1 version=1 step=adopt reason=refused err=-71 state=resumed active=hotup_child_v2"#).unwrap()];
        assert!(why(&ev).unwrap().contains("step=adopt"));
        assert_eq!(why(&[]), None);
    }
}
