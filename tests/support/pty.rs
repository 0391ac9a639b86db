//! Drives keyward through a pseudo-terminal, the way a person at a terminal would.
//!
//! The child gets the pty as its controlling terminal (so `/dev/tty` is the pty) while its stdout
//! and stderr stay separate pipes: what keyward shows on the terminal (prompts, the recovery phrase,
//! the TOTP secret) lands in the transcript, and the test can check that none of it reached stdout
//! or stderr.

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the program in a new session and makes the pty (argv[1]) its controlling terminal: a
/// session leader acquires a terminal by opening it. The descriptor is inherited, as a shell's
/// would be, so the terminal stays open from the wrapper into the program. Python does this
/// without `unsafe` here.
const CTTY_WRAPPER: &str = "import os, sys\nos.setsid()\nos.set_inheritable(os.open(sys.argv[1], os.O_RDWR), True)\nos.execvp(sys.argv[2], sys.argv[2:])\n";

/// Where the child's stdin comes from.
pub(crate) enum Stdin {
    /// The terminal itself, as when a person runs the command.
    Terminal,
    /// A pipe the test writes to (`echo 123456 | keyward totp enroll`).
    Pipe,
}

pub(crate) struct Session {
    child: Child,
    master: File,
    stdin: Option<ChildStdin>,
    transcript: Arc<Mutex<Vec<u8>>>,
    cursor: usize,
    readers: Vec<JoinHandle<Vec<u8>>>,
    tty_reader: Option<JoinHandle<()>>,
    exited: Arc<AtomicBool>,
}

/// A finished session: the process output and everything shown on its terminal.
pub(crate) struct Finished {
    pub(crate) output: Output,
    pub(crate) transcript: String,
}

impl Session {
    pub(crate) fn spawn(command: Command, stdin: Stdin) -> Self {
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let slave_path = ptsname(&master, Vec::new()).unwrap().into_string().unwrap();

        let mut wrapped = Command::new("python3");
        wrapped
            .arg("-c")
            .arg(CTTY_WRAPPER)
            .arg(&slave_path)
            .arg(command.get_program())
            .args(command.get_args())
            .env_clear();
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                wrapped.env(key, value);
            }
        }
        match stdin {
            Stdin::Terminal => {
                let slave = File::options()
                    .read(true)
                    .write(true)
                    .open(&slave_path)
                    .unwrap();
                wrapped.stdin(Stdio::from(slave));
            }
            Stdin::Pipe => {
                wrapped.stdin(Stdio::piped());
            }
        }
        wrapped.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = wrapped.spawn().unwrap();
        // Drop the parent's copy of the slave, so the master sees EOF when the child exits.
        drop(wrapped);

        let master = File::from(master);
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let exited = Arc::new(AtomicBool::new(false));
        let tty_reader = {
            let mut master = master.try_clone().unwrap();
            let transcript = Arc::clone(&transcript);
            let exited = Arc::clone(&exited);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match master.read(&mut buffer) {
                        Ok(read) if read > 0 => {
                            transcript
                                .lock()
                                .unwrap()
                                .extend_from_slice(&buffer[..read]);
                        }
                        // EIO means no process has the terminal open right now; the child may
                        // still open it, so stop only once it has exited.
                        _ if exited.load(Ordering::SeqCst) => break,
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        let mut readers = Vec::new();
        let mut stdout = child.stdout.take().unwrap();
        readers.push(std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).unwrap();
            bytes
        }));
        let mut stderr = child.stderr.take().unwrap();
        readers.push(std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stderr.read_to_end(&mut bytes).unwrap();
            bytes
        }));
        Self {
            stdin: child.stdin.take(),
            child,
            master,
            transcript,
            cursor: 0,
            readers,
            tty_reader: Some(tty_reader),
            exited,
        }
    }

    /// Waits until the terminal shows `needle` after what was already consumed, and returns the
    /// terminal text up to and including it.
    pub(crate) fn expect(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(shown) = self.take_through(needle) {
                return shown;
            }
            if start.elapsed() > TIMEOUT || self.child.try_wait().unwrap().is_some() {
                // Give the reader a moment to catch the last bytes before declaring failure.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(shown) = self.take_through(needle) {
                    return shown;
                }
                let shown = String::from_utf8_lossy(&self.transcript.lock().unwrap()).into_owned();
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self
                    .readers
                    .pop()
                    .map(|r| r.join().unwrap())
                    .unwrap_or_default();
                panic!(
                    "the terminal never showed {needle:?}; it showed:\n{shown}\nstderr:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The unconsumed terminal text up to and including `needle`, if it has been shown.
    fn take_through(&mut self, needle: &str) -> Option<String> {
        let transcript = self.transcript.lock().unwrap();
        let text = String::from_utf8_lossy(&transcript[self.cursor..]).into_owned();
        let end = text.find(needle)? + needle.len();
        self.cursor += text[..end].len();
        Some(text[..end].to_owned())
    }

    /// The process id of keyward (the wrapper execs it, so the pid is keyward's).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types a line on the terminal.
    pub(crate) fn type_line(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.write_all(b"\n").unwrap();
    }

    /// Writes a line to the child's stdin pipe.
    pub(crate) fn pipe_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is not a pipe");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin (if a pipe), waits for the process, and returns everything it printed.
    pub(crate) fn finish(mut self) -> Finished {
        drop(self.stdin.take());
        let start = Instant::now();
        let status: ExitStatus = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                self.child.kill().unwrap();
                let transcript = self.transcript.lock().unwrap();
                panic!(
                    "keyward did not finish; the terminal showed:\n{}",
                    String::from_utf8_lossy(&transcript)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.readers.pop().unwrap().join().unwrap();
        let stdout = self.readers.pop().unwrap().join().unwrap();
        self.exited.store(true, Ordering::SeqCst);
        if let Some(reader) = self.tty_reader.take() {
            reader.join().unwrap();
        }
        let transcript = String::from_utf8_lossy(&self.transcript.lock().unwrap()).into_owned();
        Finished {
            output: Output {
                status,
                stdout,
                stderr,
            },
            transcript,
        }
    }
}
