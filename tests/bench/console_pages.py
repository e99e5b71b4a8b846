"""Console page timing on a large registry (issue 17; run by console.sh).

Builds the fixture through the registry API: REPOS repositories, one tag
each, plus one big repository holding the rest of TAGS tags on distinct
manifests and a release history in every stage. Then times each console
page (and, for scale, the JSON API answering the same question) over one
keep-alive connection on loopback: SAMPLES requests each after a warm-up,
reported as p50 / p99 / max in milliseconds. Exits non-zero when a page
answers anything but 200 or misses what it must show.
"""

import argparse
import base64
import hashlib
import http.client
import json
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Client:
    """One keep-alive HTTP connection with the admin's credentials."""

    def __init__(self, addr, auth):
        self.addr, self.auth = addr, auth
        self.conn = http.client.HTTPConnection(addr, timeout=60)

    def request(self, method, path, body=None, headers=None):
        h = {"Authorization": self.auth}
        h.update(headers or {})
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                return r.status, r.getheaders(), r.read()
            except (http.client.HTTPException, ConnectionError):
                # The server closed an idle keep-alive connection: open another once.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.addr, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def must(status, want, what):
    if status != want:
        raise SystemExit(f"{what}: HTTP {status}, expected {want}")


def build_fixture(addr, auth, repos, tags, threads):
    seed = Client(addr, auth)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["BENCH=1"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = b"console page benchmark layer\n" * 64
    blobs = []
    for data in (config, layer):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        s, _, _ = seed.request("POST", f"/v2/fleet/seed/blobs/uploads/?digest={digest}", data,
                               {"Content-Type": "application/octet-stream"})
        must(s, 201, "seed blob")
        blobs.append((digest, len(data)))
    (cd, cs), (ld, ls) = blobs

    def manifest(n):
        return json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
            "annotations": {"bench.n": str(n)},
        }).encode()

    local = threading.local()

    def client():
        if not hasattr(local, "c"):
            local.c = Client(addr, auth)
        return local.c

    def small_repo(i):
        name = f"fleet/app{i:05d}"
        for d, _ in blobs:
            s, _, _ = client().request("POST", f"/v2/{name}/blobs/uploads/?mount={d}&from=fleet/seed", b"")
            must(s, 201, f"mount into {name}")
        s, _, _ = client().request("PUT", f"/v2/{name}/manifests/v1", manifest(i), {"Content-Type": MANIFEST})
        must(s, 201, f"manifest of {name}")

    def big_tag(n):
        s, _, _ = client().request("PUT", f"/v2/fleet/big/manifests/t{n:05d}", manifest(1_000_000 + n), {"Content-Type": MANIFEST})
        must(s, 201, f"fleet/big:t{n:05d}")

    started = time.monotonic()
    for d, _ in blobs:
        s, _, _ = seed.request("POST", f"/v2/fleet/big/blobs/uploads/?mount={d}&from=fleet/seed", b"")
        must(s, 201, "mount into fleet/big")
    big_tags = max(tags - (repos - 1), 1)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(small_repo, range(repos - 1)))
        list(pool.map(big_tag, range(big_tags)))
    # A release history: the newest 20 tags through every stage, in order.
    for n in range(big_tags - 20, big_tags):
        for stage in ("test", "preprod", "prod"):
            body = json.dumps({"reference": f"t{max(n, 0):05d}", "stage": stage}).encode()
            s, _, _ = seed.request("POST", "/api/v1/repositories/fleet/big/promotions", body, {"Content-Type": "application/json"})
            if s not in (200, 201):
                raise SystemExit(f"promotion into {stage}: HTTP {s}")
    return time.monotonic() - started, big_tags


def login(addr, user, password):
    conn = http.client.HTTPConnection(addr, timeout=60)
    form = urllib.parse.urlencode({"user": user, "password": password})
    conn.request("POST", "/ui/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    must(r.status, 303, "console login")
    cookie = r.getheader("Set-Cookie").split(";", 1)[0]
    return cookie


def percentile(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(round(p / 100 * (len(sorted_ms) - 1))))]


def time_page(c, path, headers, must_show, samples):
    for _ in range(3):
        s, _, body = c.request("GET", path, headers=headers)
        must(s, 200, path)
        if must_show.encode() not in body:
            raise SystemExit(f"{path}: the page does not show {must_show!r}")
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        s, _, body = c.request("GET", path, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        must(s, 200, path)
    times.sort()
    return {"p50": percentile(times, 50), "p99": percentile(times, 99), "max": times[-1], "bytes": len(body)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--repos", type=int, default=5000)
    ap.add_argument("--tags", type=int, default=10000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    auth = "Basic " + base64.b64encode(f"admin:{a.password}".encode()).decode()
    took, big_tags = build_fixture(a.addr, auth, a.repos, a.tags, a.threads)
    print(f"fixture: {a.repos} repositories, {a.repos - 1 + big_tags} tags ({big_tags} in fleet/big) in {took:.1f} s", flush=True)
    cookie = {"Cookie": login(a.addr, "admin", a.password)}
    last_small = f"fleet/app{a.repos - 2:05d}"
    mid = f"fleet/app{(a.repos - 1) // 2:05d}"
    pages = [
        ("repositories, first page", "/ui/repositories", cookie, "fleet/app00000"),
        ("repositories, prefix search", f"/ui/repositories?q={mid}", cookie, mid),
        ("repositories, last page", f"/ui/repositories?last={last_small}", cookie, "fleet/big"),
        ("repository, 1 tag", f"/ui/r/{mid}", cookie, "id=\"verdicts\""),
        (f"repository, {big_tags} tags", "/ui/r/fleet/big", cookie, "id=\"verdicts\""),
        ("stage history (prod)", "/ui/r/fleet/big/stages/prod", cookie, "(current)"),
        ("manifest", f"/ui/r/fleet/big/manifests/t{big_tags - 1:05d}", cookie, "BENCH=1"),
        ("audit log", "/ui/audit", cookie, "audit-row"),
        ("audit log, filtered", "/ui/audit?repository=fleet/big&action=promotion", cookie, "audit-row"),
        ("API: catalog, 100 names", "/v2/_catalog?n=100", {}, "fleet/app"),
        ("API: tags of fleet/big, 100", "/v2/fleet/big/tags/list?n=100", {}, "t00000"),
    ]
    c = Client(a.addr, auth)
    # The API rows use a registry token, as docker does: Basic credentials
    # would add a password hash to every request.
    s, _, body = c.request("GET", "/auth/token?service=wharf&scope=registry:catalog:*&scope=repository:fleet/big:pull")
    must(s, 200, "registry token")
    bearer = {"Authorization": "Bearer " + json.loads(body)["token"]}
    pages = [(n, p, bearer if p.startswith("/v2/") else h, show) for n, p, h, show in pages]
    results = []
    print(f"{'page':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'bytes':>8}")
    for name, path, headers, show in pages:
        r = time_page(c, path, headers, show, a.samples)
        r.update(page=name, path=path)
        results.append(r)
        print(f"{name:34} {r['p50']:8.2f} {r['p99']:8.2f} {r['max']:8.2f} {r['bytes']:8}", flush=True)
    with open(a.json, "w") as f:
        json.dump({"repositories": a.repos, "tags": a.repos - 1 + big_tags, "samples": a.samples, "pages": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
