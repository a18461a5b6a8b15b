//! The accepted range of every number a caller gives — CLI flags and HTTP parameters — in one
//! place, so both doors refuse the same values with a message that names the setting and its
//! range. Out-of-range values used to run anyway (`themes --k 0` made one theme and said "k = 1
//! by silhouette"); a wrong number is the user's to fix, not ours to clamp silently.

use std::ops::RangeInclusive;

/// Number of themes to find (`--k`): at least 2 (one theme is no clustering), at most 200.
pub const K: RangeInclusive<u64> = 2..=200;
/// Verbatims of the uniform sample a theme model is discovered on (`themes export-model --sample`).
pub const SAMPLE: RangeInclusive<u64> = 100..=10_000_000;
/// Smallest discovered theme (`--min-size`, `min_size`).
pub const MIN_SIZE: RangeInclusive<u64> = 1..=100_000;
/// Quotes per theme (`--quotes`, `quotes`): 0 leaves them out.
pub const QUOTES: RangeInclusive<u64> = 0..=50;
/// Search results (`search --limit`, `limit`).
pub const SEARCH_LIMIT: RangeInclusive<u64> = 1..=1000;
/// Verbatims in an answer's context (`ask --limit`).
pub const ASK_LIMIT: RangeInclusive<u64> = 1..=100;
/// Most tokens in a generated answer (`ask --max-tokens`).
pub const MAX_TOKENS: RangeInclusive<u64> = 1..=32_768;
/// Sampling temperature (`ask --temperature`).
pub const TEMPERATURE: RangeInclusive<f64> = 0.0..=2.0;
/// Embedding threads (`--threads`, `VERBATIM_THREADS`).
pub const THREADS: RangeInclusive<u64> = 1..=1024;
/// Read connections of the server (`serve --readers`): also its async worker threads.
pub const READERS: RangeInclusive<u64> = 1..=256;
/// Requests a token may burst (`serve --burst`).
pub const BURST: RangeInclusive<u64> = 1..=1_000_000;
/// Body sizes in bytes (`serve --max-body-bytes`, `--max-ingest-bytes`): 1 KiB to 16 GiB.
pub const BODY_BYTES: RangeInclusive<u64> = 1024..=(16 << 30);
/// Retention period in days (`privacy.retention_days`): a day to a century.
pub const RETENTION_DAYS: RangeInclusive<u64> = 1..=36_500;

/// `name value: must be between lo and hi`, or Ok.
pub fn check(name: &str, value: u64, range: &RangeInclusive<u64>) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} {value}: must be between {} and {}",
            range.start(),
            range.end()
        ))
    }
}

/// A finite number in `range` (NaN and infinities refused), for float flags.
pub fn check_f64(name: &str, value: f64, range: &RangeInclusive<f64>) -> Result<(), String> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} {value}: must be a number between {} and {}",
            range.start(),
            range.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_setting_and_the_range() {
        assert_eq!(
            check("--k", 0, &K).unwrap_err(),
            "--k 0: must be between 2 and 200"
        );
        assert!(check("--k", 2, &K).is_ok());
        assert!(check_f64("--temperature", f64::NAN, &TEMPERATURE).is_err());
        assert!(check_f64("--temperature", 0.7, &TEMPERATURE).is_ok());
    }
}
