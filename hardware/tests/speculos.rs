//! The real Ethereum app, run by the Speculos emulator, answering over [`SpeculosTransport`].
//!
//! Runs only when `KEYWARD_SPECULOS_ELF` names an Ethereum app ELF and `speculos` is on `PATH`
//! (`pip install speculos`); otherwise it says why on stderr and passes. `KEYWARD_SPECULOS_MODEL`
//! (`nanos`, `nanox`, `nanosp`, …) is passed to Speculos as `--model` when set.
//!
//! Speculos listens on every interface, so it must not run in the host's network namespace. The
//! test re-executes its own binary, filtered to this one test, under
//! `unshare --user --map-root-user --net --pid --fork --kill-child`: in that private network
//! namespace only loopback exists (the test brings `lo` up), so Speculos is reachable from nowhere
//! else. The re-executed test is PID 1 of a private PID namespace too, so when it ends, Speculos
//! and its emulator process end with it, even if the test fails halfway. The outer run waits for
//! the inner one and shows its output when it fails.
#![expect(
    clippy::print_stderr,
    reason = "a test that needs an outside binary says on stderr why it skipped"
)]

use std::env;
use std::error::Error;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyward_hardware::{SpeculosTransport, Transport, TransportError, Wait};

type TestResult = Result<(), Box<dyn Error>>;

/// Set in the re-executed test: it is inside the private namespaces and should start Speculos.
const INSIDE: &str = "KEYWARD_SPECULOS_INSIDE_NAMESPACE";
/// This test's name, for re-executing only it.
const TEST_NAME: &str = "the_ethereum_app_under_speculos_answers_address_and_configuration";
const APDU_PORT: u16 = 9999;
const API_PORT: u16 = 5000;
/// Speculos under QEMU takes a few seconds to load an app.
const STARTUP: Duration = Duration::from_secs(60);

/// m/44'/60'/0'/0/0, silently (P1 = 00), no chain code: from APDU.md's transcripts.
const GET_ADDRESS: &str = "e002000015058000002c8000003c800000000000000000000000";
/// The transcripts' reply to it under Speculos's default seed: `41 ‖ pubkey ‖ 28 ‖ address`.
const ADDRESS_REPLY: &str = concat!(
    "4104ef5b152e3f15eb0c50c9916161c2309e54bd87b9adce722d69716bcdef85f547678e15ab40a78919",
    "c7284e67a17ee9a96e8b9886b60f767d93023bac8dbc16e4284461643737393130446244466445373634",
    "6643323146434434453734443731624241434136443844",
);
const ADDRESS: &str = "Dad77910DbDFdE764fC21FCD4E74D71bBACA6D8D";
const APP_CONFIGURATION: [u8; 5] = [0xE0, 0x06, 0x00, 0x00, 0x00];

#[test]
fn the_ethereum_app_under_speculos_answers_address_and_configuration() -> TestResult {
    let Some(elf) = env::var_os("KEYWARD_SPECULOS_ELF") else {
        eprintln!(
            "skipped: set KEYWARD_SPECULOS_ELF to an Ethereum app ELF to run the app under Speculos"
        );
        return Ok(());
    };
    let Some(speculos) = find_on_path("speculos") else {
        eprintln!("skipped: `speculos` is not on PATH (pip install speculos)");
        return Ok(());
    };
    if env::var_os(INSIDE).is_some() {
        inside_namespace(&speculos, &elf)
    } else {
        rerun_inside_namespace()
    }
}

/// Runs this test again inside fresh user, network and PID namespaces.
fn rerun_inside_namespace() -> TestResult {
    let this_test = env::current_exe()?;
    let output = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
        ])
        .arg(this_test)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run unshare (util-linux): {error}"))?;
    // A panic, not an `Err`, so the inner run's output prints as text rather than escaped.
    assert!(
        output.status.success(),
        "the test inside the private namespace failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    Ok(())
}

/// Brings loopback up, starts Speculos, and talks to the app.
fn inside_namespace(speculos: &Path, elf: &OsString) -> TestResult {
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(format!("`ip link set lo up` failed: {status}").into()),
        Err(error) => return Err(format!("cannot run `ip` (iproute2): {error}").into()),
    }

    let mut command = Command::new(speculos);
    command.args(["--display", "headless"]);
    command.args(["--apdu-port", &APDU_PORT.to_string()]);
    command.args(["--api-port", &API_PORT.to_string()]);
    if let Some(model) = env::var_os("KEYWARD_SPECULOS_MODEL") {
        command.arg("--model").arg(model);
    }
    // Speculos's log goes to this process's stderr, which the outer run shows on failure.
    let child = command
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot start speculos: {error}"))?;
    let mut speculos = Running(child);
    let result = talk_to_the_app(&mut speculos.0);
    drop(speculos);
    result
}

/// Kills the Speculos we started when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn talk_to_the_app(speculos: &mut Child) -> TestResult {
    let transport = connect(speculos)?;
    let wait = || Wait::new(Some(Duration::from_secs(30)));

    let reply = transport.exchange(&unhex(GET_ADDRESS)?, &wait())?;
    let (data, sw) = split_status(&reply)?;
    assert_eq!(sw, 0x9000, "get address status");
    assert_eq!(data, unhex(ADDRESS_REPLY)?.as_slice(), "get address reply");
    assert_eq!(&data[67..], ADDRESS.as_bytes());

    let reply = transport.exchange(&APP_CONFIGURATION, &wait())?;
    let (data, sw) = split_status(&reply)?;
    assert_eq!(sw, 0x9000, "app configuration status");
    assert_eq!(data.len(), 4, "flags, major, minor, patch: {data:02x?}");
    eprintln!(
        "Ethereum app {}.{}.{}, blind signing {}",
        data[1],
        data[2],
        data[3],
        if data[0] & 0x01 != 0 { "on" } else { "off" }
    );
    Ok(())
}

/// Connects once Speculos listens, failing early if it exits first.
fn connect(speculos: &mut Child) -> Result<SpeculosTransport, Box<dyn Error>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], APDU_PORT));
    let started = Instant::now();
    loop {
        if let Some(status) = speculos.try_wait()? {
            return Err(format!("speculos exited before listening: {status}").into());
        }
        match SpeculosTransport::connect(addr, &Wait::new(Some(Duration::from_secs(1)))) {
            Ok(transport) => return Ok(transport),
            Err(TransportError::Disconnected(_)) if started.elapsed() < STARTUP => {}
            Err(error) => return Err(error.into()),
        }
    }
}

fn split_status(reply: &[u8]) -> Result<(&[u8], u16), Box<dyn Error>> {
    match reply {
        [data @ .., sw1, sw2] => Ok((data, u16::from_be_bytes([*sw1, *sw2]))),
        _ => Err(format!("a reply without a status word: {reply:02x?}").into()),
    }
}

fn unhex(text: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd-length hex: {text}").into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(&text[i..i + 2], 16)?))
        .collect()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
