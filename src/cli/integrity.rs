//! `keyward tools-hash` and `keyward version`: what a user compares to check the binary they run.
//! Both print public facts only and need no wallet.

use anyhow::Result;

use super::say;

/// Prints the tools-hash of the tool list this binary serves, alone on one line.
pub(super) fn tools_hash() -> Result<()> {
    say(crate::mcp::tools_hash())
}

/// Prints `keyward VERSION`, or with `verbose` everything the build recorded about itself.
pub(super) fn version(verbose: bool) -> Result<()> {
    if verbose {
        say(&crate::build_info::verbose())
    } else {
        say(&format!("keyward {}", crate::build_info::VERSION))
    }
}
