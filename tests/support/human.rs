//! The scripted human: reads the approval page's HTML as a browser would, and answers its form
//! with a code computed from the fixture wallet's TOTP secret.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::mcp::{FIXTURE_PASSWORD, FIXTURE_TOTP_SECRET};

/// An HTTP response, as a test reads it.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The review as the page shows it, unescaped.
    pub(crate) fn review(&self) -> String {
        let start = self
            .body
            .find("<pre id=\"review\">")
            .expect("the page shows a review")
            + "<pre id=\"review\">".len();
        let end = start + self.body[start..].find("</pre>").unwrap();
        unescape(&self.body[start..end])
    }

    /// The value of the hidden or text input named `name`.
    pub(crate) fn input(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker)?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let value = tag
            .split("value=\"")
            .nth(1)
            .map_or("", |rest| rest.split('"').next().unwrap());
        Some(unescape(value))
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A blocking HTTP/1.1 request to a loopback URL, with extra headers. `Host` defaults to the URL's.
pub(crate) fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    if let Some(body) = body {
        request.push_str(body);
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A code of the fixture wallet's authenticator at `unix_time`.
pub(crate) fn code_at(unix_time: u64) -> String {
    code_of(FIXTURE_TOTP_SECRET, unix_time)
}

fn code_of(secret: &[u8], unix_time: u64) -> String {
    let totp = keyward::totp::from_bytes(secret).unwrap();
    totp.expose_secret().generate(unix_time).to_string()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The human, who remembers which codes they already used. By default they own the fixture
/// wallet; [`Human::owning`] gives them another.
#[derive(Debug)]
pub(crate) struct Human {
    last_step: Option<u64>,
    totp_secret: Vec<u8>,
    password: String,
}

impl Default for Human {
    fn default() -> Self {
        Self::owning(FIXTURE_TOTP_SECRET, FIXTURE_PASSWORD)
    }
}

impl Human {
    /// The owner of a wallet with this TOTP secret and password.
    pub(crate) fn owning(totp_secret: &[u8], password: &str) -> Self {
        Self {
            last_step: None,
            totp_secret: totp_secret.to_vec(),
            password: password.to_owned(),
        }
    }

    /// A code that keyward has not seen: the earliest step within ±1 of now that is after the last
    /// one used, waiting for the next step when all three are used.
    pub(crate) fn fresh_code(&mut self) -> String {
        loop {
            let current = unix_now() / 30;
            let step = (current - 1..=current + 1).find(|s| self.last_step.is_none_or(|l| *s > l));
            if let Some(step) = step {
                self.last_step = Some(step);
                return code_of(&self.totp_secret, step * 30);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Opens the page, reads the form, and answers it. The password is given when the page asks.
    pub(crate) fn answer(&mut self, url: &str, decision: &str) -> Response {
        let page = http("GET", url, &[], None);
        assert_eq!(page.status, 200, "{}", page.body);
        let code = if decision == "approve" {
            self.fresh_code()
        } else {
            String::new()
        };
        self.submit(url, &page, &code, decision)
    }

    /// Submits the page's form with `code`.
    pub(crate) fn submit(
        &self,
        url: &str,
        page: &Response,
        code: &str,
        decision: &str,
    ) -> Response {
        let mut form = format!(
            "csrf={}&digest={}&code={}&decision={decision}",
            form_encode(&page.input("csrf").expect("the form has a CSRF token")),
            form_encode(&page.input("digest").unwrap_or_default()),
            form_encode(code),
        );
        if page.input("password").is_some() {
            form.push_str(&format!("&password={}", form_encode(&self.password)));
        }
        let origin = url.split("/approve/").next().unwrap();
        http("POST", url, &[("Origin", origin)], Some(&form))
    }
}

/// The terminal approver, as `keyward approve` speaks to the socket in `home`: lists what is
/// pending, then approves all of it with `code` and the fixture password. Returns the listing
/// and the answer.
pub(crate) fn approve_all_on_socket(
    home: &std::path::Path,
    code: &str,
) -> (serde_json::Value, serde_json::Value) {
    use std::io::{BufRead, BufReader};
    let stream = std::os::unix::net::UnixStream::connect(home.join("approve.sock")).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut exchange = |command: serde_json::Value| {
        writeln!(writer, "{command}").unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    let listed = exchange(serde_json::json!({ "op": "list" }));
    let chosen: Vec<serde_json::Value> = listed["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!({ "id": r["id"], "digest": r["digest"] }))
        .collect();
    let answer = exchange(serde_json::json!({
        "op": "answer",
        "requests": chosen,
        "approve": true,
        "code": code,
        "password": FIXTURE_PASSWORD,
    }));
    (listed, answer)
}
