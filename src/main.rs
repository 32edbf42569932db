//! The `strata` binary: parse argv, run, turn the outcome into an exit code.

fn main() -> std::process::ExitCode {
    strata::cli::main()
}
