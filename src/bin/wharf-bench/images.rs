//! Small-object scenarios: manifest GETs under load, pushes of small images,
//! and walking a long tags list and catalog page by page.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::client::{Registry, Res, OCI_MANIFEST};
use crate::gen::{random_bytes, sha256_hex, splitmix};
use crate::metrics::{median, quantile, Phase};
use crate::report::{cpu_metrics, Better, Metric, PhaseResult};
use crate::Ctx;

/// A small image: config, layers and the manifest that names them.
pub struct Image {
    pub config: Bytes,
    pub layers: Vec<Bytes>,
    pub manifest: Bytes,
}

/// Image `i` of a family `seed`: 3 layers of 4–64 KiB of random bytes.
pub fn make_image(seed: u64, i: u64, layers: usize) -> Image {
    let mut state = seed.wrapping_mul(1_000_003) ^ i;
    let layers: Vec<Bytes> = (0..layers)
        .map(|_| {
            let size = 4096 + (splitmix(&mut state) % (60 * 1024 + 1)) as usize;
            Bytes::from(random_bytes(splitmix(&mut state), size))
        })
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_hex(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"wharf-bench.image": format!("{seed}-{i}")}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = Bytes::from(serde_json::to_vec(&config).expect("json"));
    let descriptor = |media: &str, data: &Bytes| serde_json::json!({"mediaType": media, "digest": sha256_hex(data), "size": data.len()});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": layers.iter().map(|l| descriptor("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    });
    let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("json"));
    Image { config, layers, manifest }
}

/// Blobs first (the reference registry insists), then the manifest.
pub async fn push_image(reg: &Registry, repo: &str, tag: &str, image: &Image) -> Res<()> {
    reg.push_small(repo, image.config.clone()).await?;
    for layer in &image.layers {
        reg.push_small(repo, layer.clone()).await?;
    }
    reg.put_manifest(repo, tag, image.manifest.clone()).await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `GET /v2/<name>/manifests/<tag>` in a loop on `concurrency` keep-alive
/// connections for a fixed time.
pub async fn manifest_get(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    const REPO: &str = "wharf-bench/load";
    let image = make_image(11, 0, 3);
    push_image(cx.reg, REPO, "v1", &image).await?;
    let conc = cx.prof.manifest_concurrency;
    // Warm-up, unmeasured: opens every connection once.
    futures::future::try_join_all((0..conc).map(|_| cx.reg.get_manifest(REPO, "v1"))).await?;

    let duration = Duration::from_secs_f64(cx.prof.manifest_secs);
    let phase = Phase::begin(cx.procs);
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            let reg = cx.reg.clone();
            let want = image.manifest.len();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(4096);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let n = reg.get_manifest(REPO, "v1").await?;
                    lat.push(ms(t.elapsed()));
                    if n != want {
                        return Err(format!("manifest GET returned {n} bytes, expected {want}"));
                    }
                }
                Ok::<_, String>(lat)
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| format!("load task: {e}"))??);
    }
    let res = phase.end();
    lat.sort_by(f64::total_cmp);
    Ok(vec![PhaseResult {
        phase: "manifest GET",
        metrics: [
            vec![
                Metric::new("rate", "req/s", Better::Higher, lat.len() as f64 / res.wall_s),
                Metric::new("p50", "ms", Better::Lower, quantile(&lat, 0.5)),
                Metric::new("p99", "ms", Better::Lower, quantile(&lat, 0.99)),
            ],
            cpu_metrics(&res, "µs/req", lat.len() as f64, 1e6),
        ]
        .concat(),
        res,
        note: Some(format!("{conc} connections, {:.0} s, {} requests", cx.prof.manifest_secs, lat.len())),
    }])
}

/// Pushes many small images, `image_concurrency` at a time, each under its own tag.
pub async fn push_images(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    const REPO: &str = "wharf-bench/images";
    let images: Vec<Image> = (0..cx.prof.images as u64).map(|i| make_image(22, i, 3)).collect();
    let phase = Phase::begin(cx.procs);
    let mut lat: Vec<f64> = futures::stream::iter(images.iter().enumerate())
        .map(|(i, image)| async move {
            let t = Instant::now();
            push_image(cx.reg, REPO, &format!("img-{i:05}"), image).await?;
            Ok::<_, String>(ms(t.elapsed()))
        })
        .buffer_unordered(cx.prof.image_concurrency)
        .try_collect()
        .await?;
    let res = phase.end();
    lat.sort_by(f64::total_cmp);
    Ok(vec![PhaseResult {
        phase: "push small images",
        metrics: [
            vec![
                Metric::new("rate", "images/s", Better::Higher, lat.len() as f64 / res.wall_s),
                Metric::new("p50 per image", "ms", Better::Lower, quantile(&lat, 0.5)),
                Metric::new("p99 per image", "ms", Better::Lower, quantile(&lat, 0.99)),
            ],
            cpu_metrics(&res, "ms/image", lat.len() as f64, 1e3),
        ]
        .concat(),
        res,
        note: Some(format!(
            "{} images (config + 3 layers of 4–64 KiB + manifest, POST+PUT per blob), concurrency {}",
            lat.len(),
            cx.prof.image_concurrency
        )),
    }])
}

/// Follows `Link` headers from `first` to the end: each page's time in ms,
/// and the number of names seen.
async fn walk(reg: &Registry, first: &str, key: &str) -> Res<(Vec<f64>, usize)> {
    let (mut times, mut names) = (Vec::new(), 0);
    let mut next = Some(first.to_owned());
    while let Some(url) = next {
        if times.len() > 1_000_000 {
            return Err("more than a million pages; is the Link header looping?".into());
        }
        let t = Instant::now();
        let (count, link) = reg.get_page(&url, key).await?;
        times.push(ms(t.elapsed()));
        names += count;
        next = link;
    }
    Ok((times, names))
}

/// Walks a listing `walks` times (measured) and summarises the pages.
async fn measure_walks(cx: &Ctx<'_>, phase: &'static str, first: &str, key: &str, expect_at_least: usize) -> Res<PhaseResult> {
    let p = Phase::begin(cx.procs);
    let mut runs = Vec::new();
    for _ in 0..cx.prof.walks {
        runs.push(walk(cx.reg, first, key).await?);
    }
    let res = p.end();
    let (pages, names) = (runs[0].0.len(), runs[0].1);
    if names < expect_at_least {
        return Err(format!("{phase}: walked {names} names over {pages} pages, expected at least {expect_at_least}"));
    }
    let firsts: Vec<f64> = runs.iter().map(|(t, _)| t[0]).collect();
    let lasts: Vec<f64> = runs
        .iter()
        .map(|(t, _)| {
            let tail = &t[t.len().saturating_sub(5)..];
            tail.iter().sum::<f64>() / tail.len() as f64
        })
        .collect();
    let totals: Vec<f64> = runs.iter().map(|(t, _)| t.iter().sum()).collect();
    Ok(PhaseResult {
        phase,
        metrics: [
            vec![
                Metric::new("pages", "count", Better::Neither, pages as f64),
                Metric::new("first page", "ms", Better::Lower, median(&firsts)),
                Metric::new("last 5 pages, mean", "ms", Better::Lower, median(&lasts)),
                Metric::new("whole walk", "ms", Better::Lower, median(&totals)),
            ],
            cpu_metrics(&res, "ms/page", (pages * runs.len()) as f64, 1e3),
        ]
        .concat(),
        res,
        note: Some(format!("{names} names in {pages} pages, {first}; median of {} walks", cx.prof.walks)),
    })
}

/// Creates `tags` tags in one repository (setup), then walks the tags list.
pub async fn list_tags(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    const REPO: &str = "wharf-bench/tags";
    let image = make_image(33, 0, 1);
    push_image(cx.reg, REPO, "t00000", &image).await?;
    futures::stream::iter(1..cx.prof.tags)
        .map(|i| {
            let manifest = image.manifest.clone();
            async move { cx.reg.put_manifest(REPO, &format!("t{i:05}"), manifest).await }
        })
        .buffer_unordered(cx.prof.setup_concurrency)
        .try_collect::<()>()
        .await?;
    let first = format!("/v2/{REPO}/tags/list?n={}", cx.prof.page);
    Ok(vec![measure_walks(cx, "tags list walk", &first, "tags", cx.prof.tags).await?])
}

/// Creates `repos` repositories with one small image each (setup), then
/// walks the catalog.
pub async fn list_catalog(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    let image = make_image(44, 0, 1);
    futures::stream::iter(0..cx.prof.repos)
        .map(|i| {
            let image = &image;
            async move { push_image(cx.reg, &format!("wharf-bench/cat/r{i:05}"), "v1", image).await }
        })
        .buffer_unordered(cx.prof.setup_concurrency)
        .try_collect::<()>()
        .await?;
    let first = format!("/v2/_catalog?n={}", cx.prof.page);
    Ok(vec![measure_walks(cx, "catalog walk", &first, "repositories", cx.prof.repos).await?])
}
