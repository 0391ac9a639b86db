//! keyward's integration tests, in one binary: the CLI driven through a real terminal, leak
//! canaries, bad input, published vectors, and interop with Foundry's cast.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "test helpers: a panic is a failed test, and a skipped test prints why"
)]

mod bad_input;
mod canary;
mod cli;
mod interop_cast;
mod support;
mod vectors;
