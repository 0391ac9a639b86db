//! The CLI as a person uses it, driven through a pseudo-terminal.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use keyward::hd;
use keyward::home::Home;
use keyward::keystore::{Label, UnlockedVault, Vault};
use keyward::secret::Secret;
use serde_json::Value;

use crate::support::canary::base32_decode;
use crate::support::pty::Stdin;
use crate::support::{OutputExt, PASSWORD, Scratch};

pub(crate) use crate::support::mcp::ANVIL_PHRASE;
pub(crate) const ANVIL_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
pub(crate) const ANVIL_1: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// Creates a wallet from `phrase` directly through the library (the CLI path is tested below).
pub(crate) fn create_wallet(scratch: &Scratch, phrase: &str) {
    let home = Home::single(&scratch.home).unwrap();
    let lock = home.lock_vault().unwrap();
    let vault = UnlockedVault::create(
        hd::parse_phrase(phrase).unwrap(),
        &Secret::new(PASSWORD.to_owned()),
        Label::new("main").unwrap(),
    )
    .unwrap();
    vault.save_new(&home.vault_path(), &lock).unwrap();
}

/// `keyward export-keystore ACCOUNT OUT` with both passwords from files.
pub(crate) fn export_keystore(
    scratch: &Scratch,
    account: &str,
    out: &Path,
    password: &Path,
    keystore_password: &Path,
) -> std::process::Output {
    scratch.run(&[
        "export-keystore",
        account,
        out.to_str().unwrap(),
        "--password-file",
        password.to_str().unwrap(),
        "--keystore-password-file",
        keystore_password.to_str().unwrap(),
    ])
}

/// Answers the password prompts of `keyward init` on the terminal.
fn type_new_password(session: &mut crate::support::Session, password: &str) {
    session.expect("New password for the vault");
    session.type_line(password);
    session.expect("Type it again");
    session.type_line(password);
}

/// The words of the phrase as `keyward init` shows them ("  1. word      2. word ...").
fn shown_words(screen: &str) -> Vec<String> {
    let mut words = Vec::new();
    for line in screen.lines() {
        let mut tokens = line.split_whitespace().peekable();
        while let Some(token) = tokens.next() {
            if token.ends_with('.')
                && token[..token.len() - 1].parse::<usize>().is_ok()
                && let Some(word) = tokens.next()
            {
                words.push(word.to_owned());
            }
        }
    }
    words
}

fn word_position(prompt: &str) -> usize {
    let after = prompt.rsplit("Word #").next().unwrap();
    after
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<usize>()
        .unwrap()
        - 1
}

/// The current TOTP code for a base32 secret.
pub(crate) fn totp_code(base32_secret: &str) -> String {
    let secret = keyward::totp::from_bytes(&base32_decode(base32_secret)).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    secret.expose_secret().generate(now).to_string()
}

/// The base32 secret in the otpauth URI shown on the terminal.
pub(crate) fn shown_totp_secret(screen: &str) -> String {
    let start = screen
        .find("secret=")
        .expect("no otpauth URI on the terminal")
        + "secret=".len();
    screen[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[test]
fn init_shows_a_new_phrase_once_on_the_terminal_and_confirms_two_words() {
    let scratch = Scratch::new();
    let mut session = scratch.session(&["init", "--label", "daily"], Stdin::Terminal);
    type_new_password(&mut session, PASSWORD);
    let screen = session.expect("Press Enter once you have written them down.");
    let words = shown_words(&screen);
    assert_eq!(
        words.len(),
        24,
        "a new phrase has 24 words by default:\n{screen}"
    );
    session.type_line("");
    // The phrase is cleared from the screen and scrollback before the questions.
    session.expect("\x1b[3J");
    for _ in 0..2 {
        let prompt = session.expect("(hidden): ");
        session.type_line(&words[word_position(&prompt)]);
    }
    let finished = session.finish();
    finished.output.assert_success();

    let phrase = words.join(" ");
    let expected = hd::parse_phrase(&phrase)
        .unwrap()
        .account_key(0)
        .unwrap()
        .address();
    let stdout = finished.output.stdout_text();
    assert!(stdout.contains(&expected.to_checksum(None)), "{stdout}");
    assert!(
        stdout.contains("daily") && stdout.contains("m/44'/60'/0'/0/0"),
        "{stdout}"
    );
    for stream in [&finished.output.stdout, &finished.output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(&words[..3].join(" ")),
            "the phrase reached stdout or stderr"
        );
    }
    let mode = fs::metadata(scratch.vault()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let home_mode = fs::metadata(&scratch.home).unwrap().permissions().mode() & 0o777;
    assert_eq!(home_mode, 0o700);
}

#[test]
fn init_with_twelve_words_and_wrong_answers_creates_nothing() {
    let scratch = Scratch::new();
    let mut session = scratch.session(&["init", "--words", "12"], Stdin::Terminal);
    type_new_password(&mut session, PASSWORD);
    let screen = session.expect("Press Enter once you have written them down.");
    assert_eq!(shown_words(&screen).len(), 12);
    session.type_line("");
    for _ in 0..3 * 2 {
        session.expect("(hidden): ");
        session.type_line("wrongword");
    }
    let finished = session.finish();
    finished
        .output
        .assert_error("did not match the recovery phrase; nothing was created");
    assert!(!scratch.vault().exists());
}

#[test]
fn init_import_mnemonic_restores_the_known_accounts() {
    let scratch = Scratch::new();
    let mut session = scratch.session(&["init", "--import-mnemonic"], Stdin::Terminal);
    type_new_password(&mut session, PASSWORD);
    session.expect("Recovery phrase");
    // One typo first: the error names the word's position, not the word.
    session.type_line(&ANVIL_PHRASE.replacen("junk", "junkk", 1));
    let retry = session.expect("Recovery phrase");
    assert!(
        retry.contains("word 12 is not in the BIP-39 English word list"),
        "{retry}"
    );
    assert!(!retry.contains("junkk"), "{retry}");
    session.type_line(&ANVIL_PHRASE.to_uppercase());
    let finished = session.finish();
    finished.output.assert_success();
    assert!(finished.output.stdout_text().contains(ANVIL_0));

    let listed = scratch.run(&["accounts"]);
    listed.assert_success();
    assert!(listed.stdout_text().contains(ANVIL_0));
}

#[test]
fn init_refuses_weak_passwords_with_the_reason() {
    let scratch = Scratch::new();
    let mut session = scratch.session(&["init", "--import-mnemonic"], Stdin::Terminal);
    for weak in ["short", "password1234"] {
        session.expect("New password for the vault");
        session.type_line(weak);
    }
    session.expect("New password for the vault");
    session.type_line("aaaaaaaaaaaaaaaa");
    let finished = session.finish();
    finished.output.assert_error("too easy to guess");
    assert!(
        finished.transcript.contains("too short"),
        "{}",
        finished.transcript
    );
    assert!(!scratch.home.exists() || !scratch.vault().exists());
}

#[test]
fn init_refuses_mismatched_passwords() {
    let scratch = Scratch::new();
    let mut session = scratch.session(&["init"], Stdin::Terminal);
    for _ in 0..3 {
        session.expect("New password for the vault");
        session.type_line(PASSWORD);
        session.expect("Type it again");
        session.type_line("orchid velvet canyon eighteen");
    }
    session
        .finish()
        .output
        .assert_error("the two passwords did not match");
    assert!(!scratch.vault().exists());
}

#[test]
fn init_never_replaces_an_existing_wallet() {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let before = fs::read(scratch.vault()).unwrap();
    let session = scratch.session(&["init"], Stdin::Terminal);
    session.finish().output.assert_error("never replaces one");
    assert_eq!(fs::read(scratch.vault()).unwrap(), before);
}

#[test]
fn init_without_a_terminal_says_why_and_touches_nothing() {
    let scratch = Scratch::new();
    scratch.run(&["init"]).assert_error("needs a terminal");
    assert!(!scratch.home.exists());
}

#[test]
fn accounts_need_no_password_and_list_json() {
    let scratch = Scratch::new();
    scratch.run(&["accounts"]).assert_error("no wallet at");
    create_wallet(&scratch, ANVIL_PHRASE);

    let table = scratch.run(&["accounts"]);
    table.assert_success();
    let text = table.stdout_text();
    assert!(text.contains("main") && text.contains(ANVIL_0), "{text}");
    assert!(text.contains("not enrolled"), "{text}");

    let json = scratch.run(&["accounts", "--json"]);
    json.assert_success();
    let document: Value = serde_json::from_str(&json.stdout_text()).unwrap();
    assert_eq!(document["accounts"][0]["address"], ANVIL_0);
    assert_eq!(document["accounts"][0]["label"], "main");
    assert_eq!(document["accounts"][0]["kind"], "hd");
    assert_eq!(document["accounts"][0]["path"], "m/44'/60'/0'/0/0");
    assert_eq!(document["totp_enrolled"], false);
}

#[test]
fn account_add_derives_the_next_index() {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let password = scratch.password_file("pw", PASSWORD, 0o600);
    let password = password.to_str().unwrap();

    let added = scratch.run(&[
        "account",
        "add",
        "--label",
        "savings",
        "--password-file",
        password,
    ]);
    added.assert_success();
    assert!(
        added.stdout_text().contains(ANVIL_1),
        "{}",
        added.stdout_text()
    );

    scratch
        .run(&[
            "account",
            "add",
            "--label",
            "SAVINGS",
            "--password-file",
            password,
        ])
        .assert_error("already taken");
    scratch
        .run(&[
            "account",
            "add",
            "--label",
            "0xnope",
            "--password-file",
            password,
        ])
        .assert_error("cannot start with 0x");

    let vault = Vault::load(&scratch.vault()).unwrap();
    let labels: Vec<_> = vault.accounts().iter().map(|a| a.label.as_str()).collect();
    assert_eq!(labels, ["main", "savings"]);
}

#[test]
fn account_add_asks_on_the_terminal_without_a_password_file() {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let mut session = scratch.session(&["account", "add"], Stdin::Terminal);
    session.expect("Password of the vault (input is hidden): ");
    session.type_line(PASSWORD);
    let finished = session.finish();
    finished.output.assert_success();
    assert!(finished.output.stdout_text().contains("account-1"));
    assert!(
        !finished.transcript.contains(PASSWORD),
        "the password was echoed"
    );
}

#[test]
fn totp_enroll_takes_a_piped_code_and_keeps_the_old_secret_until_a_new_one_is_confirmed() {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let password = scratch.password_file("pw", PASSWORD, 0o600);
    let password = password.to_str().unwrap();
    let enrolled_secret = |scratch: &Scratch| {
        Vault::load(&scratch.vault())
            .unwrap()
            .unlock(&Secret::new(PASSWORD.to_owned()))
            .unwrap()
            .totp()
            .map(|secret| secret.secret_bytes().to_vec())
    };

    // First enrollment, the code piped on stdin.
    let mut session = scratch.session(
        &["totp", "enroll", "--password-file", password],
        Stdin::Pipe,
    );
    let screen = session.expect("from standard input");
    assert!(screen.contains("otpauth://totp/keyward:wallet"), "{screen}");
    assert!(
        screen.contains('█') || screen.contains('▀'),
        "no QR code:\n{screen}"
    );
    let first = shown_totp_secret(&screen);
    session.pipe_line(&totp_code(&first));
    let finished = session.finish();
    finished.output.assert_success();
    assert_eq!(enrolled_secret(&scratch), Some(base32_decode(&first)));
    assert!(
        scratch
            .run(&["accounts"])
            .stdout_text()
            .contains("TOTP second factor: enrolled")
    );

    // Re-enrollment with wrong codes changes nothing.
    let mut session = scratch.session(
        &["totp", "enroll", "--password-file", password],
        Stdin::Pipe,
    );
    let screen = session.expect("from standard input");
    assert!(screen.contains("stays active"), "{screen}");
    for wrong in ["000000", "12345", "abcdef"] {
        session.pipe_line(wrong);
    }
    session.finish().output.assert_error("nothing changed");
    assert_eq!(enrolled_secret(&scratch), Some(base32_decode(&first)));

    // Re-enrollment on the terminal, with a correct code, replaces it.
    let mut session = scratch.session(
        &["totp", "enroll", "--password-file", password],
        Stdin::Terminal,
    );
    let screen = session.expect("Code shown by the app");
    let second = shown_totp_secret(&screen);
    assert_ne!(second, first);
    session.type_line(&totp_code(&second));
    let finished = session.finish();
    finished.output.assert_success();
    assert!(
        finished.transcript.ends_with("\x1b[H\x1b[2J\x1b[3J"),
        "the secret was not cleared"
    );
    assert_eq!(enrolled_secret(&scratch), Some(base32_decode(&second)));
}

#[test]
fn export_then_import_round_trips_through_a_keystore_file() {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let password = scratch.password_file("pw", PASSWORD, 0o600);
    let keystore_password = scratch.password_file("ks", "lantern harbor quietly 42", 0o600);
    let out = scratch.inputs.join("main.json");

    export_keystore(&scratch, "main", &out, &password, &keystore_password).assert_success();
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Importing a key the vault already holds is refused before any password is asked.
    scratch
        .run(&["import-keystore", out.to_str().unwrap()])
        .assert_error("already in the vault");

    let other = Scratch::new();
    create_wallet(
        &other,
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    );
    other
        .run(&[
            "import-keystore",
            out.to_str().unwrap(),
            "--label",
            "from-anvil",
            "--password-file",
            password.to_str().unwrap(),
            "--keystore-password-file",
            keystore_password.to_str().unwrap(),
        ])
        .assert_success();
    let listed = other.run(&["accounts", "--json"]);
    let document: Value = serde_json::from_str(&listed.stdout_text()).unwrap();
    assert_eq!(document["accounts"][1]["address"], ANVIL_0);
    assert_eq!(document["accounts"][1]["kind"], "imported");
    assert_eq!(document["accounts"][1]["label"], "from-anvil");
}

#[test]
fn keyward_home_and_the_xdg_defaults_choose_where_the_vault_lives() {
    let scratch = Scratch::new();
    create_wallet(&scratch, ANVIL_PHRASE);
    let mut by_env = crate::support::keyward_command();
    by_env.env("KEYWARD_HOME", &scratch.home).arg("accounts");
    let listed = crate::support::run_detached(by_env);
    listed.assert_success();
    assert!(listed.stdout_text().contains(ANVIL_0));

    // Without --home or KEYWARD_HOME, the vault is $HOME/.local/share/keyward/vault.json, or
    // $XDG_DATA_HOME/keyward/vault.json when that is set.
    let user = Scratch::new();
    let xdg = user.inputs.join(".local/share/keyward");
    fs::create_dir_all(&xdg).unwrap();
    fs::copy(scratch.vault(), xdg.join("vault.json")).unwrap();
    let mut by_home = crate::support::keyward_command();
    by_home.env("HOME", &user.inputs).arg("accounts");
    crate::support::run_detached(by_home).assert_success();

    let mut by_xdg = crate::support::keyward_command();
    by_xdg
        .env("HOME", &user.inputs)
        .env("XDG_DATA_HOME", user.inputs.join("elsewhere"))
        .arg("accounts");
    crate::support::run_detached(by_xdg).assert_error("elsewhere/keyward/vault.json");
}

#[test]
fn commands_that_handle_secrets_run_without_core_dumps() {
    let scratch = Scratch::new();
    let mut session = scratch.session(&["init", "--import-mnemonic"], Stdin::Terminal);
    session.expect("New password for the vault");
    // keyward is now waiting for a password: read its limits from the outside.
    let limits = fs::read_to_string(format!("/proc/{}/limits", session.pid())).unwrap();
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    let status = fs::read_to_string(format!("/proc/{}/status", session.pid())).unwrap();
    assert!(
        status.contains("keyward"),
        "not keyward's process: {status}"
    );
    // Ctrl-C at a hidden prompt cancels cleanly.
    session.type_line("\u{3}");
    session
        .finish()
        .output
        .assert_error("cancelled; nothing was changed");
    assert!(!scratch.vault().exists());
}
