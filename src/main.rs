//! The `torii` executable: everything lives in the library; this maps the
//! command line's outcome to the process exit code.

fn main() {
    std::process::exit(torii::cli::main());
}
