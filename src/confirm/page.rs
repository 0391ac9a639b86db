//! The approval page: plain HTML on loopback, where the human reads the review and approves with
//! a TOTP code.
//!
//! Each request has its own unguessable token (256 bits) in the URL; an unknown token is a 404.
//! The form carries a CSRF token. Every request must name keyward's own loopback origin in `Host`,
//! and a form post must come from that origin (DNS-rebinding and cross-site defence), or it gets a
//! 403. Responses are `no-store`, framed by nobody, send no referrer (the URL holds the token) and
//! allow no script: the page needs none.
//!
//! This module must never echo a code or password back, and never show anything but the
//! server-rendered review.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use alloy::primitives::B256;
use axum::Router;
use axum::extract::{Path, RawForm, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::store::{Request, Signs, State};
use super::{Answer, ApprovalError, Desk};
use crate::review::utc;
use crate::secret::Secret;

/// The largest form keyward reads; the real one is under 300 bytes.
const MAX_FORM: usize = 4096;

const STYLE: &str = "body{font:16px/1.45 system-ui,sans-serif;max-width:52rem;margin:2rem auto;\
padding:0 1rem;color:#111;background:#fff}pre{font:15px/1.5 ui-monospace,monospace;\
background:#f6f6f4;border:1px solid #ccc;padding:1rem;white-space:pre-wrap;overflow-wrap:anywhere}\
.state{font-weight:600}.error{color:#a00;font-weight:600}.ok{color:#060;font-weight:600}\
.untrusted{border:2px dashed #a60;background:#fff8ee}\
label{display:block;margin:.6rem 0 .2rem}input{font:inherit;padding:.3rem}\
button{font:inherit;padding:.4rem 1.2rem;margin:.8rem .6rem 0 0}";

static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

#[derive(Clone)]
struct Page {
    desk: Arc<Desk>,
    /// `Host` values the page answers to: `127.0.0.1:PORT` (or `[::1]:PORT`) and `localhost:PORT`.
    hosts: Arc<Vec<String>>,
}

/// Binds the approval page on `listen` and returns its address and the server future.
pub async fn bind(
    desk: Arc<Desk>,
    listen: SocketAddr,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let hosts = vec![address.to_string(), format!("localhost:{}", address.port())];
    desk.set_page_origin(format!("http://{address}"));
    let page = Page {
        desk,
        hosts: Arc::new(hosts),
    };
    let app = Router::new()
        .route("/approve/{token}", get(show).post(submit))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .with_state(page);
    Ok((address, async move { axum::serve(listener, app).await }))
}

#[derive(Deserialize)]
struct Submitted {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    code: Zeroizing<String>,
    #[serde(default)]
    password: Zeroizing<String>,
    #[serde(default)]
    decision: String,
}

impl Page {
    /// The Host and Origin checks. `None` when the request may proceed.
    fn refuse_foreign(&self, headers: &HeaderMap, posting: bool) -> Option<Response> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !self.hosts.iter().any(|allowed| allowed == host) {
            return Some(plain(
                StatusCode::FORBIDDEN,
                "this page answers only at its own loopback address",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|origin| {
                self.hosts
                    .iter()
                    .any(|host| origin == format!("http://{host}"))
            });
            if !allowed {
                return Some(plain(
                    StatusCode::FORBIDDEN,
                    "a form from another site cannot approve anything here",
                ));
            }
        } else if posting
            && headers
                .get("sec-fetch-site")
                .is_some_and(|site| site != "same-origin" && site != "none")
        {
            return Some(plain(
                StatusCode::FORBIDDEN,
                "a form from another site cannot approve anything here",
            ));
        }
        None
    }
}

async fn show(
    Extract(page): Extract<Page>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = page.refuse_foreign(&headers, false) {
        return refused;
    }
    page.desk.sweep();
    match page.desk.store.by_token(&token) {
        Some(request) => render(&page, &request, None),
        None => not_found().await,
    }
}

/// A posted form, read and checked against its request's CSRF token: what the human answered,
/// and the digest of the request the page showed them.
#[derive(Debug)]
pub(crate) struct Submission {
    pub(crate) shown: Option<B256>,
    pub(crate) answer: Answer,
}

/// Why a posted form was refused before it reached the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormRefusal {
    /// Not an urlencoded form keyward can read.
    Unreadable,
    /// The CSRF token is missing or not the request's.
    Csrf,
    /// Neither Approve nor Reject was chosen.
    NoDecision,
    /// An approval that does not name the digest of the request the page showed.
    NoDigest,
}

impl FormRefusal {
    /// What the page says about it.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Unreadable => "the form is missing its CSRF token",
            Self::Csrf => {
                "the form's CSRF token is missing or wrong: reload the page and try again"
            }
            Self::NoDecision => "choose Approve or Reject",
            Self::NoDigest => {
                "the form does not say which request it showed, so nothing was approved: reload \
                 the page and approve again"
            }
        }
    }
}

/// Reads a posted form body (`application/x-www-form-urlencoded`, as axum's `Form` reads it)
/// and checks its CSRF token against `csrf`, in constant time. The handler and the fuzzer
/// (`crate::fuzzing::form`) both come through here.
pub(crate) fn read_form(body: &[u8], csrf: &str) -> Result<Submission, FormRefusal> {
    let form: Submitted =
        serde_urlencoded::from_bytes(body).map_err(|_| FormRefusal::Unreadable)?;
    if form.csrf.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
        return Err(FormRefusal::Csrf);
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(FormRefusal::NoDecision),
    };
    // An approval is bound to the request the human saw: without its digest it is refused. A
    // rejection needs no such proof.
    let shown = form.digest.parse().ok();
    if approve && shown.is_none() {
        return Err(FormRefusal::NoDigest);
    }
    let password = (!form.password.is_empty()).then(|| Secret::new(form.password.to_string()));
    Ok(Submission {
        shown,
        answer: Answer {
            approve,
            code: Secret::new(form.code.to_string()),
            password,
        },
    })
}

async fn submit(
    Extract(page): Extract<Page>,
    Path(token): Path<String>,
    headers: HeaderMap,
    form: Result<RawForm, axum::extract::rejection::RawFormRejection>,
) -> Response {
    if let Some(refused) = page.refuse_foreign(&headers, true) {
        return refused;
    }
    let Some(request) = page.desk.store.by_token(&token) else {
        return not_found().await;
    };
    let Ok(RawForm(body)) = form else {
        return plain(StatusCode::FORBIDDEN, FormRefusal::Unreadable.text());
    };
    let Submission { shown, answer } = match read_form(&body, &request.csrf) {
        Ok(submission) => submission,
        Err(refusal @ (FormRefusal::NoDecision | FormRefusal::NoDigest)) => {
            return render(&page, &request, Some(Err(refusal.text().to_owned())));
        }
        Err(refusal) => return plain(StatusCode::FORBIDDEN, refusal.text()),
    };
    let outcome = page
        .desk
        .answer(&[(request.id.clone(), shown)], answer)
        .await;
    let message = match outcome {
        Ok(mut results) => match results.pop() {
            Some((_, Ok(done))) if done.state == State::Rejected => {
                Ok("Rejected. Nothing will be sent.".to_owned())
            }
            Some((_, Ok(_))) => Ok("Approved. keyward is signing and sending it.".to_owned()),
            Some((_, Err(err))) => Err(sentence(&err)),
            None => Err("nothing was answered".to_owned()),
        },
        Err(err) => Err(sentence(&err)),
    };
    let request = page.desk.store.get(&request.id).unwrap_or(request);
    render(&page, &request, Some(message))
}

fn sentence(err: &ApprovalError) -> String {
    let text = err.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

async fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "no request here: the link is wrong or the request is gone",
    )
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = (status, format!("{text}\n")).into_response();
    harden(&mut response);
    response
}

fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::CACHE_CONTROL, "no-store");
    set(header::CONTENT_SECURITY_POLICY, &CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(page: &Page, request: &Request, message: Option<Result<String, String>>) -> Response {
    let review = &request.review;
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>keyward: {title}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1><p>Request <code>{id}</code> is <span class=\"state\" id=\"state\">{state}</span>.</p>",
        title = escape(&review.title),
        id = escape(&request.id),
        state = request.state.name(),
    );
    match &message {
        Some(Ok(text)) => html.push_str(&format!(
            "<p class=\"ok\" id=\"message\">{}</p>",
            escape(text)
        )),
        Some(Err(text)) => html.push_str(&format!(
            "<p class=\"error\" id=\"message\">{}</p>",
            escape(text)
        )),
        None => {}
    }
    html.push_str(&format!(
        "<pre id=\"review\">{}</pre>",
        escape(&review.text)
    ));
    // The contract's own words, apart from keyward's review and marked as such.
    if let Some(quoted) = review.contract_text.for_human() {
        html.push_str(&format!(
            "<pre id=\"contract-text\" class=\"untrusted\">{}</pre>",
            escape(&quoted)
        ));
    }
    if request.state == State::OnDevice {
        html.push_str(
            "<p class=\"ok\" id=\"device\">Confirm on your Ledger: check that its screen shows \
             the same account and details as above, then approve there. Reload this page to \
             follow.</p>",
        );
    } else if request.state == State::Pending && page.desk.on_ledger(request) {
        html.push_str(
            "<p id=\"device\">This account lives on a Ledger: after you approve here, confirm \
             on the device too.</p>",
        );
    }
    if let Some(reason) = &request.reason {
        html.push_str(&format!("<p id=\"reason\">{}</p>", escape(reason)));
    }
    if let Some(hash) = request.hash {
        html.push_str(&format!(
            "<p>Transaction hash: <code id=\"hash\">{hash}</code></p>"
        ));
    }
    if request.state == State::Pending {
        let password = if page.desk.is_unlocked() {
            String::new()
        } else {
            "<label for=\"password\">Wallet password (the wallet is locked)</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" maxlength=\"1024\">"
                .to_owned()
        };
        html.push_str(&format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"digest\" value=\"{digest}\">{password}\
             <label for=\"code\">Code from your authenticator app</label>\
             <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
             maxlength=\"8\" size=\"8\" autofocus>\
             <div><button name=\"decision\" value=\"approve\">Approve</button>\
             <button name=\"decision\" value=\"reject\">Reject</button></div></form>\
             <p>Approve only if every line above is what you meant: {meant}. The request \
             expires at {expires}.</p>",
            csrf = escape(&request.csrf),
            digest = request.digest,
            meant = match request.signs {
                Signs::Transaction => "the recipient, the amount, the fees and the network",
                Signs::Message => "the account and every line of the message",
                Signs::TypedData => "the account, the domain, its chain and every field",
            },
            expires = utc(request.expires),
        ));
    } else if !request.is_finished() {
        html.push_str("<p>Reload this page to follow the transaction.</p>");
    }
    html.push_str("</body></html>");
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    harden(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSRF: &str = "c3JmLXRva2VuLWZvci10ZXN0cw";

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        serde_urlencoded::to_string(pairs).unwrap().into_bytes()
    }

    #[test]
    fn reads_an_approval_with_its_code_password_and_digest() {
        let digest = B256::repeat_byte(0xab);
        let body = form(&[
            ("csrf", CSRF),
            ("digest", &digest.to_string()),
            ("password", "correct horse é"),
            ("code", "123456"),
            ("decision", "approve"),
        ]);
        let Submission { shown, answer } = read_form(&body, CSRF).unwrap();
        assert_eq!(shown, Some(digest));
        assert!(answer.approve);
        assert_eq!(answer.code.expose_secret(), "123456");
        assert_eq!(
            answer.password.as_ref().map(|p| p.expose_secret().as_str()),
            Some("correct horse é")
        );
    }

    #[test]
    fn refuses_a_form_without_the_token_or_a_decision() {
        let refusal = |body: &[u8]| read_form(body, CSRF).err();
        assert_eq!(
            refusal(&form(&[("code", "1"), ("decision", "approve")])),
            Some(FormRefusal::Csrf)
        );
        assert_eq!(
            refusal(&form(&[
                ("csrf", "c3JmLXRva2VuLWZvci10ZXN0cx"),
                ("decision", "approve")
            ])),
            Some(FormRefusal::Csrf)
        );
        assert_eq!(
            refusal(&form(&[("csrf", CSRF), ("decision", "Approve")])),
            Some(FormRefusal::NoDecision)
        );
        // A field named twice is not guessed at.
        assert_eq!(
            refusal(b"csrf=c3JmLXRva2VuLWZvci10ZXN0cw&decision=reject&decision=approve"),
            Some(FormRefusal::Unreadable)
        );
        // An empty token never matches, even an empty expected one.
        assert_eq!(
            read_form(&form(&[("csrf", ""), ("decision", "reject")]), "").err(),
            Some(FormRefusal::Csrf)
        );
        // An approval must name the request it showed; a digest that does not parse is none.
        for digest in [None, Some(""), Some("0xabc"), Some("not a digest")] {
            let mut fields = vec![("csrf", CSRF), ("decision", "approve"), ("code", "123456")];
            fields.extend(digest.map(|digest| ("digest", digest)));
            assert_eq!(
                refusal(&form(&fields)),
                Some(FormRefusal::NoDigest),
                "{digest:?}"
            );
        }
        let reject = read_form(&form(&[("csrf", CSRF), ("decision", "reject")]), CSRF).unwrap();
        assert!(!reject.answer.approve);
        assert_eq!(reject.shown, None);
        assert!(reject.answer.password.is_none());
    }

    proptest::proptest! {
        /// Whatever a browser posts, every field comes back exactly as typed, and only the
        /// request's own CSRF token is accepted.
        #[test]
        fn any_posted_form_reads_back_what_was_typed(
            code in "\\PC{0,12}",
            password in "\\PC{0,40}",
            approve in proptest::prelude::any::<bool>(),
            digest in proptest::prelude::any::<[u8; 32]>(),
            token in "[A-Za-z0-9_-]{0,30}",
        ) {
            let digest = B256::from(digest);
            let decision = if approve { "approve" } else { "reject" };
            let fields = [
                ("csrf", token.as_str()),
                ("digest", &digest.to_string()),
                ("code", &code),
                ("password", &password),
                ("decision", decision),
            ];
            let body = form(&fields);
            match read_form(&body, CSRF) {
                Ok(submission) => {
                    proptest::prop_assert_eq!(token.as_str(), CSRF);
                    proptest::prop_assert_eq!(submission.answer.approve, approve);
                    proptest::prop_assert_eq!(submission.answer.code.expose_secret(), &code);
                    proptest::prop_assert_eq!(
                        submission.answer.password.as_ref().map(|p| p.expose_secret().clone()),
                        (!password.is_empty()).then(|| password.clone())
                    );
                    proptest::prop_assert_eq!(submission.shown, Some(digest));
                }
                Err(refusal) => {
                    proptest::prop_assert_ne!(token.as_str(), CSRF);
                    proptest::prop_assert_eq!(refusal, FormRefusal::Csrf);
                }
            }
            // Without the digest a rejection still counts; an approval does not.
            let undigested = read_form(&form(&[("csrf", CSRF), ("code", &code), ("decision", decision)]), CSRF);
            if approve {
                proptest::prop_assert_eq!(undigested.err(), Some(FormRefusal::NoDigest));
            } else {
                proptest::prop_assert!(undigested.is_ok());
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Err(refusal) = read_form(&body, CSRF) {
                proptest::prop_assert!(!refusal.text().is_empty());
            }
        }
    }
}
