//! The privacy filter against a real Anvil: every outbound request seen by the recording proxy,
//! the batching switch, and the masked model view.
//!
//! Every test server in this suite reaches its RPC through the recording proxy, and every
//! `ServerHome` checks what the proxy saw when it is dropped (see `support::proxy`). The tests
//! here prove that the proxy really carries the traffic and that the check can fail.

use serde_json::{Value, json};

use crate::funds::{Rig, human};
use crate::support::anvil::{TEST_DOLLAR, TEST_EIGHTEEN};
use crate::support::human::{Human, http};
use crate::support::mcp::{call, ok, tool_error};
use crate::support::proxy;

/// An address outside the wallet.
const STRANGER: &str = "0x1111111111111111111111111111111111111111";
/// The fixture wallet's account-2.
const ACCOUNT_2: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

/// Files a transfer, approves it on the page, and waits until it is mined. The same human
/// approves each time, so that no code is used twice.
async fn send(rig: &Rig, person: Human, to: &str, amount: &str) -> (Value, Human) {
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": to, "amount": amount }),
    )
    .await)
    .clone();
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let mut person = person;
    let person = human(move || {
        person.answer(&url, "approve");
        person
    })
    .await;
    let settled = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(settled["state"], "mined", "{settled}");
    (settled, person)
}

#[tokio::test]
async fn every_outbound_request_went_through_the_proxy_to_the_rpc_host_and_linked_no_accounts() {
    let Some(rig) = Rig::start("").await else {
        return;
    };
    let before = proxy::recorded().len();
    let balances = call(&rig.client, "wallet_balances", json!({})).await;
    assert_eq!(ok(&balances)["accounts"].as_array().unwrap().len(), 10);
    call(
        &rig.client,
        "wallet_token_info",
        json!({ "token": TEST_DOLLAR }),
    )
    .await;
    call(&rig.client, "wallet_chain_info", json!({})).await;
    let (sent, person) = send(&rig, Human::default(), STRANGER, "0.01").await;
    // A transfer between two of the wallet's own accounts names both, as the transaction will.
    send(&rig, person, ACCOUNT_2, "0.02").await;
    call(
        &rig.client,
        "wallet_transaction_status",
        json!({ "hash": sent["hash"] }),
    )
    .await;

    let recorded = proxy::recorded();
    let port: u16 = rig.anvil.port;
    assert!(
        recorded.len() - before >= 15,
        "the proxy saw only {} requests: is the traffic going around it?",
        recorded.len() - before
    );
    for request in &recorded {
        assert_eq!((request.host.as_str(), request.port), ("127.0.0.1", port));
    }
    let own = rig.home.own_addresses();
    let carrying_one = recorded
        .iter()
        .filter(|r| {
            let body = String::from_utf8_lossy(&r.body).to_ascii_lowercase();
            own.iter().filter(|a| body.contains(a.as_str())).count() == 1
        })
        .count();
    assert!(
        carrying_one >= 10,
        "one request per account for the balances"
    );
    let violations = rig.home.privacy_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    println!(
        "{} outbound requests, all to 127.0.0.1:{port}; {carrying_one} carried exactly one own address",
        recorded.len()
    );
}

#[tokio::test]
async fn batching_own_addresses_is_a_switch_and_the_proxy_check_catches_a_linking_request() {
    let Some(rig) = Rig::start_with_privacy("batch_own_addresses = true", "").await else {
        return;
    };
    let before = proxy::recorded().len();
    let balances = ok(&call(&rig.client, "wallet_balances", json!({})).await).clone();
    let accounts = balances["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 10);
    // Account 0 paid for deploying the test tokens.
    for account in &accounts[1..] {
        assert_eq!(account["eth"]["base_units"], "10000000000000000000000");
        assert_eq!(account["tokens"].as_array().unwrap().len(), 2);
    }
    let recorded = proxy::recorded();
    assert_eq!(recorded.len() - before, 1, "one batch for all ten accounts");
    // The same traffic, judged as if batching were off, breaks the rule: the check can fail.
    let own = rig.home.own_addresses();
    let strict = proxy::violations(
        &["127.0.0.1".to_owned()],
        &own,
        &crate::support::mcp::fixture_secrets(),
        false,
    );
    assert_eq!(strict.len(), 1, "{strict:#?}");
    assert!(strict[0].contains("carried 10 of the wallet's addresses"));
}

/// Every address in `text`, in full: 40 hex digits after 0x, or the review's groups of four.
fn full_addresses(text: &str, own: &[String]) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let ungrouped = lower.replace(' ', "");
    own.iter()
        .filter(|a| lower.contains(a.as_str()) || ungrouped.contains(a.as_str()))
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_masked_view_shows_labels_and_short_addresses_and_the_page_shows_them_in_full() {
    let Some(rig) = Rig::start_with_privacy(
        "model_view = \"masked\"",
        "recipients = \"address_book_only\"",
    )
    .await
    else {
        return;
    };
    let own = rig.home.own_addresses();
    let mut seen = String::new();

    let accounts = ok(&call(&rig.client, "wallet_accounts", json!({})).await).clone();
    for account in accounts["accounts"].as_array().unwrap() {
        let address = account["address"].as_str().unwrap();
        assert!(is_short_address(address), "{address} is not shortened");
        assert!(!account["label"].as_str().unwrap().is_empty());
    }
    assert_eq!(accounts["accounts"][2]["address"], "0x3C44…93BC");
    seen.push_str(&accounts.to_string());

    let balances = ok(&call(&rig.client, "wallet_balances", json!({})).await).clone();
    // Configured token contracts are public and stay whole: the model names tokens by them.
    assert_eq!(balances["accounts"][0]["tokens"][0]["token"], TEST_DOLLAR);
    assert_eq!(balances["accounts"][0]["tokens"][1]["token"], TEST_EIGHTEEN);
    assert!(is_short_address(
        balances["accounts"][0]["address"].as_str().unwrap()
    ));
    seen.push_str(&balances.to_string());

    // A refusal that names the recipient names it shortened.
    let refused = call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": STRANGER, "amount": "1" }),
    )
    .await;
    let (_, message) = tool_error(&refused);
    assert!(message.contains("0x1111…1111"), "{message}");
    assert!(!message.contains(&STRANGER[2..]), "{message}");
    seen.push_str(&serde_json::to_string(&refused).unwrap());

    // An own account is a permitted recipient; the review the model gets is masked, the page's is
    // not.
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": ACCOUNT_2, "amount": "0.5" }),
    )
    .await)
    .clone();
    let review = prepared["review"].as_str().unwrap();
    assert!(review.contains("0x3C44…93BC"), "{review}");
    seen.push_str(&prepared.to_string());
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let page = {
        let url = url.clone();
        human(move || http("GET", &url, &[], None)).await
    };
    assert!(
        page.review()
            .contains("0x3C44 CdDd B6a9 00fa 2b58 5dd2 99e0 3d12 FA42 93BC"),
        "{}",
        page.review()
    );
    human(move || Human::default().answer(&url, "approve")).await;
    let settled = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(settled["state"], "mined", "{settled}");
    seen.push_str(&settled.to_string());

    let leaked = full_addresses(&seen, &own);
    assert!(
        leaked.is_empty(),
        "full addresses reached the model: {leaked:?}"
    );
}

/// Whether a string is a shortened address, `0x` + 4 hex + `…` + 4 hex.
fn is_short_address(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("0x") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('…').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn a_node_refusing_the_broadcast_is_reported_in_keywards_words_with_its_own_apart() {
    let Some(rig) = Rig::start("").await else {
        return;
    };
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": STRANGER, "amount": "0.01" }),
    )
    .await)
    .clone();
    // Someone else spends the nonce keyward reserved: the node will refuse keyward's transaction.
    let main = crate::support::anvil::DEPLOYER;
    let hash = rig.anvil.rpc(
        "eth_sendTransaction",
        json!([{ "from": main, "to": STRANGER, "value": "0x1" }]),
    );
    rig.anvil.receipt(&hash);
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    human(move || Human::default().answer(&url, "approve")).await;
    let settled = rig.settle(prepared["request_id"].as_str().unwrap()).await;
    assert_eq!(settled["state"], "failed", "{settled}");
    let reason = settled["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the node refused the transaction (error ")
            && reason.contains("what it said is in node_message")
            && reason.ends_with("so nothing was sent: ask again"),
        "{reason}"
    );
    let said = &settled["node_message"];
    assert_eq!(said["untrusted"], true, "{settled}");
    assert!(
        said["value"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nonce"),
        "{said}"
    );
    assert!(!reason.to_lowercase().contains("nonce"), "{reason}");
}
