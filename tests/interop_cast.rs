//! Keystore interop with Foundry's cast (1.7.1 from npm, pinned in anvil/package.json), as an
//! independent implementation of Web3 Secret Storage.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::cli::{ANVIL_0, ANVIL_PHRASE, create_wallet, export_keystore};
use crate::support::{OutputExt, PASSWORD, Scratch, foundry_tool, run_detached};

/// Anvil's account 0 key: a published development key.
const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const KEYSTORE_PASSWORD: &str = "lantern harbor quietly 42";

/// Runs cast from an empty directory (cast looks for a Foundry project in its working directory).
fn cast(cast: &Path, scratch: &Scratch, args: &[&str], password_env: (&str, &str)) -> Output {
    let empty = scratch.inputs.join("cast-cwd");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = Command::new(cast);
    command
        .args(args)
        .current_dir(&empty)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &scratch.inputs)
        .env(password_env.0, password_env.1);
    run_detached(command)
}

#[test]
fn cast_decrypts_a_keystore_that_keyward_exported() {
    let Some(cast_bin) = foundry_tool("cast") else {
        return;
    };
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let password = scratch.password_file("pw", PASSWORD, 0o600);
    let keystore_password = scratch.password_file("ks", KEYSTORE_PASSWORD, 0o600);
    let dir = scratch.inputs.join("keystores");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("main");
    export_keystore(&scratch, "main", &out, &password, &keystore_password).assert_success();

    let decrypted = cast(
        &cast_bin,
        &scratch,
        &[
            "wallet",
            "decrypt-keystore",
            "main",
            "--keystore-dir",
            dir.to_str().unwrap(),
        ],
        ("CAST_UNSAFE_PASSWORD", KEYSTORE_PASSWORD),
    );
    decrypted.assert_success();
    assert!(
        decrypted.stdout_text().contains(ANVIL_KEY_0),
        "cast did not recover the key: {}",
        decrypted.stdout_text()
    );
}

#[test]
fn a_keystore_from_cast_wallet_new_imports_with_the_same_address() {
    let Some(cast_bin) = foundry_tool("cast") else {
        return;
    };
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let dir = scratch.inputs.join("keystores");
    std::fs::create_dir_all(&dir).unwrap();
    let created = cast(
        &cast_bin,
        &scratch,
        &["wallet", "new", dir.to_str().unwrap(), "fresh"],
        ("CAST_PASSWORD", KEYSTORE_PASSWORD),
    );
    created.assert_success();
    let address = created
        .stdout_text()
        .lines()
        .find_map(|line| line.strip_prefix("Address:").map(|a| a.trim().to_owned()))
        .unwrap_or_else(|| panic!("no address from cast: {}", created.stdout_text()));

    let password = scratch.password_file("pw", PASSWORD, 0o600);
    let keystore_password = scratch.password_file("ks", KEYSTORE_PASSWORD, 0o600);
    scratch
        .run(&[
            "import-keystore",
            dir.join("fresh").to_str().unwrap(),
            "--label",
            "from-cast",
            "--password-file",
            password.to_str().unwrap(),
            "--keystore-password-file",
            keystore_password.to_str().unwrap(),
        ])
        .assert_success();

    let listed = scratch.run(&["accounts", "--json"]);
    listed.assert_success();
    let document: Value = serde_json::from_str(&listed.stdout_text()).unwrap();
    assert_eq!(document["accounts"][0]["address"], ANVIL_0);
    assert_eq!(document["accounts"][1]["label"], "from-cast");
    assert_eq!(document["accounts"][1]["address"], address.as_str());
}
