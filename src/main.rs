//! The `keyward` binary. All the work is in the library; see `keyward::cli`.

fn main() -> std::process::ExitCode {
    keyward::cli::main()
}
