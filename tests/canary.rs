//! Leak canaries: every CLI command, on success and failure paths, at RUST_LOG=trace, with known
//! secrets, and not one of them may appear in stdout, stderr or any file keyward leaves in its
//! home, in any encoding. The terminal is the one place secrets may be shown; the test checks that
//! they do appear there, which proves the search would catch them anywhere else.

use std::fs;

use keyward::hd;
use keyward::keystore::Keystore;
use keyward::secret::{PrivateKey, Secret};

use crate::cli::{shown_totp_secret, totp_code};
use crate::support::canary::{Canaries, base32_decode};
use crate::support::pty::{Finished, Stdin};
use crate::support::{OutputExt, Scratch};

/// A phrase from fixed entropy, its words unusual enough that any three in a row mean a leak.
pub(crate) const CANARY_ENTROPY: [u8; 32] = [
    0x9c, 0x1f, 0x3e, 0x7a, 0x55, 0xd2, 0x08, 0x61, 0xbe, 0x47, 0x2a, 0xf0, 0x93, 0x6c, 0x1d, 0x84,
    0x3b, 0xe9, 0x70, 0x26, 0xcf, 0x5a, 0x11, 0x98, 0x4d, 0xa3, 0x67, 0x0e, 0xf5, 0x32, 0xb8, 0x7c,
];
pub(crate) const VAULT_PASSWORD: &str = "canary-Vault-7f3a9c-orchid-velvet";
const KEYSTORE_PASSWORD: &str = "canary-Keystore-2b8e41-lantern-harbor";
const EXPORT_PASSWORD: &str = "canary-Export-5d0c77-meadow-quartz";
/// The key of the imported account (not derived from the phrase).
pub(crate) const IMPORTED_KEY: [u8; 32] = [
    0x4f, 0x3e, 0xdf, 0x98, 0x3a, 0xc6, 0x36, 0xa6, 0x5a, 0x84, 0x2c, 0xe7, 0xc7, 0x8d, 0x9a, 0xa7,
    0x06, 0xd3, 0xb1, 0x13, 0xbc, 0xe9, 0xc4, 0x6f, 0x30, 0xd7, 0xd2, 0x1e, 0x7a, 0xb2, 0x24, 0x0e,
];

/// Everything the commands printed, by command.
#[derive(Default)]
struct Runs {
    outputs: Vec<(String, std::process::Output)>,
    transcripts: Vec<(String, String)>,
}

impl Runs {
    fn output(&mut self, name: impl Into<String>, output: std::process::Output) {
        self.outputs.push((name.into(), output));
    }

    fn session(&mut self, name: impl Into<String>, finished: Finished) {
        let name = name.into();
        self.transcripts.push((name.clone(), finished.transcript));
        self.outputs.push((name, finished.output));
    }
}

/// Runs each command and checks that it succeeds (`None`) or fails with the expected error.
fn run_cases(scratch: &Scratch, runs: &mut Runs, cases: &[(&str, Vec<&str>, Option<&str>)]) {
    for (name, args, expected) in cases {
        let output = scratch.run(args);
        match expected {
            Some(expected) => output.assert_error(expected),
            None => output.assert_success(),
        };
        runs.output(*name, output);
    }
}

#[test]
fn no_secret_leaks_from_any_command_on_any_path() {
    let scratch = Scratch::new();
    let phrase = hd::from_entropy(&CANARY_ENTROPY).unwrap();
    let phrase_text = phrase.expose_secret().to_string();

    let mut canaries = Canaries::new();
    canaries.phrase("recovery phrase", &phrase_text);
    canaries.bytes("phrase entropy", &CANARY_ENTROPY);
    canaries.bytes("seed", phrase.seed("").expose_secret());
    for index in 0..2 {
        canaries.bytes(
            &format!("account {index} key"),
            phrase.account_key(index).unwrap().expose_secret(),
        );
    }
    canaries.bytes("imported key", &IMPORTED_KEY);
    for (what, password) in [
        ("vault password", VAULT_PASSWORD),
        ("keystore password", KEYSTORE_PASSWORD),
        ("export password", EXPORT_PASSWORD),
    ] {
        canaries.text(what, password);
    }

    let vault_pw = scratch.password_file("vault-pw", VAULT_PASSWORD, 0o600);
    let wrong_pw = scratch.password_file("wrong-pw", "canary-Wrong-00ff11-granite-ember", 0o600);
    let open_pw = scratch.password_file("open-pw", VAULT_PASSWORD, 0o644);
    let keystore_pw = scratch.password_file("keystore-pw", KEYSTORE_PASSWORD, 0o600);
    let export_pw = scratch.password_file("export-pw", EXPORT_PASSWORD, 0o600);
    let weak_pw = scratch.password_file("weak-pw", "password1234", 0o600);
    let [vault_pw, wrong_pw, open_pw, keystore_pw, export_pw, weak_pw] = [
        &vault_pw,
        &wrong_pw,
        &open_pw,
        &keystore_pw,
        &export_pw,
        &weak_pw,
    ]
    .map(|path| path.to_str().unwrap().to_owned());

    // The keystore to import, written with the library (cast interop is tested separately).
    let imported = PrivateKey::from_bytes(&IMPORTED_KEY).unwrap();
    let keystore_file = scratch.inputs.join("import.json");
    fs::write(
        &keystore_file,
        Keystore::encrypt(&imported, &Secret::new(KEYSTORE_PASSWORD.to_owned())).unwrap(),
    )
    .unwrap();
    let keystore_file = keystore_file.to_str().unwrap().to_owned();
    let malformed = scratch.inputs.join("malformed.json");
    fs::write(&malformed, format!("\"{}\"", hex::encode(IMPORTED_KEY))).unwrap();
    let malformed = malformed.to_str().unwrap().to_owned();
    let export_out = scratch.home.join("exported.json");
    let export_out = export_out.to_str().unwrap().to_owned();

    let mut runs = Runs::default();

    // Help for every command.
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["accounts", "--help"],
        vec!["account", "add", "--help"],
        vec!["import-keystore", "--help"],
        vec!["export-keystore", "--help"],
        vec!["totp", "enroll", "--help"],
    ] {
        let output = scratch.run(&args);
        output.assert_success();
        runs.output(args.join(" "), output);
    }

    // No wallet yet.
    let output = scratch.run(&["accounts"]);
    output.assert_error("no wallet at");
    runs.output("accounts before init", output);

    // init --import-mnemonic: a weak password, a bad checksum, then success.
    let mut session = scratch.session(&["init", "--import-mnemonic"], Stdin::Terminal);
    session.expect("New password for the vault");
    session.type_line("password1234");
    session.expect("New password for the vault");
    session.type_line(VAULT_PASSWORD);
    session.expect("Type it again");
    session.type_line(VAULT_PASSWORD);
    let bad_checksum = phrase_text.replacen(
        phrase_text.split(' ').next().unwrap(),
        if phrase_text.starts_with("abandon") {
            "zoo"
        } else {
            "abandon"
        },
        1,
    );
    session.expect("Recovery phrase");
    session.type_line(&bad_checksum);
    session.expect("Recovery phrase");
    session.type_line(&phrase_text);
    let finished = session.finish();
    finished.output.assert_success();
    runs.session("init --import-mnemonic", finished);

    // init again is refused.
    let output = scratch.session(&["init"], Stdin::Terminal).finish();
    output.output.assert_error("never replaces one");
    runs.session("init over a wallet", output);

    for args in [vec!["accounts"], vec!["accounts", "--json"]] {
        let output = scratch.run(&args);
        output.assert_success();
        runs.output(args.join(" "), output);
    }

    // account add: wrong password, world-readable password file, success.
    run_cases(
        &scratch,
        &mut runs,
        &[
            (
                "account add, wrong password",
                vec!["account", "add", "--password-file", &wrong_pw],
                Some("invalid password or corrupted vault"),
            ),
            (
                "account add, 0644 password file",
                vec!["account", "add", "--password-file", &open_pw],
                Some("chmod 600"),
            ),
            (
                "account add",
                vec!["account", "add", "--password-file", &vault_pw],
                None,
            ),
        ],
    );

    // import-keystore: malformed file, wrong keystore password, success, duplicate.
    run_cases(
        &scratch,
        &mut runs,
        &[
            (
                "import malformed",
                vec![
                    "import-keystore",
                    &malformed,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &keystore_pw,
                ],
                Some("not a usable keystore"),
            ),
            (
                "import, wrong keystore password",
                vec![
                    "import-keystore",
                    &keystore_file,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &wrong_pw,
                ],
                Some("invalid password or corrupted keystore"),
            ),
            (
                "import, wrong vault password",
                vec![
                    "import-keystore",
                    &keystore_file,
                    "--password-file",
                    &wrong_pw,
                    "--keystore-password-file",
                    &keystore_pw,
                ],
                Some("invalid password or corrupted vault"),
            ),
            (
                "import",
                vec![
                    "import-keystore",
                    &keystore_file,
                    "--label",
                    "cold",
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &keystore_pw,
                ],
                None,
            ),
            (
                "import duplicate",
                vec![
                    "import-keystore",
                    &keystore_file,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &keystore_pw,
                ],
                Some("already in the vault"),
            ),
        ],
    );

    // export-keystore: unknown account, wrong password, weak new password, success, existing out.
    run_cases(
        &scratch,
        &mut runs,
        &[
            (
                "export unknown account",
                vec![
                    "export-keystore",
                    "nobody",
                    &export_out,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &export_pw,
                ],
                Some("no such account"),
            ),
            (
                "export, wrong password",
                vec![
                    "export-keystore",
                    "cold",
                    &export_out,
                    "--password-file",
                    &wrong_pw,
                    "--keystore-password-file",
                    &export_pw,
                ],
                Some("invalid password or corrupted vault"),
            ),
            (
                "export, weak password",
                vec![
                    "export-keystore",
                    "cold",
                    &export_out,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &weak_pw,
                ],
                Some("not accepted"),
            ),
            (
                "export",
                vec![
                    "export-keystore",
                    "cold",
                    &export_out,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &export_pw,
                ],
                None,
            ),
            (
                "export over a file",
                vec![
                    "export-keystore",
                    "0",
                    &export_out,
                    "--password-file",
                    &vault_pw,
                    "--keystore-password-file",
                    &export_pw,
                ],
                Some("never overwrites"),
            ),
        ],
    );

    // totp enroll: wrong codes, then success, then a re-enrollment that fails and one that works.
    let mut totp_secrets = Vec::new();
    for (name, succeed) in [
        ("totp enroll, wrong codes", false),
        ("totp enroll", true),
        ("totp re-enroll, wrong codes", false),
        ("totp re-enroll", true),
    ] {
        let mut session = scratch.session(
            &["totp", "enroll", "--password-file", &vault_pw],
            Stdin::Pipe,
        );
        let screen = session.expect("from standard input");
        let secret = shown_totp_secret(&screen);
        if succeed {
            session.pipe_line(&totp_code(&secret));
        } else {
            session.pipe_line("000000");
        }
        let finished = session.finish();
        if succeed {
            finished.output.assert_success();
        } else {
            finished.output.assert_error("nothing changed");
        }
        totp_secrets.push(secret);
        runs.session(name, finished);
    }
    for (index, secret) in totp_secrets.iter().enumerate() {
        canaries.bytes(&format!("TOTP secret {index}"), &base32_decode(secret));
    }

    // Nothing secret in any stdout or stderr...
    for (name, output) in &runs.outputs {
        canaries.assert_absent(&output.stdout, &format!("the stdout of `{name}`"));
        canaries.assert_absent(&output.stderr, &format!("the stderr of `{name}`"));
    }
    // ...the trace logs were really on, so the logs were checked too...
    let (_, init) = &runs
        .outputs
        .iter()
        .find(|(name, _)| name == "init --import-mnemonic")
        .unwrap();
    assert!(
        init.stderr_text().contains("TRACE"),
        "RUST_LOG=trace produced no trace output"
    );
    // ...nor in any file keyward wrote (the vault, the lock file, the exported keystore).
    let files = scratch.home_files();
    assert!(
        files.len() >= 3,
        "expected the vault, its lock and the export: {files:?}"
    );
    for (path, bytes) in &files {
        canaries.assert_absent(bytes, &path.display().to_string());
    }

    // The terminal is the trusted channel: the phrase and the TOTP secrets were shown there,
    // which proves the search finds these canaries when they are present.
    let (_, enroll_screen) = runs
        .transcripts
        .iter()
        .find(|(name, _)| name == "totp enroll")
        .unwrap();
    assert_eq!(
        canaries.find(enroll_screen.as_bytes()),
        Some("TOTP secret 1 (base32)"),
        "the canary search does not find a secret that is present"
    );
    let mut shown_phrase = Canaries::new();
    shown_phrase.phrase("phrase", &phrase_text);
    assert!(shown_phrase.find(bad_checksum.as_bytes()).is_some());
    assert!(canaries.len() > 60);
}

#[test]
fn debug_of_every_secret_type_prints_no_secret() {
    let phrase = hd::from_entropy(&CANARY_ENTROPY).unwrap();
    let phrase_text = phrase.expose_secret().to_string();
    let seed = phrase.seed("");
    let root = keyward::secret::ExtendedPrivateKey::from_seed(seed.expose_secret()).unwrap();
    let key = PrivateKey::from_bytes(&IMPORTED_KEY).unwrap();
    let totp = keyward::totp::from_bytes(&CANARY_ENTROPY[..20]).unwrap();
    let password: keyward::secret::Password = Secret::new(VAULT_PASSWORD.to_owned());
    let extended = hd::ExtendedKey::parse(root.expose_secret().to_base58().as_str()).unwrap();

    let mut canaries = Canaries::new();
    canaries.phrase("phrase", &phrase_text);
    canaries.bytes("entropy", &CANARY_ENTROPY);
    canaries.bytes("seed", seed.expose_secret());
    canaries.bytes("key", &IMPORTED_KEY);
    canaries.bytes("TOTP secret", &CANARY_ENTROPY[..20]);
    canaries.text("password", VAULT_PASSWORD);
    canaries.text("xprv", root.expose_secret().to_base58().as_str());
    let chain_code: &coins_bip32::prelude::XKeyInfo = root.expose_secret().as_ref();
    canaries.bytes("chain code", &chain_code.chain_code.0);

    for printed in [
        format!("{phrase:?}"),
        format!("{phrase:#?}"),
        format!("{seed:?}"),
        format!("{root:?}"),
        format!("{key:?}"),
        format!("{totp:?}"),
        format!("{password:?}"),
        format!("{extended:?}"),
        format!("{:?}", phrase.entropy()),
        format!("{:?}", totp.provisioning_uri("wallet")),
        format!("{:?}", totp.qr_code("wallet")),
    ] {
        canaries.assert_absent(printed.as_bytes(), &format!("Debug output {printed:?}"));
        assert!(printed.contains("[REDACTED]"), "{printed}");
    }
}
