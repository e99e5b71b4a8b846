//! Building layers and images for the image diff tests (tests/diff.rs,
//! tests/diff_history.rs): tar entries of every kind, gzip members, zstd
//! frames, images pushed over HTTP.
#![allow(dead_code)]

use std::io::Write;

use crate::common::*;
use reqwest::Method;
use serde_json::{json, Value};

pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

// ---------------------------------------------------------------------------
// Building layers
// ---------------------------------------------------------------------------

/// One tar entry as the test wants it.
pub enum E<'a> {
    File {
        path: &'a str,
        data: &'a [u8],
        mode: u32,
        uid: u64,
    },
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A file whose name goes in a PAX `path` record.
    Pax(&'a str, &'a [u8]),
    /// A header whose name bytes are written as is (no checks by the builder).
    Raw(&'a str, &'a [u8]),
}

pub fn file<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E::File { path, data, mode: 0o644, uid: 0 }
}

pub fn header(kind: tar::EntryType, size: u64, mode: u32, uid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_700_000_000);
    h
}

pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    // The length prefix counts itself.
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

pub fn append<W: Write>(b: &mut tar::Builder<W>, e: &E<'_>) {
    match e {
        E::File { path, data, mode, uid } => {
            b.append_data(&mut header(tar::EntryType::Regular, data.len() as u64, *mode, *uid), path, *data).unwrap()
        }
        E::Dir(path) => b.append_data(&mut header(tar::EntryType::Directory, 0, 0o755, 0), path, &[][..]).unwrap(),
        E::Symlink(path, target) => b.append_link(&mut header(tar::EntryType::Symlink, 0, 0o777, 0), path, target).unwrap(),
        E::Hardlink(path, target) => b.append_link(&mut header(tar::EntryType::Link, 0, 0o644, 0), path, target).unwrap(),
        E::Pax(path, data) => {
            let record = pax_record("path", path);
            let mut x = header(tar::EntryType::XHeader, record.len() as u64, 0o644, 0);
            x.set_path("PaxHeaders/long").unwrap();
            x.set_cksum();
            b.append(&x, &record[..]).unwrap();
            let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644, 0);
            h.set_path("truncated-name").unwrap();
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        E::Raw(name, data) => {
            let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644, 0);
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
    }
}

pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        append(&mut b, e);
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Gzip members of `chunk` bytes each, concatenated (as eStargz writes them).
pub fn gzip_members(data: &[u8], chunk: usize) -> Vec<u8> {
    data.chunks(chunk).flat_map(gzip).collect()
}

/// Zstd frames of `chunk` bytes each, concatenated.
pub fn zstd_frames(data: &[u8], chunk: usize) -> Vec<u8> {
    data.chunks(chunk).flat_map(|c| zstd::encode_all(c, 1).unwrap()).collect()
}

pub fn sha(data: &[u8]) -> String {
    sha256_hex(data)
}

// ---------------------------------------------------------------------------
// Pushing images and asking for diffs
// ---------------------------------------------------------------------------

/// Pushes config and layers (each with its media type) and a manifest
/// tagged `tag`; returns the manifest digest.
pub fn push_image_with(app: &TestApp, repo: &str, tag: &str, config: Value, layers: &[(&str, Vec<u8>)]) -> String {
    let config = to_bytes(&config);
    push_blob(app, repo, &config);
    for (_, l) in layers {
        push_blob(app, repo, l);
    }
    let manifest = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": layers.iter().map(|(t, l)| descriptor(t, l)).collect::<Vec<_>>(),
    }));
    push_manifest(app, repo, tag, OCI_MANIFEST, &manifest)
}

pub fn config(env: &[&str], user: &str, labels: Value, ports: &[&str], history: &[&str]) -> Value {
    let ports: serde_json::Map<String, Value> = ports.iter().map(|p| (p.to_string(), json!({}))).collect();
    json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env, "User": user, "Labels": labels, "ExposedPorts": ports, "Cmd": ["/bin/app"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": history.iter().map(|h| json!({"created_by": h})).collect::<Vec<_>>(),
    })
}

pub fn diff_req(app: &TestApp, repo: &str, query: &str) -> Resp {
    app.get(&format!("/api/v1/repositories/{repo}/diff?{query}"))
}

#[track_caller]
pub fn diff_ok(app: &TestApp, repo: &str, query: &str) -> Value {
    let r = diff_req(app, repo, query);
    r.expect(200);
    r.json()
}

pub fn by_path<'a>(files: &'a Value, path: &str) -> &'a Value {
    files.as_array().unwrap().iter().find(|f| f["path"] == path).unwrap_or_else(|| panic!("no change for {path} in {files:#}"))
}

pub fn platform_image(app: &TestApp, repo: &str, content: &[u8]) -> (Vec<u8>, String) {
    let layer = gzip(&tar_of(&[file("arch", content)]));
    let digest = push_image_with(
        app,
        repo,
        &format!("single-{}", sha(content)[..8].to_owned()),
        config(&[], "", json!({}), &[], &["ADD arch"]),
        &[(OCI_LAYER, layer)],
    );
    let r = app.req(Method::GET, &format!("/v2/{repo}/manifests/{digest}")).header("Accept", OCI_MANIFEST).send();
    r.expect(200);
    (r.body.clone(), digest)
}

pub fn index_of(children: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(m, arch)| {
            let mut d = descriptor(OCI_MANIFEST, m);
            d["platform"] = json!({"os": "linux", "architecture": arch});
            d
        })
        .collect();
    to_bytes(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
}

pub fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
        .expect(201);
}
