//! Fuzz MySQL binary JSON: arbitrary bytes → `JsonBinary::to_text()` / `write_text()` /
//! `validate()` / `to_dom()`. Nothing may panic, and:
//! - `validate()` agrees with `to_text()`;
//! - `write_text()` appends exactly the text, or nothing on error;
//! - when the DOM builds too, `dom.to_text()` equals the direct text;
//! - re-encoding is stable: `to_dom(try_to_binary(dom))` encodes to the same bytes again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mysql_binlog_codec::json::JsonBinary;

fuzz_target!(|data: &[u8]| {
    let json = JsonBinary::new(data);
    let text = json.to_text();
    assert_eq!(
        json.validate(),
        text.as_ref().map(|_| ()).map_err(Clone::clone)
    );

    let mut out = String::from("prefix:");
    let written = json.write_text(&mut out);
    match (&text, &written) {
        (Ok(t), Ok(())) => assert_eq!(&out["prefix:".len()..], t.as_str()),
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert_eq!(out, "prefix:", "write_text left output behind on error");
        }
        _ => panic!("to_text {text:?} vs write_text {written:?}"),
    }

    let Ok(dom) = json.to_dom() else { return };
    if let Ok(text) = &text {
        let via_dom = dom.to_text();
        assert!(
            *text == via_dom,
            "JSON text differs: direct {text:?}, via DOM {via_dom:?}"
        );
    }

    // Round trip through the encoder: one pass may canonicalise (key order, duplicate keys),
    // a second pass must not change anything.
    if let Ok(bin) = dom.try_to_binary() {
        let dom2 = JsonBinary::new(&bin)
            .to_dom()
            .unwrap_or_else(|e| panic!("encoder output does not decode: {e}; bytes {bin:02x?}"));
        let text2 = JsonBinary::new(&bin)
            .to_text()
            .unwrap_or_else(|e| panic!("encoder output does not render: {e}"));
        assert_eq!(text2, dom2.to_text());
        let bin2 = dom2
            .try_to_binary()
            .unwrap_or_else(|e| panic!("re-encoding a decoded document failed: {e}"));
        assert!(
            bin == bin2,
            "encoding not stable: {bin:02x?} then {bin2:02x?}"
        );
    }
});
