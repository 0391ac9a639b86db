//! keyward over MCP: the pinned tool list, both protocol generations, the real binary over stdio,
//! and bad input that must never break the server.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

use crate::support::anvil::fixtures;
use crate::support::mcp::{Generation, ServerHome, call, ok, tool_error};

/// An RPC address where nothing listens: these tests exercise the MCP layer, not the chain.
const NO_RPC: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn tools_list_matches_the_golden_file() {
    let home = ServerHome::new(NO_RPC);
    let client = home.in_process(Generation::Initialize).await;
    let tools = client.list_all_tools().await.unwrap();
    let listed = serde_json::to_string_pretty(&json!({ "tools": tools })).unwrap() + "\n";
    let golden = fixtures().join("tools-list.json");
    if std::env::var_os("KEYWARD_BLESS").is_some() {
        std::fs::write(&golden, &listed).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        listed == expected,
        "tools/list differs from fixtures/tools-list.json; review the change and rerun with \
         KEYWARD_BLESS=1 to accept it.\n--- now ---\n{listed}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn both_protocol_generations_name_keyward_and_serve_the_same_tools() {
    let home = ServerHome::new(NO_RPC);
    let mut names = Vec::new();
    for (generation, version) in [
        (Generation::Initialize, ProtocolVersion::V_2025_11_25),
        (Generation::Discover, ProtocolVersion::V_2026_07_28),
    ] {
        let client = home.in_process(generation).await;
        let info = client.peer_info().unwrap();
        assert_eq!(info.protocol_version, version);
        let server = info.server_info.as_ref().unwrap();
        assert_eq!(server.name, "keyward");
        assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
        let tools = client.list_all_tools().await.unwrap();
        names.push(tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>());
        let accounts = call(&client, "wallet_accounts", json!({})).await;
        assert_eq!(ok(&accounts)["accounts"].as_array().unwrap().len(), 10);
        client.cancel().await.unwrap();
    }
    assert_eq!(names[0], names[1]);
    assert_eq!(names[0], crate::support::mcp::TOOL_NAMES);
}

#[tokio::test]
async fn wallet_accounts_works_while_locked_and_names_the_signer() {
    let home = ServerHome::new(NO_RPC);
    let client = home.in_process(Generation::Initialize).await;
    let result = call(&client, "wallet_accounts", json!({})).await;
    let accounts = &ok(&result)["accounts"];
    assert_eq!(
        accounts[0],
        json!({"number": 0, "label": "main", "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "signer_kind": "hd"})
    );
    assert_eq!(ok(&result)["totp_enrolled"], true);
    client.cancel().await.unwrap();

    // Without a wallet the tool says so, and the server keeps serving.
    std::fs::remove_file(home.path().join("vault.json")).unwrap();
    let client = home.in_process(Generation::Initialize).await;
    let (kind, message) = tool_error(&call(&client, "wallet_accounts", json!({})).await);
    assert_eq!(kind, "no_wallet");
    assert!(message.contains("keyward init"), "{message}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_real_binary_serves_both_generations_over_stdio() {
    let home = ServerHome::new(NO_RPC);
    for generation in [Generation::Initialize, Generation::Discover] {
        let client = home.child_process(generation).await;
        assert_eq!(
            client
                .peer_info()
                .unwrap()
                .server_info
                .as_ref()
                .unwrap()
                .name,
            "keyward"
        );
        assert_eq!(client.list_all_tools().await.unwrap().len(), 12);
        let result = call(&client, "wallet_accounts", json!({})).await;
        assert_eq!(ok(&result)["accounts"][9]["label"], "account-9");
        client.cancel().await.unwrap();
    }
}

#[test]
fn stdin_eof_ends_the_server_promptly_and_cleanly() {
    let home = ServerHome::new(NO_RPC);
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--home")
        .arg(home.path())
        .arg("serve")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"test","version":"0"}}}}}}"#
    )
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let response: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(response["result"]["serverInfo"]["name"], "keyward");

    let closed = Instant::now();
    drop(stdin);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // Generous: shared CI machines are slow; the benchmark prints the real figure.
        assert!(
            closed.elapsed() < Duration::from_secs(5),
            "keyward kept running after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    println!("exited {:?} after stdin closed", closed.elapsed());
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    stdout.read_line(&mut rest).unwrap();
    assert!(rest.is_empty(), "stdout after EOF: {rest:?}");
}

#[tokio::test]
async fn bad_input_is_a_tool_error_and_the_server_keeps_serving() {
    let home = ServerHome::new(NO_RPC);
    // The real binary: a 10 MB argument travels over stdio as it would from a host.
    let client = home.child_process(Generation::Initialize).await;
    let good = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let cases = [
        (
            "wallet_token_info",
            json!({"token": "0xZZbDB2315678afecb367f032d93F642f64180aa3"}),
            "invalid_argument",
            "40 hexadecimal digits",
        ),
        (
            "wallet_token_info",
            json!({"token": "5FbDB2315678afecb367f032d93F642f64180aa3"}),
            "invalid_argument",
            "must start with 0x",
        ),
        (
            "wallet_token_info",
            json!({"token": good.replacen('F', "f", 1)}),
            "invalid_argument",
            "wrong EIP-55 checksum",
        ),
        (
            "wallet_token_info",
            json!({}),
            "invalid_argument",
            "\"token\" is required",
        ),
        (
            "wallet_balances",
            json!({"acount": "main"}),
            "invalid_argument",
            "unknown argument \"acount\"; this tool takes account, network, block",
        ),
        (
            "wallet_accounts",
            json!({"verbose": true}),
            "invalid_argument",
            "this tool takes no arguments",
        ),
        (
            "wallet_balances",
            json!({"network": "x".repeat(10 << 20)}),
            "invalid_argument",
            "over 16384 bytes",
        ),
        (
            "wallet_balances",
            json!({"block": -1}),
            "invalid_argument",
            "must not be negative",
        ),
        (
            "wallet_balances",
            json!({"block": "-7"}),
            "invalid_argument",
            "must not be negative",
        ),
        (
            "wallet_balances",
            json!({"block": 1.5}),
            "invalid_argument",
            "without a fraction",
        ),
        (
            "wallet_balances",
            json!({"block": "99999999999999999999999"}),
            "invalid_argument",
            "too large",
        ),
        (
            "wallet_balances",
            json!({"block": 1e300}),
            "invalid_argument",
            "without a fraction",
        ),
        (
            "wallet_balances",
            json!({"network": "mainnet"}),
            "unknown_network",
            "no network is named \"mainnet\"; the configured networks are anvil",
        ),
        (
            "wallet_balances",
            json!({"account": "nobody"}),
            "unknown_account",
            "no such account",
        ),
        (
            "wallet_balances",
            json!({"account": 42}),
            "unknown_account",
            "no such account",
        ),
        (
            "wallet_transaction_status",
            json!({"hash": "0x1234"}),
            "invalid_argument",
            "64 hexadecimal digits",
        ),
        (
            "wallet_chain_info",
            json!({"network": ""}),
            "invalid_argument",
            "must not be empty",
        ),
        (
            "wallet_chain_info",
            json!({"network": 7}),
            "invalid_argument",
            "must be a string",
        ),
    ];
    for (tool, arguments, expected_kind, expected) in cases {
        let shown = arguments.to_string().chars().take(80).collect::<String>();
        let (kind, message) = tool_error(&call(&client, tool, arguments).await);
        assert_eq!(kind, expected_kind, "{tool} {shown}: {message}");
        assert!(message.contains(expected), "{tool} {shown}: {message}");
        assert!(message.len() < 300, "a long error echoes input: {message}");
    }
    // Unknown tools are a protocol error, as the MCP spec asks; the server still answers.
    let unknown = client
        .call_tool(rmcp::model::CallToolRequestParams::new("wallet_export_key"))
        .await;
    assert!(unknown.is_err());
    let result = call(&client, "wallet_accounts", json!({})).await;
    assert_eq!(ok(&result)["accounts"].as_array().unwrap().len(), 10);
    client.cancel().await.unwrap();
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "0x",
            "5FbDB2315678afecb367f032d93F642f64180aa3",
            "f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "main",
            "account-1",
            "anvil",
            "latest",
            "-",
            ".",
            "1",
            "99999999999999999999",
            "é",
            "\u{202E}",
            "\u{0}",
            "\"",
            "\\",
            "ab",
            "ZZ",
            " ",
            "\n",
            "💥",
            "null",
            "{}",
        ];
        (0..self.below(6))
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }

    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 2 { 6 } else { 9 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!((self.next() as f64) / 7.0 - 1e12),
            4 | 5 => json!(self.string()),
            6 => json!(self.below(100)),
            7 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => self.object(depth + 1),
        }
    }

    fn object(&mut self, depth: u32) -> Value {
        const KEYS: &[&str] = &[
            "account",
            "network",
            "block",
            "token",
            "hash",
            "x",
            "",
            "ACCOUNT",
            "__proto__",
        ];
        let mut map = serde_json::Map::new();
        for _ in 0..self.below(5) {
            let key = if self.below(4) == 0 {
                self.string()
            } else {
                KEYS[self.below(KEYS.len() as u64) as usize].to_owned()
            };
            map.insert(key, self.value(depth));
        }
        Value::Object(map)
    }
}

#[tokio::test]
async fn a_thousand_random_argument_objects_never_break_the_server() {
    let home = ServerHome::new(NO_RPC);
    let client = home.in_process(Generation::Initialize).await;
    let tools = [
        "wallet_accounts",
        "wallet_balances",
        "wallet_token_info",
        "wallet_chain_info",
        "wallet_transaction_status",
    ];
    let mut random = Random(0x5eed_cafe_f00d_1234);
    let (mut errors, mut successes) = (0, 0);
    for round in 0..1000 {
        let tool = tools[round % tools.len()];
        let arguments = random.object(0);
        let shown = arguments.to_string();
        let result = call(&client, tool, arguments).await;
        if result.is_error == Some(true) {
            let text = &result.content[0].as_text().unwrap().text;
            assert!(
                !text.is_empty() && text.len() < 400,
                "{tool} {shown}: {text}"
            );
            errors += 1;
        } else {
            successes += 1;
        }
    }
    println!("1000 random calls: {successes} succeeded, {errors} were tool errors");
    assert!(
        errors > 500,
        "the generator should mostly produce bad input"
    );
    assert_eq!(client.list_all_tools().await.unwrap().len(), 12);
    assert_eq!(
        ok(&call(&client, "wallet_accounts", json!({})).await)["accounts"][0]["label"],
        "main"
    );
    client.cancel().await.unwrap();
}

/// Rewrites fixtures/anvil-wallet/vault.json from its public ingredients when KEYWARD_BLESS is
/// set: Anvil's mnemonic, ten accounts labelled main and account-1..9, the documented password and
/// the documented TOTP secret.
fn regenerate_fixture_wallet_if_blessing() {
    use crate::support::mcp::{FIXTURE_PASSWORD, FIXTURE_TOTP_SECRET};
    use keyward::keystore::{Label, UnlockedVault};
    if std::env::var_os("KEYWARD_BLESS").is_none() {
        return;
    }
    let path = fixtures().join("anvil-wallet/vault.json");
    let password = keyward::secret::Secret::new(FIXTURE_PASSWORD.to_owned());
    let mnemonic =
        keyward::hd::parse_phrase("test test test test test test test test test test test junk")
            .unwrap();
    let mut vault =
        UnlockedVault::create(mnemonic, &password, Label::new("main").unwrap()).unwrap();
    for index in 1..10 {
        vault
            .add_hd_account(Some(Label::new(&format!("account-{index}")).unwrap()))
            .unwrap();
    }
    vault
        .set_totp(keyward::totp::from_bytes(FIXTURE_TOTP_SECRET).unwrap())
        .unwrap();
    std::fs::write(&path, vault.to_file_bytes().unwrap()).unwrap();
}

#[test]
fn the_fixture_wallet_holds_anvils_ten_accounts_and_unlocks_with_its_documented_password() {
    use crate::support::mcp::{FIXTURE_PASSWORD, FIXTURE_TOTP_SECRET};
    regenerate_fixture_wallet_if_blessing();
    let vault =
        keyward::keystore::Vault::load(&fixtures().join("anvil-wallet/vault.json")).unwrap();
    let unlocked = vault
        .unlock(&keyward::secret::Secret::new(FIXTURE_PASSWORD.to_owned()))
        .unwrap();
    assert_eq!(unlocked.accounts().len(), 10);
    let totp = unlocked
        .totp()
        .expect("the fixture wallet has TOTP enrolled");
    assert_eq!(totp.secret_bytes(), FIXTURE_TOTP_SECRET);
    for (number, account) in unlocked.accounts().iter().enumerate() {
        assert_eq!(
            unlocked.private_key(number).unwrap().address(),
            account.address,
            "account {number}"
        );
        assert_eq!(
            account.kind,
            keyward::keystore::AccountKind::Hd {
                index: number as u32
            }
        );
    }
}
