//! The prompt-injection corpus (`fixtures/injection/corpus.json`) against a real Anvil, through
//! the real server and an MCP client. Every case becomes the Chameleon token's name, symbol and
//! transfer revert reason, and is checked where the model meets it: `wallet_token_info`, a
//! `wallet_transfer` refused because its simulation reverts, a `wallet_approve_token` filed for
//! the human, and that approval's page. Each time the text must arrive as a sanitized, flagged
//! data field exactly as the corpus says, never inside keyward's prose, and never make a result
//! larger than a few kilobytes.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::funds::{Rig, human};
use crate::support::anvil::{CHAMELEON, fixtures};
use crate::support::human::http;
use crate::support::mcp::{call, ok, tool_error};

const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// The most bytes a tool result (structured content and its text copy together) may take,
/// however much text the contract returned.
const MAX_RESULT_BYTES: usize = 8 * 1024;

/// Past this many bytes a revert reason no longer fits keyward's 4 MiB cap on an RPC answer: the
/// planning batch carries it twice (gas estimate and simulation), each time as the node's message
/// and as hex data, about six bytes per byte of reason. keyward then refuses the answer as
/// oversized, a clear error rather than a crash (see `src/chain/rpc.rs`, `MAX_RESPONSE`).
const LARGEST_REVERT_THAT_FITS: usize = 512 * 1024;

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    text: Option<String>,
    hex: Option<String>,
    repeat: Option<usize>,
    value: String,
    notes: Vec<String>,
    suspicious: bool,
    #[serde(default)]
    imitates: bool,
}

impl Case {
    /// The text or bytes before repetition.
    fn seed(&self) -> Vec<u8> {
        match (&self.text, &self.hex) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(hex)) => hex::decode(hex).unwrap(),
            _ => panic!("{}: a case has either text or hex", self.id),
        }
    }

    fn repeat(&self) -> usize {
        self.repeat.unwrap_or(1)
    }

    fn len(&self) -> usize {
        self.seed().len() * self.repeat()
    }

    /// The UntrustedText the case must come back as; a symbol also carries the imitation flag.
    fn expected(&self, as_symbol: bool) -> Value {
        let mut notes = self.notes.clone();
        let mut suspicious = self.suspicious;
        if as_symbol && self.imitates {
            // The fixed order puts the flag just before "empty".
            let at = notes
                .iter()
                .position(|n| n == "empty")
                .unwrap_or(notes.len());
            notes.insert(at, "imitates_configured_token".to_owned());
            suspicious = true;
        }
        json!({
            "value": self.value,
            "untrusted": true,
            "suspicious": suspicious,
            "notes": notes,
        })
    }

    /// Strings from this case that must not appear in prose: the raw seed and the sanitized
    /// value, unless keyward's own prose holds them anyway (as it holds "ETH"), or they are too
    /// short to tell apart from keyward's words.
    fn needles(&self, keyward_words: &str) -> Vec<String> {
        [
            String::from_utf8_lossy(&self.seed()).into_owned(),
            self.value.clone(),
        ]
        .into_iter()
        .filter(|needle| needle.chars().count() >= 3 && !keyward_words.contains(needle.as_str()))
        .collect()
    }
}

fn corpus() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("injection/corpus.json")).unwrap();
    let corpus: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(corpus["cases"].clone()).unwrap()
}

/// Characters that must never reach prose: controls other than the review's own line breaks,
/// bidi, zero-width, soft hyphen, variation selectors and tags.
fn invisible(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{E0000}'..='\u{E0FFF}'
        )
}

fn assert_outside_prose(case: &Case, keyward_words: &str, prose: &[(&str, String)]) {
    let needles = case.needles(keyward_words);
    for (place, text) in prose {
        assert!(
            !text.chars().any(invisible),
            "{}: an invisible character in {place}: {text:?}",
            case.id
        );
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{}: the contract's text {needle:?} is spliced into {place}:\n{text}",
                case.id
            );
        }
    }
}

fn assert_small(case: &Case, tool: &str, result: &rmcp::model::CallToolResult) -> usize {
    let size = serde_json::to_string(result).unwrap().len();
    assert!(
        size <= MAX_RESULT_BYTES,
        "{}: {tool} returned {size} bytes for {} bytes of contract text",
        case.id,
        case.len()
    );
    size
}

/// HTML-escapes as the approval page does.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// What the run measured, for the summary line.
#[derive(Default)]
struct Largest {
    result_bytes: usize,
    page_bytes: usize,
}

/// Runs one case through every tool and the page; returns keyward's prose for it.
async fn exercise(rig: &Rig, case: &Case, keyward_words: &str, largest: &mut Largest) -> String {
    rig.anvil
        .set_chameleon_text(&case.seed(), case.repeat() as u64);
    let id = &case.id;

    // wallet_token_info: name and symbol as data fields, nothing else changed.
    let result = call(
        &rig.client,
        "wallet_token_info",
        json!({ "token": CHAMELEON }),
    )
    .await;
    largest.result_bytes =
        largest
            .result_bytes
            .max(assert_small(case, "wallet_token_info", &result));
    let info = ok(&result);
    assert_eq!(info["name"], case.expected(false), "{id}: name");
    assert_eq!(info["symbol"], case.expected(true), "{id}: symbol");
    assert_eq!(info["verified"], false, "{id}");
    assert_eq!(info["decimals"], 18, "{id}");
    assert_eq!(info["problems"], json!([]), "{id}");

    // wallet_transfer: the simulation reverts with the case's text, so keyward refuses; the
    // reason reaches the model only as refusal.contract_text.revert_reason.
    let result = call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "1", "asset": CHAMELEON }),
    )
    .await;
    largest.result_bytes = largest
        .result_bytes
        .max(assert_small(case, "wallet_transfer", &result));
    let (kind, message) = tool_error(&result);
    let error = &result.structured_content.as_ref().unwrap()["error"];
    let mut prose = vec![("the error message", message.clone())];
    if case.len() > LARGEST_REVERT_THAT_FITS {
        assert_eq!(kind, "rpc_bad_response", "{id}: {message}");
        assert!(
            message.contains("sent an unusable answer: the response is larger than 4 MiB"),
            "{message}"
        );
    } else {
        assert_eq!(kind, "refused", "{id}: {message}");
        assert_eq!(
            message,
            "keyward refuses this transaction: the simulation reverts: sent now, the \
             transaction would fail and still cost gas",
            "{id}"
        );
        let refusal = &error["refusal"];
        assert_eq!(refusal["rule"], "review", "{id}");
        assert_eq!(
            refusal["contract_text"],
            json!({
                "revert_reason": case.expected(false),
                "token_symbol": case.expected(true),
            }),
            "{id}"
        );
        let review = refusal["review"].as_str().unwrap().to_owned();
        assert!(
            review.contains("Simulation   REVERTS, with a reason in the contract's own words"),
            "{id}: {review}"
        );
        prose.push(("the refusal's review", review));
    }
    assert_outside_prose(case, keyward_words, &prose);

    // wallet_approve_token: filed for the human; the claimed symbol is a data field.
    let result = call(
        &rig.client,
        "wallet_approve_token",
        json!({ "token": CHAMELEON, "spender": FRIEND, "amount": "1" }),
    )
    .await;
    largest.result_bytes =
        largest
            .result_bytes
            .max(assert_small(case, "wallet_approve_token", &result));
    let filed = ok(&result).clone();
    assert_eq!(filed["state"], "awaiting_approval", "{id}");
    assert_eq!(
        filed["contract_text"],
        json!({ "token_symbol": case.expected(true), "revert_reason": null }),
        "{id}"
    );
    assert_eq!(
        filed["title"], "Allow spending of 1 of unverified token 0x700b…AD35 on anvil",
        "{id}"
    );
    let mut prose = vec![
        ("the title", filed["title"].as_str().unwrap().to_owned()),
        ("the review", filed["review"].as_str().unwrap().to_owned()),
    ];
    for warning in filed["warnings"].as_array().unwrap() {
        prose.push(("a warning", warning["text"].as_str().unwrap().to_owned()));
    }
    assert!(filed["reason"].is_null(), "{id}");
    assert_outside_prose(case, keyward_words, &prose);

    // The approval page: the review exactly as the tool returned it, and the symbol apart from
    // it, quoted and HTML-escaped, in the block marked untrusted.
    let url = filed["approval_url"].as_str().unwrap().to_owned();
    let page = human(move || http("GET", &url, &[], None)).await;
    assert_eq!(page.status, 200, "{id}");
    largest.page_bytes = largest.page_bytes.max(page.body.len());
    assert_eq!(page.review(), filed["review"].as_str().unwrap(), "{id}");
    assert!(!page.body.chars().any(invisible), "{id}: {:?}", page.body);
    let block_start = page
        .body
        .find("<pre id=\"contract-text\" class=\"untrusted\">")
        .unwrap_or_else(|| panic!("{id}: no contract text on the page"));
    let block = &page.body[block_start..];
    let block = &block[..block.find("</pre>").unwrap()];
    let quoted = case.value.replace('\\', "\\\\").replace('"', "\\\"");
    assert!(
        block.contains(&format!("Symbol       {}", html(&format!("\"{quoted}\"")))),
        "{id}: the page does not quote the symbol:\n{block}"
    );
    assert!(
        block.contains("Untrusted text from the contract: its words, not keyward&#39;s"),
        "{id}: {block}"
    );
    if case.value.contains(['<', '>', '&', '"', '\'']) {
        assert!(
            !page.body.contains(&case.value),
            "{id}: the page shows the symbol unescaped"
        );
    }

    prose
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_corpus_case_arrives_sanitized_flagged_and_outside_prose() {
    let Some(rig) = Rig::start("max_tool_calls_per_minute = 10000").await else {
        return;
    };
    rig.anvil.deploy_chameleon();
    let cases = corpus();
    assert!(cases.len() >= 50, "the corpus shrank to {}", cases.len());
    assert!(
        cases.iter().any(|case| case.len() >= 1_000_000),
        "the corpus has no megabyte case"
    );

    // A neutral text first: its prose holds the words keyward writes whatever the contract says.
    let neutral = Case {
        id: "neutral".into(),
        text: Some("Plain Token".into()),
        hex: None,
        repeat: None,
        value: "Plain Token".into(),
        notes: Vec::new(),
        suspicious: false,
        imitates: false,
    };
    let mut largest = Largest::default();
    let keyward_words = exercise(&rig, &neutral, "", &mut largest).await;

    let started = Instant::now();
    for case in &cases {
        exercise(&rig, case, &keyward_words, &mut largest).await;
    }
    println!(
        "{} corpus cases in {:.1?}; largest tool result {} bytes, largest page {} bytes",
        cases.len(),
        started.elapsed(),
        largest.result_bytes,
        largest.page_bytes
    );
}
