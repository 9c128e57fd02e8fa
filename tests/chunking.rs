//! The decoder's central promise: how the body is cut into chunks never changes what
//! comes out. Every fixture (and every published sample in `../shared/ews-samples/`
//! when present), fed whole, one byte at a time and in random chunkings, yields the
//! same frames and the same final error.

mod support;

use std::path::PathBuf;

use ews::stream::DEFAULT_MAX_FRAME;
use proptest::prelude::*;
use support::{Decoded, decode_in_chunks, decode_whole, fixtures_dir, shared_dir, xml_files};

fn bodies() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = xml_files(&fixtures_dir().join("ews"));
    match shared_dir() {
        Some(dir) => files.extend(xml_files(&dir.join("ews-samples"))),
        None => support::missing("../shared/ews-samples"),
    }
    files
        .into_iter()
        .map(|p| {
            let body = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, body)
        })
        .collect()
}

fn check(path: &std::path::Path, whole: &Decoded, other: &Decoded, how: &str) {
    assert_eq!(whole, other, "{} decoded differently {how}", path.display());
}

#[test]
fn one_byte_at_a_time_matches_whole() {
    let bodies = bodies();
    assert!(
        bodies.len() >= 20,
        "expected the fixture set, found {}",
        bodies.len()
    );
    for (path, body) in &bodies {
        let whole = decode_whole(body);
        check(
            path,
            &whole,
            &decode_in_chunks(body, &[1], DEFAULT_MAX_FRAME),
            "byte by byte",
        );
    }
}

#[test]
fn concatenated_fixtures_split_at_every_envelope() {
    // All clean stream fixtures back to back form one long body; its frames are the
    // fixtures' frames in order, whatever the chunking.
    let names = [
        "stream-exchange2016-calendar.xml",
        "stream-exchange2013-heartbeats.xml",
        "stream-namespace-variants.xml",
        "stream-event-kinds.xml",
        "stream-error-subscription-ids.xml",
    ];
    let mut body = Vec::new();
    let mut expected = Vec::new();
    for name in names {
        let part = support::fixture(name);
        let decoded = decode_whole(&part);
        assert_eq!(decoded.error, None);
        expected.extend(decoded.frames.into_iter().map(|f| f.response));
        body.extend_from_slice(&part);
    }
    for sizes in [&[1usize][..], &[7, 3, 101], &[4096], &[body.len()]] {
        let decoded = decode_in_chunks(&body, sizes, DEFAULT_MAX_FRAME);
        assert_eq!(decoded.error, None);
        let got: Vec<_> = decoded.frames.iter().map(|f| f.response.clone()).collect();
        assert_eq!(got, expected, "chunk sizes {sizes:?}");
        let indices: Vec<u64> = decoded.frames.iter().map(|f| f.index).collect();
        assert_eq!(indices, (0..expected.len() as u64).collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_chunkings_match_whole(sizes in prop::collection::vec(1usize..300, 1..40)) {
        for (path, body) in bodies() {
            let whole = decode_whole(&body);
            let chunked = decode_in_chunks(&body, &sizes, DEFAULT_MAX_FRAME);
            prop_assert_eq!(&whole, &chunked, "{} with chunk sizes {:?}", path.display(), sizes);
        }
    }

    #[test]
    fn size_limit_errors_do_not_depend_on_chunking(
        limit in 64usize..3000,
        sizes in prop::collection::vec(1usize..500, 1..10),
    ) {
        let body = support::fixture("stream-exchange2016-calendar.xml");
        let whole = decode_in_chunks(&body, &[body.len()], limit);
        let chunked = decode_in_chunks(&body, &sizes, limit);
        prop_assert_eq!(whole, chunked);
    }
}

/// Markup that quick-xml and the boundary scanner lex differently (names holding `/`
/// or not starting like a name, comments and processing instructions that end early,
/// CDATA holding an end tag). A whole envelope is read in one pass by quick-xml and a
/// split one by the scanner; both must give the same frames and the same error.
#[test]
fn markup_the_two_readers_see_differently_decodes_the_same_whole_and_split() {
    const OPEN: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:UnsubscribeResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages><m:UnsubscribeResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>"#;
    const CLOSE: &str = "</m:UnsubscribeResponseMessage></m:ResponseMessages></m:UnsubscribeResponse></s:Body></s:Envelope>";
    let insides = [
        "",
        "<a/b></a/b>",
        "<a/b/>",
        "<1/>",
        "<a></a >",
        "<a></a b>",
        "<!--->--></s:Envelope>-->",
        "<!-- </s:Envelope> -->",
        "<?>?></s:Envelope>?>",
        "<?x </s:Envelope> ?>",
        "<![CDATA[</s:Envelope>]]>",
        "<a b='</s:Envelope>'/>",
        "<a\"b>c\"/>",
        "</s:Envelope>",
    ];
    for inside in insides {
        let envelope = format!("{OPEN}{inside}{CLOSE}");
        let body = format!("{envelope}\r\n{envelope}{OPEN}");
        let body = body.as_bytes();
        let whole = decode_whole(body);
        for sizes in [&[1usize][..], &[envelope.len() - 1], &[envelope.len() + 1]] {
            assert_eq!(
                whole,
                decode_in_chunks(body, sizes, DEFAULT_MAX_FRAME),
                "{inside:?} with chunk sizes {sizes:?}"
            );
        }
    }
    let plain = decode_whole(format!("{OPEN}{CLOSE}").as_bytes());
    assert_eq!((plain.frames.len(), plain.error), (1, None));
}
