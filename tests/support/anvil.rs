//! A real Anvil for the tests: started on 127.0.0.1 on a free port, with the test tokens deployed.
//!
//! Anvil runs under a small shell wrapper that kills it when the wrapper's stdin closes, which
//! happens when the test process exits for any reason, even a panic that skips destructors. So no
//! test leaves an Anvil behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::foundry_tool;

/// Anvil's account 0, which deploys the tokens.
pub(crate) const DEPLOYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// Where the tokens land on a fresh Anvil (deployer nonces 0, 1, 2).
pub(crate) const TEST_DOLLAR: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
pub(crate) const TEST_EIGHTEEN: &str = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512";
pub(crate) const HOSTILE_TOKEN: &str = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
/// PermitDollar (ERC-2612), deployed fourth by `deploy_permit_dollar`.
pub(crate) const PERMIT_DOLLAR: &str = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9";
/// Anvil's account 9, which deploys Chameleon and alone may set its text. Its own nonce places
/// Chameleon, whatever account 0 has deployed.
pub(crate) const CHAMELEON_OWNER: &str = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";
/// Chameleon (anvil/contracts/Chameleon.sol), deployed by `deploy_chameleon`.
pub(crate) const CHAMELEON: &str = "0x700b6A60ce7EaaEA56F065753d8dcB9653dbAD35";
/// `set(bytes,uint256)`
const CHAMELEON_SET: &str = "6f713284";

/// Runs Anvil with its output in a log file, and kills it when stdin closes (the test process
/// went away) or on a signal.
const WRAPPER: &str = r#"
log="$1"; shift
"$@" >"$log" 2>&1 & anvil_pid=$!
trap 'kill $anvil_pid 2>/dev/null' EXIT
while kill -0 "$anvil_pid" 2>/dev/null; do
  # read: 0 for a line, 1 at end of input, above 128 on timeout. Only end of input stops.
  read -t 1 _
  status=$?
  if [ "$status" -ge 1 ] && [ "$status" -le 128 ]; then break; fi
done
"#;

pub(crate) struct Anvil {
    wrapper: Child,
    _log: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) url: String,
}

impl Anvil {
    /// The process's shared Anvil, with the tokens deployed; `None` (the test prints why and
    /// returns) when anvil is not installed.
    pub(crate) fn shared() -> Option<&'static Anvil> {
        static SHARED: OnceLock<Option<Anvil>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let anvil = Anvil::start(None, 31337)?;
                anvil.deploy_tokens();
                Some(anvil)
            })
            .as_ref()
    }

    /// A new Anvil of this test's own serving `chain_id`, with no tokens: on `port`, or on a port
    /// Anvil picks itself (so two test processes can never share one).
    pub(crate) fn start(port: Option<u16>, chain_id: u64) -> Option<Self> {
        let binary = foundry_tool("anvil")?;
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("anvil.log");
        let wrapper = Command::new("bash")
            .arg("-c")
            .arg(WRAPPER)
            .arg("anvil-wrapper")
            .arg(&log)
            .arg(binary)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.unwrap_or(0).to_string(),
            ])
            .args(["--chain-id", &chain_id.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        // Anvil prints "Listening on 127.0.0.1:PORT" once it has bound its port.
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("Listening on 127.0.0.1:").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap();
            }
            assert!(
                !text.contains("rror") && started.elapsed() < Duration::from_secs(20),
                "anvil did not start on port {port:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let anvil = Self {
            wrapper,
            _log: log_dir,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        while anvil.try_rpc("eth_chainId", json!([])).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "anvil did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(anvil)
    }

    /// Deploys TestDollar, TestEighteen and HostileToken from account 0, checking their addresses.
    pub(crate) fn deploy_tokens(&self) {
        self.deploy(&[
            ("TestDollar", TEST_DOLLAR),
            ("TestEighteen", TEST_EIGHTEEN),
            ("HostileToken", HOSTILE_TOKEN),
        ]);
    }

    /// Deploys PermitDollar, an ERC-2612 token; call it right after `deploy_tokens`.
    pub(crate) fn deploy_permit_dollar(&self) {
        self.deploy(&[("PermitDollar", PERMIT_DOLLAR)]);
    }

    /// Deploys Chameleon, the token whose name, symbol and revert reason `set_chameleon_text`
    /// rewrites, from [`CHAMELEON_OWNER`].
    pub(crate) fn deploy_chameleon(&self) {
        self.deploy_from(CHAMELEON_OWNER, &[("Chameleon", CHAMELEON)]);
    }

    /// Makes Chameleon's `name()`, `symbol()` and `transfer` revert reason `seed` repeated
    /// `repeat` times.
    pub(crate) fn set_chameleon_text(&self, seed: &[u8], repeat: u64) {
        let padded = seed.len().div_ceil(32) * 32;
        let mut data = format!(
            "0x{CHAMELEON_SET}{:064x}{repeat:064x}{:064x}",
            64,
            seed.len()
        );
        data.push_str(&hex::encode(seed));
        data.push_str(&"00".repeat(padded - seed.len()));
        let hash = self.rpc(
            "eth_sendTransaction",
            json!([{"from": CHAMELEON_OWNER, "to": CHAMELEON, "data": data}]),
        );
        let receipt = self.receipt(&hash);
        assert_eq!(receipt["status"], "0x1", "set failed: {receipt}");
    }

    fn deploy(&self, contracts: &[(&str, &str)]) {
        self.deploy_from(DEPLOYER, contracts);
    }

    fn deploy_from(&self, deployer: &str, contracts: &[(&str, &str)]) {
        for &(contract, expected) in contracts {
            let fixture: Value = serde_json::from_slice(
                &std::fs::read(fixtures().join(format!("contracts/{contract}.json"))).unwrap(),
            )
            .unwrap();
            let hash = self.rpc(
                "eth_sendTransaction",
                json!([{"from": deployer, "data": fixture["bytecode"]}]),
            );
            let receipt = self.receipt(&hash);
            assert_eq!(
                receipt["status"], "0x1",
                "{contract} deployment failed: {receipt}"
            );
            assert_eq!(
                receipt["contractAddress"].as_str().unwrap(),
                expected.to_lowercase(),
                "{contract} landed elsewhere: is this Anvil fresh?"
            );
        }
    }

    /// The receipt of a sent transaction, waiting for automine to include it.
    pub(crate) fn receipt(&self, hash: &Value) -> Value {
        let started = Instant::now();
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{hash} was never mined"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A JSON-RPC call; panics on an error.
    pub(crate) fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .unwrap_or_else(|err| panic!("{method} failed: {err}"))
    }

    pub(crate) fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let response = http_post(self.port, &body)?;
        let response: Value = serde_json::from_str(&response).map_err(|e| e.to_string())?;
        match response.get("error") {
            Some(error) => Err(error.to_string()),
            None => Ok(response["result"].clone()),
        }
    }

    /// Stops this Anvil and waits until its port is free again.
    pub(crate) fn stop(mut self) {
        drop(self.wrapper.stdin.take());
        let _ = self.wrapper.wait();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "anvil did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A blocking HTTP/1.1 POST to 127.0.0.1, enough for JSON-RPC in tests (usable inside or outside
/// an async runtime, unlike a blocking HTTP client library).
fn http_post(port: u16, body: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match length {
        Some(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        }
        None => {
            reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
        }
    }
    String::from_utf8(body).map_err(|e| e.to_string())
}
