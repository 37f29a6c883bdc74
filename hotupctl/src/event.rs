//! hotup's kernel log lines: `hotup: NAME key=value key="quoted value" ...`.

use std::collections::BTreeMap;

/// One `hotup:` line of the kernel log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// The word after `hotup: ` (`resume`, `rollback`, `standby`, ...).
    pub name: String,
    /// Its `key=value` fields (quotes removed).
    pub fields: BTreeMap<String, String>,
}

impl Event {
    /// A field as a number.
    pub fn num(&self, key: &str) -> Option<u64> {
        self.fields.get(key)?.parse().ok()
    }

    /// A field as text.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

/// Parses the `hotup: ...` part of a line (anything before it, such as a
/// timestamp, is ignored); `None` if the line is not the parent's.
pub fn parse(line: &str) -> Option<Event> {
    let idx = line.find("hotup: ")?;
    if idx > 0 && !line[..idx].ends_with([' ', ']', ';']) {
        return None;
    }
    let mut rest = line[idx + "hotup: ".len()..].trim_end();
    let end = rest.find(' ').unwrap_or(rest.len());
    let name = rest[..end].to_owned();
    rest = &rest[end..];
    let mut fields = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].to_owned();
        rest = &rest[eq + 1..];
        let value = if let Some(r) = rest.strip_prefix('"') {
            let close = r.find('"').unwrap_or(r.len());
            let v = r[..close].to_owned();
            rest = r.get(close + 1..).unwrap_or("");
            v
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            let v = rest[..end].to_owned();
            rest = &rest[end..];
            v
        };
        fields.insert(key, value);
    }
    Some(Event { name, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_quotes() {
        let e = parse(r#"[ 12.5] hotup: rollback child=hotup_child_v1 step=adopt err=-71 hint="load a child, e.g. v1""#).unwrap();
        assert_eq!(e.name, "rollback");
        assert_eq!(e.get("child"), Some("hotup_child_v1"));
        assert_eq!(e.get("hint"), Some("load a child, e.g. v1"));
        assert_eq!(e.fields.len(), 4);
        assert_eq!(e.get("err"), Some("-71"));
    }

    #[test]
    fn numbers_and_kmsg_records() {
        let e =
            parse("6,1234,5678,-;hotup: resume gen=3 blackout_ns=9618961 mode=standby-handover")
                .unwrap();
        assert_eq!(e.num("blackout_ns"), Some(9_618_961));
        assert_eq!(e.num("mode"), None);
    }

    #[test]
    fn other_lines_are_not_events() {
        assert!(parse("hotup_child_v1: load version=1").is_none());
        assert!(parse("xhotup: resume").is_none());
        assert!(parse("random: crng init done").is_none());
    }
}
