//! Pipeline commands: thin HTTP clients of the governance API, reaching the
//! server and its credentials through [`super::remote`].

use serde_json::{json, Value};

use super::error::CliError;
use super::remote::Remote;

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as an aligned table.
pub(super) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
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

const RELEASE_HEADERS: [&str; 9] = ["STAGE", "SEQ", "DIGEST", "VERSION", "REASON", "ACTOR", "CREATED", "SIGNED BY", "NOTE"];

/// The signer keys of a gated release; a key revoked since is marked.
fn signed_by(r: &Value) -> String {
    let Some(signers) = r["signature"]["signers"].as_array() else { return "-".into() };
    let names: Vec<String> = signers
        .iter()
        .map(|s| match s["revoked"].as_bool() {
            Some(true) => format!("{} (REVOKED)", text(&s["key"])),
            _ => text(&s["key"]),
        })
        .collect();
    if names.is_empty() {
        "(verified, no signer)".into()
    } else {
        names.join(",")
    }
}

fn release_row(r: &Value) -> Vec<String> {
    let reason = match r["reason"].as_str() {
        Some("rollback") => format!("rollback (from #{}, restores #{})", text(&r["rolled_back_from"]), text(&r["restored_sequence"])),
        _ => text(&r["reason"]),
    };
    vec![
        text(&r["stage"]),
        text(&r["sequence"]),
        text(&r["digest"]),
        text(&r["version"]),
        reason,
        text(&r["actor"]),
        text(&r["created_at"]),
        signed_by(r),
        text(&r["note"]),
    ]
}

fn print_release(remote: &Remote, release: &Value) {
    if remote.json {
        println!("{release}");
    } else {
        table(&RELEASE_HEADERS, vec![release_row(release)]);
    }
}

pub fn promote(
    remote: &Remote,
    repo: &str,
    reference: &str,
    stage: &str,
    version: Option<String>,
    note: Option<String>,
) -> Result<(), CliError> {
    // A tag names the version unless one is given; a digest (with its `:`) does not.
    let version = version.or_else(|| (!reference.contains(':')).then(|| reference.to_owned()));
    let body = json!({"reference": reference, "stage": stage, "version": version, "note": note});
    let release = remote.request(reqwest::Method::POST, &format!("/api/v1/repositories/{repo}/promotions"), Some(body))?;
    // A retried promotion of the current digest writes nothing: say so, so
    // that nobody reads the existing release as a new one.
    if !remote.json && release["unchanged"] == Value::Bool(true) {
        println!("already current: {} release #{} (nothing changed)", text(&release["stage"]), text(&release["sequence"]));
    }
    print_release(remote, &release);
    Ok(())
}

pub fn rollback(remote: &Remote, repo: &str, stage: &str, to: Option<i64>) -> Result<(), CliError> {
    let body = json!({"to_sequence": to});
    let release = remote.request(reqwest::Method::POST, &format!("/api/v1/repositories/{repo}/stages/{stage}/rollback"), Some(body))?;
    print_release(remote, &release);
    Ok(())
}

pub fn history(remote: &Remote, repo: &str, stage: Option<&str>) -> Result<(), CliError> {
    let (value, rows) = match stage {
        None => {
            let v = remote.request(reqwest::Method::GET, &format!("/api/v1/repositories/{repo}/stages"), None)?;
            let rows = v["stages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| match s["current"].is_null() {
                    true => vec![
                        text(&s["stage"]),
                        "-".into(),
                        "(no release)".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ],
                    false => release_row(&s["current"]),
                })
                .collect();
            (v, rows)
        }
        Some(stage) => {
            let v = remote.request(reqwest::Method::GET, &format!("/api/v1/repositories/{repo}/stages/{stage}/releases?n=1000"), None)?;
            // One stage's history also shows what each release changed.
            let rows = v["releases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let mut row = release_row(r);
                    row.push(super::diff::history_cell(&r["diff"]));
                    row
                })
                .collect();
            (v, rows)
        }
    };
    if remote.json {
        println!("{value}");
    } else if stage.is_some() {
        let headers: Vec<&str> = RELEASE_HEADERS.iter().copied().chain(["CHANGES"]).collect();
        table(&headers, rows);
    } else {
        table(&RELEASE_HEADERS, rows);
    }
    Ok(())
}
