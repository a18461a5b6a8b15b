//! Check digits: Luhn (cards), ISO 7064 mod 97-10 (IBAN), the NIR key.

/// Luhn check over ASCII digits.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// IBAN check: the first four chars moved to the end, letters as 10..35, the number mod 97 is 1.
/// `iban` is upper-case ASCII letters and digits, without separators.
pub(super) fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// NIR key check on 15 chars (digits, and `A`/`B` as the 7th char for Corsica, 2A / 2B): the
/// key (last two digits) is `97 − (n mod 97)` where `n` is the first 13 with 2A read as 19 and
/// 2B as 18.
pub(super) fn nir_key(nir: &[u8; 15]) -> bool {
    let mut n = 0u64;
    for (k, &c) in nir[..13].iter().enumerate() {
        let d = match (k, c) {
            (_, b'0'..=b'9') => u64::from(c - b'0'),
            (6, b'A') => 9, // 2A → 19: the 2 before it drops by one below
            (6, b'B') => 8, // 2B → 18
            _ => return false,
        };
        n = n * 10 + d;
    }
    if matches!(nir[6], b'A' | b'B') {
        // The department's first digit (2) becomes 1.
        n -= 10_000_000;
    }
    let key = u64::from(nir[13] - b'0') * 10 + u64::from(nir[14] - b'0');
    key == 97 - n % 97
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_numbers() {
        assert!(luhn(b"4970101234567893"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4970101234567890"));
    }

    #[test]
    fn iban_known_numbers() {
        assert!(iban_mod97(b"FR7630006000011234567890189"));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(!iban_mod97(b"FR7630006000011234567890188"));
    }

    #[test]
    fn nir_keys() {
        // 1 84 12 75 123 456: key 40.
        let mut n = *b"184127512345640";
        assert!(nir_key(&n));
        n[14] = b'9';
        assert!(!nir_key(&n));
        // Corsica: 2A read as 19.
        let base = 2_690_519_123_456u64; // 2 69 05 19 123 456
        let key = 97 - base % 97;
        let s = format!("269052A123456{key:02}");
        let arr: [u8; 15] = s.as_bytes().try_into().unwrap();
        assert!(nir_key(&arr));
    }
}
