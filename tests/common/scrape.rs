//! Reading `/metrics` (the Prometheus text format) in tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::TestApp;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of a scrape.
#[derive(Debug, Clone)]
pub struct Scrape(pub Vec<Sample>);

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').trim().to_owned();
        let after = &rest[eq + 2..];
        // Values are escaped (\" \\ \n); find the closing quote.
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        rest = &after[end..];
    }
    labels
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad metrics line {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.find('{') {
                Some(open) => (series[..open].to_owned(), parse_labels(&series[open + 1..series.len() - 1])),
                None => (series.to_owned(), BTreeMap::new()),
            };
            samples.push(Sample { name, labels, value });
        }
        Scrape(samples)
    }

    /// The value of the series with exactly these labels (0 when absent:
    /// a counter not yet incremented is not exported).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).map_or(0.0, |s| s.value)
    }

    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.0.iter().find(|s| s.name == name && s.labels == want)
    }

    /// Sum over every series of `name` whose labels include these.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .map(|s| s.value)
            .sum()
    }
}

pub fn scrape(app: &TestApp) -> Scrape {
    let r = app.get("/metrics");
    r.expect(200);
    Scrape::parse(&r.text())
}

/// Scrapes until `done` holds (a counter some other thread increments
/// after the client already has its bytes), or panics after `timeout`.
pub fn scrape_until(app: &TestApp, timeout: Duration, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + timeout;
    loop {
        let s = scrape(app);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "metrics never showed {what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
