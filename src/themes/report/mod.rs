//! The batch theme report: one [`Report`] rendered as JSON, Markdown or a single HTML file.
//!
//! - [`json`] is the data as is (pretty, trailing newline): what other tools read.
//! - [`markdown`] is for tickets, wikis and terminals: a summary, a table of themes, one section
//!   per theme, the vanished themes, and the manifest in a fenced JSON block.
//! - [`html`] is for people: a header (title, verbatims, "other" share, overall sentiment, score
//!   mean, period), a table of contents, five inline SVG charts (theme sizes, sentiment per theme,
//!   trends as small multiples, segment heat maps, score drivers), one section per theme
//!   (keywords, size, change, sentiment, trend, score, quotes, segment tables), the vanished
//!   themes, and a footer with the manifest so the report can be reproduced.
//!
//! **Why one file with no JavaScript and no external assets.** A report is mailed, attached to
//! tickets, archived and opened years later, often on machines without network access; it holds
//! customer text, so opening it must not make a request anywhere (no fonts, images, scripts or
//! style sheets from a CDN, which would also leak that the report was opened). Charts are SVG
//! written by this module, styles are inline, and a Content-Security-Policy `<meta>` forbids
//! every fetch, so even a mistake here cannot phone home. Without scripts the page also prints
//! as it shows, and a strict viewer (mail client, sandboxed preview) shows all of it.
//!
//! **Determinism.** The same report gives the same bytes: no clock, no hash-map order, numbers
//! formatted with fixed decimals (shares as `12.3%`, means with two decimals, SVG coordinates
//! with one), and every ordering either the report's own or sorted with ties broken by name.
//!
//! **Escaping.** Every string from the data (title, labels, keywords, quotes, ids, segment
//! fields and values, parameters) is escaped for its format: HTML-escaped in [`html`]; in
//! [`markdown`], made inert so it cannot open a heading, list, block quote, code span, emphasis,
//! link, raw HTML or a new table cell. Redaction placeholders such as `<EMAIL>` therefore show as
//! text in both.

use super::types::Report;

/// `write!` into a `String`, which cannot fail (`fmt::Write for String` always returns `Ok`).
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

mod facts;
mod html;
mod markdown;
mod svg;
#[cfg(test)]
mod tests;
mod text;
mod tree;

/// A verbatim cut around a span, as the report's quotes are (the tree's unit quotes).
pub(crate) use facts::cut_around;
pub use html::html;
pub use markdown::markdown;
/// Text escaped as the HTML report escapes it (for finding a quote inside a written report).
pub(crate) use text::esc as escape_html;

/// The report as pretty JSON with a trailing newline.
pub fn json(r: &Report) -> String {
    // `to_string_pretty` fails only on a map with non-string keys or a `Serialize` impl that
    // errors; the report has neither (its one map is a `serde_json::Value`, and a non-finite
    // float serialises as `null`).
    let mut s = serde_json::to_string_pretty(r).expect("a Report always serialises to JSON");
    s.push('\n');
    s
}

/// The manifest of a report this module wrote, in any of its formats: the JSON data (or a bare
/// manifest), the Markdown's fenced block under "## Manifest", or the HTML footer. `None` when
/// the text holds none (for `verbatim report --from-manifest`).
pub fn read_manifest(text: &str) -> Option<super::types::ReportManifest> {
    use super::types::ReportManifest;
    let t = text.trim_start();
    if t.starts_with('{') {
        if let Ok(r) = serde_json::from_str::<Report>(t) {
            return Some(r.manifest);
        }
        return serde_json::from_str::<ReportManifest>(t).ok();
    }
    if let Some(i) = text.rfind("\n## Manifest\n") {
        let rest = &text[i..];
        let open = rest.find("json\n")? + "json\n".len();
        let body = &rest[open..];
        // The closing fence: the last line made of backticks only.
        let end = body.rfind("\n`")?;
        return serde_json::from_str(&body[..end]).ok();
    }
    let footer = &text[text.find("<footer class=\"manifest\"")?..];
    let field = |name: &str| -> Option<String> {
        let start = footer.find(&format!("<dt>{name}</dt><dd>"))? + name.len() + 13;
        let end = start + footer[start..].find("</dd>")?;
        let inner = footer[start..end]
            .replace("<pre>", "")
            .replace("</pre>", "")
            .replace("<code>", "")
            .replace("</code>", "");
        Some(text::unesc(&inner))
    };
    let period = field("Period").and_then(|p| {
        p.split_once(" to ")
            .map(|(a, b)| (a.to_string(), b.to_string()))
    });
    // Through JSON, so fields added to the manifest later with a default still read.
    let parameters: serde_json::Value = serde_json::from_str(&field("Parameters")?).ok()?;
    serde_json::from_value(serde_json::json!({
        "version": field("verbatim version")?,
        "data_snapshot": field("Data snapshot")?,
        "model": field("Embedding model")?,
        "sentiment_model": field("Sentiment model")?,
        "parameters": parameters,
        "period": period,
    }))
    .ok()
}
