//! JSON-RPC over HTTP, one batch per question, with the chain id checked in the same round trip.
//!
//! Every batch starts with `eth_chainId`, and its answer is compared with the configured chain id
//! before any other result is used: a reconfigured or hijacked endpoint cannot feed keyward
//! another chain's data, and the check costs no extra round trip. Errors name the network and the
//! redacted RPC URL, never the URL itself (reqwest's own errors print it, so they are translated).

use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ChainError;
use crate::config::{Network, RpcUrl};
use crate::privacy::egress::{Egress, EgressError};
use crate::untrusted::UntrustedText;

/// The largest RPC response keyward reads (a batch of balance calls is a few hundred bytes).
const MAX_RESPONSE: usize = 4 << 20;
const TIMED_OUT: &str = "it did not answer within rpc_timeout_seconds";

/// One JSON-RPC call of a batch.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub params: Value,
}

impl Call {
    pub fn new(method: &'static str, params: Value) -> Self {
        Self { method, params }
    }
}

/// One request of a batch as it is written, borrowing its call. Serializing these copies no
/// parameters and builds no JSON tree, which a `json!` object per request did on every read.
#[derive(serde::Serialize)]
struct WireRequest<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a Value,
}

impl<'a> WireRequest<'a> {
    fn new(id: u64, method: &'a str, params: &'a Value) -> Self {
        Self {
            jsonrpc: "2.0",
            id,
            method,
            params,
        }
    }
}

/// `eth_chainId` takes no parameters.
static NO_PARAMS: Value = Value::Array(Vec::new());

/// An error object the node returned for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: i64,
    /// The node's message: third-party text.
    pub message: UntrustedText,
    /// The error's `data`, when it is hex bytes (a revert's return data).
    pub data: Option<Vec<u8>>,
}

/// A network's RPC endpoint.
#[derive(Debug)]
pub struct Rpc {
    http: Egress,
    url: RpcUrl,
    network: String,
    chain_id: u64,
    timeout: std::time::Duration,
    next_id: AtomicU64,
}

impl Rpc {
    pub fn new(http: Egress, network: &Network) -> Self {
        Self {
            http,
            url: network.rpc_url.clone(),
            network: network.name.clone(),
            chain_id: network.chain_id,
            timeout: network.rpc_timeout,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn url(&self) -> &RpcUrl {
        &self.url
    }

    /// Sends `eth_chainId` followed by `calls` in one batch, checks the chain id, and returns each
    /// call's result in order. For reads only: a failed connection is retried once.
    pub async fn batch(&self, calls: &[Call]) -> Result<Vec<Result<Value, CallError>>, ChainError> {
        self.send_batch(calls, true).await
    }

    /// As [`Rpc::batch`], never retried: for a call that changes the chain, such as
    /// `eth_sendRawTransaction`, whose outcome the caller checks by other means after a failure.
    pub async fn batch_once(
        &self,
        calls: &[Call],
    ) -> Result<Vec<Result<Value, CallError>>, ChainError> {
        self.send_batch(calls, false).await
    }

    async fn send_batch(
        &self,
        calls: &[Call],
        retry: bool,
    ) -> Result<Vec<Result<Value, CallError>>, ChainError> {
        let first = self
            .next_id
            .fetch_add(calls.len() as u64 + 1, Ordering::Relaxed);
        let mut requests = Vec::with_capacity(calls.len() + 1);
        requests.push(WireRequest::new(first, "eth_chainId", &NO_PARAMS));
        for (id, call) in (first + 1..).zip(calls) {
            requests.push(WireRequest::new(id, call.method, &call.params));
        }
        // Refcounted, so keeping it for the retry below copies nothing.
        let body =
            bytes::Bytes::from(serde_json::to_vec(&requests).map_err(|_| ChainError::Setup)?);
        // Reads are idempotent, so a transport failure is retried once at once: the usual cause
        // is a pooled keep-alive connection the node closed (it restarted), and the retry opens a
        // fresh one. A timeout is not retried, so a slow node is not waited on twice.
        let responses = match self.post(body.clone()).await {
            Err(ChainError::Unreachable { reason, .. }) if retry && reason != TIMED_OUT => {
                self.post(body).await?
            }
            other => other?,
        };

        let mut results: Vec<Option<Result<Value, CallError>>> = vec![None; calls.len() + 1];
        for mut response in responses {
            let Some(id) = response.get("id").and_then(Value::as_u64) else {
                return Err(self.bad_response("a response has no numeric id"));
            };
            let Some(slot) = id
                .checked_sub(first)
                .and_then(|i| results.get_mut(i as usize))
            else {
                return Err(self.bad_response("a response answers a request that was not sent"));
            };
            let Some(fields) = response.as_object_mut() else {
                return Err(self.bad_response("a response is not a JSON object"));
            };
            *slot = Some(match (fields.remove("result"), fields.get("error")) {
                (_, Some(error)) if !error.is_null() => Err(CallError {
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: UntrustedText::new(
                        error
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                    data: error.get("data").and_then(parse_bytes),
                }),
                (Some(result), _) => Ok(result),
                (None, _) => {
                    return Err(self.bad_response("a response has neither result nor error"));
                }
            });
        }
        let mut results = results.into_iter();
        let chain = match results.next().flatten() {
            Some(Ok(chain)) => chain,
            Some(Err(_)) | None => return Err(self.bad_response("eth_chainId was not answered")),
        };
        let got =
            parse_u64(&chain).ok_or_else(|| self.bad_response("eth_chainId is not a number"))?;
        if got != self.chain_id {
            return Err(ChainError::WrongChain {
                network: self.network.clone(),
                url: self.url.clone(),
                expected: self.chain_id,
                got,
            });
        }
        results
            .map(|result| {
                result.ok_or_else(|| self.bad_response("a call in the batch was not answered"))
            })
            .collect()
    }

    async fn post(&self, body: bytes::Bytes) -> Result<Vec<Value>, ChainError> {
        let response = self
            .http
            .post_json(self.url.expose_url(), body, self.timeout)
            .await
            .map_err(|err| match err {
                EgressError::Refused(refusal) => ChainError::Refused {
                    network: self.network.clone(),
                    url: self.url.clone(),
                    refusal,
                },
                EgressError::Transport(err) => self.transport_error(&err),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ChainError::Http {
                network: self.network.clone(),
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE as u64)
        {
            return Err(self.bad_response("the response is larger than 4 MiB"));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(&err))?;
        if bytes.len() > MAX_RESPONSE {
            return Err(self.bad_response("the response is larger than 4 MiB"));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Array(responses)) => Ok(responses),
            Ok(Value::Object(single)) if single.contains_key("error") => {
                Err(self.bad_response("the endpoint refused a batch request"))
            }
            Ok(_) => Err(self.bad_response("the response is not a JSON-RPC batch")),
            Err(_) => Err(self.bad_response("the response is not JSON")),
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> ChainError {
        if let Some(reason) = tls_failure(err) {
            return ChainError::Untrusted {
                network: self.network.clone(),
                url: self.url.clone(),
                reason,
            };
        }
        let reason = if err.is_timeout() {
            TIMED_OUT
        } else if err.is_connect() {
            "the connection failed"
        } else if err.is_body() || err.is_decode() {
            "its answer was cut off"
        } else {
            "the request failed"
        };
        ChainError::Unreachable {
            network: self.network.clone(),
            url: self.url.clone(),
            reason,
        }
    }

    pub(super) fn bad_response(&self, problem: &'static str) -> ChainError {
        ChainError::BadResponse {
            network: self.network.clone(),
            url: self.url.clone(),
            problem,
        }
    }
}

/// Why the TLS layer refused the node, if it did, in words that say what to fix. hyper wraps
/// rustls's error in `io::Error`s, whose `source()` skips the error they hold, so each is opened
/// with `get_ref`.
fn tls_failure(err: &reqwest::Error) -> Option<&'static str> {
    use rustls::CertificateError as Cert;
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    let tls = loop {
        let current = next?;
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            break tls;
        }
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(Cert::UnknownIssuer) => {
            "its certificate is not signed by an authority this machine trusts; if the node is \
             yours and has its own certificate authority, start keyward with SSL_CERT_FILE set to \
             that authority's certificate (PEM)"
        }
        rustls::Error::InvalidCertificate(
            Cert::NotValidForName | Cert::NotValidForNameContext { .. },
        ) => "its certificate is for another host name; put a name it was issued for in rpc_url",
        rustls::Error::InvalidCertificate(
            Cert::Expired
            | Cert::ExpiredContext { .. }
            | Cert::NotValidYet
            | Cert::NotValidYetContext { .. },
        ) => {
            "its certificate has expired or is not valid yet; check the node's certificate and this \
             machine's clock"
        }
        rustls::Error::InvalidCertificate(Cert::Revoked) => "its certificate has been revoked",
        rustls::Error::InvalidCertificate(_) => {
            "its certificate was rejected; check the node's certificate"
        }
        _ => {
            "the TLS handshake failed; if the node serves plain HTTP, rpc_url should start with \
             http://, otherwise check its port"
        }
    })
}

/// A JSON-RPC quantity (`"0x1f"`) as a u64.
pub fn parse_u64(value: &Value) -> Option<u64> {
    let hex = value.as_str()?.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A JSON-RPC quantity as a U256.
pub fn parse_u256(value: &Value) -> Option<alloy::primitives::U256> {
    let hex = value.as_str()?.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() > 64 {
        return None;
    }
    alloy::primitives::U256::from_str_radix(hex, 16).ok()
}

/// JSON-RPC data (`"0x…"`) as bytes.
pub fn parse_bytes(value: &Value) -> Option<Vec<u8>> {
    hex::decode(value.as_str()?.strip_prefix("0x")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_is_written_as_json_rpc_2_with_its_parameters() {
        let params = json!([{"to": "0x01", "data": "0x70a08231"}, "latest"]);
        let batch = [
            WireRequest::new(7, "eth_chainId", &NO_PARAMS),
            WireRequest::new(8, "eth_call", &params),
        ];
        assert_eq!(
            serde_json::to_string(&batch).unwrap(),
            r#"[{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":8,"method":"eth_call","params":[{"data":"0x70a08231","to":"0x01"},"latest"]}]"#
        );
    }

    #[test]
    fn quantities_parse_strictly() {
        assert_eq!(parse_u64(&json!("0x7a69")), Some(31337));
        assert_eq!(parse_u64(&json!("0x")), None);
        assert_eq!(parse_u64(&json!("7a69")), None);
        assert_eq!(parse_u64(&json!(31337)), None);
        assert_eq!(parse_u64(&json!("0x10000000000000000")), None);
        assert_eq!(
            parse_u256(&json!("0x21e19e0c9bab2400000")),
            Some(
                alloy::primitives::U256::from(10_000u64)
                    * alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(18))
            )
        );
        assert_eq!(parse_bytes(&json!("0x00ff")), Some(vec![0, 255]));
    }
}
