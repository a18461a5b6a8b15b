//! Percent-encoded values (`jean.dupont%40example.fr`, `%2B33612345678`,
//! `06%2012%2034%2056%2078`): decoded before detection, spans mapped back.
//!
//! Only escapes of printable ASCII are decoded (`%40` → `@`, `%2B` → `+`, `%20` → space), so the
//! decoded text stays valid UTF-8 and every decoded char boundary maps to a char boundary of the
//! original. Escapes of other bytes stay as they are.

/// Text with its printable-ASCII percent escapes decoded.
pub(super) struct Decoded {
    /// The decoded text.
    pub text: String,
    /// `map[i]`: the byte of the original text where decoded byte `i` comes from; one more entry
    /// for the end.
    map: Vec<usize>,
}

impl Decoded {
    /// The original byte offset of decoded offset `i` (start or end of a span).
    pub fn original(&self, i: usize) -> usize {
        self.map[i]
    }
}

/// The value of a `%XX` escape at `i`, when it is one of printable ASCII.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') || i + 2 >= b.len() {
        return None;
    }
    let hi = (b[i + 1] as char).to_digit(16)?;
    let lo = (b[i + 2] as char).to_digit(16)?;
    let v = (hi * 16 + lo) as u8;
    (0x20..0x7f).contains(&v).then_some(v)
}

/// `None` when `text` has no printable-ASCII escape (the common case: one `memchr`-like scan).
pub(super) fn decode(text: &str) -> Option<Decoded> {
    let b = text.as_bytes();
    let first = text.find('%')?;
    let mut next = first;
    // Find a real escape before allocating anything.
    loop {
        if escape_at(b, next).is_some() {
            break;
        }
        next = next + 1 + text[next + 1..].find('%')?;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut map = Vec::with_capacity(b.len() + 1);
    out.extend_from_slice(&b[..next]);
    map.extend(0..next);
    let mut i = next;
    while i < b.len() {
        if let Some(v) = escape_at(b, i) {
            out.push(v);
            map.push(i);
            i += 3;
        } else {
            out.push(b[i]);
            map.push(i);
            i += 1;
        }
    }
    map.push(b.len());
    // Only ASCII bytes replaced ASCII escapes; multi-byte chars were copied whole.
    let text = String::from_utf8(out).ok()?;
    Some(Decoded { text, map })
}
