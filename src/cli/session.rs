//! `wharf login <url>` and `wharf logout <url>`.

use serde_json::Value;

use super::credentials::{docker_credentials, Credentials, DockerLookup, Store};
use super::error::CliError;
use super::remote::{host_port, normalize_url, read_stdin_line, url_key, Remote};

/// Checks credentials the way docker does (the token endpoint with Basic
/// credentials); `Ok(false)` when the server has access control off.
fn verify(url: &url::Url, credentials: &Credentials) -> Result<bool, CliError> {
    let anonymous = Remote::with_credentials(url.clone(), None)?;
    let probe = anonymous.send(reqwest::Method::GET, "/v2/", None, false)?;
    if !matches!(probe.status().as_u16(), 200 | 401) {
        return Err(CliError::Refused(format!(
            "{} does not look like a Wharf or OCI registry: GET /v2/ answered {}",
            url_key(url),
            probe.status()
        )));
    }
    let auth_enabled = probe.status() == reqwest::StatusCode::UNAUTHORIZED;
    let remote = Remote::with_credentials(url.clone(), Some(credentials.clone()))?;
    let response = remote.send(reqwest::Method::GET, "/auth/token?service=wharf", None, true)?;
    let status = response.status();
    let retry_after = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = response.json().unwrap_or(Value::Null);
    let message = body["errors"][0]["message"].as_str().unwrap_or("").to_owned();
    match status.as_u16() {
        200 => Ok(auth_enabled),
        401 => Err(CliError::Refused(format!("login to {} as {} failed: {message}", url_key(url), credentials.username))),
        429 => Err(CliError::Refused(format!(
            "login to {} as {} refused: {message}{}",
            url_key(url),
            credentials.username,
            retry_after.map(|s| format!(" (retry after {s} seconds)")).unwrap_or_default()
        ))),
        _ => Err(CliError::Refused(format!("login to {} failed: {status} {message}", url_key(url)))),
    }
}

pub fn login(raw_url: &str, username: Option<String>, password_stdin: bool) -> Result<(), CliError> {
    let url = normalize_url(raw_url)?;
    let key = url_key(&url);
    let Some(username) = username else {
        // No account given: docker's stored login may already work.
        return match docker_credentials(&host_port(&url)) {
            DockerLookup::Found(c) => {
                verify(&url, &c)?;
                println!("docker's stored login for {} ({}) works; wharf uses it, nothing stored", host_port(&url), c.username);
                Ok(())
            }
            DockerLookup::HelperOnly(helper) => Err(CliError::Refused(format!(
                "wharf login needs --username with --password-stdin (docker keeps its login for {} in the credential helper `{helper}`, which wharf does not read)",
                host_port(&url)
            ))),
            DockerLookup::None => Err("wharf login needs --username (or WHARF_USERNAME) and --password-stdin (or WHARF_PASSWORD)".into()),
        };
    };
    let password = match (password_stdin, std::env::var("WHARF_PASSWORD")) {
        (true, _) => read_stdin_line()?,
        (false, Ok(p)) => p,
        (false, Err(_)) => return Err("wharf login needs the password: pass --password-stdin or set WHARF_PASSWORD".into()),
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    let credentials = Credentials { username, password };
    let checked = verify(&url, &credentials)?;
    let (path, mut store) = Store::load()?;
    store.servers.insert(key.clone(), credentials.clone());
    store.default = Some(key.clone());
    store.save(&path)?;
    if !checked {
        eprintln!("wharf: note: access control is off on {key}, so the credentials were not checked");
    }
    println!("Login succeeded: {} at {key}; stored in {} (now the default server)", credentials.username, path.display());
    Ok(())
}

pub fn logout(raw_url: &str) -> Result<(), CliError> {
    let key = url_key(&normalize_url(raw_url)?);
    let (path, mut store) = Store::load()?;
    if store.servers.remove(&key).is_none() {
        println!("not logged in to {key}");
        return Ok(());
    }
    if store.default.as_deref() == Some(key.as_str()) {
        store.default = None;
    }
    store.save(&path)?;
    println!("removed the credentials for {key} from {}", path.display());
    Ok(())
}
