//! The deployment files in `config/`: the systemd user unit, checked by systemd's own analyzer
//! here and run under a real user manager in `deploy/systemd_live.rs`, and the container recipe,
//! checked against the run command its README documents (no container engine runs here, so the
//! image is never built: the checks are on the text, and the README says so).

mod systemd_live;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::required_tool;

/// The highest overall exposure `systemd-analyze security` may give the unit. It is the score of
/// the exposures in [`ACCEPTED_EXPOSURES`] and nothing else: any setting dropped or weakened
/// raises it, and a new failing check fails [`security_scores_the_user_unit`] by name first.
const MAX_EXPOSURE: f64 = 1.3;

/// The checks the unit fails on purpose, by `systemd-analyze security --json` field, and why.
const ACCEPTED_EXPOSURES: &[(&str, &str)] = &[
    (
        "UserOrDynamicUser",
        "a user unit runs as its user; the offline analyzer cannot know that and scores it as root",
    ),
    (
        "PrivateNetwork",
        "keyward must reach its RPC endpoints and serve MCP on a port",
    ),
    (
        "RestrictAddressFamilies_AF_INET_INET6",
        "TCP to the RPC endpoints, and the MCP and approval ports",
    ),
    (
        "RestrictAddressFamilies_AF_UNIX",
        "the approver socket that `keyward approve` and `keyward lock` use",
    ),
    (
        "RootDirectoryOrRootImage",
        "keyward runs on the host's /usr like any installed program, read-only (ProtectSystem=strict)",
    ),
    (
        "ProtectHome",
        "the analyzer scores tmpfs as 'fake empty home directories': only keyward's own paths are bound in",
    ),
    (
        "DeviceAllow",
        "ProtectClock= allows reading the RTC (char-rtc), which PrivateDevices= hides anyway",
    ),
    (
        "IPAddressDeny",
        "localhost stays allowed for the MCP port and a local node; a remote RPC host is added per host",
    ),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The unit as shipped.
fn unit_file() -> PathBuf {
    repo().join("config/systemd/keyward.service")
}

fn systemd_analyze() -> Option<PathBuf> {
    required_tool(
        "systemd-analyze",
        &[
            PathBuf::from("/usr/bin/systemd-analyze"),
            PathBuf::from("/bin/systemd-analyze"),
        ],
        "install Debian's systemd package (the test command does)",
    )
}

/// What `systemd-analyze --user` needs to stand in for a user manager: a home whose
/// `~/.cargo/bin/keyward` is this build's binary (verify checks that `ExecStart=` can run) and a
/// runtime directory. The environment is otherwise empty, so `%E` and `%h` mean this home.
struct AnalyzerHome {
    dir: tempfile::TempDir,
}

impl AnalyzerHome {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("home/.cargo/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_keyward"), bin.join("keyward")).unwrap();
        std::fs::create_dir(dir.path().join("runtime")).unwrap();
        Self { dir }
    }

    fn run(&self, analyze: &Path, args: &[&str], unit: &Path) -> Output {
        Command::new(analyze)
            .args(args)
            .arg(unit)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            .env("SYSTEMD_COLORS", "0")
            .output()
            .unwrap()
    }

    /// A copy of the shipped unit with `edit` applied, named keyward.service like the original.
    fn edited_unit(&self, edit: impl FnOnce(String) -> String) -> PathBuf {
        let dir = self.dir.path().join("edited");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keyward.service");
        std::fs::write(&path, edit(std::fs::read_to_string(unit_file()).unwrap())).unwrap();
        path
    }
}

fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn verify_accepts_the_user_unit_without_a_warning() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let home = AnalyzerHome::new();
    let args = ["verify", "--user", "--man=no"];
    let shipped = home.run(&analyze, &args, &unit_file());
    assert!(
        shipped.status.success() && all_output(&shipped).trim().is_empty(),
        "systemd-analyze verify complains about config/systemd/keyward.service:\n{}",
        all_output(&shipped)
    );
    // verify reports a bad setting as a warning and still exits 0, hence the silence above; a
    // misspelled setting must make it speak here too, or the check above proves nothing.
    let misspelled =
        home.edited_unit(|text| text.replace("ProtectSystem=strict", "ProtectSystem=strickt"));
    let warned = all_output(&home.run(&analyze, &args, &misspelled));
    assert!(warned.contains("strickt"), "{warned}");
}

/// The overall exposure that `systemd-analyze security` prints for a unit file.
fn overall_exposure(home: &AnalyzerHome, analyze: &Path, unit: &Path) -> (f64, String) {
    let output = home.run(analyze, &["security", "--offline=true", "--user"], unit);
    let text = all_output(&output);
    let score = text
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for keyward.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    (score, text)
}

#[test]
fn security_scores_the_user_unit() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let home = AnalyzerHome::new();
    let output = home.run(
        &analyze,
        &["security", "--offline=true", "--user", "--json=short"],
        &unit_file(),
    );
    let checks: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", all_output(&output)));
    let accepted: BTreeMap<&str, &str> = ACCEPTED_EXPOSURES.iter().copied().collect();
    let mut failing = Vec::new();
    for check in &checks {
        let exposed = check["exposure"]
            .as_str()
            .is_some_and(|exposure| exposure != "0.0");
        if check["set"] == Value::Bool(false) && exposed {
            let field = check["json_field"].as_str().unwrap();
            assert!(
                accepted.contains_key(field),
                "the unit now fails the check {} ({}): {}",
                check["name"],
                field,
                check["description"]
            );
            failing.push(format!(
                "  {} {}: {}",
                check["exposure"].as_str().unwrap(),
                field,
                accepted[field]
            ));
        }
    }
    assert!(checks.len() > 50, "too few checks: {checks:?}");

    let (score, text) = overall_exposure(&home, &analyze, &unit_file());
    println!(
        "systemd-analyze security --offline=true --user config/systemd/keyward.service: \
         overall exposure {score} (at most {MAX_EXPOSURE}), {} checks, failing on purpose:\n{}",
        checks.len(),
        failing.join("\n")
    );
    assert!(score <= MAX_EXPOSURE, "{text}");
    let readme = std::fs::read_to_string(repo().join("config/systemd/README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure level for keyward.service: {score:.1}")),
        "config/systemd/README.md must record the score {score:.1}"
    );

    // The same analyzer on the unit stripped of its hardening, which must score far worse, or
    // the score above measures nothing.
    let bare = home.edited_unit(|text| {
        let mut kept: Vec<&str> = text
            .lines()
            .take_while(|line| !line.starts_with("ProtectSystem="))
            .collect();
        kept.extend(["[Install]", "WantedBy=default.target"]);
        kept.join("\n")
    });
    let (bare_score, bare_text) = overall_exposure(&home, &analyze, &bare);
    println!("the same unit without its hardening: overall exposure {bare_score}");
    assert!(bare_score >= 8.0, "{bare_text}");
}

/// The container recipe: the final stage's instructions, continuation lines joined.
fn final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("config/container/Containerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let (keyword, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
        instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
        pending.clear();
    }
    let last_from = instructions
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .unwrap();
    instructions.split_off(last_from)
}

fn instruction(stage: &[(String, String)], keyword: &str) -> String {
    let found: Vec<&String> = stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(found.len(), 1, "expected one {keyword} in the final stage");
    found[0].clone()
}

/// The documented `docker run` command, split into words as a shell would.
fn run_command() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("config/container/README.md")).unwrap();
    let block = readme
        .split("<!-- run-command:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- run-command:end -->").next())
        .expect("the run command between its markers in config/container/README.md");
    let command = block
        .replace("```sh", "")
        .replace("```", "")
        .replace("\\\n", " ");
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in the run command");
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The values of every `--name VALUE` or `--name=VALUE` in the run command.
fn flag_values(words: &[String], name: &str) -> Vec<String> {
    let mut values = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if word == name {
            values.push(words[i + 1].clone());
        } else if let Some(value) = word.strip_prefix(&format!("{name}=")) {
            values.push(value.to_owned());
        }
    }
    values
}

#[test]
fn the_container_runs_as_a_numeric_non_root_user() {
    let stage = final_stage();
    let user = instruction(&stage, "USER");
    let ids: Vec<u32> = user
        .split(':')
        .map(|id| {
            id.parse()
                .unwrap_or_else(|_| panic!("USER {user} is not numeric"))
        })
        .collect();
    assert!(ids.iter().all(|&id| id != 0), "USER {user} is root");
    // The run command replaces it with the caller's uid, which must be numeric too.
    assert_eq!(flag_values(&run_command(), "--user"), ["$(id -u):$(id -g)"]);
}

#[test]
fn the_documented_run_command_carries_every_hardening_flag() {
    let words = run_command();
    assert_eq!(&words[..2], ["docker", "run"]);
    for flag in ["--read-only", "--detach"] {
        assert!(words.iter().any(|w| w == flag), "{flag} is missing");
    }
    for (flag, value) in [
        ("--cap-drop", "ALL"),
        ("--security-opt", "no-new-privileges"),
        ("--pids-limit", "64"),
        ("--memory", "512m"),
        ("--memory-swap", "512m"),
    ] {
        assert_eq!(flag_values(&words, flag), [value], "{flag}");
    }
    let ulimits = flag_values(&words, "--ulimit");
    for limit in ["core=0", "nofile=1024:1024", "memlock=1048576:1048576"] {
        assert!(ulimits.iter().any(|u| u == limit), "--ulimit {limit}");
    }
    for dangerous in ["--privileged", "--cap-add", "--network=host", "unconfined"] {
        assert!(
            !words.iter().any(|w| w.contains(dangerous)),
            "{dangerous} in the run command"
        );
    }
    // The last word is the image, as built by the documented `docker build -t keyward`.
    assert_eq!(words.last().unwrap(), "keyward");
}

#[test]
fn the_state_directory_is_the_only_writable_mount_and_the_paths_agree() {
    let stage = final_stage();
    let words = run_command();
    // ENV XDG_CONFIG_HOME=/srv/config XDG_DATA_HOME=... in the image: keyward appends /keyward.
    let env: BTreeMap<String, String> = instruction(&stage, "ENV")
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), format!("{v}/keyward")))
        .collect();
    let cmd: Vec<String> = serde_json::from_str(&instruction(&stage, "CMD")).unwrap();
    let password_file = &cmd[cmd.iter().position(|w| w == "--password-file").unwrap() + 1];

    let mut read_only = Vec::new();
    let mut writable = Vec::new();
    for volume in flag_values(&words, "--volume") {
        let parts: Vec<&str> = volume.split(':').collect();
        match parts[..] {
            [_, target, "ro"] => read_only.push(target.to_owned()),
            [_, target] => writable.push(target.to_owned()),
            _ => panic!("a volume with options other than :ro: {volume}"),
        }
    }
    assert_eq!(writable, [env["XDG_STATE_HOME"].clone()]);
    read_only.sort();
    let mut expected = vec![
        env["XDG_CONFIG_HOME"].clone(),
        env["XDG_DATA_HOME"].clone(),
        password_file.clone(),
    ];
    expected.sort();
    assert_eq!(read_only, expected);
    assert!(
        flag_values(&words, "--tmpfs").is_empty(),
        "keyward writes no scratch files"
    );

    // The port keyward listens on is the one exposed and the one published.
    let listen = &cmd[cmd.iter().position(|w| w == "--http").unwrap() + 1];
    let port = listen.rsplit(':').next().unwrap();
    assert_eq!(instruction(&stage, "EXPOSE"), port);
    assert_eq!(
        flag_values(&words, "--publish"),
        [format!("127.0.0.1:{port}:{port}")]
    );
    assert_eq!(
        instruction(&stage, "ENTRYPOINT"),
        r#"["/usr/local/bin/keyward"]"#
    );
}

#[test]
fn the_container_build_copies_what_cargo_needs_on_the_pinned_toolchain() {
    let text = std::fs::read_to_string(repo().join("config/container/Containerfile")).unwrap();
    let mut copied = 0;
    for line in text.lines().filter(|line| line.starts_with("COPY ")) {
        if line.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(repo().join(source).exists(), "COPY {source}: no such path");
            copied += 1;
        }
    }
    assert!(copied >= 5, "{text}");
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        text.contains(&format!("FROM docker.io/library/rust:{rust_version}-")),
        "the build stage must use Rust {rust_version} (rust-version in Cargo.toml)"
    );
}
