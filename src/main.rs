//! The `verbatim` binary: parse flags, call the library, print. See `src/cli/`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
