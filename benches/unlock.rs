//! Keystore and vault unlock at scrypt n=2^18, r=8, p=1, beside OpenSSL's scrypt (Python's
//! `hashlib.scrypt`) with the same parameters, measured in the same run.
//!
//! Run with `cargo bench --bench unlock`. Rounds alternate between keyward and OpenSSL, so noise
//! from a shared machine falls on both alike. OpenSSL is timed inside one long-lived Python process,
//! so interpreter start-up is not counted against it. The target is keyward within 1.2x of OpenSSL.
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark stops on any failure"
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward::hd;
use keyward::keystore::{Keystore, Label, UnlockedVault, Vault};
use keyward::secret::{PrivateKey, Secret};

const ROUNDS: usize = 7;

/// Times `hashlib.scrypt(n=2^18, r=8, p=1, dklen=32)` once per line read on stdin.
const OPENSSL_SCRYPT: &str = r#"
import hashlib, os, sys, time
password, salt = b"bench password", os.urandom(32)
for _ in sys.stdin:
    start = time.perf_counter()
    hashlib.scrypt(password, salt=salt, n=2**18, r=8, p=1, maxmem=2**30, dklen=32)
    print(time.perf_counter() - start, flush=True)
"#;

struct Series {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Series {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            samples: Vec::with_capacity(ROUNDS),
        }
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut samples = self.samples.clone();
        samples.sort();
        samples
    }

    fn median(&self) -> Duration {
        self.sorted()[self.samples.len() / 2]
    }

    fn row(&self) -> String {
        let sorted = self.sorted();
        format!(
            "{:<36} {:>9.3} s {:>9.3} s {:>9.3} s",
            self.name,
            sorted[0].as_secs_f64(),
            self.median().as_secs_f64(),
            sorted[sorted.len() - 1].as_secs_f64(),
        )
    }
}

fn main() {
    let password = Secret::new("bench password".to_owned());
    let key = PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    let keystore_file = Keystore::encrypt(&key, &password).unwrap();
    let keystore = Keystore::parse(&keystore_file).unwrap();
    let phrase =
        hd::parse_phrase("test test test test test test test test test test test junk").unwrap();
    let vault_file = UnlockedVault::create(phrase, &password, Label::new("main").unwrap())
        .unwrap()
        .to_file_bytes()
        .unwrap();
    let vault = Vault::parse(&vault_file).unwrap();

    let mut openssl = Command::new("python3")
        .arg("-c")
        .arg(OPENSSL_SCRYPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| println!("OpenSSL baseline skipped: cannot run python3 ({err})"))
        .ok();
    let mut openssl_out = openssl
        .as_mut()
        .map(|child| BufReader::new(child.stdout.take().unwrap()));

    let mut keystore_series = Series::new("keyward keystore decrypt");
    let mut vault_series = Series::new("keyward vault unlock");
    let mut openssl_series = Series::new("OpenSSL scrypt (Python hashlib)");
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let decrypted = keystore.decrypt(&password).unwrap();
        keystore_series.samples.push(start.elapsed());
        assert_eq!(decrypted.address(), key.address());

        let start = Instant::now();
        let unlocked = vault.unlock(&password).unwrap();
        vault_series.samples.push(start.elapsed());
        drop(unlocked);

        if let (Some(child), Some(out)) = (openssl.as_mut(), openssl_out.as_mut()) {
            writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let seconds: f64 = line.trim().parse().expect("python printed a duration");
            openssl_series
                .samples
                .push(Duration::from_secs_f64(seconds));
        }
    }
    if let Some(mut child) = openssl {
        drop(child.stdin.take());
        let _ = child.wait();
    }

    println!();
    println!("Unlock at scrypt n=2^18, r=8, p=1 ({ROUNDS} interleaved rounds)");
    println!("{:<36} {:>11} {:>11} {:>11}", "", "min", "median", "max");
    println!("{}", keystore_series.row());
    println!("{}", vault_series.row());
    if !openssl_series.samples.is_empty() {
        println!("{}", openssl_series.row());
        let ratio =
            |series: &Series| series.median().as_secs_f64() / openssl_series.median().as_secs_f64();
        println!(
            "keyward / OpenSSL, medians: keystore {:.2}x, vault {:.2}x (target: at most 1.20x)",
            ratio(&keystore_series),
            ratio(&vault_series)
        );
    }
}
