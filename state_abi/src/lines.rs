// SPDX-License-Identifier: GPL-2.0

//! The parent's text lines, as host tools read them: its status line
//! (`/dev/hotup-ctl`, the same keys in sysfs) and its kernel log events
//! (`hotup: NAME key=value ...`). The only parser of them: hotupctl and
//! userspace-tests call it (and xtask through userspace-tests' `report`).
//!
//! Host only: `lib.rs` compiles this module with the `host` feature (or in
//! its own tests), which the kernel build never sets. It borrows from the
//! line it parses and allocates nothing.
//!
//! The grammar of the fields, after an event's name or on the status line:
//!
//! - A field is a word (no whitespace) holding `=`: the key is what comes
//!   before the first `=`, the value what follows.
//! - A value that starts with `"` runs to the next `"` (the quotes are
//!   removed; an unclosed quote runs to the end of the line), so
//!   `hint="rmmod a first"` is one field.
//! - Any other value runs over the words that follow it up to the next
//!   word holding `=`, so `blob=checksum mismatch` keeps its reason whole.
//! - Words before the first field are no field and are skipped.
//! - A key given twice means its last value (as a map would keep it).
//!
//! Values are text; `-` is a value too (the status line's `standby=-`),
//! see [`Fields::module`].

use core::str::FromStr;

/// What starts every event line of the parent, after the log's prefix.
pub const EVENT_PREFIX: &str = "hotup: ";

/// The `key=value` fields of one line, in order (an iterator of
/// `(key, value)`), with lookups by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    /// The fields of `text` (the whole status line, or an event's text
    /// after its name).
    pub fn new(text: &'a str) -> Fields<'a> {
        Fields { rest: text }
    }

    /// The value of `key` (its last, if given twice); `None` if absent.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.filter(|(k, _)| *k == key).last().map(|(_, v)| v)
    }

    /// The value of `key` as a number (or anything [`FromStr`]); `None` if
    /// absent or not one.
    pub fn num<T: FromStr>(&self, key: &str) -> Option<T> {
        self.get(key)?.parse().ok()
    }

    /// A module name field (`child`, `standby`): `None` when absent, empty
    /// or `-` (the parent's "none").
    pub fn module(&self, key: &str) -> Option<&'a str> {
        self.get(key).filter(|v| is_module(v))
    }
}

/// Whether a module name field's value names a module: not empty, not `-`.
pub fn is_module(value: &str) -> bool {
    value != "-" && !value.is_empty()
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        loop {
            let s = self.rest.trim_start();
            let (w, after) = word(s);
            if w.is_empty() {
                self.rest = "";
                return None;
            }
            if !w.contains('=') {
                self.rest = after;
                continue;
            }
            let (key, v) = s.split_once('=')?;
            let (value, rest) = match v.strip_prefix('"') {
                Some(q) => q.split_once('"').unwrap_or((q, "")),
                None => plain_value(v),
            };
            self.rest = rest;
            return Some((key, value));
        }
    }
}

/// `s` split at its first whitespace: the word and what follows it.
fn word(s: &str) -> (&str, &str) {
    s.find(char::is_whitespace)
        .and_then(|i| s.split_at_checked(i))
        .unwrap_or((s, ""))
}

/// An unquoted value at the start of `v`: its first word and any words
/// after it up to the next word holding `=`; and what follows.
fn plain_value(v: &str) -> (&str, &str) {
    let (_, mut rest) = word(v);
    loop {
        let (w, after) = word(rest.trim_start());
        if w.is_empty() || w.contains('=') {
            break;
        }
        rest = after;
    }
    v.split_at_checked(v.len().saturating_sub(rest.len()))
        .unwrap_or((v, ""))
}

/// The parent's status line, as `/dev/hotup-ctl` returns it (`state=active
/// generation=2 child=hotup_child_v2 ... standby=- ...`); `None` unless it
/// has a `state` field.
pub fn status(line: &str) -> Option<Fields<'_>> {
    let f = Fields::new(line);
    f.get("state").map(|_| f)
}

/// A kernel log line split from its prefix: `dmesg`'s `[   12.345678] `,
/// or `/dev/kmsg`'s record header `prio,seq,usec,flags[,...];`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogLine<'a> {
    /// The timestamp in seconds, if the prefix had one.
    pub time_s: Option<f64>,
    /// The message, leading whitespace removed.
    pub text: &'a str,
}

impl<'a> LogLine<'a> {
    /// Splits `line`. A bracket counts as a timestamp when it holds digits
    /// and dots only (`[abc] x` is text); a record header when its first
    /// three comma-separated fields are numbers and a fourth follows.
    pub fn parse(line: &'a str) -> LogLine<'a> {
        let line = line.trim_start();
        if let Some((inside, text)) = line.strip_prefix('[').and_then(|r| r.split_once(']')) {
            let inside = inside.trim();
            if inside.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return LogLine {
                    time_s: inside.parse().ok(),
                    text: text.trim_start(),
                };
            }
        }
        if let Some((header, text)) = line.split_once(';') {
            let number = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            let mut f = header.split(',');
            if let (Some(prio), Some(seq), Some(usec), Some(_flags)) =
                (f.next(), f.next(), f.next(), f.next())
            {
                if number(prio) && number(seq) && number(usec) {
                    return LogLine {
                        time_s: usec.parse::<u64>().ok().map(|us| us as f64 / 1e6),
                        text: text.trim_start(),
                    };
                }
            }
        }
        LogLine {
            time_s: None,
            text: line,
        }
    }
}

/// One event line of the parent: `hotup: NAME key=value ...`, with or
/// without a log prefix ([`LogLine`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event<'a> {
    /// The log's timestamp in seconds, if the line had one.
    pub time_s: Option<f64>,
    /// The word after `hotup: ` (`resume`, `rollback`, `park`, ...).
    pub name: &'a str,
    /// Its fields.
    pub fields: Fields<'a>,
    /// The line from `hotup: ` on.
    pub text: &'a str,
}

impl<'a> Event<'a> {
    /// Parses one log line; `None` unless it is the parent's event line
    /// (`hotup_child_v1: ...` and `xhotup: ...` are not).
    pub fn parse(line: &'a str) -> Option<Event<'a>> {
        let LogLine { time_s, text } = LogLine::parse(line);
        let (name, rest) = word(text.strip_prefix(EVENT_PREFIX)?);
        Some(Event {
            time_s,
            name,
            fields: Fields::new(rest),
            text,
        })
    }

    /// A field as text.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.get(key)
    }

    /// A field as a number.
    pub fn num<T: FromStr>(&self, key: &str) -> Option<T> {
        self.fields.num(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(f: Fields<'_>) -> Vec<(&str, &str)> {
        f.collect()
    }

    #[test]
    fn resume_line_with_a_dmesg_timestamp() {
        let e = Event::parse("[   20.300300] hotup: resume gen=2 child=hotup_child_v2 parked=64 blackout_ns=100300000 mode=standby-handover").unwrap();
        assert_eq!(e.name, "resume");
        assert_eq!(e.time_s, Some(20.3003));
        assert_eq!(e.num::<u64>("blackout_ns"), Some(100_300_000));
        assert_eq!(e.num::<i64>("gen"), Some(2));
        assert_eq!(e.num::<u64>("mode"), None);
        assert_eq!(e.get("missing"), None);
        assert_eq!(e.fields.count(), 5);
        assert!(e.text.starts_with("hotup: resume gen=2"));
    }

    #[test]
    fn kmsg_records_and_bare_lines() {
        let e = Event::parse("6,1234,5678,-;hotup: resume gen=3 blackout_ns=9618961").unwrap();
        assert_eq!(e.num::<u64>("blackout_ns"), Some(9_618_961));
        assert_eq!(e.time_s, Some(0.005678));
        // A kernel with CONFIG_PRINTK_CALLER adds a field to the header.
        let e = Event::parse("6,1,2000000,-,caller=T1;hotup: unload").unwrap();
        assert_eq!((e.name, e.time_s), ("unload", Some(2.0)));
        let e = Event::parse("hotup: control abort").unwrap();
        assert_eq!((e.name, e.time_s, e.fields.count()), ("control", None, 0));
    }

    #[test]
    fn quoted_and_spaced_values_and_negative_numbers() {
        let e = Event::parse(r#"[ 12.5] hotup: rollback child=hotup_child_v1 step=adopt err=-71 hint="load a child, e.g. v1""#).unwrap();
        assert_eq!(e.get("hint"), Some("load a child, e.g. v1"));
        assert_eq!(e.num::<i32>("err"), Some(-71));
        assert_eq!(e.fields.count(), 4);
        let e = Event::parse("hotup: detach gen=1 drained=5 blob=checksum mismatch").unwrap();
        assert_eq!(e.get("blob"), Some("checksum mismatch"));
        assert_eq!(e.num::<u64>("drained"), Some(5));
        let e = Event::parse(r#"hotup: refuse hint="unclosed quote x=1"#).unwrap();
        assert_eq!(pairs(e.fields), vec![("hint", "unclosed quote x=1")]);
        let e = Event::parse("hotup: x a= b=1 c=p=q").unwrap();
        assert_eq!(pairs(e.fields), vec![("a", ""), ("b", "1"), ("c", "p=q")]);
    }

    #[test]
    fn other_lines_are_not_events() {
        for l in [
            "hotup_child_v1: load version=1",
            "[ 1.0] hotup_child_v1: load version=1",
            "xhotup: resume",
            "OUT hotup: resume gen=1",
            "random: crng init done",
            "hotup:resume",
        ] {
            assert!(Event::parse(l).is_none(), "{l}");
        }
    }

    #[test]
    fn status_line() {
        let line = "state=active generation=2 child=hotup_child_v2 child_version=2 inflight=64 standby=- retired=1\n";
        let s = status(line).unwrap();
        assert_eq!(s.get("state"), Some("active"));
        assert_eq!(s.module("child"), Some("hotup_child_v2"));
        assert_eq!(s.module("standby"), None);
        assert_eq!(s.get("standby"), Some("-"));
        assert_eq!(s.module("absent"), None);
        assert_eq!(s.num::<u64>("inflight"), Some(64));
        assert_eq!(s.num::<u64>("retired"), Some(1));
        assert!(status("not a status line\n").is_none());
        assert!(status("").is_none());
    }

    #[test]
    fn leading_words_are_skipped_and_the_last_duplicate_wins() {
        let f = Fields::new("soak: 1/3 v2 one-process blackout_ns=300 upgrade_ms=5 x=1 x=2");
        assert_eq!(f.num::<u64>("blackout_ns"), Some(300));
        assert_eq!(f.get("x"), Some("2"));
        assert_eq!(Fields::new("soak: failed upgrade 2: x").count(), 0);
    }

    #[test]
    fn log_prefixes() {
        let l = LogLine::parse("[    1.234567] hotup: attach");
        assert_eq!((l.time_s, l.text), (Some(1.234567), "hotup: attach"));
        assert_eq!(LogLine::parse("hotup: attach").text, "hotup: attach");
        assert_eq!(LogLine::parse("[abc] x").text, "[abc] x");
        assert_eq!(LogLine::parse("  ok 1 x").text, "ok 1 x");
        assert_eq!(LogLine::parse("a,b,c,-;x").text, "a,b,c,-;x");
        assert_eq!(LogLine::parse("1,2,3;x").text, "1,2,3;x");
    }

    /// A value as the parent prints it, and what a reader must get back.
    fn value() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            "[a-z0-9_.:/=-]{0,12}".prop_map(|v| (v.clone(), v)),
            "[a-z0-9]{1,8}( [a-z0-9.,]{1,8}){1,3}".prop_map(|v| (v.clone(), v)),
            "[^\"]{0,20}".prop_map(|v| (format!("\"{v}\""), v)),
        ]
    }

    fn prefix() -> impl Strategy<Value = (String, Option<f64>)> {
        prop_oneof![
            Just((String::new(), None)),
            (0u32..100_000, 0u32..1_000_000).prop_map(|(s, us)| {
                let t = format!("{s}.{us:06}");
                (format!("[{t:>12}] "), t.parse().ok())
            }),
            (0u8..8, any::<u32>(), any::<u32>())
                .prop_map(|(p, seq, us)| (format!("{p},{seq},{us},-;"), Some(f64::from(us) / 1e6))),
        ]
    }

    proptest! {
        #[test]
        fn printed_events_parse_back(
            (pre, time) in prefix(),
            name in "[a-z][a-z-]{0,14}",
            fields in proptest::collection::vec(("[a-z_]{1,10}", value()), 0..8),
        ) {
            let mut line = format!("{pre}hotup: {name}");
            for (k, (printed, _)) in &fields {
                line += &format!(" {k}={printed}");
            }
            let e = Event::parse(&line).unwrap();
            prop_assert_eq!(e.name, name.as_str());
            prop_assert_eq!(e.time_s, time);
            let want: Vec<(&str, &str)> =
                fields.iter().map(|(k, (_, v))| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(pairs(e.fields), want);
            for (k, _) in &fields {
                let last = fields.iter().rev().find(|(k2, _)| k2 == k).map(|(_, (_, v))| v.as_str());
                prop_assert_eq!(e.get(k), last);
            }
        }

        #[test]
        fn any_text_parses_without_panicking(line in "\\PC*") {
            if let Some(e) = Event::parse(&line) {
                prop_assert!(line.contains(e.text));
                for (k, v) in e.fields {
                    prop_assert!(!k.contains(char::is_whitespace));
                    prop_assert!(e.text.contains(v));
                }
            }
            let _ = status(&line);
            let _ = LogLine::parse(&line);
        }
    }
}
