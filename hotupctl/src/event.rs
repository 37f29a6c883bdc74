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

/// Parses one kernel log line (a `/dev/kmsg` record or a dmesg line; the
/// prefix is [`state_abi::lines::LogLine`]'s); `None` if the line is not the
/// parent's. The parsing is [`state_abi::lines::Event::parse`]'s.
pub fn parse(line: &str) -> Option<Event> {
    let e = state_abi::lines::Event::parse(line)?;
    Some(Event {
        name: e.name.to_owned(),
        fields: e
            .fields
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    })
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
    fn an_unquoted_reason_keeps_its_words() {
        let e = parse(
            "6,9,10,-;hotup: detach gen=1 child=hotup_child_v1 drained=0 blob=checksum mismatch",
        )
        .unwrap();
        assert_eq!(e.get("blob"), Some("checksum mismatch"));
        assert_eq!(e.fields.len(), 4);
    }

    #[test]
    fn other_lines_are_not_events() {
        assert!(parse("hotup_child_v1: load version=1").is_none());
        assert!(parse("xhotup: resume").is_none());
        assert!(parse("random: crng init done").is_none());
    }
}
