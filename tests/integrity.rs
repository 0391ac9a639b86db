//! What a user can check about the keyward they run: the tools-hash (the real binary, an
//! independent client's recomputation from the wire, the live server's metadata and the README's
//! table agree) and what `keyward version --verbose` says the binary was built from.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::external::{python_client, python_sdk};
use crate::support::keyward_command;
use crate::support::mcp::ServerHome;

/// An RPC address where nothing listens: listing tools needs no chain.
const NO_RPC: &str = "http://127.0.0.1:9";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real binary with a clean environment and no HOME, and returns its stdout.
fn keyward_stdout(args: &[&str]) -> String {
    let output = keyward_command()
        .env_remove("HOME")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "keyward {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn tools_hash_of_the_binary_equals_an_independent_clients_and_the_live_servers() {
    let printed = keyward_stdout(&["tools-hash"]);
    let hash = printed.trim_end_matches('\n');
    assert_eq!(printed, format!("{hash}\n"), "one line");
    assert_eq!(hash, keyward::mcp::tools_hash());

    let Some(python) = python_sdk() else {
        return;
    };
    let home = ServerHome::new(NO_RPC);
    let report = python_client(&python, "python_tools_hash.py", &[], &home);
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let seen = &report[mode];
        assert_eq!(seen["protocol_version"], version, "{mode}");
        assert_eq!(
            seen["tools_hash"], hash,
            "{mode}: the Python SDK's recomputation from the raw tools/list differs from \
             `keyward tools-hash`"
        );
        assert_eq!(seen["tool_names"].as_array().unwrap().len(), 12, "{mode}");
        assert_eq!(
            seen["tool_names"], seen["typed_tool_names"],
            "{mode}: the raw list is the one the SDK parsed"
        );
        let instructions = seen["instructions"].as_str().unwrap();
        assert!(
            instructions.ends_with(&format!(
                "(the SHA-256 of its canonical JSON, as `keyward tools-hash` prints it) is {hash}."
            )),
            "{mode}: {instructions}"
        );
        let description = seen["description"].as_str().unwrap();
        assert!(
            description.ends_with(&format!("tools-hash {hash}")),
            "{mode}: {description}"
        );
    }
    println!(
        "tools-hash {hash}: the binary, the Python SDK {} from the wire in both generations, the \
         instructions and serverInfo.description agree",
        report["sdk_version"]
    );
}

/// The rows of the README's table of tools-hashes: release, hash.
fn readme_hashes() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Verifying what you run\n")
        .nth(1)
        .expect("README has a \"Verifying what you run\" section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            let [release, hash] = cells.as_slice() else {
                return None;
            };
            let hash = hash.trim().trim_matches('`');
            hash.starts_with("sha256:")
                .then(|| (release.trim().to_owned(), hash.to_owned()))
        })
        .collect()
}

#[test]
fn the_readme_lists_this_versions_tools_hash() {
    let version = env!("CARGO_PKG_VERSION");
    let hash = keyward::mcp::tools_hash();
    let listed = readme_hashes();
    let Some(in_readme) = listed.get(version) else {
        panic!(
            "README.md's table in \"Verifying what you run\" has no row for {version}: add \
             `| {version} | `{hash}` |`"
        );
    };
    assert!(
        in_readme == hash,
        "README.md lists tools-hash {in_readme} for {version}, but this build's tool list hashes \
         to {hash}: a tool's name, description, schema or annotations changed. Review the change \
         (the golden fixtures/tools-list.json shows it), then put {hash} in the {version} row of \
         the table in README.md, \"Verifying what you run\". A released version's row never \
         changes: bump the version first."
    );
}

/// The README's Python recipe, run as written on the golden tools/list result, gives the hash.
#[test]
fn the_readme_recipe_recomputes_the_tools_hash() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let recipe = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has the tools-hash recipe in a ```python block");
    assert!(recipe.contains("sort_keys=True"), "{recipe}");
    let mut python = Command::new("python3")
        .arg("-c")
        .arg(recipe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let golden = std::fs::read(repo().join("fixtures/tools-list.json")).unwrap();
    std::io::Write::write_all(&mut python.stdin.take().unwrap(), &golden).unwrap();
    let output = python.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the README's recipe failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        keyward::mcp::tools_hash(),
        "the README's recipe on fixtures/tools-list.json"
    );
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(repo())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[test]
fn version_verbose_names_the_commit_the_lock_file_and_the_features() {
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        keyward_stdout(&["--version"]),
        format!("keyward {version}\n")
    );
    assert_eq!(keyward_stdout(&["version"]), format!("keyward {version}\n"));

    let printed = keyward_stdout(&["version", "--verbose"]);
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some(format!("keyward {version}").as_str()));
    let facts: BTreeMap<&str, &str> = lines
        .map(|line| line.split_once(": ").unwrap_or_else(|| panic!("{line}")))
        .collect();

    let lock = std::fs::read(repo().join("Cargo.lock")).unwrap();
    assert_eq!(
        facts["Cargo.lock sha256"],
        hex::encode(Sha256::digest(&lock)),
        "the SHA-256 of the repository's Cargo.lock"
    );
    let features: Vec<&str> = facts["features"].split(", ").collect();
    assert_eq!(
        features.contains(&"hid"),
        cfg!(feature = "hid"),
        "{features:?}"
    );
    assert_eq!(
        features.contains(&"default"),
        cfg!(feature = "default"),
        "{features:?}"
    );
    assert_eq!(facts["tools-hash"], keyward::mcp::tools_hash());
    assert!(facts["rustc"].starts_with("rustc "), "{printed}");
    assert!(facts["target"].contains("linux"), "{printed}");
    assert!(facts["profile"].starts_with("debug "), "{printed}");

    // The commit, when this test runs in a git checkout (a source archive has none).
    let commit = facts["commit"];
    let is_top = git(&["rev-parse", "--show-toplevel"])
        .and_then(|top| std::fs::canonicalize(top).ok())
        == std::fs::canonicalize(repo()).ok();
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if is_top => {
            let (hash, tree) = commit.split_once(' ').unwrap_or((commit, ""));
            assert_eq!(hash, head, "{printed}");
            assert!(tree == "(clean)" || tree.starts_with("(dirty"), "{printed}");
        }
        _ => {
            println!("no git checkout here: the commit is only checked to say why it is unknown");
            assert!(commit.starts_with("unknown: "), "{printed}");
        }
    }
    println!("{printed}");
}
