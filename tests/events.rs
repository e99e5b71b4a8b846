//! Durable events over HTTP: a real webhook receiver (std TcpListener) that
//! refuses the first attempts and is down across a Wharf restart still gets
//! every event, signed, once after deduplication by id, and per repository
//! in order; dead letters and their replay from the API; distribution's
//! envelope mode.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "webhook-test-secret";

/// One request the receiver accepted (answered 200).
#[derive(Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    /// Requests still to refuse with 500.
    refuse_next: AtomicUsize,
    /// Refuse everything while set.
    failing: AtomicBool,
    refused: AtomicUsize,
    got: Mutex<Vec<Received>>,
}

impl Shared {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A minimal HTTP/1.1 webhook receiver: one request per connection.
struct Receiver {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, shared: Arc<Shared>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &shared);
                }
            }
        });
        Receiver { port, stop, thread: Some(thread) }
    }

    /// Closes the listening socket: Wharf's attempts are refused until a
    /// receiver listens on the port again.
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.thread.take().unwrap().join().unwrap();
    }
}

fn serve(conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        return Ok(()); // the stop() wake-up
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let refuse = shared.failing.load(Ordering::SeqCst)
        || shared.refuse_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = if refuse {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        "500 Internal Server Error"
    } else {
        shared.got.lock().unwrap().push(Received { headers, body });
        "200 OK"
    };
    let mut conn = conn;
    conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[track_caller]
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const EVENT_ACTIONS: &[&str] = &[
    "manifest.push",
    "tag.create",
    "tag.move",
    "manifest.delete",
    "tag.delete",
    "blob.delete",
    "promotion",
    "promotion.denied",
    "rollback",
    "rollback.denied",
    "gc.blob",
    "gc.run",
];

/// Hash -> audit row of every audited change that is an event.
fn expected_events(app: &TestApp) -> BTreeMap<String, Value> {
    let r = app.get("/api/v1/audit?n=1000");
    r.expect(200);
    let rows = r.json()["entries"].as_array().cloned().unwrap_or_default();
    assert!(!rows.is_empty(), "no audit rows:\n{}", r.describe());
    rows.into_iter()
        .filter(|e| EVENT_ACTIONS.contains(&e["action"].as_str().unwrap()))
        .map(|e| (e["hash"].as_str().unwrap().to_owned(), e))
        .collect()
}

fn verify_signature(r: &Received) {
    let given = r.headers.get("wharf-signature").expect("Wharf-Signature header");
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&r.body);
    assert_eq!(given, &format!("sha256={}", hex::encode(mac.finalize().into_bytes())), "signature does not verify");
    assert!(r.headers.get("wharf-timestamp").and_then(|t| t.parse::<u64>().ok()).is_some(), "Wharf-Timestamp header");
}

fn endpoint_env(endpoints: &[String]) -> String {
    format!("[{}]", endpoints.join(", "))
}

fn promote(app: &TestApp, repo: &str, reference: &str, stage: &str) -> Resp {
    app.req(Method::POST, &format!("/api/v1/repositories/{repo}/promotions"))
        .header("Content-Type", "application/json")
        .body(json!({"reference": reference, "stage": stage}).to_string())
        .send()
}

#[test]
fn every_event_arrives_signed_once_and_in_order_through_refusals_and_a_restart() {
    let shared = Arc::new(Shared::default());
    shared.refuse_next.store(3, Ordering::SeqCst);
    let receiver = Receiver::start(0, shared.clone());
    let port = receiver.port;
    let hook = format!(
        r#"{{name = "hook", url = "http://127.0.0.1:{port}/hook", secret = "{SECRET}", backoff = "100ms", max_backoff = "400ms", max_attempts = 10000}}"#
    );
    let mut app = TestApp::builder()
        .env("WHARF_EVENTS__ENDPOINTS", endpoint_env(&[hook]))
        .env("WHARF_EVENTS__POLL_INTERVAL", "100ms")
        .env("WHARF_GC__GRACE", "0s")
        .start();

    let (a, b) = (repo("events-a"), repo("events-b"));
    let v1 = push_image(&app, &a, Some("v1"), 1);
    push_image(&app, &b, Some("v1"), 1);
    push_image(&app, &a, Some("v2"), 1);
    promote(&app, &a, "v1", "test").expect(201);
    // Straight to prod skips preprod: the order gate refuses it.
    promote(&app, &a, "v1", "prod").expect(409);
    let doomed = push_image(&app, &b, Some("old"), 2);
    app.delete(&format!("/v2/{b}/manifests/{}", doomed.digest)).expect(202);
    app.post("/api/v1/gc/runs?dry_run=false").expect(200);
    wait_until("the first deliveries", Duration::from_secs(30), || !shared.got().is_empty());
    assert!(shared.refused.load(Ordering::SeqCst) >= 3, "the first attempts were refused");

    // The receiver goes down; changes go on and Wharf restarts meanwhile.
    receiver.stop();
    push_image(&app, &a, Some("v1"), 1); // moves v1
    app.delete(&format!("/v2/{a}/manifests/v2")).expect(202);
    app.restart();
    push_image(&app, &b, Some("v3"), 1);
    std::thread::sleep(Duration::from_secs(1));
    let receiver = Receiver::start(port, shared.clone());

    let expected = expected_events(&app);
    let has = |action: &str| expected.values().any(|e| e["action"] == action);
    for action in
        ["manifest.push", "tag.create", "tag.move", "promotion", "promotion.denied", "manifest.delete", "tag.delete", "gc.blob", "gc.run"]
    {
        assert!(has(action), "the scenario has no {action} event");
    }
    wait_until("every event", Duration::from_secs(60), || {
        let ids: HashSet<String> = shared
            .got()
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        expected.keys().all(|k| ids.contains(k))
    });
    receiver.stop();

    // The receiver's handler: deduplicate by id, then check each event.
    let mut handled: Vec<Value> = Vec::new();
    let mut seen = HashSet::new();
    for r in shared.got() {
        verify_signature(&r);
        assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/cloudevents+json"));
        let e: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.headers.get("wharf-event-id"), e["id"].as_str().map(str::to_owned).as_ref());
        if seen.insert(e["id"].as_str().unwrap().to_owned()) {
            handled.push(e);
        }
    }
    assert_eq!(handled.len(), expected.len(), "each event handled once, and only audited changes are events");
    let mut last_per_repo: HashMap<String, i64> = HashMap::new();
    for e in &handled {
        let row = &expected[e["id"].as_str().unwrap()];
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["source"], "/wharf");
        assert_eq!(e["datacontenttype"], "application/json");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        assert_eq!(e["data"]["audit_id"], row["id"]);
        assert_eq!(e["data"]["action"], row["action"]);
        assert_eq!(e["data"]["repository"], row["repository"]);
        let want_type = match row["action"].as_str().unwrap() {
            "manifest.push" => "dev.wharf.push",
            "tag.create" | "tag.move" => "dev.wharf.tag",
            "promotion" => "dev.wharf.promotion",
            "promotion.denied" => "dev.wharf.gate_refusal",
            "gc.blob" | "gc.run" => "dev.wharf.gc",
            _ => "dev.wharf.delete",
        };
        assert_eq!(e["type"], want_type, "{e}");
        // Per repository, in the order of the audit chain.
        let repo = e["data"]["repository"].as_str().unwrap_or_default().to_owned();
        let id = row["id"].as_i64().unwrap();
        if let Some(before) = last_per_repo.insert(repo.clone(), id) {
            assert!(before < id, "{repo}: event {id} arrived after {before}");
        }
    }
    let promotion = handled.iter().find(|e| e["type"] == "dev.wharf.promotion").unwrap();
    assert_eq!(promotion["subject"], format!("{a}:test"));
    assert_eq!(promotion["data"]["digest"], v1.digest);

    // The delivery log agrees: everything delivered, the first ones after retries.
    let r = app.get("/api/v1/events/deliveries?endpoint=hook&n=1000");
    r.expect(200);
    let deliveries = r.json()["deliveries"].as_array().cloned().unwrap();
    assert_eq!(deliveries.len(), expected.len());
    assert!(deliveries.iter().all(|d| d["state"] == "delivered"), "{deliveries:?}");
    assert!(deliveries.iter().any(|d| d["attempts"].as_i64().unwrap() > 1), "no delivery was retried");
    let metrics = app.get("/metrics").text();
    assert!(metrics.contains("wharf_events_delivered_total{endpoint=\"hook\"}"), "{metrics}");
    assert!(metrics.contains("wharf_events_failed_total{endpoint=\"hook\"}"), "{metrics}");
}

#[test]
fn dead_letters_are_replayed_from_the_api_and_distribution_listeners_get_their_envelope() {
    let dead = Arc::new(Shared::default());
    dead.failing.store(true, Ordering::SeqCst);
    let dist = Arc::new(Shared::default());
    let dead_rx = Receiver::start(0, dead.clone());
    let dist_rx = Receiver::start(0, dist.clone());
    let endpoints = [
        format!(
            r#"{{name = "flaky", url = "http://127.0.0.1:{}/", max_attempts = 2, backoff = "50ms", secret = "{SECRET}"}}"#,
            dead_rx.port
        ),
        format!(r#"{{name = "registry-listener", url = "http://127.0.0.1:{}/", format = "distribution"}}"#, dist_rx.port),
        // Never reached: refused connections are failures like 500s.
        format!(r#"{{name = "nowhere", url = "http://127.0.0.1:{}/", repositories = "other/**"}}"#, free_port()),
    ];
    let app =
        TestApp::builder().env("WHARF_EVENTS__ENDPOINTS", endpoint_env(&endpoints)).env("WHARF_EVENTS__POLL_INTERVAL", "100ms").start();
    let name = repo("events-dead");
    let img = push_image(&app, &name, Some("v1"), 1);
    promote(&app, &name, "v1", "test").expect(201);

    // Two attempts each, then dead letters; later events were not held back by them.
    let dead_letters = || {
        let r = app.get("/api/v1/events/deliveries?endpoint=flaky&state=dead");
        r.expect(200);
        r.json()["deliveries"].as_array().cloned().unwrap()
    };
    wait_until("dead letters", Duration::from_secs(30), || dead_letters().len() == 3);
    for d in dead_letters() {
        assert_eq!(d["attempts"], 2, "{d}");
        assert_eq!(d["last_error"], "HTTP 500", "{d}");
    }
    assert_eq!(dead.refused.load(Ordering::SeqCst), 6);
    assert!(dead.got().is_empty());

    // The endpoint recovers: replay one event by id, then the whole range.
    dead.failing.store(false, Ordering::SeqCst);
    let letters = dead_letters();
    let push = letters.iter().find(|d| d["event_type"] == "dev.wharf.push").unwrap();
    let replay = |body: Value| {
        app.req(Method::POST, "/api/v1/events/replay").header("Content-Type", "application/json").body(body.to_string()).send()
    };
    let r = replay(json!({"endpoint": "flaky", "event": push["event_id"]}));
    r.expect(200);
    assert_eq!(r.json()["replayed"], 1);
    wait_until("the replayed event", Duration::from_secs(30), || dead.got().len() == 1);
    let got: Value = serde_json::from_slice(&dead.got()[0].body).unwrap();
    assert_eq!(got["id"], push["event_id"]);
    verify_signature(&dead.got()[0]);
    let (first, last) = (letters[0]["audit_id"].as_i64().unwrap(), letters[2]["audit_id"].as_i64().unwrap());
    let r = replay(json!({"endpoint": "flaky", "from": first, "to": last}));
    r.expect(200);
    assert_eq!(r.json()["replayed"], 3, "the delivered one is sent again too");
    wait_until("the replayed range", Duration::from_secs(30), || dead.got().len() == 4);
    assert!(dead_letters().is_empty());

    // Bad replays change nothing.
    replay(json!({"endpoint": "nope", "event": push["event_id"]})).expect(400);
    replay(json!({"endpoint": "flaky", "event": "0".repeat(64)})).expect(400);
    replay(json!({"endpoint": "flaky", "from": 5})).expect(400);
    replay(json!({"endpoint": "flaky", "from": 9, "to": 3})).expect(400);
    app.get("/api/v1/events/deliveries?state=lost").expect(400);

    // distribution's envelope: push and tag events only, never the promotion.
    wait_until("the distribution envelopes", Duration::from_secs(30), || dist.got().len() == 2);
    std::thread::sleep(Duration::from_millis(500));
    let got = dist.got();
    assert_eq!(got.len(), 2, "the promotion is no distribution event");
    let events: Vec<Value> = got.iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["events"][0].clone()).collect();
    for r in &got {
        assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/vnd.docker.distribution.events.v1+json"));
        assert!(!r.headers.contains_key("wharf-signature"), "no secret, no signature");
    }
    assert!(events.iter().all(|e| e["action"] == "push" && e["target"]["repository"] == name.as_str()), "{events:?}");
    assert_eq!(events[0]["target"]["digest"], img.digest);
    assert_eq!(events[1]["target"]["tag"], "v1");

    // The unreachable endpoint's glob matches none of these repositories.
    let r = app.get("/api/v1/events/deliveries?endpoint=nowhere");
    r.expect(200);
    assert_eq!(r.json()["deliveries"], json!([]));
    dead_rx.stop();
    dist_rx.stop();
}

/// Runs the `wharf` CLI against `app`; returns (success, stdout, stderr).
fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WHARF_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(args)
        .args(["--url", &app.base()])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("xdg"))
        .env("DOCKER_CONFIG", home.path().join("docker"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run wharf");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn rollbacks_and_retention_deletions_are_events_and_the_cli_replays_their_dead_letters() {
    let shared = Arc::new(Shared::default());
    shared.failing.store(true, Ordering::SeqCst);
    let rx = Receiver::start(0, shared.clone());
    // Only these two types: pushes, tags and promotions of the scenario must not reach it.
    let hook = format!(
        r#"{{name = "ops", url = "http://127.0.0.1:{}/", secret = "{SECRET}", max_attempts = 1, backoff = "50ms", types = ["dev.wharf.rollback", "dev.wharf.retention"]}}"#,
        rx.port
    );
    let app = TestApp::builder()
        .env("WHARF_EVENTS__ENDPOINTS", endpoint_env(&[hook]))
        .env("WHARF_EVENTS__POLL_INTERVAL", "100ms")
        .env("WHARF_GOVERNANCE__ROLLBACK_DEPTH", "1")
        .env("WHARF_RETENTION__POLICIES", r#"[{name="one", repositories="evret/**", keep_last=1}]"#)
        .start();
    let name = repo("evret");
    let images: Vec<Image> = (1..=4).map(|i| push_image(&app, &name, Some(&format!("v{i}")), 1)).collect();
    promote(&app, &name, "v1", "test").expect(201);
    promote(&app, &name, "v2", "test").expect(201);
    app.post(&format!("/api/v1/repositories/{name}/stages/test/rollback")).expect(201);
    // keep_last=1 keeps v4; v1 is the current test release, v2 its rollback target; v3 goes.
    let run = app.post("/api/v1/retention/runs");
    run.expect(200);
    app.get(&format!("/v2/{name}/manifests/v3")).expect(404);
    app.get(&format!("/v2/{name}/manifests/{}", images[1].digest)).expect(200);

    let dead_letters = || {
        let r = app.get("/api/v1/events/deliveries?endpoint=ops&state=dead");
        r.expect(200);
        r.json()["deliveries"].as_array().cloned().unwrap()
    };
    let audit = expected_events(&app);
    let wanted: Vec<&Value> = audit
        .values()
        .filter(|e| e["action"] == "rollback" || (e["details"]["by"] == "retention" && e["repository"] == name.as_str()))
        .collect();
    assert!(wanted.iter().any(|e| e["action"] == "rollback"), "no rollback row: {audit:?}");
    assert!(wanted.iter().any(|e| e["details"]["by"] == "retention"), "no retention deletion row: {audit:?}");
    wait_until("dead letters", Duration::from_secs(30), || dead_letters().len() == wanted.len());
    let letters = dead_letters();
    assert!(letters.iter().all(|d| d["event_type"] == "dev.wharf.rollback" || d["event_type"] == "dev.wharf.retention"), "{letters:?}");
    assert!(shared.got().is_empty());

    // A bad replay from the CLI names the problem and queues nothing.
    let (ok, _, err) = cli(&app, &["events", "replay", "nope", "--from", "1", "--to", "2"]);
    assert!(!ok && err.contains("nope"), "{err}");
    // The endpoint recovers; the CLI replays the whole range.
    shared.failing.store(false, Ordering::SeqCst);
    let ids: Vec<i64> = letters.iter().map(|d| d["audit_id"].as_i64().unwrap()).collect();
    let (from, to) = (ids.iter().min().unwrap().to_string(), ids.iter().max().unwrap().to_string());
    let (ok, out, err) = cli(&app, &["events", "replay", "ops", "--from", &from, "--to", &to]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{} deliveries to ops are pending again", wanted.len())), "{out}");
    wait_until("the replayed events", Duration::from_secs(30), || shared.got().len() == wanted.len());
    assert!(dead_letters().is_empty());
    let (ok, out, err) = cli(&app, &["events", "list", "--endpoint", "ops", "--state", "delivered", "--json"]);
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["deliveries"].as_array().map(Vec::len), Some(wanted.len()), "{listed}");

    let got: Vec<Value> = shared.got().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    for r in shared.got() {
        verify_signature(&r);
    }
    let rollback = got.iter().find(|e| e["type"] == "dev.wharf.rollback").expect("a rollback event");
    assert_eq!(rollback["subject"], format!("{name}:test"));
    assert_eq!(rollback["data"]["digest"], images[0].digest, "the rollback restored v1");
    assert_eq!(rollback["data"]["details"]["previous_digest"], images[1].digest);
    let retention: Vec<&Value> = got.iter().filter(|e| e["type"] == "dev.wharf.retention").collect();
    assert!(retention.iter().any(|e| e["data"]["digest"] == images[2].digest), "v3's deletion: {retention:?}");
    for e in &got {
        assert!(audit.contains_key(e["id"].as_str().unwrap()), "the event id is an audit hash: {e}");
        assert_eq!(e["data"]["repository"], name.as_str());
    }
    rx.stop();
}
