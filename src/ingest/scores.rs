//! Score maps: text scores (`great`, `good`, `other`) read as numbers.
//!
//! Exports often hold a label where a number is wanted (a star rating turned into "great",
//! a CSAT answer spelled out). `--score-map great=5,good=4,other=1` says what each label is
//! worth; `*=N` scores every other value `N`. The same text is what `verbatim.toml` remembers
//! (`score_map = "great=5,good=4,*=1"`, under `[mapping]`) and what a report manifest records, so
//! one syntax is read and written everywhere.
//!
//! Keys match after trimming, case-insensitively (they are kept lower-cased). A value found in
//! the map takes its score; otherwise a number is still a number; otherwise `*` applies; and
//! without `*` the row is rejected with a message listing the keys.

use std::fmt;
use std::str::FromStr;

/// Text score → number, with an optional default for any other value.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScoreMap {
    /// Lower-cased, trimmed keys with their score, in the order given.
    entries: Vec<(String, f64)>,
    /// The score of any other value (`*=N`).
    default: Option<f64>,
}

/// A `--score-map` value that cannot be read; names what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid --score-map '{value}': {reason} (expected LABEL=NUMBER pairs separated by commas, `*=NUMBER` for any other value, e.g. great=5,good=4,*=1)")]
pub struct ParseScoreMapError {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a score map makes of one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Lookup {
    /// The value is a key of the map.
    Key(f64),
    /// Not a key; `*` gives this.
    Default(f64),
    /// Not a key and no `*`.
    Missing,
}

impl ScoreMap {
    /// The score of a key (trimmed, case-insensitive), ignoring `*`.
    pub fn get(&self, value: &str) -> Option<f64> {
        let key = value.trim().to_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The score of any value not in the map (`*=N`).
    pub fn default_score(&self) -> Option<f64> {
        self.default
    }

    /// The keys, in the order given (for messages).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub(crate) fn lookup(&self, value: &str) -> Lookup {
        match (self.get(value), self.default) {
            (Some(v), _) => Lookup::Key(v),
            (None, Some(d)) => Lookup::Default(d),
            (None, None) => Lookup::Missing,
        }
    }
}

impl FromStr for ScoreMap {
    type Err = ParseScoreMapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseScoreMapError {
            value: s.to_string(),
            reason,
        };
        let mut map = ScoreMap {
            entries: Vec::new(),
            default: None,
        };
        for pair in s.split(',') {
            if pair.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = pair.rsplit_once('=') else {
                return Err(err(format!("'{}' has no '='", pair.trim())));
            };
            let key = key.trim().to_lowercase();
            let score = super::record::parse_score(value.trim())
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    err(format!(
                        "the score of '{key}' is '{}', not a number",
                        value.trim()
                    ))
                })?;
            if key.is_empty() {
                return Err(err("a label is empty".to_string()));
            }
            if key == "*" {
                if map.default.is_some() {
                    return Err(err("'*' is given twice".to_string()));
                }
                map.default = Some(score);
            } else if map.entries.iter().any(|(k, _)| *k == key) {
                return Err(err(format!(
                    "'{key}' is given twice (labels match case-insensitively)"
                )));
            } else {
                map.entries.push((key, score));
            }
        }
        if map.entries.is_empty() && map.default.is_none() {
            return Err(err("no LABEL=NUMBER pair".to_string()));
        }
        Ok(map)
    }
}

impl fmt::Display for ScoreMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let pairs = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .chain(self.default.map(|d| ("*", d)));
        for (k, v) in pairs {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for ScoreMap {
    type Error = ParseScoreMapError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ScoreMap> for String {
    fn from(m: ScoreMap) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_flag_syntax() {
        let m: ScoreMap = " Great = 5, good=4 ,OTHER=1,*=0.5".parse().unwrap();
        assert_eq!(m.to_string(), "great=5,good=4,other=1,*=0.5");
        assert_eq!(m.get("  GREAT "), Some(5.0));
        assert_eq!(m.get("Other"), Some(1.0));
        assert_eq!(m.get("meh"), None);
        assert_eq!(m.default_score(), Some(0.5));
        assert_eq!(m.lookup("meh"), Lookup::Default(0.5));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["great", "good", "other"]);
        let m: ScoreMap = "ok=2.5,bad=-1".parse().unwrap();
        assert_eq!((m.get("ok"), m.get("bad")), (Some(2.5), Some(-1.0)));
        assert_eq!(m.lookup("none"), Lookup::Missing);
    }

    #[test]
    fn rejects_what_it_cannot_read_naming_the_flag() {
        for (value, why) in [
            ("", "no LABEL=NUMBER pair"),
            ("great", "'great' has no '='"),
            ("great=five", "the score of 'great' is 'five', not a number"),
            ("=3", "a label is empty"),
            ("a=1,A=2", "'a' is given twice"),
            ("*=1,*=2", "'*' is given twice"),
        ] {
            let e = value.parse::<ScoreMap>().unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("invalid --score-map"), "{msg}");
            assert!(msg.contains(why), "{value:?}: {msg}");
        }
    }

    #[test]
    fn round_trips_through_serde_as_one_string() {
        let m: ScoreMap = "great=5,other=1,*=0".parse().unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"great=5,other=1,*=0\"");
        assert_eq!(serde_json::from_str::<ScoreMap>(&json).unwrap(), m);
        assert!(serde_json::from_str::<ScoreMap>("\"great\"").is_err());
    }
}
