//! keyward's integration tests, in one binary: the CLI driven through a real terminal, leak
//! canaries, bad input, published vectors, interop with Foundry's cast, the prompt-injection
//! corpus, and the MCP server against a real Anvil with real MCP clients.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "test helpers: a panic is a failed test, and a skipped test prints why"
)]

mod bad_input;
mod canary;
mod chain;
mod cli;
mod conformance;
mod deploy;
mod elicitation;
mod external;
mod faults;
mod funds;
mod fuzz_corpus;
mod http;
mod injection;
mod integrity;
mod interop_cast;
mod leaks;
mod ledger;
mod load;
mod lock;
mod mcp;
mod memory;
mod page_render;
mod privacy;
mod sandbox;
mod secret_env;
mod signatures;
mod support;
mod vectors;
