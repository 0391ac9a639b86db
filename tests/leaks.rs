//! Leak canaries over the MCP surface: the real `keyward serve`, holding a wallet made of canary
//! secrets (phrase, imported key, password, TOTP secret), runs at `RUST_LOG=trace` while an MCP
//! client calls every tool with valid and with invalid arguments, in both model views, and a
//! human approves on the page. Not one canary, in any encoding, may appear in stdout (every
//! tool result and error travels there), stderr, the approval page's HTML, or any file the server
//! leaves in its home, the audit log included.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use keyward::files::FileLock;
use keyward::keystore::{Label, UnlockedVault};
use keyward::secret::{PrivateKey, Secret};
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, ReadBuf};

use crate::canary::{CANARY_ENTROPY, IMPORTED_KEY, VAULT_PASSWORD};
use crate::funds::human;
use crate::support::anvil::{Anvil, TEST_DOLLAR};
use crate::support::canary::Canaries;
use crate::support::files_under;
use crate::support::human::{Human, http};
use crate::support::mcp::{call, config_text};

/// The canary wallet's TOTP secret.
const CANARY_TOTP: [u8; 20] = [
    0xc4, 0x1a, 0x77, 0x0e, 0x9b, 0x52, 0xd3, 0x68, 0x2f, 0xa1, 0x3c, 0xe5, 0x80, 0x17, 0x6d, 0xb9,
    0x44, 0xf2, 0x0b, 0x9e,
];
const STRANGER: &str = "0x1111111111111111111111111111111111111111";

/// Copies everything read through it: the server's stdout, as the MCP client receives it.
struct Tee<R> {
    inner: R,
    copy: Arc<Mutex<Vec<u8>>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tee<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = buf.filled()[before..].to_vec();
            self.copy.lock().unwrap().extend_from_slice(&fresh);
        }
        polled
    }
}

fn canaries() -> Canaries {
    let mut canaries = Canaries::new();
    let mnemonic = keyward::hd::from_entropy(&CANARY_ENTROPY).unwrap();
    let phrase: Vec<&str> = mnemonic.expose_secret().words().collect();
    canaries.phrase("canary phrase", &phrase.join(" "));
    canaries.bytes("canary entropy", &CANARY_ENTROPY);
    canaries.bytes("canary seed", mnemonic.seed("").expose_secret());
    for index in 0..3 {
        let key = mnemonic.account_key(index).unwrap();
        canaries.bytes(&format!("canary key {index}"), key.expose_secret());
    }
    canaries.bytes("canary imported key", &IMPORTED_KEY);
    canaries.text("canary password", VAULT_PASSWORD);
    canaries.bytes("canary TOTP secret", &CANARY_TOTP);
    canaries
}

/// A home holding the canary wallet, its main account funded on `anvil`.
fn canary_home(anvil: &Anvil, view: &str) -> (tempfile::TempDir, String) {
    let home = tempfile::tempdir().unwrap();
    let mnemonic = keyward::hd::from_entropy(&CANARY_ENTROPY).unwrap();
    let password = Secret::new(VAULT_PASSWORD.to_owned());
    let mut vault =
        UnlockedVault::create(mnemonic, &password, Label::new("main").unwrap()).unwrap();
    vault
        .add_imported(
            PrivateKey::from_bytes(&IMPORTED_KEY).unwrap(),
            Some(Label::new("imported").unwrap()),
        )
        .unwrap();
    vault
        .set_totp(keyward::totp::from_bytes(&CANARY_TOTP).unwrap())
        .unwrap();
    let lock = FileLock::try_exclusive(&home.path().join("vault.lock")).unwrap();
    vault
        .save_new(&home.path().join("vault.json"), &lock)
        .unwrap();
    let main = vault.accounts()[0].address.to_checksum(None);
    anvil.rpc(
        "anvil_setBalance",
        json!([main, "0x56bc75e2d63100000"]), // 100 ETH
    );
    let config = config_text(&anvil.url, 31337).replace(
        "[privacy]\n",
        &format!("[privacy]\nmodel_view = \"{view}\"\n"),
    );
    std::fs::write(home.path().join("keyward.toml"), config).unwrap();
    (home, main)
}

/// Each tool with valid arguments and with invalid ones.
fn cases() -> Vec<(&'static str, Value, Value)> {
    let mail = json!({
        "types": {
            "EIP712Domain": [{ "name": "name", "type": "string" }, { "name": "chainId", "type": "uint256" }],
            "Mail": [{ "name": "contents", "type": "string" }]
        },
        "primaryType": "Mail",
        "domain": { "name": "Ether Mail", "chainId": 31337 },
        "message": { "contents": "hello" }
    });
    vec![
        ("wallet_accounts", json!({}), json!({ "surprise": 1 })),
        ("wallet_balances", json!({}), json!({ "account": "nobody" })),
        (
            "wallet_token_info",
            json!({ "token": TEST_DOLLAR }),
            json!({ "token": "0x12" }),
        ),
        (
            "wallet_chain_info",
            json!({}),
            json!({ "network": "nowhere" }),
        ),
        (
            "wallet_transaction_status",
            json!({ "hash": format!("0x{}", "ab".repeat(32)) }),
            json!({ "hash": "zz" }),
        ),
        (
            "wallet_transfer",
            json!({ "to": STRANGER, "amount": "0.5" }),
            json!({ "to": STRANGER, "amount": "-1" }),
        ),
        (
            "wallet_approve_token",
            json!({ "token": TEST_DOLLAR, "spender": STRANGER, "amount": "5" }),
            json!({ "token": TEST_DOLLAR, "spender": "me", "amount": "5" }),
        ),
        (
            "wallet_revoke_approval",
            json!({ "token": TEST_DOLLAR, "spender": STRANGER }),
            json!({ "token": "TUSD?" }),
        ),
        (
            "wallet_sign_message",
            json!({ "message": "hello from the canary test" }),
            json!({ "message": "", "encoding": "rot13" }),
        ),
        (
            "wallet_sign_typed_data",
            json!({ "typed_data": mail }),
            json!({ "typed_data": { "types": {} } }),
        ),
        (
            "wallet_contract_call",
            json!({ "to": TEST_DOLLAR, "data": "0xdeadbeef" }),
            json!({ "to": TEST_DOLLAR, "data": "0xzz" }),
        ),
        (
            "wallet_request_status",
            json!({ "request_id": "req-0000000000000000" }),
            json!({ "request_id": 7 }),
        ),
    ]
}

#[tokio::test]
async fn no_canary_secret_reaches_stdout_stderr_results_page_or_audit_log_in_either_view() {
    let Some(anvil) = Anvil::start(None, 31337) else {
        return;
    };
    anvil.deploy_tokens();
    let canaries = canaries();
    assert!(
        canaries
            .find(format!("0x{}", hex::encode(IMPORTED_KEY)).as_bytes())
            .is_some(),
        "the search must find a canary where there is one"
    );
    // The full view unlocks from a password file at start; the masked view is unlocked by the
    // password typed on the approval page.
    for (view, password_file) in [("full", true), ("masked", false)] {
        let (home, main) = canary_home(&anvil, view);
        let logs = tempfile::tempdir().unwrap();
        let stderr_path = logs.path().join("stderr.log");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
        command.arg("--home").arg(home.path()).arg("serve");
        if password_file {
            let file = logs.path().join("password");
            std::fs::write(&file, VAULT_PASSWORD).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            command.arg("--password-file").arg(&file);
        }
        let mut child = command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "trace")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let tee = Tee {
            inner: child.stdout.take().unwrap(),
            copy: stdout.clone(),
        };
        let client = ().serve((tee, child.stdin.take().unwrap())).await.unwrap();

        let tools: Vec<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let cases = cases();
        let mut covered: Vec<String> = cases.iter().map(|c| c.0.to_owned()).collect();
        covered.sort();
        let mut listed = tools.clone();
        listed.sort();
        assert_eq!(covered, listed, "every tool needs a case");

        let mut results = Vec::new();
        let mut pages = Vec::new();
        let mut person = Human::owning(&CANARY_TOTP, VAULT_PASSWORD);
        for (tool, valid, invalid) in cases {
            let good = call(&client, tool, valid).await;
            let bad = call(&client, tool, invalid).await;
            assert_eq!(bad.is_error, Some(true), "{tool} took invalid arguments");
            let good_value = good.structured_content.clone().unwrap_or_default();
            // Approve the transfer and the message on the page, as the human would.
            if ["wallet_transfer", "wallet_sign_message"].contains(&tool) {
                let url = good_value["approval_url"].as_str().unwrap().to_owned();
                let (page, back) = human(move || {
                    let page = http("GET", &url, &[], None);
                    let answered = person.answer(&url, "approve");
                    assert_eq!(answered.status, 200, "{}", answered.body);
                    (page, person)
                })
                .await;
                person = back;
                pages.push(page.body);
                let id = good_value["request_id"].as_str().unwrap();
                let mut state = Value::Null;
                for _ in 0..20 {
                    let status = call(
                        &client,
                        "wallet_request_status",
                        json!({ "request_id": id, "wait_seconds": 5 }),
                    )
                    .await;
                    state = status.structured_content.clone().unwrap_or_default();
                    if state["state"] == "mined" || !state["signature"].is_null() {
                        break;
                    }
                }
                assert!(
                    state["state"] == "mined" || !state["signature"].is_null(),
                    "{tool} did not finish: {state}"
                );
                results.push(serde_json::to_string(&state).unwrap());
            }
            results.push(serde_json::to_string(&good).unwrap());
            results.push(serde_json::to_string(&bad).unwrap());
        }
        client.cancel().await.unwrap();
        let _ = child.wait().await;

        let stdout = stdout.lock().unwrap().clone();
        let stderr = std::fs::read(&stderr_path).unwrap();
        let stderr_text = String::from_utf8_lossy(&stderr);
        assert!(
            stderr_text.matches("TRACE").count() > 100,
            "trace logging was not on"
        );
        assert!(
            !stderr_text.contains("withheld a log line"),
            "a code path tried to log a secret:\n{stderr_text}"
        );
        canaries.assert_absent(&stdout, &format!("stdout ({view} view)"));
        canaries.assert_absent(&stderr, &format!("stderr ({view} view)"));
        for (i, result) in results.iter().enumerate() {
            canaries.assert_absent(result.as_bytes(), &format!("tool result {i} ({view})"));
        }
        for page in &pages {
            canaries.assert_absent(page.as_bytes(), &format!("the approval page ({view})"));
        }
        let files = files_under(home.path());
        assert!(
            files
                .iter()
                .any(|(path, _)| path.to_string_lossy().contains("audit")),
            "no audit log among {:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        for (path, bytes) in &files {
            canaries.assert_absent(bytes, &format!("{} ({view})", path.display()));
        }
        // Logs mask addresses by default; the masked view keeps them from the model too.
        let main_hex = main[2..].to_ascii_lowercase();
        assert!(
            !stderr_text.to_ascii_lowercase().contains(&main_hex),
            "a full address reached the log"
        );
        let stdout_lower = String::from_utf8_lossy(&stdout).to_ascii_lowercase();
        if view == "full" {
            assert!(
                stdout_lower.contains(&main_hex),
                "the full view shows addresses"
            );
        } else {
            assert!(
                !stdout_lower.contains(&main_hex),
                "a full own address reached the model in the masked view"
            );
        }
        println!(
            "{view} view: {} tool results, {} bytes of stdout, {} bytes of trace log, {} files, \
             {} canaries searched: none found",
            results.len(),
            stdout.len(),
            stderr.len(),
            files.len(),
            canaries.len()
        );
    }
}
