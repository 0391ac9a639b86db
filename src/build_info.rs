//! What this binary was built from, as `build.rs` recorded it: the version, the git commit and
//! whether the compiled sources were clean, the SHA-256 of Cargo.lock, the enabled features, the
//! target, the profile and the compiler. `keyward version --verbose` prints it, so a user can
//! match a binary with a commit and a lock file, and a reproducible build with its source.
//!
//! Nothing here may depend on where or when the build ran: the release build is reproducible.

/// The package version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the build came from (40 hex digits), or `unknown`.
pub const COMMIT: &str = env!("KEYWARD_BUILD_COMMIT");
/// `clean`, `dirty: ...`, or why the commit is unknown.
pub const TREE: &str = env!("KEYWARD_BUILD_TREE");
/// The SHA-256 of Cargo.lock in lower-case hex, or `unknown (...)`.
pub const CARGO_LOCK_SHA256: &str = env!("KEYWARD_BUILD_CARGO_LOCK");
/// keyward's enabled cargo features, sorted, comma-separated (`default, hid`), or `none`.
pub const FEATURES: &str = env!("KEYWARD_BUILD_FEATURES");
/// The target triple.
pub const TARGET: &str = env!("KEYWARD_BUILD_TARGET");
/// The cargo profile, its optimization level and debug-info setting.
pub const PROFILE: &str = env!("KEYWARD_BUILD_PROFILE");
/// `rustc --version` of the compiler that built keyward.
pub const RUSTC: &str = env!("KEYWARD_BUILD_RUSTC");

/// The lines `keyward version --verbose` prints: `name: value`, one per line.
pub fn verbose() -> String {
    let commit = if COMMIT == "unknown" {
        format!("unknown: {TREE}")
    } else {
        format!("{COMMIT} ({TREE})")
    };
    format!(
        "keyward {VERSION}\n\
         commit: {commit}\n\
         Cargo.lock sha256: {CARGO_LOCK_SHA256}\n\
         features: {FEATURES}\n\
         tools-hash: {}\n\
         target: {TARGET}\n\
         profile: {PROFILE}\n\
         rustc: {RUSTC}",
        crate::mcp::tools_hash()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_name_and_a_value() {
        let text = verbose();
        let names: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|line| line.split_once(": ").unwrap().0)
            .collect();
        assert_eq!(
            names,
            [
                "commit",
                "Cargo.lock sha256",
                "features",
                "tools-hash",
                "target",
                "profile",
                "rustc"
            ]
        );
        assert_eq!(
            text.lines().next(),
            Some(format!("keyward {VERSION}").as_str())
        );
        assert!(RUSTC.starts_with("rustc "), "{RUSTC}");
        assert!(!TARGET.is_empty());
    }
}
