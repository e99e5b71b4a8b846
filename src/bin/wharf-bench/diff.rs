//! Image diff scenario: images `a`, `b` and `c` of about `blob_bytes` each
//! (1 GiB in the full profile) that share all their layers but the last.
//! On every target: the time a client-side tool needs just to download `a`
//! and `b` (every distinct blob once), which it must do before it can
//! compare anything. On Wharf: the diff `a`→`b` cold (no layer index yet:
//! every layer of both is read once), `b`→`c` (only `c`'s new layer is
//! read: the case of a promotion after the previous one), and `a`→`b` warm
//! (no layer read).

use std::io::Write;

use bytes::Bytes;

use crate::client::{Res, OCI_MANIFEST};
use crate::gen::random_bytes;
use crate::metrics::{mib_per_s, Phase};
use crate::report::{Better, Metric, PhaseResult};
use crate::Ctx;

pub const REPO: &str = "wharf-bench/diff";
/// Layers per image; the last one differs between the two images.
const LAYERS: u64 = 8;
/// Large files are 256 KiB, and each layer also has small 1 KiB files (config
/// trees, scripts), so the index has a realistic number of entries.
const BIG_FILE: usize = 256 * 1024;
const SMALL_FILES: usize = 2000;

/// Layer `seed` of about `bytes`: a gzip'd tar of random files.
fn make_layer(seed: u64, bytes: u64) -> Res<Bytes> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let add = |tar: &mut tar::Builder<_>, path: String, data: &[u8]| -> Res<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        tar.append_data(&mut h, path, data).map_err(|e| format!("tar: {e}"))
    };
    let small = (bytes / 64).min((SMALL_FILES * 1024) as u64) as usize / 1024;
    for i in 0..small {
        add(&mut tar, format!("layer{seed}/etc/conf.d/{i}.conf"), &random_bytes(seed * 1_000_003 + i as u64, 1024))?;
    }
    let big = (bytes as usize).saturating_sub(small * 1024) / BIG_FILE;
    for i in 0..big.max(1) {
        add(&mut tar, format!("layer{seed}/usr/lib/big/{i}.so"), &random_bytes(seed * 7_000_003 + i as u64, BIG_FILE))?;
    }
    let mut gz = tar.into_inner().map_err(|e| format!("tar: {e}"))?;
    gz.flush().map_err(|e| format!("gzip: {e}"))?;
    Ok(Bytes::from(gz.finish().map_err(|e| format!("gzip: {e}"))?))
}

struct Pushed {
    /// Every distinct blob of images `a` and `b` (configs and layers) with its size.
    blobs: Vec<(String, u64)>,
    total: u64,
}

/// Pushes the shared layers, one differing layer per image, the two
/// configs and manifests (`a` and `b`). Layers are built one at a time.
async fn push_images(cx: &Ctx<'_>) -> Res<Pushed> {
    let layer_bytes = (cx.prof.blob_bytes / LAYERS).max(64 * 1024);
    let mut shared = Vec::new();
    let mut blobs = Vec::new();
    for seed in 0..LAYERS - 1 {
        let layer = make_layer(seed, layer_bytes)?;
        let digest = cx.reg.push_small(REPO, layer.clone()).await?;
        blobs.push((digest.clone(), layer.len() as u64));
        shared.push((digest, layer.len() as u64));
    }
    for (tag, seed) in [("a", 100), ("b", 200), ("c", 300)] {
        let layer = make_layer(seed, layer_bytes)?;
        let digest = cx.reg.push_small(REPO, layer.clone()).await?;
        let counted = tag != "c";
        if counted {
            blobs.push((digest.clone(), layer.len() as u64));
        }
        let mut layers = shared.clone();
        layers.push((digest, layer.len() as u64));
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": [format!("IMAGE={tag}")]},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        let config = Bytes::from(serde_json::to_vec(&config).map_err(|e| e.to_string())?);
        let config_digest = cx.reg.push_small(REPO, config.clone()).await?;
        if counted {
            blobs.push((config_digest.clone(), config.len() as u64));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers.iter().map(|(d, s)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})).collect::<Vec<_>>(),
        });
        cx.reg.put_manifest(REPO, tag, Bytes::from(serde_json::to_vec(&manifest).map_err(|e| e.to_string())?)).await?;
    }
    let total = blobs.iter().map(|(_, s)| s).sum();
    Ok(Pushed { blobs, total })
}

/// One diff request; returns the summary.
async fn diff(cx: &Ctx<'_>, from: &str, to: &str) -> Res<serde_json::Value> {
    let url = cx.reg.url(&format!("/api/v1/repositories/{REPO}/diff?from={from}&to={to}&n=100"));
    let resp = reqwest::get(&url).await.map_err(|e| format!("GET diff: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| format!("GET diff: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET diff: {status}: {body}"));
    }
    Ok(body["summary"].clone())
}

fn seconds(phase: &'static str, res: crate::metrics::Resources, note: String) -> PhaseResult {
    PhaseResult { phase, metrics: vec![Metric::new("time", "s", Better::Lower, res.wall_s)], res, note: Some(note) }
}

pub async fn diff_images(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    let pushed = push_images(cx).await?;
    let mut out = Vec::new();

    // What a client-side tool downloads before it can compare anything.
    let phase = Phase::begin(cx.procs);
    let mut n = 0;
    for (digest, _) in &pushed.blobs {
        n += cx.reg.pull_blob_discarding(REPO, digest).await?;
    }
    let res = phase.end();
    if n != pushed.total {
        return Err(format!("pulled {n} bytes, expected {}", pushed.total));
    }
    let note = format!(
        "GET every distinct blob of both images ({} blobs, {} MiB) at {:.0} MiB/s, no unpacking",
        pushed.blobs.len(),
        pushed.total >> 20,
        mib_per_s(n, res.wall_s)
    );
    out.push(seconds("diff: client pulls both images", res, note));
    if !cx.wharf {
        return Ok(out);
    }

    let layers = LAYERS + 1;
    let phase = Phase::begin(cx.procs);
    let cold = diff(cx, "a", "b").await?;
    let res = phase.end();
    if cold["layers_indexed"] != layers || cold["files_added"].as_u64().unwrap_or(0) == 0 {
        return Err(format!("cold diff: expected {layers} layers indexed and files added, got {cold}"));
    }
    let note = format!(
        "a→b: {} layers read ({} MiB), {} shared; {} files added, {} removed",
        cold["layers_indexed"],
        pushed.total >> 20,
        cold["layers_shared"],
        cold["files_added"],
        cold["files_removed"]
    );
    out.push(seconds("diff: cold (no index yet)", res, note));

    let phase = Phase::begin(cx.procs);
    let next = diff(cx, "b", "c").await?;
    let res = phase.end();
    if next["layers_indexed"] != 1 {
        return Err(format!("b→c diff: expected 1 layer indexed, got {next}"));
    }
    let note = format!("b→c: 1 layer read, {} indexes reused", next["layers_cached"]);
    out.push(seconds("diff: one new layer", res, note));

    let phase = Phase::begin(cx.procs);
    let warm = diff(cx, "a", "b").await?;
    let res = phase.end();
    if warm["layers_indexed"] != 0 {
        return Err(format!("warm diff: expected no layer indexed, got {warm}"));
    }
    out.push(seconds("diff: warm (no layer read)", res, format!("a→b again: {} indexes reused", warm["layers_cached"])));
    Ok(out)
}
