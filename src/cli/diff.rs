//! `wharf diff <repo> <from> <to>`: a client of
//! `GET /api/v1/repositories/<name>/diff`, printing a readable report (or,
//! with --json, the server's answer with every page of files).

use serde_json::Value;

use super::client::text;
use super::error::CliError;
use super::remote::Remote;

/// Files per request while following the pages: the server's default page
/// size (`diff.default_page_size`), which is always within its cap.
fn query(from: &str, to: &str, platform: Option<&str>, cursor: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("from", from).append_pair("to", to);
    if let Some(p) = platform {
        q.append_pair("platform", p);
    }
    if let Some(c) = cursor {
        q.append_pair("cursor", c);
    }
    q.finish()
}

fn bytes(n: &Value) -> String {
    let n = n.as_u64().unwrap_or(0) as f64;
    match n {
        n if n >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", n / (1024.0 * 1024.0 * 1024.0)),
        n if n >= 1024.0 * 1024.0 => format!("{:.1} MiB", n / (1024.0 * 1024.0)),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} B"),
    }
}

/// What differs between the two sides of a modified path, in words.
fn what_changed(f: &Value) -> String {
    let (a, b) = (&f["from"], &f["to"]);
    let mut parts = Vec::new();
    if a["type"] != b["type"] {
        parts.push(format!("type {} -> {}", text(&a["type"]), text(&b["type"])));
    }
    if a["sha256"] != b["sha256"] || a["size"] != b["size"] {
        parts.push(format!("content ({} -> {})", bytes(&a["size"]), bytes(&b["size"])));
    }
    if a["mode"] != b["mode"] {
        parts.push(format!("mode {} -> {}", text(&a["mode"]), text(&b["mode"])));
    }
    if a["uid"] != b["uid"] || a["gid"] != b["gid"] {
        parts.push(format!("owner {}:{} -> {}:{}", text(&a["uid"]), text(&a["gid"]), text(&b["uid"]), text(&b["gid"])));
    }
    if a["link"] != b["link"] {
        parts.push(format!("link {} -> {}", text(&a["link"]), text(&b["link"])));
    }
    parts.join(", ")
}

fn side(v: &Value) -> String {
    let platform = v["platform"].as_str().map(|p| format!(" ({p})")).unwrap_or_default();
    format!("{} {}{platform}", text(&v["reference"]), text(&v["manifest"]))
}

pub fn diff(remote: &Remote, repo: &str, from: &str, to: &str, platform: Option<&str>, files: bool) -> Result<(), CliError> {
    let path = format!("/api/v1/repositories/{repo}/diff");
    let mut report = remote.request(reqwest::Method::GET, &format!("{path}?{}", query(from, to, platform, None)), None)?;
    if files || remote.json {
        // Follow the cursor so the report names every file.
        let mut all: Vec<Value> = report["files"].as_array().cloned().unwrap_or_default();
        let mut cursor = report["next_cursor"].as_str().map(str::to_owned);
        while let Some(c) = cursor {
            let page = remote.request(reqwest::Method::GET, &format!("{path}?{}", query(from, to, platform, Some(&c))), None)?;
            all.extend(page["files"].as_array().cloned().unwrap_or_default());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
        }
        report["files"] = Value::Array(all);
        report["next_cursor"] = Value::Null;
    }
    if remote.json {
        println!("{report}");
        return Ok(());
    }
    let s = &report["summary"];
    println!("from    {}", side(&report["from"]));
    println!("to      {}", side(&report["to"]));
    let config = report["config"].as_array().cloned().unwrap_or_default();
    println!("config  {} field(s) changed", config.len());
    for c in &config {
        println!("  {:<13} {} -> {}", text(&c["field"]), c["from"], c["to"]);
    }
    println!(
        "layers  {} shared, {} removed ({}), {} added ({})",
        text(&s["layers_shared"]),
        text(&s["layers_removed"]),
        bytes(&s["layers_removed_bytes"]),
        text(&s["layers_added"]),
        bytes(&s["layers_added_bytes"])
    );
    for (sign, key) in [("-", "removed"), ("+", "added")] {
        for l in report["layers"][key].as_array().into_iter().flatten() {
            println!("  {sign} {} {:>10}  {}", text(&l["digest"]), bytes(&l["size"]), text(&l["history"]));
        }
    }
    println!(
        "files   {} added ({}), {} removed ({}), {} modified",
        text(&s["files_added"]),
        bytes(&s["bytes_added"]),
        text(&s["files_removed"]),
        bytes(&s["bytes_removed"]),
        text(&s["files_modified"])
    );
    let p = &report["packages"];
    if !p.is_null() {
        let dbs: Vec<String> = p["databases"].as_array().into_iter().flatten().map(text).collect();
        println!(
            "packages {} added, {} removed, {} changed ({})",
            text(&s["packages_added"]),
            text(&s["packages_removed"]),
            text(&s["packages_changed"]),
            dbs.join(", ")
        );
        for x in p["removed"].as_array().into_iter().flatten() {
            println!("  - {} {}", text(&x["name"]), text(&x["version"]));
        }
        for x in p["added"].as_array().into_iter().flatten() {
            println!("  + {} {}", text(&x["name"]), text(&x["version"]));
        }
        for x in p["changed"].as_array().into_iter().flatten() {
            println!("  ~ {} {} -> {}", text(&x["name"]), text(&x["from"]), text(&x["to"]));
        }
        for x in p["skipped"].as_array().into_iter().flatten() {
            println!("  (not read: {})", text(x));
        }
    }
    if files {
        for f in report["files"].as_array().into_iter().flatten() {
            match f["change"].as_str() {
                Some("added") => println!("  A {}", text(&f["path"])),
                Some("removed") => println!("  D {}", text(&f["path"])),
                _ => println!("  M {}  {}", text(&f["path"]), what_changed(f)),
            }
        }
    }
    Ok(())
}

/// A release's diff summary in one history cell: `+3 -1 ~2 files, ...`,
/// or its state and reason.
pub fn history_cell(d: &Value) -> String {
    let s = &d["summary"];
    match d["state"].as_str() {
        Some("ready") => {
            let mut cell = format!(
                "+{} -{} ~{} files, {} config, +{} layers ({})",
                text(&s["files_added"]),
                text(&s["files_removed"]),
                text(&s["files_modified"]),
                text(&s["config_changes"]),
                text(&s["layers_added"]),
                bytes(&s["layers_added_bytes"])
            );
            let pkgs = ["packages_added", "packages_removed", "packages_changed"].map(|k| s[k].as_u64().unwrap_or(0));
            if pkgs.iter().any(|n| *n > 0) {
                cell.push_str(&format!(", packages +{} -{} ~{}", pkgs[0], pkgs[1], pkgs[2]));
            }
            cell
        }
        Some("pending") => "pending".into(),
        _ => format!("unavailable: {}", text(&d["reason"])),
    }
}
