//! Numbers: where one may start, what may not precede it, and the card and NIR parsers (phones
//! are in [`super::phone`], IPv4 in [`super::ip`]).

use std::collections::BTreeSet;

use super::checksum::{luhn, nir_key};
use super::ip::ipv4_at;
use super::phone::{self, GroupRun};
use super::text::{
    before_unit, glued_left, glued_right, is_space, next_char, number_at, number_before, prev_char,
    words_before,
};
use crate::pii::{PiiKind, Span};

/// Words after which a number is a reference, not a phone or a card ("order #0612345678",
/// "commande n° 4970…", "tracking 1234 5678 9012 3456").
const REFERENCE_WORDS: &[&str] = &[
    "order",
    "orders",
    "commande",
    "commandes",
    "cmd",
    "ref",
    "réf",
    "reference",
    "référence",
    "invoice",
    "facture",
    "tracking",
    "suivi",
    "colis",
    "parcel",
    "package",
    "shipment",
    "expédition",
    "envoi",
    "sku",
    "serial",
    "série",
    "serie",
    "transaction",
    "receipt",
    "reçu",
    "ticket",
    "dossier",
    "contract",
    "contrat",
    "lot",
    "batch",
    "confirmation",
    "article",
    "item",
    "produit",
    "product",
    "model",
    "modèle",
    "imei",
    "barcode",
    "ean",
    "upc",
    "isbn",
    "asin",
    "awb",
    "waybill",
    "bordereau",
];

/// Number signs: a reference when nothing else says what the number is ("#0612345678"), but
/// "carte n° 4970…" is a card and "commande n° …" an order: the word before decides.
const NUMBER_SIGNS: &[&str] = &["n°", "nº", "no", "n", "#", "nr"];

/// Words between a reference word and its number ("order number is", "numéro de commande :").
const FILLER_WORDS: &[&str] = &[
    "number", "numéro", "numero", "num", "nr", "is", "was", "est", "de", "du", "the", "my", "your",
    "mon", "ma", "votre", "id",
];

/// Abbreviated phone words written right before the number ("Tél.06…", "Tel.+33…").
const PHONE_WORDS: &[&str] = &[
    "tél",
    "tel",
    "téléphone",
    "phone",
    "ph",
    "mob",
    "port",
    "gsm",
    "fax",
    "cell",
];

/// True when `i` may start a number: not glued to a word char, and not the continuation of a
/// number that ends just before ("FR76 3000", "1.5", "12/03"), unless that number was itself a
/// candidate (`found`: the ends of candidates so far) ending right before the separator.
pub(super) fn start_ok(text: &str, i: usize, found: &BTreeSet<usize>) -> bool {
    let b = text.as_bytes();
    // A `+` needs a digit after it; a `(` too, or `+` and a digit ("(415) 555-0123",
    // "(+44) 7700 900123").
    let digit_from = match b[i] {
        b'+' => i + 1,
        b'(' if b.get(i + 1) == Some(&b'+') => i + 2,
        b'(' => i + 1,
        _ => i,
    };
    if !b.get(digit_from).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let Some(p) = prev_char(text, i) else {
        return true;
    };
    if p == '+' {
        // Read from the `+` already.
        return false;
    }
    // "Tél.06 12 34 56 78": a phone word and its abbreviation dot.
    if p == '.'
        && words_before(text, i, 1, 16)
            .first()
            .is_some_and(|w| PHONE_WORDS.contains(&w.as_str()))
    {
        return true;
    }
    if glued_left(text, i) || matches!(p, '_' | '+' | '-' | '.' | '/' | '@') && glued(text, i) {
        return false;
    }
    if is_space(p) || matches!(p, ',' | ':') {
        let j = i - p.len_utf8();
        let after_detection = found.contains(&j);
        if !after_detection && number_before(text, j) {
            return false;
        }
    }
    true
}

/// A `+ - . / @` just before `i` that belongs to a token (digit or letter before it).
fn glued(text: &str, i: usize) -> bool {
    let p = prev_char(text, i).map_or(0, char::len_utf8);
    glued_left(text, i - p)
}

/// The number at `i` is a reference: the nearest word before it that says what it is (past
/// fillers and number signs) is a reference word ("order", "commande", "tracking", …), or
/// there is only a number sign (`#`, `n°`).
pub(super) fn after_reference(text: &str, i: usize) -> bool {
    let trimmed = text[..i].trim_end();
    let mut sign = trimmed.ends_with(['#', '°', 'º']);
    for w in words_before(text, i, 5, 64) {
        if w.ends_with(['#', '°', 'º']) || NUMBER_SIGNS.contains(&w.as_str()) {
            sign = true;
            continue;
        }
        if REFERENCE_WORDS.contains(&w.as_str()) {
            return true;
        }
        // "ISBN-10: 0738551856", "EAN 13 …": a short number is part of the name.
        let short_number = w.len() <= 2 && w.bytes().all(|c| c.is_ascii_digit());
        if !FILLER_WORDS.contains(&w.as_str()) && !short_number {
            return false;
        }
    }
    sign
}

/// Every number candidate starting at `i` (phone, card, NIR, IPv4); overlaps are resolved later.
pub(super) fn find_at(text: &str, i: usize, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    if b[i].is_ascii_digit() {
        if let Some(s) = ipv4_at(text, i) {
            out.push(s);
            return;
        }
        if let Some(s) = nir_at(text, i) {
            out.push(s);
        }
    }
    let run = GroupRun::parse(text, i);
    if run.groups.is_empty() {
        return;
    }
    let reference = after_reference(text, i);
    if !reference {
        if let Some(s) = card(text, &run) {
            out.push(s);
        }
        if let Some(s) = phone::phone(text, &run) {
            out.push(s);
        }
    }
}

/// Card-network prefix and length: Visa 4 (13, 16–19), Amex 34/37 (15), Diners 30/36/38/39
/// (14–19), JCB 35, Mastercard 51–55 and 2221–2720, Mir 2200–2204, Discover / UnionPay / Maestro
/// / RuPay 5x and 6x (16–19). Numbers starting 0, 1, 7, 8 or 9 are not payment cards.
fn network_ok(d: &[u8]) -> bool {
    let n = d.len();
    let p2 = u32::from(d[0] - b'0') * 10 + u32::from(d[1] - b'0');
    let p4 = p2 * 100 + u32::from(d[2] - b'0') * 10 + u32::from(d[3] - b'0');
    match d[0] {
        b'4' => n == 13 || (16..=19).contains(&n),
        b'3' => match p2 {
            34 | 37 => n == 15,
            30 | 36 | 38 | 39 => (14..=19).contains(&n),
            35 => (16..=19).contains(&n),
            _ => false,
        },
        b'2' => {
            ((2221..=2720).contains(&p4) && n == 16) || ((2200..=2204).contains(&p4) && n >= 16)
        }
        b'5' | b'6' => (16..=19).contains(&n) || (d[0] == b'5' && p2 <= 50 && n >= 12),
        _ => false,
    }
}

/// Group shapes of printed card numbers: one block, blocks of four (the last may be shorter),
/// Amex 4-6-5, Diners 4-6-4.
fn card_shape(sizes: &[usize]) -> bool {
    match sizes {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&s| s == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// A payment card among the prefixes of `run` ending at a space (longest first): 13–19 digits,
/// one separator kind (space or `-`), card-network prefix, Luhn.
fn card(text: &str, run: &GroupRun) -> Option<Span> {
    if run.plus || run.groups.iter().any(|g| g.paren) {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    let mut ends = Vec::new();
    let mut sep = None;
    for (k, g) in run.groups.iter().enumerate() {
        if k > 0 {
            let s = g.sep?;
            if !(is_space(s) || s == '-') || sep.is_some_and(|p| p != s) {
                break;
            }
            sep = Some(s);
        }
        digits.extend_from_slice(&text.as_bytes()[g.start..g.end]);
        if digits.len() > 19 {
            break;
        }
        ends.push((k, digits.len()));
    }
    for &(k, n) in ends.iter().rev() {
        if n < 13 {
            break;
        }
        let whole = k + 1 == run.groups.len();
        let boundary = if whole {
            run.clean_end(text)
        } else {
            run.groups[k + 1].sep.is_some_and(is_space)
        };
        let sizes: Vec<usize> = run.groups[..=k].iter().map(|g| g.end - g.start).collect();
        let d = &digits[..n];
        if boundary && card_shape(&sizes) && network_ok(d) && luhn(d) {
            let end = run.groups[k].end;
            if !before_unit(text, end) {
                return Some(Span {
                    start: run.start,
                    end,
                    kind: PiiKind::Card,
                });
            }
        }
    }
    None
}

/// A French NIR starting at `i`: 15 chars (13 + 2-digit key), digits except Corsica's 2A / 2B,
/// in groups separated by one kind of separator (space, `.` or `-`) or none; sex 1–4 / 7–8,
/// month 01–12 or 20–42 or 50–99 (INSEE's codes for unknown months), key `97 − (n mod 97)`.
fn nir_at(text: &str, i: usize) -> Option<Span> {
    let b = text.as_bytes();
    let mut sig = [0u8; 15];
    let mut n = 0;
    let mut pos = i;
    let mut sep: Option<char> = None;
    loop {
        let g = pos;
        while n < 15 && pos < b.len() {
            let c = b[pos];
            let corsica = n == 6 && sig[5] == b'2' && matches!(c, b'A' | b'B' | b'a' | b'b');
            if !(c.is_ascii_digit() || corsica) {
                break;
            }
            sig[n] = c.to_ascii_uppercase();
            n += 1;
            pos += 1;
        }
        if pos == g {
            return None;
        }
        if n == 15 {
            break;
        }
        let s = next_char(text, pos)?;
        if !(is_space(s) || matches!(s, '.' | '-')) || sep.is_some_and(|p| p != s) {
            return None;
        }
        if !b
            .get(pos + s.len_utf8())
            .is_some_and(u8::is_ascii_alphanumeric)
        {
            return None;
        }
        sep = Some(s);
        pos += s.len_utf8();
    }
    // Not glued to more digits or letters; a following ".5" or "-12" continues the number.
    if glued_right(text, pos) {
        return None;
    }
    if matches!(b.get(pos), Some(b'.' | b'-' | b'/')) && number_at(text, pos + 1) {
        return None;
    }
    let month = (sig[3] - b'0') * 10 + (sig[4] - b'0');
    let sex_ok = matches!(sig[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8');
    let month_ok = (1..=12).contains(&month) || (20..=42).contains(&month) || month >= 50;
    let dept_ok = &sig[5..7] != b"00";
    if !(sex_ok && month_ok && dept_ok && nir_key(&sig)) {
        return None;
    }
    Some(Span {
        start: i,
        end: pos,
        kind: PiiKind::Nir,
    })
}
