//! The real binary refuses to start a command that touches the vault while a variable in its
//! environment looks like a wallet secret (the rule: `src/secret_env.rs`), and names the variable
//! without ever printing its value.

use crate::support::{OutputExt, Scratch, run_detached};

/// A published development key and a published BIP-39 vector: values that must never be printed.
const HEX_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const PHRASE: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

#[test]
fn a_wallet_secret_in_the_environment_is_refused_by_name_and_never_echoed() {
    let scratch = Scratch::new();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut command = scratch.keyward(args);
        for (name, value) in env {
            command.env(name, value);
        }
        run_detached(command)
    };

    for (env, args, named) in [
        (
            vec![("PRIVATE_KEY", HEX_KEY)],
            vec!["serve"],
            "PRIVATE_KEY (its name says it holds a private key)",
        ),
        (
            vec![("KEYWARD_PASSWORD", "hunter2-but-longer")],
            vec!["approve"],
            "KEYWARD_PASSWORD (its name says it holds a wallet password)",
        ),
        (
            vec![("RESTORE_FROM", PHRASE)],
            vec!["init", "--words", "12"],
            "RESTORE_FROM (its value is a valid BIP-39 recovery phrase)",
        ),
        (
            vec![("DEPLOYER", HEX_KEY)],
            vec!["account", "add"],
            "DEPLOYER (its value is a 32-byte hex key and its name says key)",
        ),
    ] {
        let output = run(&env, &args);
        output.assert_error(named);
        let stderr = output.stderr_text();
        assert!(stderr.contains("--password-file"), "{stderr}");
        for (_, value) in &env {
            assert!(!stderr.contains(value), "the value leaked: {stderr}");
            assert!(!output.stdout_text().contains(value));
        }
        assert!(!stderr.contains("ac0974") && !stderr.contains("abandon"));
    }

    // Read-only commands and `keyward lock` still run: they never touch a secret.
    let accounts = run(&[("PRIVATE_KEY", HEX_KEY)], &["accounts"]);
    assert!(
        !accounts.stderr_text().contains("PRIVATE_KEY"),
        "{}",
        accounts.stderr_text()
    );
    accounts.assert_error("no wallet");
    run(&[("MNEMONIC", PHRASE)], &["lock"]).assert_error("no keyward serve is running");
}

/// An ordinary environment does not trip the rule: the real binary starts with the variables a
/// developer's shell typically has.
#[test]
fn an_ordinary_environment_is_not_refused() {
    let scratch = Scratch::new();
    let mut command = scratch.keyward(&["serve", "--config", "/nonexistent/keyward.toml"]);
    for (name, value) in [
        ("KEYWARD_HOME_IGNORED", "x"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("GITHUB_TOKEN", "ghp_0123456789abcdefghijklmnopqrstuvwxyz"),
        ("ETHERSCAN_API_KEY", "ABCDEFGHIJKLMNOPQRSTUVWXYZ12345678"),
        ("TX_HASH", HEX_KEY),
    ] {
        command.env(name, value);
    }
    // It gets as far as reading its configuration.
    run_detached(command).assert_error("no configuration at /nonexistent/keyward.toml");
}
