//! keyward's configuration: networks and their tokens, privacy, policy and the approval page, from
//! one TOML file (`config/keyward.example.toml` documents every key).
//!
//! The file is parsed into raw structs that refuse unknown keys, then validated into the types
//! below, so the rest of keyward never sees an unchecked value. An RPC URL can carry an API key:
//! [`RpcUrl`] prints redacted everywhere, and a TOML syntax error is reported by line and column
//! without the offending line's text.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use alloy::primitives::Address;
use serde::Deserialize;

use crate::files;

/// Configuration files are small; anything larger is a mistake.
const MAX_CONFIG_SIZE: u64 = 1 << 20;
/// How long one JSON-RPC request may take (`networks[].rpc_timeout_seconds`).
const DEFAULT_RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// The approval page's default address: loopback, a fixed port so a bookmark keeps working.
const DEFAULT_APPROVAL_LISTEN: &str = "127.0.0.1:7423";
/// How long the unlocked vault may sit unused before it is locked: 15 minutes.
const DEFAULT_LOCK_AFTER_SECONDS: u64 = 15 * 60;
/// The largest HTTP request body by default: tool arguments are small, typed data the largest.
const DEFAULT_HTTP_MAX_BODY: usize = 1 << 20;
/// Requests per minute per HTTP token by default: ten a second, far above any assistant's pace.
const DEFAULT_HTTP_REQUESTS_PER_MINUTE: u32 = 600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no configuration at {}: copy config/keyward.example.toml there and edit it, \
         or pass --config FILE",
        .0.display()
    )]
    Missing(std::path::PathBuf),

    #[error(transparent)]
    File(#[from] files::FileError),

    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{file}: `{key}` {problem}")]
    Invalid {
        file: String,
        key: String,
        problem: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    networks: Vec<Network>,
    default_network: usize,
    pub privacy: Privacy,
    pub log: LogSettings,
    pub policy: Policy,
    pub approval: Approval,
    pub ledger: LedgerSettings,
    pub http: HttpSettings,
}

/// One chain keyward talks to.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub chain_id: u64,
    pub rpc_url: RpcUrl,
    /// How long one JSON-RPC request may take before keyward gives up on it.
    pub rpc_timeout: std::time::Duration,
    pub tokens: Vec<TokenConfig>,
}

/// A token the user vouches for. Its symbol and decimals, when given, are trusted; any token not
/// listed here is "unverified" and its chain-reported strings are untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    pub address: Address,
    pub symbol: Option<String>,
    pub decimals: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelView {
    /// Tool results carry full addresses.
    #[default]
    Full,
    /// Tool results carry labels and shortened addresses; full ones appear on trusted channels.
    Masked,
}

#[derive(Debug, Clone, Default)]
pub struct Privacy {
    pub model_view: ModelView,
    /// Allow one third-party request to carry several of the wallet's own addresses.
    pub batch_own_addresses: bool,
    /// An HTTP proxy every outbound request goes through (`privacy.proxy`), such as a local
    /// Tor or corporate proxy. The `HTTP_PROXY` environment variables are never used.
    pub proxy: Option<url::Url>,
}

#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// Log full addresses instead of masked ones.
    pub reveal_addresses: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientRule {
    /// Any recipient, with warnings for new or look-alike ones.
    #[default]
    Any,
    /// Only recipients in the address book.
    AddressBookOnly,
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// The networks fund movements may use; every configured network when absent.
    pub allowed_networks: Option<Vec<String>>,
    pub recipients: RecipientRule,
    pub blind_signing: bool,
    pub unlimited_approvals: bool,
    pub approval_expiry_seconds: u64,
    pub max_tool_calls_per_minute: u32,
    pub limits: Vec<Limit>,
}

/// A spending limit for one asset, as exact decimal strings in the asset's own units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// `ETH` or a configured token symbol.
    pub asset: String,
    /// Only this network, or every network when absent.
    pub network: Option<String>,
    pub per_transaction: Option<String>,
    pub per_24h: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Approval {
    /// Where the approval page listens: always a loopback address.
    pub listen: SocketAddr,
    /// How long the unlocked vault may sit unused before it is locked and its secrets wiped.
    pub lock_after: std::time::Duration,
}

/// MCP over Streamable HTTP (`keyward serve --http ADDR`): who may connect and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The server's certificate chain and private key (PEM); required off loopback.
    pub tls: Option<TlsFiles>,
    /// Host names clients reach the server by, beyond its own address (and `localhost` on
    /// loopback). Any other `Host` header is refused: that is what stops DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed besides the server's own.
    pub allowed_origins: Vec<String>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Requests each token may make per minute (a token bucket of this size).
    pub requests_per_minute: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            tls: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: DEFAULT_HTTP_MAX_BODY,
            requests_per_minute: DEFAULT_HTTP_REQUESTS_PER_MINUTE,
        }
    }
}

/// PEM files for TLS, resolved against the configuration file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// How keyward reaches a Ledger, for accounts of kind `ledger`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    pub transport: LedgerTransport,
    /// How long the person may take to confirm on the device.
    pub timeout: std::time::Duration,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            transport: LedgerTransport::Hid,
            timeout: std::time::Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerTransport {
    /// A device on USB.
    Hid,
    /// Speculos's raw APDU port, on loopback.
    Speculos(SocketAddr),
    /// The in-process emulator of the Ethereum app, with Speculos's public test seed. For
    /// development and tests only: anyone can derive its keys.
    Emulator(EmulatorSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorSettings {
    pub mode: EmulatorMode,
    pub blind_signing: bool,
    pub version: (u8, u8, u8),
    /// How long the emulated person takes to confirm.
    pub user_delay: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmulatorMode {
    Approve,
    Reject,
    Locked,
    AppNotOpen,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing(path.to_owned()));
        }
        let bytes = files::read_limited(path, MAX_CONFIG_SIZE)?;
        let file = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
            file: file.clone(),
            line: 1,
            column: 1,
            message: "the file is not UTF-8 text".to_owned(),
        })?;
        let mut config = Self::parse(&text, &file)?;
        // TLS files named relative to the configuration file are found beside it.
        if let Some(tls) = &mut config.http.tls
            && let Some(dir) = path.parent()
        {
            tls.certificate = dir.join(&tls.certificate);
            tls.key = dir.join(&tls.key);
        }
        Ok(config)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let raw: raw::Config = toml::from_str(text).map_err(|err| {
            let (line, column) = err
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Syntax {
                file: file.to_owned(),
                line,
                column,
                // The message only: toml's full rendering quotes the line, which may hold an
                // RPC URL with an API key.
                message: err.message().trim_end().to_owned(),
            }
        })?;
        raw.validate(file)
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// The network named `name`, or the default network when `name` is `None`.
    pub fn network(&self, name: Option<&str>) -> Option<&Network> {
        self.network_index(name).map(|index| &self.networks[index])
    }

    /// The position in [`Config::networks`] of the network named `name` (any case), or of the
    /// default network when `name` is `None`.
    pub fn network_index(&self, name: Option<&str>) -> Option<usize> {
        match name {
            None => Some(self.default_network),
            Some(name) => self
                .networks
                .iter()
                .position(|n| n.name.eq_ignore_ascii_case(name)),
        }
    }

    pub fn default_network(&self) -> &Network {
        &self.networks[self.default_network]
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// An RPC endpoint. Its URL may carry an API key in the user info, the path or the query, so it
/// only ever prints redacted; [`RpcUrl::expose_url`] gives the real one to the HTTP client.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcUrl(std::sync::Arc<reqwest::Url>);

impl RpcUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text).map_err(|err| format!("is not a valid URL ({err})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".to_owned());
        }
        Ok(Self(std::sync::Arc::new(url)))
    }

    /// The URL with any credentials in it. Only the HTTP client may use this.
    pub fn expose_url(&self) -> &reqwest::Url {
        &self.0
    }

    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }

    /// Whether the endpoint is this machine (no third party sees the traffic).
    pub fn is_loopback(&self) -> bool {
        match self.0.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
            None => false,
        }
    }
}

impl fmt::Display for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        write!(f, "{}://", url.scheme())?;
        if !url.username().is_empty() || url.password().is_some() {
            f.write_str("***@")?;
        }
        f.write_str(url.host_str().unwrap_or_default())?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        for segment in url.path_segments().into_iter().flatten() {
            if segment.is_empty() {
                continue;
            }
            f.write_str("/")?;
            f.write_str(if looks_like_a_key(segment) {
                "***"
            } else {
                segment
            })?;
        }
        if url.query().is_some() {
            f.write_str("?***")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcUrl({self})")
    }
}

/// A path segment that could be an API key: long, or mixing letters and digits.
fn looks_like_a_key(segment: &str) -> bool {
    let has_digit = segment.bytes().any(|b| b.is_ascii_digit());
    let has_letter = segment.bytes().any(|b| b.is_ascii_alphabetic());
    segment.len() >= 16 || (segment.len() >= 8 && has_digit && has_letter)
}

/// Validates a decimal amount written as a string: digits, optionally a point and more digits.
fn check_decimal(text: &str) -> Result<(), String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err("must be a decimal number written as a string, such as \"0.5\"".to_owned());
    }
    if whole.len() + fraction.len() > 78 {
        return Err("has more than 78 digits".to_owned());
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 32 lowercase letters, digits or '-'".to_owned())
    }
}

fn check_symbol(symbol: &str) -> Result<(), String> {
    let ok = !symbol.is_empty()
        && symbol.len() <= 11
        && symbol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 11 ASCII letters, digits or '.'".to_owned())
    }
}

/// Parses an address; a mixed-case address must carry a correct EIP-55 checksum.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let hex = text
        .strip_prefix("0x")
        .ok_or_else(|| "must start with 0x".to_owned())?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be 0x followed by 40 hexadecimal digits".to_owned());
    }
    let address: Address = text
        .parse()
        .map_err(|_| "is not a valid address".to_owned())?;
    let mixed_case =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed_case && address.to_checksum(None) != text {
        return Err(
            "has mixed case but a wrong EIP-55 checksum: a character may be mistyped".to_owned(),
        );
    }
    Ok(address)
}

/// An origin as browsers send it, `scheme://host[:port]` in lower case with the scheme's default
/// port left out; `None` for anything else (a path, credentials, another scheme).
pub fn normalize_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && !text.trim_end_matches('/').ends_with(':');
    if !plain {
        return None;
    }
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// The file as written: every key optional where a default exists, unknown keys refused.
mod raw {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Config {
        default_network: Option<String>,
        #[serde(default)]
        networks: Vec<Network>,
        #[serde(default)]
        privacy: Privacy,
        #[serde(default)]
        log: Log,
        #[serde(default)]
        policy: Policy,
        #[serde(default)]
        approval: Approval,
        #[serde(default)]
        ledger: Ledger,
        #[serde(default)]
        http: Http,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Http {
        tls_certificate: Option<String>,
        tls_key: Option<String>,
        #[serde(default)]
        allowed_hosts: Vec<String>,
        #[serde(default)]
        allowed_origins: Vec<String>,
        max_body_bytes: Option<usize>,
        requests_per_minute: Option<u32>,
    }

    impl Http {
        fn validate(
            self,
            invalid: &dyn Fn(String, String) -> ConfigError,
        ) -> Result<HttpSettings, ConfigError> {
            let tls = match (self.tls_certificate, self.tls_key) {
                (None, None) => None,
                (Some(certificate), Some(key)) => Some(TlsFiles {
                    certificate: certificate.into(),
                    key: key.into(),
                }),
                (Some(_), None) | (None, Some(_)) => {
                    return Err(invalid(
                        "http.tls_certificate".into(),
                        "and `http.tls_key` go together: set both (PEM files) or neither".into(),
                    ));
                }
            };
            for (n, host) in self.allowed_hosts.iter().enumerate() {
                if !is_host_name(host) {
                    return Err(invalid(
                        format!("http.allowed_hosts[{n}]"),
                        "must be a host name or IP address without scheme, port or path, such \
                         as \"wallet.example.com\""
                            .into(),
                    ));
                }
            }
            let mut allowed_origins = Vec::with_capacity(self.allowed_origins.len());
            for (n, origin) in self.allowed_origins.iter().enumerate() {
                allowed_origins.push(normalize_origin(origin).ok_or_else(|| {
                    invalid(
                        format!("http.allowed_origins[{n}]"),
                        "must be an origin: scheme, host and optional port, such as \
                         \"https://app.example.com\" (no path)"
                            .into(),
                    )
                })?);
            }
            let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_HTTP_MAX_BODY);
            if !(4096..=16 << 20).contains(&max_body_bytes) {
                return Err(invalid(
                    "http.max_body_bytes".into(),
                    "must be from 4096 to 16777216 (16 MiB)".into(),
                ));
            }
            let requests_per_minute = self
                .requests_per_minute
                .unwrap_or(DEFAULT_HTTP_REQUESTS_PER_MINUTE);
            if !(1..=1_000_000).contains(&requests_per_minute) {
                return Err(invalid(
                    "http.requests_per_minute".into(),
                    "must be from 1 to 1000000".into(),
                ));
            }
            Ok(HttpSettings {
                tls,
                allowed_hosts: self
                    .allowed_hosts
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
                allowed_origins,
                max_body_bytes,
                requests_per_minute,
            })
        }
    }

    fn is_host_name(text: &str) -> bool {
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        !text.is_empty()
            && (bare.parse::<std::net::IpAddr>().is_ok()
                || (text.len() <= 253
                    && text.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })))
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Ledger {
        transport: Option<String>,
        speculos_address: Option<String>,
        timeout_seconds: Option<u64>,
        emulator: Option<Emulator>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Emulator {
        #[serde(default = "approve")]
        mode: EmulatorMode,
        #[serde(default)]
        blind_signing: bool,
        app_version: Option<String>,
        #[serde(default)]
        user_delay_ms: u64,
    }

    fn approve() -> EmulatorMode {
        EmulatorMode::Approve
    }

    impl Ledger {
        fn validate(
            self,
            invalid: &dyn Fn(String, String) -> ConfigError,
        ) -> Result<LedgerSettings, ConfigError> {
            let timeout = match self.timeout_seconds {
                None => 120,
                Some(seconds @ 5..=3600) => seconds,
                Some(_) => {
                    return Err(invalid(
                        "ledger.timeout_seconds".into(),
                        "must be from 5 to 3600: the time a person has to confirm on the device"
                            .into(),
                    ));
                }
            };
            let transport = self.transport.as_deref().unwrap_or("hid");
            if transport != "speculos" && self.speculos_address.is_some() {
                return Err(invalid(
                    "ledger.speculos_address".into(),
                    "is only used with transport = \"speculos\"".into(),
                ));
            }
            if transport != "emulator" && self.emulator.is_some() {
                return Err(invalid(
                    "ledger.emulator".into(),
                    "is only used with transport = \"emulator\"".into(),
                ));
            }
            let transport = match transport {
                "hid" => LedgerTransport::Hid,
                "speculos" => {
                    let text = self.speculos_address.as_deref().unwrap_or("127.0.0.1:9999");
                    let address: SocketAddr = text.parse().map_err(|_| {
                        invalid(
                            "ledger.speculos_address".into(),
                            "must be an IP address and port, such as \"127.0.0.1:9999\"".into(),
                        )
                    })?;
                    if !address.ip().is_loopback() {
                        return Err(invalid(
                            "ledger.speculos_address".into(),
                            "must be a loopback address: Speculos is a test device on this \
                             machine"
                                .into(),
                        ));
                    }
                    LedgerTransport::Speculos(address)
                }
                "emulator" => {
                    let emulator = self.emulator.unwrap_or(Emulator {
                        mode: EmulatorMode::Approve,
                        blind_signing: false,
                        app_version: None,
                        user_delay_ms: 0,
                    });
                    let version = match emulator.app_version.as_deref() {
                        None => (1, 9, 17),
                        Some(text) => parse_version(text).ok_or_else(|| {
                            invalid(
                                "ledger.emulator.app_version".into(),
                                "must be three numbers such as \"1.9.17\"".into(),
                            )
                        })?,
                    };
                    if emulator.user_delay_ms > 3_600_000 {
                        return Err(invalid(
                            "ledger.emulator.user_delay_ms".into(),
                            "must be at most 3600000 (an hour)".into(),
                        ));
                    }
                    LedgerTransport::Emulator(EmulatorSettings {
                        mode: emulator.mode,
                        blind_signing: emulator.blind_signing,
                        version,
                        user_delay: std::time::Duration::from_millis(emulator.user_delay_ms),
                    })
                }
                _ => {
                    return Err(invalid(
                        "ledger.transport".into(),
                        "must be \"hid\", \"speculos\" or \"emulator\"".into(),
                    ));
                }
            };
            Ok(LedgerSettings {
                transport,
                timeout: std::time::Duration::from_secs(timeout),
            })
        }
    }

    fn parse_version(text: &str) -> Option<(u8, u8, u8)> {
        let mut parts = text.split('.').map(|part| part.parse::<u8>().ok());
        let version = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Network {
        name: String,
        chain_id: u64,
        rpc_url: String,
        rpc_timeout_seconds: Option<u64>,
        #[serde(default)]
        tokens: Vec<Token>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Token {
        address: String,
        symbol: Option<String>,
        decimals: Option<u8>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Privacy {
        #[serde(default)]
        model_view: ModelView,
        #[serde(default)]
        batch_own_addresses: bool,
        #[serde(default)]
        proxy: Option<String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Log {
        #[serde(default)]
        reveal_addresses: bool,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Policy {
        #[serde(default)]
        allowed_networks: Option<Vec<String>>,
        #[serde(default)]
        recipients: RecipientRule,
        #[serde(default)]
        blind_signing: bool,
        #[serde(default)]
        unlimited_approvals: bool,
        #[serde(default = "default_expiry")]
        approval_expiry_seconds: u64,
        #[serde(default = "default_rate")]
        max_tool_calls_per_minute: u32,
        #[serde(default)]
        limits: Vec<Limit>,
    }

    impl Default for Policy {
        fn default() -> Self {
            Self {
                allowed_networks: None,
                recipients: RecipientRule::default(),
                blind_signing: false,
                unlimited_approvals: false,
                approval_expiry_seconds: default_expiry(),
                max_tool_calls_per_minute: default_rate(),
                limits: Vec::new(),
            }
        }
    }

    fn default_expiry() -> u64 {
        600
    }

    fn default_rate() -> u32 {
        120
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limit {
        asset: String,
        network: Option<String>,
        per_transaction: Option<String>,
        per_24h: Option<String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Approval {
        listen: Option<String>,
        lock_after_seconds: Option<u64>,
    }

    /// The idle lock: 15 minutes by default; from 10 seconds (every approval then asks for the
    /// password again) to one day.
    fn lock_after(
        seconds: Option<u64>,
        invalid: &dyn Fn(String, String) -> ConfigError,
    ) -> Result<std::time::Duration, ConfigError> {
        match seconds.unwrap_or(DEFAULT_LOCK_AFTER_SECONDS) {
            seconds @ 10..=86_400 => Ok(std::time::Duration::from_secs(seconds)),
            _ => Err(invalid(
                "approval.lock_after_seconds".into(),
                "must be from 10 seconds to 86400 (one day): it is how long the unlocked wallet \
                 may sit unused before keyward locks it and wipes its secrets from memory"
                    .into(),
            )),
        }
    }

    impl Config {
        pub(super) fn validate(self, file: &str) -> Result<super::Config, ConfigError> {
            let invalid = |key: String, problem: String| ConfigError::Invalid {
                file: file.to_owned(),
                key,
                problem,
            };
            if self.networks.is_empty() {
                return Err(invalid(
                    "networks".into(),
                    "is empty: add at least one [[networks]] table".into(),
                ));
            }
            let mut networks = Vec::with_capacity(self.networks.len());
            let mut names = HashSet::new();
            for (n, network) in self.networks.into_iter().enumerate() {
                let key = |field: &str| format!("networks[{n}].{field}");
                check_name(&network.name).map_err(|p| invalid(key("name"), p))?;
                if !names.insert(network.name.clone()) {
                    return Err(invalid(
                        key("name"),
                        "repeats an earlier network's name".into(),
                    ));
                }
                if network.chain_id == 0 {
                    return Err(invalid(
                        key("chain_id"),
                        "must be a positive integer".into(),
                    ));
                }
                let rpc_url =
                    RpcUrl::parse(&network.rpc_url).map_err(|p| invalid(key("rpc_url"), p))?;
                let rpc_timeout = match network.rpc_timeout_seconds {
                    None => DEFAULT_RPC_TIMEOUT,
                    Some(seconds @ 1..=300) => std::time::Duration::from_secs(seconds),
                    Some(_) => {
                        return Err(invalid(
                            key("rpc_timeout_seconds"),
                            "must be from 1 to 300".into(),
                        ));
                    }
                };
                let mut tokens: Vec<TokenConfig> = Vec::with_capacity(network.tokens.len());
                for (t, token) in network.tokens.into_iter().enumerate() {
                    let key = |field: &str| format!("networks[{n}].tokens[{t}].{field}");
                    let address =
                        parse_address(&token.address).map_err(|p| invalid(key("address"), p))?;
                    if address == Address::ZERO {
                        return Err(invalid(key("address"), "is the zero address".into()));
                    }
                    if let Some(symbol) = &token.symbol {
                        check_symbol(symbol).map_err(|p| invalid(key("symbol"), p))?;
                        if symbol.eq_ignore_ascii_case("ETH") {
                            return Err(invalid(
                                key("symbol"),
                                "cannot be ETH, the chain's own coin".into(),
                            ));
                        }
                    }
                    if token.decimals.is_some_and(|d| d > 36) {
                        return Err(invalid(key("decimals"), "must be from 0 to 36".into()));
                    }
                    if tokens.iter().any(|other| other.address == address) {
                        return Err(invalid(key("address"), "repeats an earlier token".into()));
                    }
                    if let Some(symbol) = &token.symbol
                        && tokens.iter().any(|other| {
                            other
                                .symbol
                                .as_deref()
                                .is_some_and(|s| s.eq_ignore_ascii_case(symbol))
                        })
                    {
                        return Err(invalid(
                            key("symbol"),
                            "repeats an earlier token's symbol on this network".into(),
                        ));
                    }
                    tokens.push(TokenConfig {
                        address,
                        symbol: token.symbol,
                        decimals: token.decimals,
                    });
                }
                networks.push(super::Network {
                    name: network.name,
                    chain_id: network.chain_id,
                    rpc_url,
                    rpc_timeout,
                    tokens,
                });
            }
            let default_network = match &self.default_network {
                None => 0,
                Some(name) => networks
                    .iter()
                    .position(|n| &n.name == name)
                    .ok_or_else(|| {
                        invalid(
                            "default_network".into(),
                            "names no network in [[networks]]".into(),
                        )
                    })?,
            };

            let policy = self.policy;
            if let Some(allowed) = &policy.allowed_networks
                && let Some(unknown) = allowed
                    .iter()
                    .find(|name| !networks.iter().any(|n| &n.name == *name))
            {
                return Err(invalid(
                    "policy.allowed_networks".into(),
                    format!(
                        "names \"{}\", which is not a network in [[networks]]",
                        unknown.chars().take(32).collect::<String>()
                    ),
                ));
            }
            if !(10..=86_400).contains(&policy.approval_expiry_seconds) {
                return Err(invalid(
                    "policy.approval_expiry_seconds".into(),
                    "must be from 10 seconds to 86400 (one day)".into(),
                ));
            }
            if !(1..=10_000).contains(&policy.max_tool_calls_per_minute) {
                return Err(invalid(
                    "policy.max_tool_calls_per_minute".into(),
                    "must be from 1 to 10000".into(),
                ));
            }
            let mut limits = Vec::with_capacity(policy.limits.len());
            for (l, limit) in policy.limits.into_iter().enumerate() {
                let key = |field: &str| format!("policy.limits[{l}].{field}");
                let known = limit.asset == "ETH"
                    || networks.iter().any(|n| {
                        (limit.network.is_none() || limit.network.as_deref() == Some(&n.name))
                            && n.tokens
                                .iter()
                                .any(|t| t.symbol.as_deref() == Some(&limit.asset))
                    });
                if !known {
                    return Err(invalid(
                        key("asset"),
                        "must be ETH or the symbol of a token configured on that network".into(),
                    ));
                }
                if let Some(network) = &limit.network
                    && !networks.iter().any(|n| &n.name == network)
                {
                    return Err(invalid(
                        key("network"),
                        "names no network in [[networks]]".into(),
                    ));
                }
                if limit.per_transaction.is_none() && limit.per_24h.is_none() {
                    return Err(invalid(
                        key("per_transaction"),
                        "or `per_24h` must be set: a limit with neither limits nothing".into(),
                    ));
                }
                for (field, value) in [
                    ("per_transaction", &limit.per_transaction),
                    ("per_24h", &limit.per_24h),
                ] {
                    if let Some(value) = value {
                        check_decimal(value).map_err(|p| invalid(key(field), p))?;
                    }
                }
                limits.push(super::Limit {
                    asset: limit.asset,
                    network: limit.network,
                    per_transaction: limit.per_transaction,
                    per_24h: limit.per_24h,
                });
            }

            let listen_text = self
                .approval
                .listen
                .as_deref()
                .unwrap_or(DEFAULT_APPROVAL_LISTEN);
            let listen: SocketAddr = listen_text.parse().map_err(|_| {
                invalid(
                    "approval.listen".into(),
                    "must be an IP address and port, such as \"127.0.0.1:7423\"".into(),
                )
            })?;
            if !listen.ip().is_loopback() {
                return Err(invalid(
                    "approval.listen".into(),
                    "must be a loopback address (127.0.0.1 or ::1): the approval page is for \
                     this machine only"
                        .into(),
                ));
            }

            let proxy = self
                .privacy
                .proxy
                .as_deref()
                .map(|text| {
                    url::Url::parse(text)
                        .ok()
                        .filter(|url| {
                            matches!(url.scheme(), "http" | "https")
                                && url.host_str().is_some_and(|h| !h.is_empty())
                        })
                        .ok_or_else(|| {
                            invalid(
                                "privacy.proxy".into(),
                                "must be an http:// or https:// proxy URL, such as \
                                 \"http://127.0.0.1:8118\""
                                    .into(),
                            )
                        })
                })
                .transpose()?;

            Ok(super::Config {
                networks,
                default_network,
                privacy: super::Privacy {
                    model_view: self.privacy.model_view,
                    batch_own_addresses: self.privacy.batch_own_addresses,
                    proxy,
                },
                log: LogSettings {
                    reveal_addresses: self.log.reveal_addresses,
                },
                policy: super::Policy {
                    allowed_networks: policy.allowed_networks,
                    recipients: policy.recipients,
                    blind_signing: policy.blind_signing,
                    unlimited_approvals: policy.unlimited_approvals,
                    approval_expiry_seconds: policy.approval_expiry_seconds,
                    max_tool_calls_per_minute: policy.max_tool_calls_per_minute,
                    limits,
                },
                approval: super::Approval {
                    listen,
                    lock_after: lock_after(self.approval.lock_after_seconds, &invalid)?,
                },
                ledger: self.ledger.validate(&invalid)?,
                http: self.http.validate(&invalid)?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[networks]]
        name = "anvil"
        chain_id = 31337
        rpc_url = "http://127.0.0.1:8545"
    "#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "keyward.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/keyward.example.toml");
        let config = Config::load(&path).unwrap();
        assert!(!config.networks().is_empty());
        assert!(config.approval.listen.ip().is_loopback());
    }

    #[test]
    fn defaults_fill_the_optional_sections() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.default_network().name, "anvil");
        assert_eq!(config.privacy.model_view, ModelView::Full);
        assert!(!config.policy.blind_signing && !config.policy.unlimited_approvals);
        assert_eq!(config.approval.listen.to_string(), DEFAULT_APPROVAL_LISTEN);
        assert_eq!(
            config.approval.lock_after,
            std::time::Duration::from_secs(15 * 60)
        );
    }

    #[test]
    fn the_idle_lock_is_configurable_within_bounds() {
        let config = parse(&format!("{MINIMAL}\n[approval]\nlock_after_seconds = 60")).unwrap();
        assert_eq!(
            config.approval.lock_after,
            std::time::Duration::from_secs(60)
        );
        for bad in ["0", "9", "86401"] {
            let err = parse(&format!(
                "{MINIMAL}\n[approval]\nlock_after_seconds = {bad}"
            ))
            .unwrap_err();
            assert!(
                err.contains("`approval.lock_after_seconds` must be from 10 seconds to 86400"),
                "{bad}: {err}"
            );
        }
        assert!(parse(&format!("{MINIMAL}\n[approval]\nlock_after_seconds = -5")).is_err());
    }

    #[test]
    fn rpc_urls_print_redacted() {
        for (url, shown) in [
            (
                "https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef",
                "https://mainnet.infura.io/v3/***",
            ),
            (
                "https://eth-mainnet.g.alchemy.com/v2/AbCdEf123456",
                "https://eth-mainnet.g.alchemy.com/v2/***",
            ),
            (
                "https://user:secret@rpc.example.org:8443/rpc?key=abc",
                "https://***@rpc.example.org:8443/rpc?***",
            ),
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ] {
            let rpc = RpcUrl::parse(url).unwrap();
            assert_eq!(rpc.to_string(), shown);
            assert_eq!(format!("{rpc:?}"), format!("RpcUrl({shown})"));
        }
    }

    #[test]
    fn syntax_errors_do_not_quote_the_line() {
        let text = "[[networks]]\nname = \"main\"\nchain_id = 1\nrpc_url = \"https://x.io/v3/SECRETKEY12345678\" oops\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(!err.contains("SECRETKEY"), "{err}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            ("", "`networks` is empty"),
            (
                "[[networks]]\nname = \"Main\"\nchain_id = 1\nrpc_url = \"http://x\"",
                "`networks[0].name`",
            ),
            (
                "[[networks]]\nname = \"m\"\nchain_id = 0\nrpc_url = \"http://x\"",
                "`networks[0].chain_id`",
            ),
            (
                "[[networks]]\nname = \"m\"\nchain_id = 1\nrpc_url = \"ftp://x\"",
                "`networks[0].rpc_url` must be an http",
            ),
            (
                &format!(
                    "{MINIMAL}\n[[networks.tokens]]\naddress = \"0x5fbdb2315678afecb367f032d93F642f64180aa3\""
                ),
                "wrong EIP-55 checksum",
            ),
            (
                &format!(
                    "{MINIMAL}\n[[networks.tokens]]\naddress = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nsymbol = \"ETH\""
                ),
                "cannot be ETH",
            ),
            (
                &format!("{MINIMAL}\n[approval]\nlisten = \"0.0.0.0:7423\""),
                "must be a loopback address",
            ),
            (
                &format!("{MINIMAL}\n[policy]\napproval_expiry_seconds = 5"),
                "approval_expiry_seconds",
            ),
            (
                &format!("{MINIMAL}\n[[policy.limits]]\nasset = \"ETH\"\nper_transaction = \"1.\""),
                "decimal number",
            ),
            (
                &format!("{MINIMAL}\n[[policy.limits]]\nasset = \"DOGE\"\nper_24h = \"1\""),
                "must be ETH or the symbol",
            ),
            (
                &format!("{MINIMAL}\n[privacy]\nmodel_view = \"partial\""),
                "unknown variant",
            ),
            (
                &format!("{MINIMAL}\n[privacy]\nproxy = \"socks5://127.0.0.1:9050\""),
                "`privacy.proxy` must be an http:// or https:// proxy URL",
            ),
            (&format!("{MINIMAL}\nsurprise = 1"), "unknown field"),
            (
                &format!("default_network = \"nope\"\n{MINIMAL}"),
                "`default_network`",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}\n=> {err}");
        }
    }

    #[test]
    fn addresses_check_eip55_only_when_mixed_case() {
        let good = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        assert!(parse_address(good).is_ok());
        assert!(parse_address(&good.to_lowercase()).is_ok());
        assert!(parse_address(&good.to_uppercase().replace("0X", "0x")).is_ok());
        assert!(parse_address(&good.replace('F', "f").replacen('f', "F", 1)).is_err());
        assert!(parse_address("0x123").is_err());
        assert!(parse_address("5FbDB2315678afecb367f032d93F642f64180aa3").is_err());
    }

    #[test]
    fn the_ledger_table_picks_a_transport_and_refuses_what_would_surprise() {
        let usb = parse(MINIMAL).unwrap().ledger;
        assert_eq!(usb, LedgerSettings::default());
        let emulator = parse(&format!(
            "{MINIMAL}\n[ledger]\ntransport = \"emulator\"\ntimeout_seconds = 5\n\
             [ledger.emulator]\nmode = \"app_not_open\"\napp_version = \"1.12.0\"\n\
             user_delay_ms = 250\n"
        ))
        .unwrap()
        .ledger;
        assert_eq!(
            emulator,
            LedgerSettings {
                transport: LedgerTransport::Emulator(EmulatorSettings {
                    mode: EmulatorMode::AppNotOpen,
                    blind_signing: false,
                    version: (1, 12, 0),
                    user_delay: std::time::Duration::from_millis(250),
                }),
                timeout: std::time::Duration::from_secs(5),
            }
        );
        let speculos = parse(&format!("{MINIMAL}\n[ledger]\ntransport = \"speculos\"\n"))
            .unwrap()
            .ledger;
        assert_eq!(
            speculos.transport,
            LedgerTransport::Speculos("127.0.0.1:9999".parse().unwrap())
        );
        for (table, expected) in [
            (
                "transport = \"bluetooth\"",
                "must be \"hid\", \"speculos\" or \"emulator\"",
            ),
            (
                "transport = \"speculos\"\nspeculos_address = \"10.0.0.2:9999\"",
                "must be a loopback address",
            ),
            (
                "speculos_address = \"127.0.0.1:9999\"",
                "only used with transport",
            ),
            ("timeout_seconds = 1", "must be from 5 to 3600"),
            (
                "transport = \"emulator\"\n[ledger.emulator]\napp_version = \"1.9\"",
                "three numbers",
            ),
            (
                "[ledger.emulator]\nmode = \"approve\"",
                "only used with transport",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}\n[ledger]\n{table}\n")).unwrap_err();
            assert!(err.contains(expected), "{table}\n=> {err}");
        }
    }

    #[test]
    fn the_http_table_takes_its_defaults_and_refuses_bad_values_by_name() {
        let config = Config::parse(MINIMAL, "k.toml").unwrap();
        assert_eq!(config.http, HttpSettings::default());
        let config = Config::parse(
            &format!(
                "{MINIMAL}\n[http]\nallowed_hosts = [\"Wallet.Example.com\", \"10.0.0.2\"]\n\
                 allowed_origins = [\"HTTPS://App.Example.com:443/\"]\nrequests_per_minute = 5\n"
            ),
            "k.toml",
        )
        .unwrap();
        assert_eq!(
            config.http.allowed_hosts,
            ["wallet.example.com", "10.0.0.2"]
        );
        assert_eq!(config.http.allowed_origins, ["https://app.example.com"]);
        assert_eq!(config.http.requests_per_minute, 5);
        for (table, expected) in [
            (
                "max_body_bytes = 100",
                "`http.max_body_bytes` must be from 4096",
            ),
            (
                "requests_per_minute = 0",
                "`http.requests_per_minute` must be from 1",
            ),
            (
                "allowed_hosts = [\"a b\"]",
                "`http.allowed_hosts[0]` must be a host name",
            ),
            (
                "allowed_origins = [\"https://a.example/x\"]",
                "`http.allowed_origins[0]` must be an origin",
            ),
            (
                "allowed_origins = [\"ftp://a.example\"]",
                "`http.allowed_origins[0]`",
            ),
            ("tls_certificate = \"c.pem\"", "go together"),
            ("listen = \"127.0.0.1:1\"", "unknown field `listen`"),
        ] {
            let err = Config::parse(&format!("{MINIMAL}\n[http]\n{table}\n"), "k.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{table}\n=> {err}");
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Whatever follows a valid network, parsing ends in a configuration or an error naming a
        /// place in the file, never a panic.
        #[test]
        fn any_text_after_a_valid_network_parses_or_is_refused_without_a_panic(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "[http]", "[privacy]", "[policy]", "[approval]", "[ledger]", "[log]",
                        "[[policy.limits]]", "[ledger.emulator]",
                    ]).prop_map(str::to_owned),
                    ("[a-z_]{1,24}", "(-?[0-9]{1,20}|\"[^\"\\\\\\n]{0,40}\"|true|false|\\[\\]|\\[\"[a-z.:/0-9]{0,20}\"\\])")
                        .prop_map(|(key, value)| format!("{key} = {value}")),
                    ".{0,40}",
                ],
                0..12,
            ),
        ) {
            let text = format!("{MINIMAL}\n{}\n", lines.join("\n"));
            if let Err(err) = Config::parse(&text, "k.toml") {
                proptest::prop_assert!(err.to_string().starts_with("k.toml"), "{}", err);
            }
        }
    }
}
