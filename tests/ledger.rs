//! A Ledger account on Anvil, through the built-in emulator of the Ethereum app (Speculos's public
//! seed): the same approval flow as a keystore account, then the device's own confirmation, and
//! every device failure ending in a clear, failed request with nothing sent.

use serde_json::{Value, json};

use crate::funds::{Rig, cast_balance, human};
use crate::support::anvil::TEST_DOLLAR;
use crate::support::human::{Human, http};
use crate::support::mcp::{FIXTURE_PASSWORD, call, ok};
use crate::support::{OutputExt as _, foundry_tool};

/// m/44'/60'/0'/0/0 of Speculos's default seed (APDU.md).
const DEVICE: &str = "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D";
const PATH: &str = "m/44'/60'/0'/0/0";
const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
/// Anvil's published key 0, which funds the device's address.
const FUNDER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The [ledger] table for the emulator, after the test's [policy] lines.
fn emulator(settings: &str) -> String {
    format!(
        "\n[ledger]\ntransport = \"emulator\"\ntimeout_seconds = 5\n[ledger.emulator]\n{settings}\n"
    )
}

fn cast(rig: &Rig, args: &[&str]) -> String {
    let cast = foundry_tool("cast").expect("cast is installed with anvil");
    let empty = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(cast)
        .current_dir(empty.path())
        .args(args)
        .args(["--rpc-url", &rig.anvil.url])
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Gives the device's address 10 ETH and 100 TUSD from Anvil's first account.
fn fund_device(rig: &Rig) {
    cast(
        rig,
        &[
            "send",
            "--private-key",
            FUNDER_KEY,
            DEVICE,
            "--value",
            "10ether",
        ],
    );
    cast(
        rig,
        &[
            "send",
            "--private-key",
            FUNDER_KEY,
            TEST_DOLLAR,
            "transfer(address,uint256)",
            DEVICE,
            "100000000",
        ],
    );
}

/// `keyward ledger add` against the rig's configuration: the emulator shows the address and
/// approves it, and the account joins the vault.
fn add_with_cli(rig: &Rig) {
    let password = rig.state_dir().join("password.txt");
    std::fs::write(&password, format!("{FIXTURE_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut add = crate::support::keyward_command();
    add.arg("--home").arg(rig.state_dir()).args([
        "ledger",
        "add",
        "--path",
        PATH,
        "--label",
        "ledger",
        "--password-file",
    ]);
    add.arg(&password);
    let output = crate::support::run_detached(add);
    output.assert_success();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(DEVICE), "{stdout}");
    assert!(stdout.contains("(ledger): 0xDad7"), "{stdout}");
    std::fs::remove_file(&password).unwrap();
}

/// Adds the device's account without the CLI (for rigs whose emulator cannot confirm it).
fn add_directly(rig: &Rig) {
    let home = keyward::home::Home::single(rig.state_dir()).unwrap();
    let lock = home.lock_vault().unwrap();
    let vault = keyward::keystore::Vault::load(&home.vault_path()).unwrap();
    let password = keyward::secret::Password::new(FIXTURE_PASSWORD.to_owned());
    let mut unlocked = vault.unlock(&password).unwrap();
    unlocked
        .add_ledger(
            &keyward_hardware::DerivationPath::parse(PATH).unwrap(),
            DEVICE.parse().unwrap(),
            keyward::keystore::Label::new("ledger").unwrap(),
        )
        .unwrap();
    unlocked.save(&home.vault_path(), &lock).unwrap();
}

/// Approves on the page with a code, as for any account. The person remembers the codes used.
async fn approve(prepared: &Value, mut person: Human) -> Human {
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let review = prepared["review"].as_str().unwrap().to_owned();
    human(move || {
        let page = http("GET", &url, &[], None);
        assert_eq!(page.review(), review);
        assert!(
            page.body.contains("lives on a Ledger"),
            "the page says the device must confirm too"
        );
        let answered = person.answer(&url, "approve");
        assert!(answered.body.contains("Approved"), "{}", answered.body);
        person
    })
    .await
}

#[tokio::test]
async fn a_ledger_account_sends_eth_and_tokens_and_signs_messages_and_typed_data_after_both_confirmations()
 {
    let Some(rig) = Rig::start(&emulator("blind_signing = true\nuser_delay_ms = 300")).await else {
        return;
    };
    add_with_cli(&rig);
    fund_device(&rig);

    let accounts = ok(&call(&rig.client, "wallet_accounts", json!({})).await).clone();
    assert!(accounts.to_string().contains("ledger"), "{accounts}");

    // ETH: reviewed, approved with a code, confirmed on the device, mined from the device address.
    let before = cast_balance(&rig.anvil.url, FRIEND, None);
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "from": "ledger", "to": FRIEND, "amount": "1.5" }),
    )
    .await)
    .clone();
    let person = approve(&prepared, Human::default()).await;
    let id = prepared["request_id"].as_str().unwrap();
    // The emulated person takes 300 ms: the request waits on the device meanwhile.
    let waiting = rig.status(id, 0).await;
    assert!(
        ["awaiting_device", "signed", "broadcast", "mined"]
            .contains(&waiting["state"].as_str().unwrap()),
        "{waiting}"
    );
    let mined = rig.settle(id).await;
    assert_eq!(mined["state"], "mined", "{mined}");
    assert_eq!(
        cast_balance(&rig.anvil.url, FRIEND, None) - before,
        1_500_000_000_000_000_000
    );
    let hash = mined["hash"].as_str().unwrap();
    let from = cast(&rig, &["tx", hash, "from"]);
    assert_eq!(from.trim().to_lowercase(), DEVICE.to_lowercase());

    // ERC-20: calldata, which this emulated app signs because blind signing is on.
    let before = cast_balance(&rig.anvil.url, FRIEND, Some(TEST_DOLLAR));
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "from": "ledger", "to": FRIEND, "amount": "12.5", "asset": "TUSD" }),
    )
    .await)
    .clone();
    let person = approve(&prepared, person).await;
    let mined = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(mined["state"], "mined", "{mined}");
    assert_eq!(
        cast_balance(&rig.anvil.url, FRIEND, Some(TEST_DOLLAR)) - before,
        12_500_000
    );

    // A personal message, verified by cast against the device address.
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_message",
        json!({ "from": "ledger", "message": "signed on a Ledger" }),
    )
    .await)
    .clone();
    let person = approve(&prepared, person).await;
    let signed = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    let signature = signed["signature"].as_str().unwrap();
    let cast_path = foundry_tool("cast").unwrap();
    let verified = std::process::Command::new(cast_path)
        .args([
            "wallet",
            "verify",
            "--address",
            DEVICE,
            "signed on a Ledger",
            signature,
        ])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");

    // EIP-712, in the app's hashed mode (blind signing is on), verified by cast's own hashing.
    let mail = json!({
        "types": {
            "EIP712Domain": [{ "name": "name", "type": "string" }, { "name": "chainId", "type": "uint256" }],
            "Mail": [{ "name": "contents", "type": "string" }]
        },
        "primaryType": "Mail",
        "domain": { "name": "Ether Mail", "chainId": 31337 },
        "message": { "contents": "Hello from a Ledger" }
    });
    let prepared = ok(&call(
        &rig.client,
        "wallet_sign_typed_data",
        json!({ "from": "ledger", "typed_data": mail }),
    )
    .await)
    .clone();
    let _ = approve(&prepared, person).await;
    let signed = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    let signature = signed["signature"].as_str().unwrap();
    let verified = std::process::Command::new(foundry_tool("cast").unwrap())
        .args(["wallet", "verify", "--data", "--address", DEVICE])
        .arg(mail.to_string())
        .arg(signature)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");

    let log = std::fs::read_to_string(rig.state_dir().join("audit.jsonl")).unwrap();
    assert_eq!(log.matches("\"kind\":\"mined\"").count(), 2, "{log}");
    keyward::audit::verify(rig.state_dir()).unwrap();
}

#[tokio::test]
async fn each_device_failure_is_a_clear_failed_request_and_nothing_is_sent() {
    for (settings, transfer, expected) in [
        ("mode = \"reject\"", "eth", "rejected on the Ledger"),
        ("mode = \"locked\"", "eth", "unlock it"),
        ("mode = \"app_not_open\"", "eth", "Ethereum app is not open"),
        ("blind_signing = false", "token", "enable blind signing"),
        ("user_delay_ms = 60000", "eth", "did not answer within 5 s"),
    ] {
        let Some(rig) = Rig::start(&emulator(settings)).await else {
            return;
        };
        add_directly(&rig);
        fund_device(&rig);
        let nonce = rig.nonce(DEVICE);
        let arguments = match transfer {
            "eth" => json!({ "from": "ledger", "to": FRIEND, "amount": "1" }),
            _ => json!({ "from": "ledger", "to": FRIEND, "amount": "1", "asset": "TUSD" }),
        };
        let prepared = ok(&call(&rig.client, "wallet_transfer", arguments).await).clone();
        let _ = approve(&prepared, Human::default()).await;
        let failed = rig.settle(prepared["request_id"].as_str().unwrap()).await;
        assert_eq!(failed["state"], "failed", "{settings}: {failed}");
        let reason = failed["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(expected),
            "{settings}: {reason:?} lacks {expected:?}"
        );
        assert_eq!(rig.nonce(DEVICE), nonce, "{settings}: nothing was sent");
        let log = std::fs::read_to_string(rig.state_dir().join("audit.jsonl")).unwrap();
        assert!(log.contains("\"kind\":\"failed\""), "{settings}: {log}");
        assert!(!log.contains("\"kind\":\"broadcast\""), "{settings}: {log}");
        keyward::audit::verify(rig.state_dir()).unwrap();
    }
}

#[test]
fn ledger_list_says_plainly_when_there_is_no_device_and_names_the_app_when_there_is() {
    let home = tempfile::tempdir().unwrap();
    // No configuration: USB, where this machine has no Ledger.
    let mut list = crate::support::keyward_command();
    list.arg("--home").arg(home.path()).args(["ledger", "list"]);
    crate::support::run_detached(list).assert_error("no Ledger found on USB");

    std::fs::write(
        home.path().join("keyward.toml"),
        format!(
            "[[networks]]\nname = \"anvil\"\nchain_id = 31337\nrpc_url = \"http://127.0.0.1:8545\"\n{}",
            emulator("app_version = \"1.12.0\"\nblind_signing = true")
        ),
    )
    .unwrap();
    let mut list = crate::support::keyward_command();
    list.arg("--home").arg(home.path()).args(["ledger", "list"]);
    let output = crate::support::run_detached(list);
    output.assert_success();
    assert!(
        output
            .stdout_text()
            .contains("Ethereum app 1.12.0, blind signing on"),
        "{}",
        output.stdout_text()
    );

    // A bad path is refused before any device is asked.
    let mut add = crate::support::keyward_command();
    add.arg("--home").arg(home.path()).args([
        "ledger",
        "add",
        "--path",
        "m/44'/60'/x",
        "--label",
        "l",
    ]);
    crate::support::run_detached(add).assert_error("derivation path");
}
