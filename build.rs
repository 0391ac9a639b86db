//! Records what `keyward version --verbose` prints about the build: the git commit and whether the
//! compiled sources differed from it, the SHA-256 of Cargo.lock, the enabled features, the target,
//! the profile and the compiler.
//!
//! What it records must be the same for the same source wherever and whenever it is built (the
//! release build is reproducible, see `scripts/reproducible-build`): no time, no path, no user or
//! host name, nothing from git but the commit and the clean/dirty flag.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// What is compiled into the binary, relative to the package root: the flag says "dirty" when one
/// of these differs from the commit, and the build script runs again when one of them changes.
const COMPILED: &[&str] = &["src", "hardware", "Cargo.toml", "Cargo.lock", "build.rs"];

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    for path in COMPILED {
        let path = root.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    let (commit, state) = match commit(&root) {
        Ok(found) => found,
        Err(why) => ("unknown".to_owned(), why),
    };
    env_var("KEYWARD_BUILD_COMMIT", &commit);
    env_var("KEYWARD_BUILD_TREE", &state);
    env_var("KEYWARD_BUILD_CARGO_LOCK", &cargo_lock(&root));
    env_var("KEYWARD_BUILD_FEATURES", &features());
    env_var(
        "KEYWARD_BUILD_TARGET",
        &env::var("TARGET").unwrap_or_default(),
    );
    env_var(
        "KEYWARD_BUILD_PROFILE",
        &format!(
            "{} (opt-level {}, {})",
            env::var("PROFILE").unwrap_or_default(),
            env::var("OPT_LEVEL").unwrap_or_default(),
            match env::var("DEBUG").as_deref() {
                Ok("false" | "0") => "no debug info",
                _ => "with debug info",
            }
        ),
    );
    env_var("KEYWARD_BUILD_RUSTC", &rustc_version());
}

fn env_var(name: &str, value: &str) {
    // One line each: rustc-env takes the rest of the line.
    let value = value.replace(['\n', '\r'], " ");
    println!("cargo:rustc-env={name}={value}");
}

/// The commit and "clean" or "dirty", or why they are unknown. A crate built from a crates.io
/// package has no `.git` but carries `.cargo_vcs_info.json`, written by `cargo package`.
fn commit(root: &Path) -> Result<(String, String), String> {
    if let Ok(text) = fs::read_to_string(root.join(".cargo_vcs_info.json")) {
        return from_vcs_info(&text);
    }
    if !root.join(".git").exists() {
        // A source archive, or a copy of the files: nothing to ask.
        return Err(
            "not built from a git checkout (no .git in the source directory), \
                    nor from a crates.io package"
                .to_owned(),
        );
    }
    let top = git(root, &["rev-parse", "--show-toplevel"])?;
    let same = fs::canonicalize(&top).ok() == fs::canonicalize(root).ok();
    if !same {
        return Err("the source directory is not the top of its git checkout".to_owned());
    }
    watch_head(root);
    let commit = git(root, &["rev-parse", "--verify", "HEAD"])?;
    // --no-optional-locks: a status must not rewrite the index behind the developer's back.
    let mut status = vec![
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=normal",
        "--",
    ];
    status.extend(COMPILED);
    let changes = git(root, &status)?;
    let tree = if changes.is_empty() {
        "clean"
    } else {
        "dirty: the compiled sources differ from the commit"
    };
    Ok((commit, tree.to_owned()))
}

/// Watches what a commit, a checkout or a reset changes: HEAD (in the worktree's own git
/// directory: `.git` is a file in a `git worktree`), the branch it points to, and packed-refs.
fn watch_head(root: &Path) {
    let Ok(dirs) = git(root, &["rev-parse", "--git-dir", "--git-common-dir"]) else {
        return;
    };
    let mut dirs = dirs.lines().map(|dir| root.join(dir));
    let (Some(git_dir), Some(common_dir)) = (dirs.next(), dirs.next()) else {
        return;
    };
    let mut watched = vec![git_dir.join("HEAD"), common_dir.join("packed-refs")];
    if let Ok(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = common_dir.join(&branch);
        // A branch only in packed-refs gets a loose file at its next commit: watch its folder.
        watched.push(match (loose.exists(), loose.parent()) {
            (false, Some(folder)) => folder.to_path_buf(),
            _ => loose,
        });
    }
    for path in watched {
        // A missing path would make cargo run this script at every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn from_vcs_info(text: &str) -> Result<(String, String), String> {
    // {"git": {"sha1": "...", "dirty": true}, "path_in_vcs": ""}: read without a JSON parser.
    let sha1 = text
        .split("\"sha1\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ".cargo_vcs_info.json names no git commit".to_owned())?;
    let dirty = text.contains("\"dirty\": true") || text.contains("\"dirty\":true");
    let tree = if dirty {
        "dirty: packaged from a tree with uncommitted changes"
    } else {
        "clean, as the crates.io package's .cargo_vcs_info.json says"
    };
    Ok((sha1.to_owned(), tree.to_owned()))
}

/// Runs git in `root`; the first line of its answer, or why it failed (no path: it is embedded).
fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => "git is not installed".to_owned(),
            kind => format!("git could not be run ({kind})"),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(if stderr.contains("dubious ownership") {
            "git refused the checkout: it belongs to another user (see git's safe.directory)"
                .to_owned()
        } else {
            format!("`git {}` failed ({})", args.join(" "), output.status)
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn cargo_lock(root: &Path) -> String {
    match fs::read(root.join("Cargo.lock")) {
        Ok(bytes) => Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
        Err(err) => format!("unknown (Cargo.lock could not be read: {})", err.kind()),
    }
}

/// Every enabled cargo feature of keyward, sorted (`CARGO_FEATURE_HID` for `hid`).
fn features() -> String {
    let mut features: Vec<String> = env::vars()
        .filter_map(|(name, _)| {
            name.strip_prefix("CARGO_FEATURE_")
                .map(|feature| feature.to_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    }
}

fn rustc_version() -> String {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    match Command::new(rustc).arg("--version").output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => "unknown (rustc --version failed)".to_owned(),
    }
}
