//! A minimal XML writer for the requests we send: elements, attributes and escaped
//! text appended to a `String`. Callers write well-nested output; the schema test in
//! `tests/request_schema.rs` checks every request kind against Microsoft's XSD.

use quick_xml::escape::escape;

/// Appends XML to an owned string.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// An empty writer with room for a typical request.
    pub fn new() -> Self {
        XmlWriter {
            out: String::with_capacity(1024),
        }
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            self.out.push_str(&escape(*value));
            self.out.push('"');
        }
    }

    /// Opens `<name attrs…>`.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push('>');
    }

    /// Closes `</name>`.
    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Writes `<name attrs…/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push_str("/>");
    }

    /// Writes `<name>text</name>` with the text escaped.
    pub fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    /// Writes `<name attrs…>text</name>` with the text escaped.
    pub fn leaf_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        self.out.push_str(&escape(text));
        self.close(name);
    }

    /// Appends already-serialized XML (a fragment another writer produced).
    pub fn raw(&mut self, fragment: &str) {
        self.out.push_str(fragment);
    }

    /// The XML written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let mut w = XmlWriter::new();
        w.open("a", &[("k", "x\"<&")]);
        w.leaf("b", "1 < 2 & 3");
        w.empty("c", &[]);
        w.close("a");
        assert_eq!(
            w.finish(),
            "<a k=\"x&quot;&lt;&amp;\"><b>1 &lt; 2 &amp; 3</b><c/></a>"
        );
    }
}
