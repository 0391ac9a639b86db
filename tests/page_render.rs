//! The approval page in a real browser: headless Chromium (Debian's `chromium`) with JavaScript
//! turned off renders the whole review and the form, and a screenshot is kept as an artifact at
//! `target/artifacts/approval-page.png`.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::funds::{Rig, human};
use crate::support::human::Response;
use crate::support::mcp::{call, ok};
use crate::support::required_tool;

const FRIEND: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 1400;
/// Chromium is killed, and the test fails, when one run takes longer than this.
const TIMEOUT: Duration = Duration::from_secs(60);
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn chromium() -> Option<PathBuf> {
    required_tool(
        "chromium",
        &[
            PathBuf::from("/usr/bin/chromium"),
            PathBuf::from("/usr/bin/chromium-browser"),
        ],
        "install Debian's chromium (the test command does this)",
    )
}

/// A fresh profile's preferences with JavaScript blocked for every site: the browser's own
/// "Don't allow sites to use JavaScript" setting.
///
/// Not `--blink-settings=scriptEnabled=false`: headless Chromium drives `--dump-dom` and
/// `--screenshot` through DevTools, and with that switch both silently produce nothing (exit 0).
/// The content setting stops the page's scripts but not DevTools; `javascript_is_really_off`
/// checks that it does stop scripts.
const NO_JAVASCRIPT: &str = r#"{"profile":{"default_content_setting_values":{"javascript":2}}}"#;

/// Runs headless Chromium, JavaScript off, on `url` with `extra` flags; returns what it printed on
/// stdout. It runs in its own process group, which is killed when it exits or times out.
fn headless(chromium: &Path, url: &str, extra: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let profile = scratch.path().join("profile");
    fs::create_dir_all(profile.join("Default")).unwrap();
    fs::write(profile.join("Default/Preferences"), NO_JAVASCRIPT).unwrap();
    let stdout_path = scratch.path().join("stdout");
    let stderr_path = scratch.path().join("stderr");
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--window-size={WIDTH},{HEIGHT}"),
            extra,
            url,
        ])
        .env("HOME", scratch.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .process_group(0);
    let mut child = command.spawn().unwrap();
    let group = rustix::process::Pid::from_child(&child);
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Helpers (zygote, crash handler) must not outlive the run; the group may already be gone.
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let _ = child.wait();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "chromium {extra} did not finish within {TIMEOUT:?} and was killed\nstderr:\n{stderr}"
        );
    };
    assert!(
        status.success(),
        "chromium {extra} failed: {status}\nstderr:\n{stderr}"
    );
    fs::read_to_string(&stdout_path).unwrap()
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.starts_with(&PNG_SIGNATURE),
        "the screenshot is not a PNG"
    );
    assert_eq!(&png[12..16], b"IHDR", "the PNG starts with its IHDR chunk");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    (width, height)
}

/// The profile really runs no script: a page whose script would add a marker keeps its static
/// text and gains no marker.
#[test]
fn javascript_is_really_off() {
    let Some(chromium) = chromium() else {
        return;
    };
    let page = "data:text/html,<p>static</p><script>document.body.append('SCRIPT-RAN')</script>";
    let dom = headless(&chromium, page, "--dump-dom");
    assert!(dom.contains("<p>static</p>"), "{dom}");
    assert!(!dom.contains("SCRIPT-RAN</body>"), "a script ran:\n{dom}");
}

#[tokio::test]
async fn the_approval_page_renders_in_headless_chromium_without_javascript() {
    let Some(chromium) = chromium() else {
        return;
    };
    let Some(rig) = Rig::start("").await else {
        return;
    };
    let prepared = ok(&call(
        &rig.client,
        "wallet_transfer",
        json!({ "to": FRIEND, "amount": "1.25" }),
    )
    .await)
    .clone();
    assert_eq!(prepared["state"], "awaiting_approval");
    let url = prepared["approval_url"].as_str().unwrap().to_owned();
    let review = prepared["review"].as_str().unwrap().to_owned();

    // The DOM as Chromium built it with scripts off: the whole review, line for line, and the form.
    let dom = {
        let (chromium, url) = (chromium.clone(), url.clone());
        human(move || headless(&chromium, &url, "--dump-dom")).await
    };
    assert!(
        dom.contains("<pre id=\"review\">"),
        "no review in the DOM:\n{dom}"
    );
    let shown = Response {
        status: 200,
        headers: vec![],
        body: dom.clone(),
    }
    .review();
    assert_eq!(
        shown.lines().collect::<Vec<_>>(),
        review.lines().collect::<Vec<_>>(),
        "the rendered review differs from the tool's"
    );
    assert_eq!(shown, review);
    for field in ["name=\"code\"", "name=\"decision\""] {
        assert!(dom.contains(field), "{field} missing from the DOM:\n{dom}");
    }
    assert!(
        !dom.to_ascii_lowercase().contains("<script"),
        "the page has a script:\n{dom}"
    );

    // The screenshot, kept as an artifact.
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
    fs::create_dir_all(&artifacts).unwrap();
    let artifact = artifacts.join("approval-page.png");
    let _ = fs::remove_file(&artifact);
    {
        let (chromium, url) = (chromium.clone(), url.clone());
        let flag = format!("--screenshot={}", artifact.display());
        human(move || headless(&chromium, &url, &flag)).await;
    }
    let png = fs::read(&artifact).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (WIDTH, HEIGHT));
    assert!(
        png.len() > 10_000,
        "a {}-byte screenshot is too small to show the review",
        png.len()
    );
    println!(
        "screenshot of the approval page: {} ({} bytes)",
        artifact.display(),
        png.len()
    );
}
