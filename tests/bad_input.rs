//! Bad input: every damaged file, wrong password or unsafe password file gives a clear error and
//! exit code 1, nothing panics, and every file on disk is byte-for-byte what it was.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use keyward::keystore::Keystore;
use keyward::secret::{PrivateKey, Secret};
use serde_json::Value;

use crate::cli::{ANVIL_PHRASE, create_wallet};
use crate::support::{OutputExt, PASSWORD, Scratch};

const KEYSTORE_PASSWORD: &str = "lantern harbor quietly 42";

/// Every file in the home and the inputs, to compare before and after.
fn snapshot(scratch: &Scratch) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut files = scratch.home_files();
    for entry in fs::read_dir(&scratch.inputs).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    let mut files: Vec<_> = files
        .into_iter()
        .map(|(path, bytes)| {
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            (path, bytes, mode)
        })
        .collect();
    files.sort();
    files
}

/// A wallet with one account, a good password file, and a keystore file to import.
fn setup() -> (Scratch, String, String) {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let password = scratch.password_file("pw", PASSWORD, 0o600);
    let keystore = scratch.inputs.join("key.json");
    let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    fs::write(
        &keystore,
        Keystore::encrypt(&key, &Secret::new(KEYSTORE_PASSWORD.to_owned())).unwrap(),
    )
    .unwrap();
    (
        scratch,
        password.to_str().unwrap().to_owned(),
        keystore.to_str().unwrap().to_owned(),
    )
}

/// Rewrites a JSON file through `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut document: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut document);
    fs::write(path, serde_json::to_vec(&document).unwrap()).unwrap();
}

/// The same hex string with its first digit changed.
fn flip_first_digit(hex: &Value) -> Value {
    let hex = hex.as_str().unwrap();
    let first = if hex.starts_with('0') { "1" } else { "0" };
    Value::from(format!("{first}{}", &hex[1..]))
}

/// Runs keyward, expects a clean failure mentioning `expected`, and checks nothing changed.
fn refused(scratch: &Scratch, args: &[&str], expected: &str) -> String {
    let before = snapshot(scratch);
    let output = scratch.run(args);
    output.assert_error(expected);
    assert_eq!(
        snapshot(scratch),
        before,
        "`{}` changed files",
        args.join(" ")
    );
    output.stderr_text()
}

#[test]
fn wrong_vault_password_is_one_fixed_sentence() {
    let (scratch, _, keystore) = setup();
    let wrong = scratch.password_file("wrong", "orchid velvet canyon eighteen", 0o600);
    let wrong = wrong.to_str().unwrap();
    let stderr = refused(
        &scratch,
        &["account", "add", "--password-file", wrong],
        "invalid password",
    );
    assert!(
        stderr
            .lines()
            .any(|line| line == "error: invalid password or corrupted vault"),
        "{stderr}"
    );
    let keystore_pw = scratch.password_file("ks", KEYSTORE_PASSWORD, 0o600);
    refused(
        &scratch,
        &[
            "import-keystore",
            &keystore,
            "--password-file",
            wrong,
            "--keystore-password-file",
            keystore_pw.to_str().unwrap(),
        ],
        "invalid password or corrupted vault",
    );
}

#[test]
fn wrong_keystore_password_names_no_path_parameter_or_mac() {
    let (scratch, password, keystore) = setup();
    let wrong = scratch.password_file("wrong", "not the keystore password", 0o600);
    let stderr = refused(
        &scratch,
        &[
            "import-keystore",
            &keystore,
            "--password-file",
            &password,
            "--keystore-password-file",
            wrong.to_str().unwrap(),
        ],
        "invalid password",
    );
    let line = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap();
    assert_eq!(line, "error: invalid password or corrupted keystore");
    let file: Value = serde_json::from_slice(&fs::read(&keystore).unwrap()).unwrap();
    let mac = file["crypto"]["mac"].as_str().unwrap();
    assert!(!stderr.contains(mac) && !stderr.contains("key.json") && !stderr.contains("262144"));
}

#[test]
fn password_files_readable_by_others_are_refused() {
    let (scratch, _, _) = setup();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let open = scratch.password_file(&format!("open-{mode:o}"), PASSWORD, mode);
        let stderr = refused(
            &scratch,
            &["account", "add", "--password-file", open.to_str().unwrap()],
            "chmod 600",
        );
        assert!(stderr.contains(&format!("mode {mode:03o}")), "{stderr}");
    }
    let read_only = scratch.password_file("read-only", PASSWORD, 0o400);
    let before = snapshot(&scratch);
    scratch.run(&["accounts"]).assert_success();
    scratch
        .run(&[
            "account",
            "add",
            "--password-file",
            read_only.to_str().unwrap(),
        ])
        .assert_success();
    assert_ne!(
        snapshot(&scratch),
        before,
        "a 0400 file is private and works"
    );
}

#[test]
fn missing_and_empty_password_files() {
    let (scratch, _, _) = setup();
    let missing = scratch.inputs.join("missing");
    refused(
        &scratch,
        &[
            "account",
            "add",
            "--password-file",
            missing.to_str().unwrap(),
        ],
        "cannot open",
    );
    let empty = scratch.password_file("empty", "", 0o600);
    refused(
        &scratch,
        &["account", "add", "--password-file", empty.to_str().unwrap()],
        "is empty",
    );
}

#[test]
fn truncated_vault_is_reported_without_a_panic() {
    let (scratch, password, _) = setup();
    let original = fs::read(scratch.vault()).unwrap();
    for cut in [
        0,
        1,
        original.len() / 3,
        original.len() / 2,
        original.len() - 3,
    ] {
        fs::write(scratch.vault(), &original[..cut]).unwrap();
        refused(&scratch, &["accounts"], "not a JSON document");
        refused(
            &scratch,
            &["account", "add", "--password-file", &password],
            "not a JSON document",
        );
    }
}

#[test]
fn damaged_vault_ciphertext_looks_like_a_wrong_password() {
    let (scratch, password, _) = setup();
    edit_json(&scratch.vault(), |vault| {
        vault["crypto"]["ciphertext"] = flip_first_digit(&vault["crypto"]["ciphertext"]);
    });
    scratch.run(&["accounts"]).assert_success();
    refused(
        &scratch,
        &["account", "add", "--password-file", &password],
        "invalid password or corrupted vault",
    );
}

#[test]
fn an_edited_account_list_is_caught_on_unlock() {
    let (scratch, password, _) = setup();
    edit_json(&scratch.vault(), |vault| {
        vault["accounts"][0]["address"] = Value::from("0x000000000000000000000000000000000000dEaD");
    });
    refused(
        &scratch,
        &["account", "add", "--password-file", &password],
        "edited outside keyward",
    );
}

#[test]
fn malformed_vault_fields_name_the_field() {
    let (scratch, _, _) = setup();
    let original: Value = serde_json::from_slice(&fs::read(scratch.vault()).unwrap()).unwrap();
    let cases: [(&str, Value, &str); 5] = [
        ("keyward_vault", Value::from(2), "newer keyward"),
        (
            "accounts",
            Value::from("x"),
            "`accounts` must be a JSON array",
        ),
        (
            "totp_enrolled",
            Value::from("yes"),
            "`totp_enrolled` must be true or false",
        ),
        ("crypto", Value::Null, "`crypto` must be a JSON object"),
        ("extra", Value::Null, ""),
    ];
    for (field, value, expected) in cases {
        let mut vault = original.clone();
        vault[field] = value;
        fs::write(scratch.vault(), serde_json::to_vec(&vault).unwrap()).unwrap();
        if expected.is_empty() {
            scratch.run(&["accounts"]).assert_success();
        } else {
            refused(&scratch, &["accounts"], expected);
        }
    }
}

#[test]
fn damaged_keystore_files_are_reported_before_any_password_is_asked() {
    let (scratch, password, keystore) = setup();
    let keystore_pw = scratch.password_file("ks", KEYSTORE_PASSWORD, 0o600);
    let keystore_pw = keystore_pw.to_str().unwrap();
    let original = fs::read(&keystore).unwrap();

    for cut in [0, original.len() / 2, original.len() - 2] {
        fs::write(&keystore, &original[..cut]).unwrap();
        refused(
            &scratch,
            &[
                "import-keystore",
                &keystore,
                "--password-file",
                &password,
                "--keystore-password-file",
                keystore_pw,
            ],
            "not a JSON document",
        );
    }

    fs::write(&keystore, &original).unwrap();
    edit_json(Path::new(&keystore), |document| {
        document["crypto"]["kdfparams"]["n"] = Value::from(1000);
    });
    refused(
        &scratch,
        &["import-keystore", &keystore],
        "must be a power of two",
    );

    fs::write(&keystore, &original).unwrap();
    edit_json(Path::new(&keystore), |document| {
        document["crypto"]["mac"] = flip_first_digit(&document["crypto"]["mac"]);
    });
    refused(
        &scratch,
        &[
            "import-keystore",
            &keystore,
            "--password-file",
            &password,
            "--keystore-password-file",
            keystore_pw,
        ],
        "invalid password or corrupted keystore",
    );

    fs::write(&keystore, br#"{"hello": "world"}"#).unwrap();
    refused(
        &scratch,
        &["import-keystore", &keystore],
        "`version` is missing",
    );

    fs::write(&keystore, vec![b' '; 70 * 1024]).unwrap();
    refused(&scratch, &["import-keystore", &keystore], "larger than");

    // A plaintext key in the wrong file is not echoed back.
    let plaintext = "\"4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\"";
    fs::write(&keystore, plaintext).unwrap();
    let stderr = refused(
        &scratch,
        &["import-keystore", &keystore],
        "must be a JSON object",
    );
    assert!(!stderr.contains("4c0883a6"), "{stderr}");
}

#[test]
fn a_held_vault_lock_refuses_a_second_writer() {
    let (scratch, password, _) = setup();
    let home = keyward::home::Home::single(&scratch.home).unwrap();
    let _held = home.lock_vault().unwrap();
    refused(
        &scratch,
        &["account", "add", "--password-file", &password],
        "another keyward command is changing the wallet",
    );
}
