//! PIDF documents (RFC 3863) with the person data model (RFC 4479) and RPID activities
//! (RFC 4480), as one publisher among a user's several contributes them: one tuple of
//! our own id, so that a presence server composes it with the user's devices' tuples
//! rather than replacing them, and a person element with what the calendar says.

use jiff::Timestamp;

/// The RPID activity a publication states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// `<rpid:meeting/>`.
    Meeting,
    /// `<rpid:away/>`.
    Away,
    /// No activity: free as far as the calendar knows.
    None,
}

/// One publication's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    /// The presentity (`sip:alice@example.com`).
    pub entity: &'a str,
    /// Our tuple's id, the same in every publication of ours (an XML ID: starts with
    /// a letter).
    pub tuple_id: &'a str,
    /// The activity.
    pub activity: Activity,
    /// When the activity ends, when known.
    pub until: Option<Timestamp>,
    /// A human-readable note ("In a meeting until 14:00").
    pub note: &'a str,
    /// When this state was observed.
    pub timestamp: Timestamp,
}

/// The media type of a PIDF body.
pub const CONTENT_TYPE: &str = "application/pidf+xml";

impl Document<'_> {
    /// The XML text.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(640);
        out.push_str(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<presence xmlns="urn:ietf:params:xml:ns:pidf""#,
            r#" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model""#,
            r#" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity=""#
        ));
        escape_into(&mut out, self.entity);
        out.push_str("\">\n <tuple id=\"");
        escape_into(&mut out, self.tuple_id);
        out.push_str("\">\n  <status><basic>open</basic></status>\n  <note>");
        escape_into(&mut out, self.note);
        out.push_str("</note>\n  <timestamp>");
        out.push_str(&seconds(self.timestamp));
        out.push_str("</timestamp>\n </tuple>\n <dm:person id=\"");
        escape_into(&mut out, self.tuple_id);
        out.push_str("-person\">\n");
        let element = match self.activity {
            Activity::Meeting => Some("meeting"),
            Activity::Away => Some("away"),
            Activity::None => None,
        };
        if let Some(element) = element {
            out.push_str("  <rpid:activities");
            if let Some(until) = self.until {
                out.push_str(" until=\"");
                out.push_str(&seconds(until));
                out.push('"');
            }
            out.push_str("><rpid:");
            out.push_str(element);
            out.push_str("/></rpid:activities>\n");
        }
        out.push_str("  <dm:note>");
        escape_into(&mut out, self.note);
        out.push_str("</dm:note>\n </dm:person>\n</presence>\n");
        out
    }
}

/// RFC 3339 to the second, UTC.
fn seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second()).map_or_else(|_| t.to_string(), |t| t.to_string())
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meeting_with_its_end_and_note() {
        let xml = Document {
            entity: "sip:alice@example.test",
            tuple_id: "ews-presence",
            activity: Activity::Meeting,
            until: Some("2026-12-04T14:00:00Z".parse().unwrap()),
            note: "In a meeting until 14:00 & <later>",
            timestamp: "2026-12-04T13:00:00.250Z".parse().unwrap(),
        }
        .to_xml();
        assert!(xml.contains(r#"entity="sip:alice@example.test""#));
        assert!(xml.contains(r#"<tuple id="ews-presence">"#));
        assert!(xml.contains(
            r#"<rpid:activities until="2026-12-04T14:00:00Z"><rpid:meeting/></rpid:activities>"#
        ));
        assert!(xml.contains("<timestamp>2026-12-04T13:00:00Z</timestamp>"));
        assert!(xml.contains("<dm:note>In a meeting until 14:00 &amp; &lt;later&gt;</dm:note>"));
    }

    #[test]
    fn free_has_no_activity() {
        let xml = Document {
            entity: "sip:a@b",
            tuple_id: "t",
            activity: Activity::None,
            until: None,
            note: "Available",
            timestamp: Timestamp::UNIX_EPOCH,
        }
        .to_xml();
        assert!(!xml.contains("activities"));
        assert!(xml.contains(r#"<dm:person id="t-person">"#));
    }
}
