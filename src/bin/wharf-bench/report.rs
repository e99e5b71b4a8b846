//! Results of both targets, rendered as Markdown tables with Wharf/reference ratios.

use std::fmt::Write as _;

use crate::metrics::Resources;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

#[derive(Clone, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &'static str, unit: &'static str, better: Better, value: f64) -> Self {
        Self { name, unit, better, value }
    }
}

/// One measured phase of a scenario on one target.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    pub phase: &'static str,
    pub metrics: Vec<Metric>,
    pub res: Resources,
    pub note: Option<String>,
}

/// Everything measured, in the order it was measured; column 0 is Wharf,
/// column 1 the reference.
#[derive(Default)]
pub struct Report {
    pub names: [String; 2],
    phases: Vec<(&'static str, [Option<PhaseResult>; 2])>,
    errors: Vec<(String, String, String)>,
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("—".into(), fmt_num)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

/// The server's CPU per unit of work, and the load balancer's beside it
/// when there is one (a cluster's nodes are already summed in the server's).
pub fn cpu_metrics(res: &Resources, unit: &'static str, units: f64, scale: f64) -> Vec<Metric> {
    let mut metrics = vec![Metric::new("server CPU", unit, Better::Lower, res.per_unit(units, scale))];
    if res.proxy_cpu_s.is_some() {
        metrics.push(Metric::new("load balancer CPU", unit, Better::Lower, res.proxy_per_unit(units, scale)));
    }
    metrics
}

impl Report {
    pub fn new(names: [String; 2]) -> Self {
        Self { names, ..Default::default() }
    }

    pub fn add(&mut self, column: usize, result: PhaseResult) {
        let idx = match self.phases.iter().position(|(p, _)| *p == result.phase) {
            Some(i) => i,
            None => {
                self.phases.push((result.phase, [None, None]));
                self.phases.len() - 1
            }
        };
        self.phases[idx].1[column] = Some(result);
    }

    pub fn error(&mut self, column: usize, scenario: &str, message: String) {
        self.errors.push((self.names[column].clone(), scenario.to_owned(), message));
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn markdown(&self) -> String {
        let [w, r] = &self.names;
        let mut out = String::new();
        let _ = writeln!(out, "| scenario | metric | {w} | {r} | {w} / {r} | better |");
        let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | --- |");
        for (phase, cols) in &self.phases {
            let template = cols.iter().flatten().next().map(|p| p.metrics.clone()).unwrap_or_default();
            for m in template {
                let get = |c: usize| cols[c].as_ref().and_then(|p| p.metrics.iter().find(|x| x.name == m.name)).map(|x| x.value);
                let (a, b) = (get(0), get(1));
                let better = match m.better {
                    Better::Higher => "higher",
                    Better::Lower => "lower",
                    Better::Neither => "",
                };
                let _ = writeln!(out, "| {phase} | {} ({}) | {} | {} | {} | {better} |", m.name, m.unit, opt(a), opt(b), ratio(a, b));
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Resources per measured phase (server = the registry process, from /proc; client = this tool, getrusage):");
        let _ = writeln!(out);
        // A cluster's load balancer gets a column of its own.
        let proxy = self.phases.iter().any(|(_, cols)| cols[0].as_ref().is_some_and(|p| p.res.proxy_cpu_s.is_some()));
        let _ = writeln!(
            out,
            "| phase | wall s {w} | wall s {r} | server peak RSS MiB {w} | server peak RSS MiB {r} | RSS {w} / {r} | server CPU s {w} | server CPU s {r} | client CPU s {w} | client CPU s {r} |{}",
            if proxy { format!(" load balancer CPU s {w} |") } else { String::new() }
        );
        let _ =
            writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{}", if proxy { " ---: |" } else { "" });
        for (phase, cols) in &self.phases {
            let res = |c: usize| cols[c].as_ref().map(|p| p.res);
            let (a, b) = (res(0), res(1));
            let rss = |x: Option<Resources>| x.and_then(|r| r.server_peak_mib);
            let lb = if proxy { format!(" {} |", opt(a.and_then(|r| r.proxy_cpu_s))) } else { String::new() };
            let _ = writeln!(
                out,
                "| {phase} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{lb}",
                opt(a.map(|r| r.wall_s)),
                opt(b.map(|r| r.wall_s)),
                opt(rss(a)),
                opt(rss(b)),
                ratio(rss(a), rss(b)),
                opt(a.and_then(|r| r.server_cpu_s)),
                opt(b.and_then(|r| r.server_cpu_s)),
                opt(a.map(|r| r.client_cpu_s)),
                opt(b.map(|r| r.client_cpu_s)),
            );
        }
        let notes: Vec<String> = self
            .phases
            .iter()
            .flat_map(|(phase, cols)| {
                cols.iter().enumerate().filter_map(move |(c, p)| {
                    let note = p.as_ref()?.note.as_ref()?;
                    Some(format!("- {phase}, {}: {note}", self.names[c]))
                })
            })
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "Notes:");
            let _ = writeln!(out);
            for n in notes {
                let _ = writeln!(out, "{n}");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "ERRORS:");
            let _ = writeln!(out);
            for (target, scenario, msg) in &self.errors {
                let _ = writeln!(out, "- {target} {scenario}: {msg}");
            }
        }
        out
    }

    /// The raw numbers, for scripts.
    pub fn json(&self) -> serde_json::Value {
        let phases: Vec<serde_json::Value> = self
            .phases
            .iter()
            .map(|(phase, cols)| {
                let col = |c: usize| {
                    cols[c].as_ref().map(|p| {
                        serde_json::json!({
                            "metrics": p.metrics.iter().map(|m| serde_json::json!({"name": m.name, "unit": m.unit, "value": m.value})).collect::<Vec<_>>(),
                            "wall_s": p.res.wall_s,
                            "client_cpu_s": p.res.client_cpu_s,
                            "server_cpu_s": p.res.server_cpu_s,
                            "server_peak_rss_mib": p.res.server_peak_mib,
                            "load_balancer_cpu_s": p.res.proxy_cpu_s,
                            "note": p.note,
                        })
                    })
                };
                serde_json::json!({"phase": phase, self.names[0].clone(): col(0), self.names[1].clone(): col(1)})
            })
            .collect();
        let errors: Vec<serde_json::Value> =
            self.errors.iter().map(|(t, s, m)| serde_json::json!({"target": t, "scenario": s, "error": m})).collect();
        serde_json::json!({"phases": phases, "errors": errors})
    }
}
