//! Large-blob scenarios: monolithic push, chunked push, single and parallel pull.

use reqwest::Body;
use sha2::{Digest as _, Sha256};

use crate::client::{Monolithic, Res};
use crate::metrics::{mib_per_s, Phase, Resources};
use crate::report::{cpu_metrics, Better, Metric, PhaseResult};
use crate::Ctx;

pub const REPO: &str = "wharf-bench/blob";

async fn check_stored(cx: &Ctx<'_>, digest: &str, size: u64) -> Res<()> {
    match cx.reg.blob_size(REPO, digest).await? {
        Some(n) if n == size => Ok(()),
        other => Err(format!("after the push, HEAD {digest} says {other:?}, expected {size} bytes")),
    }
}

fn throughput(phase: &'static str, bytes: u64, res: crate::metrics::Resources, note: Option<String>) -> PhaseResult {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    PhaseResult {
        phase,
        metrics: [
            vec![Metric::new("throughput", "MiB/s", Better::Higher, mib_per_s(bytes, res.wall_s))],
            cpu_metrics(&res, "ms/MiB", mib, 1e3),
        ]
        .concat(),
        res,
        note,
    }
}

/// The round with the median wall time, and a note on the spread.
fn median_round(bytes: u64, mut rounds: Vec<Resources>) -> (Resources, String) {
    rounds.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    let median = rounds[rounds.len() / 2];
    let (fastest, slowest) = (rounds[0], rounds[rounds.len() - 1]);
    let spread = if rounds.len() > 1 {
        format!(
            "; median of {} rounds ({:.0}–{:.0} MiB/s)",
            rounds.len(),
            mib_per_s(bytes, slowest.wall_s),
            mib_per_s(bytes, fastest.wall_s)
        )
    } else {
        String::new()
    };
    (median, spread)
}

/// `pull` measured in `cx.prof.rounds` rounds, each bringing `total` bytes:
/// the median round and a note on the spread.
async fn pull_rounds<F, Fut>(cx: &Ctx<'_>, total: u64, pull: F) -> Res<(Resources, String)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Res<u64>>,
{
    let mut rounds = Vec::new();
    for _ in 0..cx.prof.rounds {
        let phase = Phase::begin(cx.procs);
        let n = pull().await?;
        rounds.push(phase.end());
        if n != total {
            return Err(format!("pull: {n} bytes, expected {total}"));
        }
    }
    Ok(median_round(total, rounds))
}

/// One body, streamed from the generator: a single `POST ?digest=` where the
/// registry takes it, else POST then `PUT ?digest=` with the body.
pub async fn push_monolithic(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    let mode = cx.reg.probe_single_post(REPO).await?;
    let mut rounds = Vec::new();
    for (blob, digest) in &cx.big.mono {
        let phase = Phase::begin(cx.procs);
        cx.reg.push_monolithic(mode, REPO, digest, blob.total, Body::wrap_stream(blob.stream(0, blob.total))).await?;
        rounds.push(phase.end());
        check_stored(cx, digest, blob.total).await?;
    }
    let total = cx.big.mono[0].0.total;
    let (res, spread) = median_round(total, rounds);
    let note = format!("{} MiB as {}{spread}", total >> 20, mode.describe());
    Ok(vec![throughput("push monolithic", total, res, Some(note))])
}

/// POST, one PATCH per chunk with `Content-Range: start-end`, final `PUT ?digest=`.
pub async fn push_chunked(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    let chunk = cx.prof.chunk_bytes;
    let mut rounds = Vec::new();
    for (blob, digest) in &cx.big.chunked {
        let phase = Phase::begin(cx.procs);
        let mut location = cx.reg.start_upload(REPO).await?;
        let mut at = 0;
        while at < blob.total {
            let end = (at + chunk).min(blob.total);
            location = cx.reg.patch(&location, at, end - at, Body::wrap_stream(blob.stream(at, end))).await?;
            at = end;
        }
        cx.reg.finish_with_body(&location, digest, 0, Body::from(bytes::Bytes::new())).await?;
        rounds.push(phase.end());
        check_stored(cx, digest, blob.total).await?;
    }
    let total = cx.big.chunked[0].0.total;
    let (res, spread) = median_round(total, rounds);
    let note = format!("{} MiB in {} PATCHes of {} MiB{spread}", total >> 20, total.div_ceil(chunk), chunk >> 20);
    Ok(vec![throughput("push chunked", total, res, Some(note))])
}

/// Pulls the first monolithic blob (pushing it first, unmeasured, if
/// missing): once unmeasured to check the digest, then one stream (in
/// rounds), then one through a copying client, then N at once.
pub async fn pull(cx: &Ctx<'_>) -> Res<Vec<PhaseResult>> {
    let (blob, digest) = (&cx.big.mono[0].0, &cx.big.mono[0].1);
    if cx.reg.blob_size(REPO, digest).await? != Some(blob.total) {
        let body = Body::wrap_stream(blob.stream(0, blob.total));
        cx.reg.push_monolithic(Monolithic::PostPut, REPO, digest, blob.total, body).await?;
    }
    let mut hasher = Sha256::new();
    let n = cx.reg.pull_blob(REPO, digest, |c| hasher.update(c)).await?;
    let got = format!("sha256:{}", hex::encode(hasher.finalize()));
    if n != blob.total || &got != digest {
        return Err(format!("verification pull: {n} bytes with digest {got}, expected {} bytes with {digest}", blob.total));
    }

    let (single, spread) = pull_rounds(cx, blob.total, || cx.reg.pull_blob_discarding(REPO, digest)).await?;
    // The same pull through the ordinary HTTP client, which copies every
    // byte into user space: what a real client sees, bounded by that copy.
    let (copying, copying_spread) = pull_rounds(cx, blob.total, || cx.reg.pull_blob(REPO, digest, |_| {})).await?;

    let streams = cx.prof.streams;
    let phase = Phase::begin(cx.procs);
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (reg, digest) = (cx.reg.clone(), digest.clone());
            tokio::spawn(async move { reg.pull_blob_discarding(REPO, &digest).await })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        let n = t.await.map_err(|e| format!("pull task: {e}"))??;
        if n != blob.total {
            return Err(format!("parallel pull: a stream got {n} bytes, expected {}", blob.total));
        }
        total += n;
    }
    let parallel = phase.end();
    Ok(vec![
        throughput(
            "pull 1 stream",
            blob.total,
            single,
            Some(format!(
                "{} MiB, body dropped in the client's kernel (splice); digest verified on a separate unmeasured pull{spread}",
                blob.total >> 20
            )),
        ),
        throughput(
            "pull 1 stream, copying client",
            blob.total,
            copying,
            Some(format!("{} MiB read into user space by the HTTP client (reqwest){copying_spread}", blob.total >> 20)),
        ),
        throughput(
            Box::leak(format!("pull {streams} streams").into_boxed_str()),
            total,
            parallel,
            Some(format!("{streams} concurrent streams of {} MiB, aggregate", blob.total >> 20)),
        ),
    ])
}
