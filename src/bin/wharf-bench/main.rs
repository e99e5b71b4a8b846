//! wharf-bench: runs the same OCI distribution workload against Wharf and a
//! reference registry (CNCF distribution), one after the other, and prints
//! both side by side with the Wharf/reference ratio.
//!
//! It is a plain HTTP client of the distribution API: it knows each registry
//! only by its base URL (and, to read the server's CPU time and peak RSS
//! from /proc, its pid, or the pids of a cluster's nodes and of the load
//! balancer in front of them). `bench/run.sh` starts both registries and
//! runs it.

mod blobs;
mod client;
mod diff;
mod gen;
mod images;
mod metrics;
mod report;

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};

use crate::client::Registry;
use crate::gen::Blob;
use crate::report::Report;

const MIB: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum ProfileName {
    /// 1 GiB blobs, 10 s of manifest load, 500 images, 10,000 tags, 5,000 repos.
    Full,
    /// Tiny sizes; every scenario still runs. Well under a minute for both.
    Smoke,
}

const SCENARIOS: [&str; 8] =
    ["push-monolithic", "push-chunked", "pull", "manifest-get", "push-images", "list-tags", "list-catalog", "diff"];

#[derive(Parser, Debug)]
#[command(name = "wharf-bench", about = "Benchmark Wharf side by side with a reference OCI registry")]
struct Args {
    /// Wharf's base URL, e.g. http://127.0.0.1:5000
    #[arg(long)]
    wharf_url: String,
    /// Wharf's server pid (for its peak RSS and CPU time); several,
    /// comma-separated, for the nodes of a cluster: their CPU time and peak
    /// RSS are summed.
    #[arg(long, value_delimiter = ',')]
    wharf_pid: Vec<u32>,
    /// The pid of a load balancer in front of Wharf's nodes (HAProxy): its
    /// CPU time is reported on rows of its own.
    #[arg(long)]
    wharf_proxy_pid: Option<u32>,
    /// The reference registry's base URL (CNCF distribution).
    #[arg(long)]
    reference_url: Option<String>,
    /// The reference registry's server pid.
    #[arg(long)]
    reference_pid: Option<u32>,
    /// Column title for the reference.
    #[arg(long, default_value = "distribution")]
    reference_name: String,
    #[arg(long, value_enum, default_value = "full")]
    profile: ProfileName,
    /// Comma-separated subset of: push-monolithic, push-chunked, pull,
    /// manifest-get, push-images, list-tags, list-catalog, diff.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Size of the large blobs, MiB (overrides the profile).
    #[arg(long)]
    blob_mib: Option<u64>,
    /// PATCH size for the chunked push, MiB.
    #[arg(long)]
    chunk_mib: Option<u64>,
    /// Concurrent pull streams.
    #[arg(long)]
    streams: Option<usize>,
    /// Seconds of manifest GET load.
    #[arg(long)]
    manifest_secs: Option<f64>,
    /// Connections for the manifest GET load.
    #[arg(long)]
    manifest_concurrency: Option<usize>,
    /// Small images to push.
    #[arg(long)]
    images: Option<usize>,
    /// Images pushed at once.
    #[arg(long)]
    image_concurrency: Option<usize>,
    /// Tags created in one repository for the tags-list walk.
    #[arg(long)]
    tags: Option<usize>,
    /// Repositories created for the catalog walk.
    #[arg(long)]
    repos: Option<usize>,
    /// Page size `n` for tags list and catalog.
    #[arg(long)]
    page: Option<usize>,
    /// Times each listing is walked (the median is reported).
    #[arg(long)]
    walks: Option<usize>,
    /// Rounds of each large-blob push and single-stream pull, each push with
    /// a blob of its own (the median round is reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// Client worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the raw numbers here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Debug)]
pub struct Profile {
    pub blob_bytes: u64,
    pub chunk_bytes: u64,
    pub streams: usize,
    pub manifest_secs: f64,
    pub manifest_concurrency: usize,
    pub images: usize,
    pub image_concurrency: usize,
    pub tags: usize,
    pub repos: usize,
    pub page: usize,
    pub walks: usize,
    pub rounds: usize,
    pub setup_concurrency: usize,
}

impl Profile {
    fn from_args(a: &Args) -> Self {
        let mut p = match a.profile {
            ProfileName::Full => Profile {
                blob_bytes: 1024 * MIB,
                chunk_bytes: 16 * MIB,
                streams: 8,
                manifest_secs: 10.0,
                manifest_concurrency: 64,
                images: 500,
                image_concurrency: 16,
                tags: 10_000,
                repos: 5_000,
                page: 100,
                walks: 3,
                rounds: 3,
                setup_concurrency: 32,
            },
            ProfileName::Smoke => Profile {
                blob_bytes: 8 * MIB,
                chunk_bytes: MIB,
                streams: 8,
                manifest_secs: 2.0,
                manifest_concurrency: 64,
                images: 20,
                image_concurrency: 16,
                tags: 300,
                repos: 200,
                page: 100,
                walks: 1,
                rounds: 2,
                setup_concurrency: 32,
            },
        };
        p.blob_bytes = a.blob_mib.map_or(p.blob_bytes, |m| m * MIB);
        p.chunk_bytes = a.chunk_mib.map_or(p.chunk_bytes, |m| m * MIB);
        p.streams = a.streams.unwrap_or(p.streams);
        p.manifest_secs = a.manifest_secs.unwrap_or(p.manifest_secs);
        p.manifest_concurrency = a.manifest_concurrency.unwrap_or(p.manifest_concurrency);
        p.images = a.images.unwrap_or(p.images);
        p.image_concurrency = a.image_concurrency.unwrap_or(p.image_concurrency);
        p.tags = a.tags.unwrap_or(p.tags).max(1);
        p.repos = a.repos.unwrap_or(p.repos);
        p.page = a.page.unwrap_or(p.page);
        p.walks = a.walks.unwrap_or(p.walks).max(1);
        p.rounds = a.rounds.unwrap_or(p.rounds).max(1);
        p
    }
}

/// The large blobs, one per round of each push scenario, with digests
/// computed up front by streaming them. The pulls use the first monolithic one.
pub struct BigBlobs {
    pub mono: Vec<(Blob, String)>,
    pub chunked: Vec<(Blob, String)>,
}

/// What a scenario works with: one registry, its processes, the sizes.
pub struct Ctx<'a> {
    pub reg: &'a Registry,
    pub procs: &'a metrics::Procs,
    pub prof: &'a Profile,
    pub big: &'a BigBlobs,
    /// Wharf (column 0), which has the image diff API the reference lacks.
    pub wharf: bool,
}

async fn run_scenario(name: &str, cx: &Ctx<'_>) -> client::Res<Vec<report::PhaseResult>> {
    match name {
        "push-monolithic" => blobs::push_monolithic(cx).await,
        "push-chunked" => blobs::push_chunked(cx).await,
        "pull" => blobs::pull(cx).await,
        "manifest-get" => images::manifest_get(cx).await,
        "push-images" => images::push_images(cx).await,
        "list-tags" => images::list_tags(cx).await,
        "list-catalog" => images::list_catalog(cx).await,
        "diff" => diff::diff_images(cx).await,
        other => Err(format!("unknown scenario {other}")),
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let prof = Profile::from_args(&args);
    let scenarios: Vec<String> =
        if args.scenarios.is_empty() { SCENARIOS.iter().map(|s| s.to_string()).collect() } else { args.scenarios.clone() };
    if let Some(bad) = scenarios.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
        return Err(format!("unknown scenario {bad}; known: {}", SCENARIOS.join(", ")));
    }
    let wharf_procs = metrics::Procs { servers: args.wharf_pid.clone(), proxy: args.wharf_proxy_pid };
    let mut targets = vec![("wharf".to_owned(), Registry::new(&args.wharf_url)?, wharf_procs)];
    if let Some(url) = &args.reference_url {
        let procs = metrics::Procs { servers: args.reference_pid.into_iter().collect(), proxy: None };
        targets.push((args.reference_name.clone(), Registry::new(url)?, procs));
    }
    for (name, reg, _) in &targets {
        reg.check_base().await.map_err(|e| format!("{name} at {}: {e}", reg.base))?;
    }

    let t = Instant::now();
    let (blob_bytes, rounds) = (prof.blob_bytes, prof.rounds as u64);
    let big = tokio::task::spawn_blocking(move || {
        let with_digest = |seed| {
            let blob = Blob::new(seed, blob_bytes);
            let digest = blob.digest();
            (blob, digest)
        };
        BigBlobs {
            mono: (0..rounds).map(|r| with_digest(1 + 2 * r)).collect(),
            chunked: (0..rounds).map(|r| with_digest(2 + 2 * r)).collect(),
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    eprintln!("wharf-bench: {prof:?}");
    eprintln!(
        "wharf-bench: digests of the {} blobs of {} MiB computed in {:.1} s",
        2 * rounds,
        blob_bytes / MIB,
        t.elapsed().as_secs_f64()
    );

    let mut report = Report::new(["wharf".into(), args.reference_name.clone()]);
    for scenario in &scenarios {
        for (column, (name, reg, procs)) in targets.iter().enumerate() {
            let cx = Ctx { reg, procs, prof: &prof, big: &big, wharf: column == 0 };
            let t = Instant::now();
            match run_scenario(scenario, &cx).await {
                Ok(phases) => {
                    for p in phases {
                        let summary: Vec<String> = p.metrics.iter().map(|m| format!("{} {:.2} {}", m.name, m.value, m.unit)).collect();
                        eprintln!(
                            "wharf-bench: [{name}] {}: {} | wall {:.2} s, client CPU {:.2} s, server CPU {:?} s, server peak RSS {:?} MiB, load balancer CPU {:?} s",
                            p.phase,
                            summary.join(", "),
                            p.res.wall_s,
                            p.res.client_cpu_s,
                            p.res.server_cpu_s.map(|v| (v * 100.0).round() / 100.0),
                            p.res.server_peak_mib.map(|v| v.round()),
                            p.res.proxy_cpu_s.map(|v| (v * 100.0).round() / 100.0),
                        );
                        report.add(column, p);
                    }
                    eprintln!("wharf-bench: [{name}] {scenario} done in {:.1} s (with setup)", t.elapsed().as_secs_f64());
                }
                Err(e) => {
                    eprintln!("wharf-bench: [{name}] {scenario} FAILED: {e}");
                    report.error(column, scenario, e);
                }
            }
        }
    }
    print!("{}", report.markdown());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(!report.has_errors())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf-bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("wharf-bench: some scenarios failed (see ERRORS above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("wharf-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
