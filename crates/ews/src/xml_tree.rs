//! A read-only element tree built from one envelope with quick-xml's reader. Names and
//! text borrow from the input wherever no unescaping was needed, so building a tree
//! costs few allocations. Readers in [`crate::ops`] query it by namespace and
//! local name, which makes them tolerant of element order and prefixes.
//!
//! Namespaces are resolved here, in the same single pass over each start tag's
//! attributes that collects them: every binding is classified once into [`Ns`], the
//! only thing readers ever compare.
//!
//! Rejected here: DOCTYPE (and so entity declarations), entity references other than
//! the predefined five and character references, undeclared prefixes, mismatched or
//! unclosed tags, more than one root, and nesting deeper than [`MAX_DEPTH`].

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::QName;

use super::decode_error::{FrameError, Problem};
use super::ns::Ns;
use super::xml_attributes::{self, RawAttribute};

/// Deepest element nesting accepted; EWS messages stay well below 20.
pub const MAX_DEPTH: usize = 128;

const NO_NODE: u32 = u32::MAX;

#[derive(Debug)]
struct Node<'a> {
    ns: Ns,
    local: Cow<'a, str>,
    offset: usize,
    text: Cow<'a, str>,
    attrs_start: u32,
    attrs_end: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

#[derive(Debug)]
struct Attr<'a> {
    local: Cow<'a, str>,
    value: Cow<'a, str>,
}

/// A parsed document; [`Tree::root`] is its single root element.
#[derive(Debug)]
pub struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    attrs: Vec<Attr<'a>>,
}

/// One element of a [`Tree`].
#[derive(Debug, Clone, Copy)]
pub struct Element<'t, 'a> {
    tree: &'t Tree<'a>,
    index: u32,
}

/// Returns `s` as a slice of `doc` when it points into `doc`, else an owned copy.
fn reborrow<'a>(doc: &'a str, s: &str) -> Cow<'a, str> {
    let start = (s.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
    match doc.get(start..start.wrapping_add(s.len())) {
        Some(slice) if slice.as_ptr() == s.as_ptr() => Cow::Borrowed(slice),
        _ => Cow::Owned(s.to_owned()),
    }
}

fn resolve_reference(r: &BytesRef<'_>) -> Result<char, Problem> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            Ok(None) | Err(_) => Err(Problem::Syntax(format!(
                "invalid character reference &{};",
                r.xml10_content()
            ))),
        };
    }
    match r.xml10_content().as_ref() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(Problem::UnknownEntity(super::decode_error::shorten(other))),
    }
}

fn append_text<'a>(node: &mut Node<'a>, piece: Cow<'a, str>) {
    if node.first_child != NO_NODE {
        // Text after child elements is formatting between them; EWS has no mixed content.
        return;
    }
    if node.text.is_empty() {
        node.text = piece;
    } else {
        node.text.to_mut().push_str(&piece);
    }
}

impl<'a> Tree<'a> {
    /// Parses one complete XML document.
    pub fn parse(doc: &'a str) -> Result<Tree<'a>, FrameError> {
        Tree::build(doc, Extent::Document).map(|(tree, _)| tree)
    }

    /// Parses the element `doc` starts with and stops where it closes, returning the
    /// tree and the length of that element's text; whatever follows is not read.
    ///
    /// `None` when that element is not complete in `doc`, is not well-formed, or holds
    /// anything a streaming reader's boundary scanner lexes in its own way (comments,
    /// processing instructions, CDATA, element names that do not start like an XML
    /// name or that hold `/`). EWS servers send none of those inside an envelope, and
    /// a caller that gets `None` reads the element the slow way, so both ways always
    /// agree on where it ends.
    pub fn parse_leading_element(doc: &'a str) -> Option<(Tree<'a>, usize)> {
        Tree::build(doc, Extent::LeadingElement).ok()
    }

    fn build(doc: &'a str, extent: Extent) -> Result<(Tree<'a>, usize), FrameError> {
        let leading = extent == Extent::LeadingElement;
        // An EWS element takes some 100 bytes of text, so this is rarely outgrown.
        let expected = (doc.len() / 64).clamp(16, 4096);
        let mut tree = Tree {
            nodes: Vec::with_capacity(expected),
            attrs: Vec::with_capacity(expected),
        };
        let mut reader = Reader::from_str(doc);
        let mut scopes = Scopes::default();
        let mut stack: Vec<u32> = Vec::with_capacity(16);
        let mut seen = Vec::with_capacity(8);
        let mut root_closed = false;
        loop {
            let offset = reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|e| {
                FrameError::at(
                    reader.error_position() as usize,
                    Problem::Syntax(e.to_string()),
                )
            })?;
            match event {
                Event::Start(_) | Event::Empty(_) if root_closed => {
                    return Err(FrameError::at(
                        offset,
                        Problem::Syntax("more than one root element".into()),
                    ));
                }
                Event::Start(ref start) | Event::Empty(ref start)
                    if leading && !scans_alike(start.name().as_ref().as_bytes()) =>
                {
                    return Err(FrameError::at(
                        offset,
                        Problem::Syntax(LEFT_TO_SCANNER.into()),
                    ));
                }
                Event::Start(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(FrameError::at(
                            offset,
                            Problem::TooDeep { limit: MAX_DEPTH },
                        ));
                    }
                    let index =
                        tree.push_element(doc, &mut scopes, &start, offset, &stack, &mut seen)?;
                    stack.push(index);
                }
                Event::Empty(start) => {
                    tree.push_element(doc, &mut scopes, &start, offset, &stack, &mut seen)?;
                    scopes.close();
                    root_closed = stack.is_empty();
                    if root_closed && leading {
                        return Ok((tree, reader.buffer_position() as usize));
                    }
                }
                Event::End(_) => {
                    stack.pop();
                    scopes.close();
                    root_closed = stack.is_empty();
                    if root_closed && leading {
                        return Ok((tree, reader.buffer_position() as usize));
                    }
                }
                Event::CData(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) if leading => {
                    return Err(FrameError::at(
                        offset,
                        Problem::Syntax(LEFT_TO_SCANNER.into()),
                    ));
                }
                Event::Text(text) => {
                    let content = text.xml10_content();
                    match stack.last() {
                        Some(&top) => append_text(&mut tree.nodes[top as usize], content),
                        None if content.trim_matches(is_xml_space).is_empty() => {}
                        None => {
                            return Err(FrameError::at(offset, Problem::TextOutsideEnvelope));
                        }
                    }
                }
                Event::CData(cdata) => {
                    let content = cdata.xml10_content();
                    if let Some(&top) = stack.last() {
                        append_text(&mut tree.nodes[top as usize], content);
                    }
                }
                Event::GeneralRef(reference) => {
                    let c = resolve_reference(&reference).map_err(|p| FrameError::at(offset, p))?;
                    if let Some(&top) = stack.last() {
                        let mut buf = [0u8; 4];
                        append_text(
                            &mut tree.nodes[top as usize],
                            Cow::Owned(c.encode_utf8(&mut buf).to_owned()),
                        );
                    }
                }
                Event::DocType(_) => {
                    return Err(FrameError::at(offset, Problem::DoctypeNotAllowed));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(FrameError::at(
                doc.len(),
                Problem::Syntax("document ends before its root element is closed".into()),
            ));
        }
        if tree.nodes.is_empty() {
            return Err(FrameError::at(0, Problem::Syntax("no root element".into())));
        }
        if leading {
            return Err(FrameError::at(
                doc.len(),
                Problem::Syntax("the leading element is not complete".into()),
            ));
        }
        Ok((tree, doc.len()))
    }

    fn push_element(
        &mut self,
        doc: &'a str,
        scopes: &mut Scopes<'a>,
        start: &BytesStart<'_>,
        offset: usize,
        stack: &[u32],
        seen: &mut Vec<(usize, usize)>,
    ) -> Result<u32, FrameError> {
        scopes.open();
        let attrs_start = self.attrs.len() as u32;
        let raw = start.attributes_raw();
        xml_attributes::lex(raw, seen, |attr| {
            let value = attribute_value(doc, attr)?;
            if attr.key == "xmlns" {
                scopes.bind(Cow::Borrowed(""), &value);
            } else if let Some(prefix) = attr.key.strip_prefix("xmlns:") {
                scopes.bind(reborrow(doc, prefix), &value);
            } else {
                let local = match attr.key.bytes().rposition(|b| b == b':') {
                    Some(colon) => &attr.key[colon + 1..],
                    None => attr.key,
                };
                self.attrs.push(Attr {
                    local: reborrow(doc, local),
                    value,
                });
            }
            Ok(())
        })
        .map_err(|p| FrameError::at(offset, p))?;
        let (local, prefix) = start.name().decompose();
        let ns = match prefix {
            Some(prefix) => scopes.resolve(prefix.as_ref()).ok_or_else(|| {
                FrameError::at(
                    offset,
                    Problem::Syntax(format!(
                        "undeclared namespace prefix {:?}",
                        super::decode_error::shorten(prefix.as_ref())
                    )),
                )
            })?,
            None => scopes.resolve("").unwrap_or(Ns::None),
        };
        let index = self.nodes.len() as u32;
        self.nodes.push(Node {
            ns,
            local: reborrow(doc, local.as_ref()),
            offset,
            text: Cow::Borrowed(""),
            attrs_start,
            attrs_end: self.attrs.len() as u32,
            first_child: NO_NODE,
            last_child: NO_NODE,
            next_sibling: NO_NODE,
        });
        if let Some(&parent) = stack.last() {
            let previous_last = self.nodes[parent as usize].last_child;
            if previous_last == NO_NODE {
                self.nodes[parent as usize].first_child = index;
            } else {
                self.nodes[previous_last as usize].next_sibling = index;
            }
            self.nodes[parent as usize].last_child = index;
        }
        Ok(index)
    }

    /// The document's root element.
    pub fn root(&self) -> Element<'_, 'a> {
        Element {
            tree: self,
            index: 0,
        }
    }
}

fn attribute_problem(e: quick_xml::Error) -> Problem {
    match e {
        quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, name)) => {
            Problem::UnknownEntity(super::decode_error::shorten(&name))
        }
        other => Problem::Syntax(other.to_string()),
    }
}

/// An attribute's value, normalised as XML requires; borrowed from the document when
/// it holds no reference and no white space to normalise (nearly always).
fn attribute_value<'a>(doc: &'a str, attr: RawAttribute<'_>) -> Result<Cow<'a, str>, Problem> {
    // One pass without an early exit, which the compiler vectorises. Of the bytes below
    // 0x20 only tab, CR and LF are normalised; any other one also takes the slow path,
    // which leaves it as it is.
    let special = attr
        .value
        .bytes()
        .fold(false, |found, b| found | (b < 0x20) | (b == b'&'));
    if !special {
        return Ok(reborrow(doc, attr.value));
    }
    Attribute {
        key: QName(attr.key),
        value: Cow::Borrowed(attr.value),
    }
    .normalized_value(XmlVersion::Implicit1_0)
    .map(|v| Cow::Owned(v.into_owned()))
    .map_err(attribute_problem)
}

/// In-scope namespace bindings, classified into [`Ns`] when declared.
#[derive(Debug, Default)]
struct Scopes<'a> {
    bindings: Vec<(Cow<'a, str>, Ns)>,
    /// `bindings.len()` when each open element started.
    marks: Vec<usize>,
}

impl<'a> Scopes<'a> {
    fn open(&mut self) {
        self.marks.push(self.bindings.len());
    }

    fn close(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.bindings.truncate(mark);
        }
    }

    fn bind(&mut self, prefix: Cow<'a, str>, uri: &str) {
        self.bindings.push((prefix, Ns::from_uri(uri)));
    }

    /// The namespace bound to `prefix` (`""` for the default namespace).
    fn resolve(&self, prefix: &str) -> Option<Ns> {
        if prefix == "xml" {
            return Some(Ns::Other);
        }
        // Prefixes are a byte or two: comparing them inline beats a `memcmp` call.
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| {
                p.len() == prefix.len() && p.bytes().zip(prefix.bytes()).all(|(a, b)| a == b)
            })
            .map(|&(_, ns)| ns)
    }
}

/// How much of the input [`Tree::build`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    /// All of it: one root element, with only white space, comments and processing
    /// instructions around it.
    Document,
    /// The element it starts with, up to its end tag.
    LeadingElement,
}

/// Why [`Tree::parse_leading_element`] gave up on input that may be well-formed.
const LEFT_TO_SCANNER: &str = "left to the boundary scanner";

/// True for a byte that may start an XML name (any non-ASCII byte is let through).
pub fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

/// True when the boundary scanner and quick-xml see the same element name in a tag
/// with this raw name: it starts like an XML name (the scanner rejects anything else
/// after `<`) and holds no `/` (the scanner ends a name there, quick-xml does not).
fn scans_alike(name: &[u8]) -> bool {
    name.first().is_some_and(|&b| is_name_start(b)) && !name.contains(&b'/')
}

/// XML white space (space, tab, CR, LF).
pub fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl<'t, 'a> Element<'t, 'a> {
    fn node(&self) -> &'t Node<'a> {
        &self.tree.nodes[self.index as usize]
    }

    /// The element's namespace.
    pub fn ns(&self) -> Ns {
        self.node().ns
    }

    /// The element's local name (without prefix).
    pub fn local(&self) -> &'t str {
        &self.node().local
    }

    /// Byte offset of the element's start tag in the document.
    pub fn offset(&self) -> usize {
        self.node().offset
    }

    /// The element's text with surrounding XML white space removed.
    pub fn text(&self) -> &'t str {
        self.node().text.trim_matches(is_xml_space)
    }

    /// The value of the attribute with this local name.
    pub fn attr(&self, local: &str) -> Option<&'t str> {
        let node = self.node();
        self.tree.attrs[node.attrs_start as usize..node.attrs_end as usize]
            .iter()
            .find(|a| a.local == local)
            .map(|a| a.value.as_ref())
    }

    /// All child elements, in document order.
    pub fn children(&self) -> impl Iterator<Item = Element<'t, 'a>> + use<'t, 'a> {
        let tree = self.tree;
        let mut next = self.node().first_child;
        std::iter::from_fn(move || {
            if next == NO_NODE {
                return None;
            }
            let element = Element { tree, index: next };
            next = tree.nodes[next as usize].next_sibling;
            Some(element)
        })
    }

    /// True when the element is in one of the EWS namespaces and has this local name.
    pub fn is_ews(&self, local: &str) -> bool {
        self.ns().is_ews() && self.local() == local
    }

    /// Child elements in an EWS namespace with this local name.
    pub fn ews_children<'n>(
        &self,
        local: &'n str,
    ) -> impl Iterator<Item = Element<'t, 'a>> + use<'t, 'a, 'n> {
        self.children().filter(move |c| c.is_ews(local))
    }

    /// The first child element in an EWS namespace with this local name.
    pub fn ews_child(&self, local: &str) -> Option<Element<'t, 'a>> {
        self.children().find(|c| c.is_ews(local))
    }

    /// The first child element in namespace `ns` with this local name.
    pub fn child_in(&self, ns: Ns, local: &str) -> Option<Element<'t, 'a>> {
        self.children().find(|c| c.ns() == ns && c.local() == local)
    }

    /// Like [`Element::ews_child`], but absence is a [`Problem::MissingElement`].
    pub fn require_ews(&self, local: &'static str) -> Result<Element<'t, 'a>, FrameError> {
        self.ews_child(local).ok_or_else(|| {
            FrameError::at(
                self.offset(),
                Problem::MissingElement {
                    element: local,
                    parent: self.local().to_owned(),
                },
            )
        })
    }

    /// A [`FrameError`] located at this element.
    pub fn error(&self, problem: Problem) -> FrameError {
        FrameError::at(self.offset(), problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_namespace_not_prefix() {
        let doc = r#"<x:a xmlns:x="http://schemas.microsoft.com/exchange/services/2006/messages"><b xmlns="http://schemas.microsoft.com/exchange/services/2006/types" Id="1&amp;2">t &lt; u</b><y:b xmlns:y="urn:other"/></x:a>"#;
        let tree = Tree::parse(doc).unwrap();
        let root = tree.root();
        assert_eq!(root.ns(), Ns::Messages);
        let b: Vec<_> = root.ews_children("b").collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].attr("Id"), Some("1&2"));
        assert_eq!(b[0].text(), "t < u");
        assert_eq!(root.children().count(), 2);
    }

    #[test]
    fn rejects_doctype_and_unknown_entities() {
        let doctype = "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>";
        assert_eq!(
            Tree::parse(doctype).unwrap_err().problem,
            Problem::DoctypeNotAllowed
        );
        let entity = "<a>&e;</a>";
        assert_eq!(
            Tree::parse(entity).unwrap_err().problem,
            Problem::UnknownEntity("e".into())
        );
        let in_attr = "<a b=\"&e;\"/>";
        assert_eq!(
            Tree::parse(in_attr).unwrap_err().problem,
            Problem::UnknownEntity("e".into())
        );
    }

    #[test]
    fn rejects_broken_structure() {
        for bad in ["<a><b></a>", "<a>", "<a/><b/>", "<p:a/>", "text"] {
            assert!(
                matches!(
                    Tree::parse(bad).unwrap_err().problem,
                    Problem::Syntax(_) | Problem::TextOutsideEnvelope
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn attribute_values_are_normalised_and_plain_ones_borrowed() {
        let doc = "<a b=\"x\ty\r\nz\" c=\"1&#65;\" d=\"\u{1}q\" e=\"plain\"/>";
        let tree = Tree::parse(doc).unwrap();
        let root = tree.root();
        assert_eq!(root.attr("b"), Some("x y z"));
        assert_eq!(root.attr("c"), Some("1A"));
        assert_eq!(root.attr("d"), Some("\u{1}q"));
        assert_eq!(root.attr("e"), Some("plain"));
        let borrowed = |local: &str| {
            let attrs = &tree.attrs;
            matches!(
                attrs.iter().find(|a| a.local == local).map(|a| &a.value),
                Some(Cow::Borrowed(_))
            )
        };
        assert!(borrowed("e"));
        assert!(!borrowed("b"));
    }

    #[test]
    fn character_references_resolve() {
        let tree = Tree::parse("<a>&#65;&#x42;C</a>").unwrap();
        assert_eq!(tree.root().text(), "ABC");
    }

    #[test]
    fn depth_is_bounded() {
        let doc = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            Tree::parse(&doc).unwrap_err().problem,
            Problem::TooDeep { limit: MAX_DEPTH }
        );
    }
}
