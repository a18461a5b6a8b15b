//! The PII detectors on arbitrary text: they must not panic; spans must be sorted,
//! non-overlapping and on char boundaries; and once every span is replaced by its placeholder,
//! nothing is left to detect.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim::pii::detect;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let spans = detect(&text);
    let mut redacted = String::with_capacity(text.len());
    let mut at = 0;
    for s in &spans {
        assert!(
            s.start >= at && s.start < s.end && s.end <= text.len(),
            "{spans:?}"
        );
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        redacted.push_str(&text[at..s.start]);
        redacted.push_str(s.kind.placeholder());
        at = s.end;
    }
    redacted.push_str(&text[at..]);
    let again = detect(&redacted);
    assert!(again.is_empty(), "{redacted:?} still has {again:?}");
});
