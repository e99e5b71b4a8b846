//! Pipeline commands: thin HTTP clients of the governance API. Credentials
//! come from WHARF_USERNAME / WHARF_PASSWORD when set.

use serde_json::{json, Value};

use super::ClientArgs;

fn request(args: &ClientArgs, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
    let client = reqwest::blocking::Client::builder().build().map_err(|e| e.to_string())?;
    let url = format!("{}{}", args.url.trim_end_matches('/'), path);
    let mut req = client.request(method, &url);
    if let Ok(user) = std::env::var("WHARF_USERNAME") {
        req = req.basic_auth(user, std::env::var("WHARF_PASSWORD").ok());
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let value: Value = response.json().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    // Render the error envelope readably, with every failed gate.
    let mut message = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    for e in value["errors"].as_array().into_iter().flatten() {
        message.push_str(&format!("\n  {}: {}", e["code"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or("")));
        for gate in e["detail"]["failed_gates"].as_array().into_iter().flatten() {
            message.push_str(&format!("\n    - {}", gate.as_str().unwrap_or("")));
        }
    }
    Err(message)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as an aligned table.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

const RELEASE_HEADERS: [&str; 7] = ["STAGE", "SEQ", "DIGEST", "VERSION", "REASON", "ACTOR", "CREATED"];

fn release_row(r: &Value) -> Vec<String> {
    let reason = match r["reason"].as_str() {
        Some("rollback") => format!("rollback (from #{}, restores #{})", text(&r["rolled_back_from"]), text(&r["restored_sequence"])),
        _ => text(&r["reason"]),
    };
    vec![text(&r["stage"]), text(&r["sequence"]), text(&r["digest"]), text(&r["version"]), reason, text(&r["actor"]), text(&r["created_at"])]
}

fn print_release(args: &ClientArgs, release: &Value) {
    if args.json {
        println!("{release}");
    } else {
        table(&RELEASE_HEADERS, vec![release_row(release)]);
    }
}

pub fn promote(args: &ClientArgs, repo: &str, reference: &str, stage: &str, version: Option<String>, note: Option<String>) -> Result<(), String> {
    let body = json!({"reference": reference, "stage": stage, "version": version, "note": note});
    let release = request(args, reqwest::Method::POST, &format!("/api/v1/repositories/{repo}/promotions"), Some(body))?;
    print_release(args, &release);
    Ok(())
}

pub fn rollback(args: &ClientArgs, repo: &str, stage: &str, to: Option<i64>) -> Result<(), String> {
    let body = json!({"to_sequence": to});
    let release = request(args, reqwest::Method::POST, &format!("/api/v1/repositories/{repo}/stages/{stage}/rollback"), Some(body))?;
    print_release(args, &release);
    Ok(())
}

pub fn history(args: &ClientArgs, repo: &str, stage: Option<&str>) -> Result<(), String> {
    let (value, rows) = match stage {
        None => {
            let v = request(args, reqwest::Method::GET, &format!("/api/v1/repositories/{repo}/stages"), None)?;
            let rows = v["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| match s["current"].is_null() {
                    true => vec![text(&s["stage"]), "-".into(), "(no release)".into(), "-".into(), "-".into(), "-".into(), "-".into()],
                    false => release_row(&s["current"]),
                })
                .collect();
            (v, rows)
        }
        Some(stage) => {
            let v = request(args, reqwest::Method::GET, &format!("/api/v1/repositories/{repo}/stages/{stage}/releases?n=1000"), None)?;
            let rows = v["releases"].as_array().into_iter().flatten().map(release_row).collect();
            (v, rows)
        }
    };
    if args.json {
        println!("{value}");
    } else {
        table(&RELEASE_HEADERS, rows);
    }
    Ok(())
}
