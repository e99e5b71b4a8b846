//! What a measured phase costs: wall time, the client's own CPU time
//! (getrusage), and the server's CPU time and peak RSS (from /proc).

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

/// A `Vm*:` line of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the kernel's high-water mark of resident memory (VmHWM).
fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Resources {
    pub wall_s: f64,
    pub client_cpu_s: f64,
    pub server_cpu_s: Option<f64>,
    pub server_peak_mib: Option<f64>,
}

impl Resources {
    /// Server CPU per unit of work (a request, a MiB, an image), scaled
    /// (1e6: µs), so results mean something on a busy machine; NaN (shown
    /// as "—") when the server's CPU was not measured or is below five clock
    /// ticks, too little for /proc's 10 ms resolution to say anything.
    pub fn per_unit(&self, units: f64, scale: f64) -> f64 {
        match self.server_cpu_s {
            Some(cpu) if units > 0.0 && cpu >= 0.05 => cpu * scale / units,
            _ => f64::NAN,
        }
    }
}

/// One measured phase, started by [`Phase::begin`] and closed by [`Phase::end`].
pub struct Phase {
    pid: Option<u32>,
    started: Instant,
    client_cpu0: f64,
    server_cpu0: Option<f64>,
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    sampled_peak_kib: Arc<AtomicU64>,
    sampler: Option<JoinHandle<()>>,
}

impl Phase {
    pub fn begin(pid: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sampled_peak_kib = Arc::new(AtomicU64::new(0));
        let mut hwm_reset = false;
        let mut sampler = None;
        if let Some(pid) = pid {
            hwm_reset = reset_hwm(pid);
            // VmRSS every 50 ms as well: catches the peak if the HWM reset is refused.
            let (stop, peak) = (stop.clone(), sampled_peak_kib.clone());
            sampler = Some(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = status_kib(pid, "VmRSS:") {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
        Self {
            pid,
            server_cpu0: pid.and_then(server_cpu_s),
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
        let server_cpu_s = match (self.pid.and_then(server_cpu_s), self.server_cpu0) {
            (Some(b), Some(a)) => Some(b - a),
            _ => None,
        };
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sampler.take() {
            let _ = h.join();
        }
        let mut peak = self.sampled_peak_kib.load(Ordering::Relaxed);
        if let (Some(pid), true) = (self.pid, self.hwm_reset) {
            peak = peak.max(status_kib(pid, "VmHWM:").unwrap_or(0));
        }
        let server_peak_mib = self.pid.map(|_| peak as f64 / 1024.0).filter(|&p| p > 0.0);
        Resources { wall_s, client_cpu_s, server_cpu_s, server_peak_mib }
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
        assert!(status_kib(me, "VmRSS:").is_some());
    }
}
