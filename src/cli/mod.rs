//! The `keyward` command line: set up a wallet, manage its accounts and second factor.
//!
//! Arguments are parsed by clap into the structs below, then each command turns them into validated
//! types before touching the vault. Secrets travel only over the terminal (`/dev/tty`) or a 0600
//! password file; stdout gets results a script may read, stderr gets errors and logs, and neither
//! ever gets a secret.

mod address_book;
mod approve;
mod audit;
mod integrity;
mod keystore;
mod ledger;
mod lock;
mod password;
mod serve;
mod terminal;
mod token;
mod totp;
mod wallet;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::harden;
use crate::home::Home;

const ABOUT: &str = "A crypto wallet an AI assistant can use but never own";

const LONG_ABOUT: &str = "\
keyward keeps an Ethereum wallet for an AI assistant. The assistant can read accounts and balances \
and ask for transfers and signatures; only you approve them, on a channel the assistant cannot see \
or forge, with a TOTP code from your authenticator app.

Keys are encrypted at rest with scrypt (n=262144, r=8, p=1) in one vault file. Passwords are typed \
on the terminal with echo off, or read from a password file for automation; never from arguments \
or environment variables.";

const AFTER_HELP: &str = "\
Getting started:
  keyward init                 create a wallet and write down its recovery phrase
  keyward totp enroll          pair your authenticator app
  keyward accounts             list the accounts (no password needed)

Files live in the XDG directories (the vault in ~/.local/share/keyward/vault.json), or all in one \
directory given by --home or KEYWARD_HOME.";

#[derive(Debug, Parser)]
#[command(name = "keyward", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// Keep all of keyward's files in DIR instead of the XDG directories
    #[arg(long, global = true, env = "KEYWARD_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a wallet: a new recovery phrase (or one you have), sealed under a password
    #[command(after_help = "\
keyward shows a new 24-word recovery phrase once, on the terminal, and asks you to type two of \
its words back. Write the phrase on paper and keep it offline: it restores every account if the \
vault file or its password is lost. keyward never shows it again.

Examples:
  keyward init
  keyward init --words 12 --label main
  keyward init --import-mnemonic             restore from a phrase you already have")]
    Init(InitArgs),

    /// List the wallet's accounts: number, label, address, kind (no password needed)
    #[command(after_help = "\
The numbers, labels and addresses listed here all name an account in other commands.

Examples:
  keyward accounts
  keyward accounts --json | jq '.accounts[].address'")]
    Accounts(AccountsArgs),

    /// Manage accounts
    #[command(subcommand)]
    Account(AccountCommand),

    /// Import a Web3 Secret Storage (v3) keystore file, as written by geth or cast
    #[command(after_help = "\
keyward asks for the keystore file's password, then the vault's. The key is re-encrypted inside \
the vault; the original file is left as it was, so delete it yourself once you are done.

Examples:
  keyward import-keystore ~/.foundry/keystores/deployer --label deployer")]
    ImportKeystore(ImportKeystoreArgs),

    /// Write one account's key to a new v3 keystore file, for cast or geth
    #[command(after_help = "\
The new file is encrypted with a password you choose (scrypt n=262144, r=8, p=1), written with \
mode 0600, and never replaces an existing file. Anyone with the file and its password controls the \
account.

Examples:
  keyward export-keystore main ./main.json
  cast wallet address --keystore ./main.json")]
    ExportKeystore(ExportKeystoreArgs),

    /// Manage the TOTP second factor that approvals ask for
    #[command(subcommand)]
    Totp(TotpCommand),

    /// Serve the wallet to an AI assistant over MCP, on stdin and stdout or over HTTP
    #[command(after_help = "\
An MCP host (Claude Desktop, Cursor, VS Code, Claude Code) starts this command itself; see the \
snippets in config/. The configuration is read from --config, else keyward.toml in the keyward \
config directory (~/.config/keyward, or --home). stdout carries the protocol; logs go to stderr \
(RUST_LOG=info for more).

With --http, keyward serves MCP over Streamable HTTP at http://ADDR/mcp instead, until stopped \
(SIGTERM or Ctrl-C). Every client must send a token from `keyward token create` as \
`Authorization: Bearer <token>`. Off loopback, the `[http]` table must name a TLS certificate \
and key, and `http.allowed_hosts` the names clients use.

Examples:
  keyward serve --config ~/.config/keyward/keyward.toml
  keyward --home ./dev-wallet serve
  keyward serve --http 127.0.0.1:8645")]
    Serve {
        /// The configuration file (TOML; see config/keyward.example.toml)
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,

        /// Serve MCP over Streamable HTTP on ADDR (such as 127.0.0.1:8645) instead of stdio
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,

        /// Unlock the wallet at start with the password in PATH (mode 0600) instead of asking on
        /// the approval page. Weaker: anything that can read the file can unlock the wallet.
        /// Approvals still need a TOTP code
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,

        /// UNSAFE: serve without keyward's sandbox (Landlock, seccomp, no_new_privs, rlimits), so
        /// that a compromised keyward could read any file you can, reach any host and run any
        /// program. Only for finding out whether the sandbox is what breaks something
        #[arg(long)]
        no_sandbox: bool,
    },

    /// Approve or reject pending requests in the terminal, with a TOTP code
    #[command(after_help = "\
Talks to the running `keyward serve` (started by your MCP host), prints each pending request's \
full review, and reads the code from your authenticator app with echo off. The wallet's password \
is asked for too while the wallet is locked.

Examples:
  keyward approve                    the only pending request
  keyward approve req-3f9a0c1b2d4e5f60
  keyward approve --all              every pending request, with one code
  keyward approve --all --reject")]
    Approve {
        /// The request to answer (default: the only one pending)
        request: Option<String>,
        /// Answer every pending request; each review is printed first
        #[arg(long, conflicts_with = "request")]
        all: bool,
        /// Reject instead of approving (no code needed)
        #[arg(long)]
        reject: bool,
    },

    /// Manage the bearer tokens MCP clients present over HTTP (`keyward serve --http`)
    #[command(subcommand)]
    Token(TokenCommand),

    /// Lock the running server's wallet now, wiping its decrypted secrets from memory
    #[command(after_help = "\
Talks to the running `keyward serve` over its socket. The server also locks the wallet by itself \
after `[approval] lock_after_seconds` without use (15 minutes by default), when the MCP host \
closes stdin, and when it stops. The next approval asks for the password again.

Examples:
  keyward lock
  keyward --home ./dev-wallet lock")]
    Lock,

    /// Edit the address book (names for addresses; the only way to change it)
    #[command(subcommand)]
    AddressBook(AddressBookCommand),

    /// Check the audit log
    #[command(subcommand)]
    Audit(AuditCommand),

    /// Use a Ledger: list devices, add an account whose key stays on the device
    #[command(subcommand)]
    Ledger(LedgerCommand),

    /// Print the SHA-256 of the tool list this binary serves, to compare with the README's
    #[command(after_help = "\
The hash covers every tool's name, description, schemas and annotations, exactly as the server \
sends them in tools/list. The running server names the same hash in its instructions and in \
serverInfo.description. The README (\"Verifying what you run\") lists the hash of each release and \
shows how to recompute it from tools/list with a few lines of Python.

Example:
  keyward tools-hash")]
    ToolsHash,

    /// Print the version; with --verbose, the commit, Cargo.lock hash and features it was built from
    #[command(after_help = "\
--verbose prints the git commit of the build (and whether the compiled sources differed from \
it), the SHA-256 of Cargo.lock, the enabled cargo features, the tools-hash, the target, the \
profile and the compiler. A reproducible release build of the same commit gives the same binary \
(see scripts/reproducible-build).

Examples:
  keyward version
  keyward version --verbose")]
    Version {
        /// Also print what the binary was built from
        #[arg(long, short)]
        verbose: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it, once: keyward keeps only its hash
    #[command(after_help = "\
The token is printed on stdout, alone on its line, and never again. Give it to the MCP host as the \
header `Authorization: Bearer <token>`. A running server accepts it at once.

Examples:
  keyward token create --name laptop
  claude mcp add --transport http keyward http://127.0.0.1:8645/mcp \\
    --header \"Authorization: Bearer $(keyward token create --name claude-code)\"")]
    Create {
        /// A name to tell the token by in `token list` and `token revoke` (letters, digits, - _ .)
        #[arg(long)]
        name: String,
    },

    /// List the tokens: name and creation time (never the token)
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },

    /// Revoke a token: a running server refuses it from its next request on
    Revoke {
        /// The token's name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// List connected Ledgers and their Ethereum app version
    #[command(after_help = "\
Reads the [ledger] table of the configuration (USB by default). Exits non-zero when no device is \
found. On Linux, a device needs the udev rules in hardware/udev/20-ledger.rules (see \
hardware/README.md).

Examples:
  keyward ledger list")]
    List {
        /// The configuration file (default: keyward.toml in the keyward config directory)
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },

    /// Add an account whose key stays on the Ledger, after you confirm its address on the device
    #[command(after_help = "\
keyward reads the address at PATH, prints it, and asks the Ledger to show it: compare the two and \
approve on the device. The account is added only then. The vault password is needed because the \
account list is sealed with it.

Examples:
  keyward ledger add --path \"m/44'/60'/0'/0/0\" --label ledger
  keyward ledger add --path \"m/44'/60'/1'/0/0\" --label ledger-1   (Ledger Live's second account)")]
    Add {
        /// BIP-32 derivation path, e.g. m/44'/60'/0'/0/0
        #[arg(long, value_name = "PATH")]
        path: String,

        /// Label of the new account
        #[arg(long, value_name = "LABEL")]
        label: String,

        /// The configuration file (default: keyward.toml in the keyward config directory)
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,

        #[command(flatten)]
        password: PasswordFileArg,
    },
}

#[derive(Debug, Subcommand)]
enum AddressBookCommand {
    /// Add NAME for ADDRESS
    #[command(
        after_help = "Example:\n  keyward address-book add alice 0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    )]
    Add { name: String, address: String },
    /// Remove the entry named NAME
    Remove { name: String },
    /// List the entries
    List,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the audit log's hash chain: finds any edit, reordering or cut-off end
    Verify,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Restore from a recovery phrase you already have (typed on the terminal, hidden)
    #[arg(long)]
    import_mnemonic: bool,

    /// Length of a new recovery phrase
    #[arg(long, value_enum, default_value_t = Words::TwentyFour, conflicts_with = "import_mnemonic")]
    words: Words,

    /// Create the wallet from Anvil's public test mnemonic ("test test ... junk"), for local
    /// development only: everyone knows its keys, so never send it real funds
    #[arg(long, conflicts_with_all = ["import_mnemonic", "words"])]
    anvil_test_wallet: bool,

    /// Label of the first account
    #[arg(long, value_name = "LABEL", default_value = "account-0")]
    label: String,

    #[command(flatten)]
    password: PasswordFileArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Words {
    /// 128 bits of entropy
    #[value(name = "12")]
    Twelve,
    /// 256 bits of entropy
    #[value(name = "24")]
    TwentyFour,
}

#[derive(Debug, Args)]
struct AccountsArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Derive the next account from the recovery phrase (m/44'/60'/0'/0/N)
    #[command(after_help = "Examples:\n  keyward account add --label savings")]
    Add {
        /// Label of the new account (default: account-N)
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,

        #[command(flatten)]
        password: PasswordFileArg,
    },
}

#[derive(Debug, Args)]
struct ImportKeystoreArgs {
    /// The keystore file
    file: PathBuf,

    /// Label of the imported account (default: imported-N)
    #[arg(long, value_name = "LABEL")]
    label: Option<String>,

    /// Read the keystore file's password from PATH (mode 0600) instead of the terminal
    #[arg(long, value_name = "PATH")]
    keystore_password_file: Option<PathBuf>,

    #[command(flatten)]
    password: PasswordFileArg,
}

#[derive(Debug, Args)]
struct ExportKeystoreArgs {
    /// The account: its number, label or address, as `keyward accounts` lists them
    account: String,

    /// Where to write the keystore file (it must not exist yet)
    out: PathBuf,

    /// Read the new keystore file's password from PATH (mode 0600) instead of the terminal
    #[arg(long, value_name = "PATH")]
    keystore_password_file: Option<PathBuf>,

    #[command(flatten)]
    password: PasswordFileArg,
}

#[derive(Debug, Subcommand)]
enum TotpCommand {
    /// Pair an authenticator app: show a new secret, then confirm it with a code
    #[command(after_help = "\
The secret is shown on the terminal as a QR code and an otpauth:// URI. Scan it with your app, \
then type the 6-digit code it shows (the code is read from standard input, so it can also be \
piped). The new secret takes effect only after a correct code; until then any previous secret stays \
active.

Examples:
  keyward totp enroll")]
    Enroll {
        #[command(flatten)]
        password: PasswordFileArg,
    },
}

#[derive(Debug, Args)]
struct PasswordFileArg {
    /// Read the vault password from PATH instead of the terminal. The file must be readable by
    /// you alone (mode 0600). Weaker than typing it: anything that can read the file can unlock
    /// the wallet, so use it only for automation
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
}

/// The `keyward` program: hardens the process, parses arguments, runs one command.
pub fn main() -> ExitCode {
    harden::install_panic_hook();
    if let Err(err) = harden::harden_process() {
        report(&err.into());
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_logging();
    if cli.command.touches_secrets()
        && let Err(err) = crate::secret_env::check()
    {
        report(&err.into());
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Whether the command may decrypt the vault or carry a password: those refuse to start with
    /// a wallet secret in the environment (see [`crate::secret_env`]). Commands that only read
    /// public data, and `keyward lock`, which only ever removes secrets from memory, run anyway.
    fn touches_secrets(&self) -> bool {
        match self {
            Self::Init(_)
            | Self::Account(_)
            | Self::ImportKeystore(_)
            | Self::ExportKeystore(_)
            | Self::Totp(_)
            | Self::Serve { .. }
            | Self::Approve { .. }
            | Self::Ledger(LedgerCommand::Add { .. }) => true,
            Self::Accounts(_)
            | Self::Token(_)
            | Self::Lock
            | Self::AddressBook(_)
            | Self::Audit(_)
            | Self::Ledger(LedgerCommand::List { .. })
            | Self::ToolsHash
            | Self::Version { .. } => false,
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    // Facts about the binary itself need no home: they work with HOME unset.
    match cli.command {
        Command::ToolsHash => return integrity::tools_hash(),
        Command::Version { verbose } => return integrity::version(verbose),
        _ => {}
    }
    let home = Home::resolve(cli.home.as_deref())?;
    tracing::debug!(data_dir = %home.data_dir().display(), "home resolved");
    match cli.command {
        Command::Init(args) => wallet::init(&home, args),
        Command::Accounts(args) => wallet::accounts(&home, args.json),
        Command::Account(AccountCommand::Add { label, password }) => {
            wallet::add_account(&home, label.as_deref(), password.password_file)
        }
        Command::ImportKeystore(args) => keystore::import(&home, args),
        Command::ExportKeystore(args) => keystore::export(&home, args),
        Command::Totp(TotpCommand::Enroll { password }) => {
            totp::enroll(&home, password.password_file)
        }
        Command::Serve {
            config,
            http,
            password_file,
            no_sandbox,
        } => serve::serve(&home, config, http, password_file, !no_sandbox),
        Command::Token(TokenCommand::Create { name }) => token::create(&home, &name),
        Command::Token(TokenCommand::List { json }) => token::list(&home, json),
        Command::Token(TokenCommand::Revoke { name }) => token::revoke(&home, &name),
        Command::Approve {
            request,
            all,
            reject,
        } => approve::approve(&home, request.as_deref(), all, reject),
        Command::Lock => lock::lock(&home),
        Command::AddressBook(AddressBookCommand::Add { name, address }) => {
            address_book::add(&home, &name, &address)
        }
        Command::AddressBook(AddressBookCommand::Remove { name }) => {
            address_book::remove(&home, &name)
        }
        Command::AddressBook(AddressBookCommand::List) => address_book::list(&home),
        Command::Audit(AuditCommand::Verify) => audit::verify(&home),
        Command::Ledger(LedgerCommand::List { config }) => ledger::list(&home, config),
        Command::Ledger(LedgerCommand::Add {
            path,
            label,
            config,
            password,
        }) => ledger::add(&home, &path, &label, config, password.password_file),
        // Answered above, before the home; the same answer here keeps this match exhaustive.
        Command::ToolsHash => integrity::tools_hash(),
        Command::Version { verbose } => integrity::version(verbose),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings only), through the privacy
/// filter's writer (masked addresses, redacted URLs, no secret).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::privacy::logs::LogWriter)
        .with_ansi(false)
        .try_init();
}

/// Prints an error and its causes to stderr. Error types never carry secrets.
fn report(err: &anyhow::Error) {
    let _ = writeln!(std::io::stderr(), "error: {err:#}");
}

/// Prints a result line to stdout.
fn say(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}
