//! The `verbatim` binary: parse flags, call the library, print. See `src/cli/`.

mod cli;

fn main() {
    // The process ends after its one command: its graphs need not be freed before it does.
    verbatim::index::vector::free_graphs_in_background();
    std::process::exit(cli::main());
}
