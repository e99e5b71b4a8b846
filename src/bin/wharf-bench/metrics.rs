//! What a measured phase costs: wall time, the client's own CPU time
//! (getrusage), and the server's CPU time and peak RSS (from /proc): of one
//! process, or summed over the nodes of a cluster, with the load balancer in
//! front of them counted apart.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// User + system CPU seconds this process has used so far.
pub fn client_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// utime + stime of a process (all its threads), in seconds.
fn server_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

/// The sum of [`server_cpu_s`] over `pids`; None if any of them is gone.
fn total_cpu_s(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&p| server_cpu_s(p)).sum()
}

/// A `Vm*:` line of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the kernel's high-water mark of resident memory (VmHWM).
fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The processes a target's costs are read from.
#[derive(Clone, Debug, Default)]
pub struct Procs {
    /// The registry: one process, or every node of a cluster (CPU and peak
    /// RSS are summed over them).
    pub servers: Vec<u32>,
    /// A load balancer in front of the nodes (HAProxy), counted apart.
    pub proxy: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Resources {
    pub wall_s: f64,
    pub client_cpu_s: f64,
    pub server_cpu_s: Option<f64>,
    pub server_peak_mib: Option<f64>,
    pub proxy_cpu_s: Option<f64>,
}

impl Resources {
    /// Server CPU per unit of work (a request, a MiB, an image), scaled
    /// (1e6: µs), so results mean something on a busy machine; NaN (shown
    /// as "—") when the server's CPU was not measured or is below five clock
    /// ticks, too little for /proc's 10 ms resolution to say anything.
    pub fn per_unit(&self, units: f64, scale: f64) -> f64 {
        Self::cpu_per_unit(self.server_cpu_s, units, scale)
    }

    /// The same for the load balancer, if there is one.
    pub fn proxy_per_unit(&self, units: f64, scale: f64) -> f64 {
        Self::cpu_per_unit(self.proxy_cpu_s, units, scale)
    }

    fn cpu_per_unit(cpu: Option<f64>, units: f64, scale: f64) -> f64 {
        match cpu {
            Some(cpu) if units > 0.0 && cpu >= 0.05 => cpu * scale / units,
            _ => f64::NAN,
        }
    }
}

/// One measured phase, started by [`Phase::begin`] and closed by [`Phase::end`].
pub struct Phase {
    procs: Procs,
    started: Instant,
    client_cpu0: f64,
    server_cpu0: Option<f64>,
    proxy_cpu0: Option<f64>,
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    sampled_peak_kib: Arc<AtomicU64>,
    sampler: Option<JoinHandle<()>>,
}

impl Phase {
    pub fn begin(procs: &Procs) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sampled_peak_kib = Arc::new(AtomicU64::new(0));
        let mut hwm_reset = false;
        let mut sampler = None;
        if !procs.servers.is_empty() {
            // Every reset is tried (no short-circuit).
            hwm_reset = procs.servers.iter().fold(true, |ok, &pid| reset_hwm(pid) & ok);
            // VmRSS every 50 ms as well: catches the peak if the HWM reset is refused.
            let (stop, peak, pids) = (stop.clone(), sampled_peak_kib.clone(), procs.servers.clone());
            sampler = Some(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let rss: u64 = pids.iter().filter_map(|&pid| status_kib(pid, "VmRSS:")).sum();
                    peak.fetch_max(rss, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
        Self {
            procs: procs.clone(),
            server_cpu0: total_cpu_s(&procs.servers).filter(|_| !procs.servers.is_empty()),
            proxy_cpu0: procs.proxy.and_then(server_cpu_s),
            client_cpu0: client_cpu_s(),
            started: Instant::now(),
            hwm_reset,
            stop,
            sampled_peak_kib,
            sampler,
        }
    }

    pub fn end(mut self) -> Resources {
        let wall_s = self.started.elapsed().as_secs_f64();
        let client_cpu_s = client_cpu_s() - self.client_cpu0;
        let proxy_cpu_s = match (self.procs.proxy.and_then(server_cpu_s), self.proxy_cpu0) {
            (Some(b), Some(a)) => Some(b - a),
            _ => None,
        };
        let server_cpu_s = match (total_cpu_s(&self.procs.servers), self.server_cpu0) {
            (Some(b), Some(a)) => Some(b - a),
            _ => None,
        };
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sampler.take() {
            let _ = h.join();
        }
        let mut peak = self.sampled_peak_kib.load(Ordering::Relaxed);
        if self.hwm_reset {
            // Several nodes: the sum of their own peaks, an upper bound of
            // the peak of their sum.
            let hwm: u64 = self.procs.servers.iter().map(|&pid| status_kib(pid, "VmHWM:").unwrap_or(0)).sum();
            peak = peak.max(hwm);
        }
        let server_peak_mib = Some(peak as f64 / 1024.0).filter(|&p| p > 0.0 && !self.procs.servers.is_empty());
        Resources { wall_s, client_cpu_s, server_cpu_s, server_peak_mib, proxy_cpu_s }
    }
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

pub fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(client_cpu_s() >= 0.0);
        let me = std::process::id();
        assert!(server_cpu_s(me).is_some());
        let one = total_cpu_s(&[me]).unwrap();
        assert!(total_cpu_s(&[me, me]).unwrap() >= 2.0 * one);
        assert!(total_cpu_s(&[me, u32::MAX]).is_none());
        assert!(status_kib(me, "VmRSS:").is_some());
    }
}
