//! How commands that talk to a running Wharf reach it: the server URL
//! (`--url`, `WHARF_URL`, else the last `wharf login`, else
//! http://127.0.0.1:5000), the credentials (`--username` with
//! `--password-stdin` or `WHARF_PASSWORD`, `WHARF_USERNAME`, the
//! `wharf login` file, docker's stored `auths`), and readable errors.

use std::io::BufRead;

use serde_json::Value;

use super::credentials::{docker_credentials, Credentials, DockerLookup, Store};
use super::error::CliError;

/// The server pipeline commands use when nothing else names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:5000";

/// How a command reaches a running Wharf.
#[derive(clap::Args, Debug, Default)]
pub struct ClientArgs {
    /// Base URL of the Wharf server, with its scheme (http:// or https://).
    /// Default: the server of the last `wharf login`; for promote, rollback
    /// and history, else http://127.0.0.1:5000.
    #[arg(long, env = "WHARF_URL")]
    pub url: Option<String>,
    /// Account to act as; its password or robot token comes from
    /// --password-stdin or WHARF_PASSWORD. Default: the credentials stored by
    /// `wharf login` for the URL, else docker's stored login for its host.
    #[arg(long, short = 'u', env = "WHARF_USERNAME")]
    pub username: Option<String>,
    /// Read the password (or robot token) from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses a server URL, refusing one without an http(s) scheme with a suggestion.
pub fn normalize_url(raw: &str) -> Result<url::Url, CliError> {
    let raw = raw.trim();
    let suggestion = || match raw.contains("://") {
        true => format!("URL {raw:?} is not an http:// or https:// URL"),
        false => format!("URL needs a scheme: did you mean http://{}?", raw.trim_end_matches('/')),
    };
    let url = url::Url::parse(raw).map_err(|_| suggestion())?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        // `localhost:5000` parses with the scheme "localhost".
        _ => Err(suggestion().into()),
    }
}

/// The key a URL's credentials are stored under: scheme, host, port, path
/// without a trailing slash.
pub fn url_key(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// `host[:port]` as docker names a registry.
pub fn host_port(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// The first line of standard input, without its line ending.
pub fn read_stdin_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(CliError::io("reading standard input"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Where the credentials of a request came from, for error hints.
#[derive(Debug, Clone)]
enum Source {
    Given,
    Stored(String),
    Docker(String),
    None { docker_helper: Option<String> },
}

/// A resolved connection to one Wharf server.
pub struct Remote {
    pub url: url::Url,
    pub json: bool,
    credentials: Option<Credentials>,
    source: Source,
    client: reqwest::blocking::Client,
}

/// Credentials given on the command line or in the environment, if any.
fn given_credentials(args: &ClientArgs) -> Result<Option<Credentials>, CliError> {
    let password = if args.password_stdin { Some(read_stdin_line()?) } else { std::env::var("WHARF_PASSWORD").ok() };
    match (&args.username, password) {
        (Some(user), Some(password)) => Ok(Some(Credentials { username: user.clone(), password })),
        (Some(user), None) => {
            Err(CliError::Refused(format!("--username {user} needs a password: pass --password-stdin or set WHARF_PASSWORD")))
        }
        (None, Some(_)) if args.password_stdin => Err("--password-stdin needs --username (or WHARF_USERNAME)".into()),
        (None, _) => Ok(None),
    }
}

impl Remote {
    /// Whether `args` or a stored login name a server.
    pub fn configured(args: &ClientArgs) -> bool {
        args.url.is_some() || Store::load().is_ok_and(|(_, s)| s.default.is_some())
    }

    pub fn connect(args: &ClientArgs) -> Result<Self, CliError> {
        let (store_path, store) = Store::load()?;
        let raw = match &args.url {
            Some(u) => u.clone(),
            None => store.default.clone().unwrap_or_else(|| DEFAULT_URL.to_owned()),
        };
        let url = normalize_url(&raw)?;
        let (credentials, source) = match given_credentials(args)? {
            Some(c) => (Some(c), Source::Given),
            None => match store.servers.get(&url_key(&url)) {
                Some(c) => (Some(c.clone()), Source::Stored(store_path.display().to_string())),
                None => match docker_credentials(&host_port(&url)) {
                    DockerLookup::Found(c) => (Some(c), Source::Docker(host_port(&url))),
                    DockerLookup::HelperOnly(helper) => (None, Source::None { docker_helper: Some(helper) }),
                    DockerLookup::None => (None, Source::None { docker_helper: None }),
                },
            },
        };
        Self::new(url, credentials, source, args.json)
    }

    /// A connection with exactly these credentials (for `wharf login`).
    pub fn with_credentials(url: url::Url, credentials: Option<Credentials>) -> Result<Self, CliError> {
        Self::new(url, credentials, Source::Given, false)
    }

    fn new(url: url::Url, credentials: Option<Credentials>, source: Source, json: bool) -> Result<Self, CliError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .map_err(|e| CliError::Refused(format!("HTTP client: {e}")))?;
        Ok(Self { url, json, credentials, source, client })
    }

    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    fn endpoint(&self) -> String {
        url_key(&self.url)
    }

    /// Sends one request; the raw response, or the reason it never arrived.
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        with_credentials: bool,
    ) -> Result<reqwest::blocking::Response, CliError> {
        let mut req = self.client.request(method, format!("{}{path}", self.endpoint()));
        if let (Some(c), true) = (&self.credentials, with_credentials) {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().map_err(|e| CliError::Refused(unreachable_message(&self.endpoint(), &e)))
    }

    /// A request to the management API: the JSON answer, or a readable error.
    pub fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let response = self.send(method, path, body.as_ref(), true)?;
        let status = response.status();
        let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(CliError::Refused(self.error_message(status, &value, retry_after.as_deref())))
    }

    /// The error envelope, readably: each error once, every failed gate,
    /// and what to do about a 401 or 429.
    fn error_message(&self, status: reqwest::StatusCode, value: &Value, retry_after: Option<&str>) -> String {
        let errors: Vec<&Value> = value["errors"].as_array().into_iter().flatten().collect();
        let mut lines = Vec::new();
        for e in &errors {
            let gates: Vec<&str> = e["detail"]["failed_gates"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if gates.is_empty() {
                lines.push(e["message"].as_str().unwrap_or("").to_owned());
            } else {
                // The message repeats the gates; list them once, one a line.
                lines.push(format!("promotion refused, {} failed gate(s):", gates.len()));
                lines.extend(gates.iter().map(|g| format!("  - {g}")));
            }
        }
        let mut message = match lines.is_empty() {
            true => format!("{} {} from {}", status.as_u16(), status.canonical_reason().unwrap_or(""), self.endpoint()),
            false => lines.join("\n"),
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let hint = match &self.source {
                Source::Given => "check the username and password".to_owned(),
                Source::Stored(path) => format!("the credentials stored in {path} were refused; run `wharf login {}` again", self.endpoint()),
                Source::Docker(host) => format!("docker's stored login for {host} was refused; run `wharf login {}`", self.endpoint()),
                Source::None { docker_helper: Some(helper) } => format!(
                    "no credentials: run `wharf login {}` or pass --username with --password-stdin (docker's credential helper `{helper}` is not read)",
                    self.endpoint()
                ),
                Source::None { docker_helper: None } => {
                    format!("no credentials: run `wharf login {}` or pass --username with --password-stdin", self.endpoint())
                }
            };
            message.push_str(&format!("\n  hint: {hint}"));
        }
        if let (reqwest::StatusCode::TOO_MANY_REQUESTS, Some(secs)) = (status, retry_after) {
            message.push_str(&format!("\n  retry after {secs} seconds"));
        }
        message
    }
}

/// "cannot reach Wharf at URL: connection refused": the innermost cause,
/// once, instead of reqwest's "error sending request for url".
pub fn unreachable_message(endpoint: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("cannot reach Wharf at {endpoint}: timed out");
    }
    let mut innermost: &dyn std::error::Error = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let cause = match innermost.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        Some(std::io::ErrorKind::TimedOut) => "timed out".to_owned(),
        _ => innermost.to_string(),
    };
    format!("cannot reach Wharf at {endpoint}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_an_http_scheme() {
        assert_eq!(normalize_url("127.0.0.1:5000").unwrap_err().to_string(), "URL needs a scheme: did you mean http://127.0.0.1:5000?");
        assert_eq!(normalize_url("localhost:5000").unwrap_err().to_string(), "URL needs a scheme: did you mean http://localhost:5000?");
        assert!(normalize_url("ftp://x").is_err());
        let u = normalize_url("http://127.0.0.1:5000/").unwrap();
        assert_eq!(url_key(&u), "http://127.0.0.1:5000");
        assert_eq!(host_port(&u), "127.0.0.1:5000");
        assert_eq!(host_port(&normalize_url("https://r.example").unwrap()), "r.example");
    }
}
