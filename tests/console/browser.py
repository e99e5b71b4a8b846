"""The Wharf console clicked through in headless Chromium (see browser.sh).

Set-up goes through the registry API (users, grants, two pushed images);
everything after that is done by clicking in the browser.
"""

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["WHARF_CONSOLE_URL"]
ADMIN = base64.b64encode(f"admin:{os.environ['WHARF_ADMIN_PASSWORD']}".encode()).decode()
SHOTS = os.environ["WHARF_CONSOLE_SHOTS"]
REPO = "team/app"
PW = "console-password-1"

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + name + ("" if ok or not detail else f": {detail}"), flush=True)


def api(method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"Authorization": f"Basic {ADMIN}"})
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers, r.read()


def push_blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    api("POST", f"/v2/{REPO}/blobs/uploads/?digest={digest}", data, "application/octet-stream")
    return digest, len(data)


def tar_layer(path, content):
    """A one-file tar layer: the diff page reads the files of real layers."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def push_image(tag, marker):
    layer = tar_layer("srv/marker.txt", f"layer {marker}\n".encode() * 10)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": [f"MARKER={marker}"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    cd, cs = push_blob(config)
    ld, ls = push_blob(layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    }).encode()
    _, headers, _ = api("PUT", f"/v2/{REPO}/manifests/{tag}", manifest, "application/vnd.oci.image.manifest.v1+json")
    return headers["Docker-Content-Digest"]


def setup():
    api("POST", "/api/v1/users", {"name": "rel", "password": PW})
    api("POST", "/api/v1/grants", {"account": "rel", "repository": "team/**", "role": "releaser", "stages": ["test", "preprod", "prod"]})
    api("POST", "/api/v1/users", {"name": "dev", "password": PW})
    api("POST", "/api/v1/grants", {"account": "dev", "repository": "team/**", "role": "developer", "stages": []})
    one, two = push_image("v1", "one"), push_image("v2", "two")
    push_image("v3", "three")
    return one, two


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]:
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def login(d, user):
    d.get(BASE + "/ui/login")
    d.find_element(By.ID, "user").send_keys(user)
    d.find_element(By.ID, "password").send_keys(PW)
    click(d, By.ID, "login-submit")
    return text_of(d, By.ID, "whoami") == user


def unstale(action, tries=20):
    """Runs `action` again when htmx swapped the element it found before it was used."""
    for attempt in range(tries):
        try:
            return action()
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
            time.sleep(0.1)


def column(d, stage):
    return unstale(lambda: text_of(d, By.ID, f"stage-{stage}"))


def text_of(d, by, value):
    return unstale(lambda: d.find_element(by, value).text)


def click(d, by, value):
    unstale(lambda: d.find_element(by, value).click())


def click_confirmed(d, element_id):
    click(d, By.ID, element_id)
    click(d, By.ID, "confirm")


def wait_text(d, text, timeout=10):
    """Whether <main> shows `text` within `timeout` s (a boosted click swaps the page asynchronously)."""
    try:
        WebDriverWait(d, timeout, ignored_exceptions=[StaleElementReferenceException]).until(lambda d: text in text_of(d, By.TAG_NAME, "main"))
        return True
    except TimeoutException:
        return False


def exists(d, element_id):
    try:
        d.find_element(By.ID, element_id)
        return True
    except NoSuchElementException:
        return False


def main():
    one, two = setup()
    d = browser()
    d.implicitly_wait(5)
    try:
        check("releaser logs in", login(d, "rel"))
        counts = text_of(d, By.ID, f"repo-{REPO}").split()
        check("repositories page counts tags and manifests", counts == [REPO, "3", "3"], counts)
        shot(d, "01-repositories")
        click(d, By.LINK_TEXT, REPO)
        check("repository page shows the stage columns", all(exists(d, f"stage-{s}") for s in ["test", "preprod", "prod"]))
        shot(d, "02-repository-empty")
        for tag, digest in [("v1", one), ("v2", two)]:
            short = digest[:19]
            click_confirmed(d, f"promote-tag-{tag}")
            check(f"{tag} promoted into test by clicking", short in column(d, "test"), column(d, "test"))
            for stage in ["preprod", "prod"]:
                click_confirmed(d, f"promote-{stage}")
                check(f"{tag} promoted into {stage}: the column shows it", short in column(d, stage), column(d, stage))
        shot(d, "03-repository-promoted")
        click(d, By.LINK_TEXT, "prod")
        shot(d, "04-prod-history")
        click_confirmed(d, "rollback-1")
        check("rolled back by clicking: history says so", wait_text(d, "rollback to #1"))
        d.get(BASE + f"/ui/r/{REPO}")
        check("prod column shows the restored release", one[:19] in column(d, "prod"), column(d, "prod"))
        shot(d, "05-repository-rolled-back")
        check("repository page lists retention verdicts", "kept:" in text_of(d, By.ID, "verdicts"))
        click(d, By.CSS_SELECTOR, f"#stage-prod a[href$='{one}']")
        page = text_of(d, By.TAG_NAME, "main")
        check("manifest page shows the configuration", "MARKER=one" in text_of(d, By.ID, "env"), page[:300])
        check("manifest page shows the layers", len(d.find_elements(By.CSS_SELECTOR, "#layers tbody tr")) == 1)
        check("manifest page says what retention decides", text_of(d, By.ID, "retention").startswith("kept:"))
        host = BASE.split("://", 1)[1].rstrip("/")
        pull = unstale(lambda: d.find_element(By.ID, "pull").get_attribute("value"))
        check("pull command names this host", pull == f"docker pull {host}/{REPO}@{one}", pull)
        shot(d, "06-manifest")
        # A gate refusal after a boosted (htmx) form post is shown, not swallowed:
        # v3 never went through test and preprod.
        d.get(BASE + f"/ui/r/{REPO}/confirm?action=promote&stage=prod&reference=v3")
        click(d, By.ID, "confirm")
        alert = text_of(d, By.CSS_SELECTOR, "[role=alert]")
        check("a refused promotion shows the gate's reason", "cannot promote" in alert and "gate order" in alert, alert)
        shot(d, "06-refused")
        d.get(BASE + f"/ui/r/{REPO}/diff?from={one}&to={two}")
        check("diff page compares the two releases", "MARKER" in text_of(d, By.TAG_NAME, "main"),
              text_of(d, By.TAG_NAME, "main")[:300])
        shot(d, "06-diff")
        click(d, By.ID, "logout")
        check("logout shows the login link", exists(d, "login-link"))

        check("developer logs in", login(d, "dev"))
        d.get(BASE + f"/ui/r/{REPO}")
        check("developer finds no prod promote button", not exists(d, "promote-prod") and exists(d, "stage-prod"))
        check("developer has no admin link", not exists(d, "admin-link"))
        shot(d, "07-developer-repository")
        # A forged form post without the session's CSRF token, from the page itself.
        status = d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/ui/r/team/app/promote', {method: 'POST', body: new URLSearchParams({stage: 'test', reference: 'v1'})})"
            ".then(r => done(r.status)).catch(e => done(String(e)));")
        check("a forged POST without the CSRF token is refused", status == 403, status)
        click(d, By.ID, "logout")

        d.get(BASE + "/")
        check("the registry's address opens the console", d.current_url == BASE + "/ui/repositories", d.current_url)
        d.get(BASE + "/ui/login")
        d.find_element(By.ID, "user").send_keys("admin")
        d.find_element(By.ID, "password").send_keys(os.environ["WHARF_ADMIN_PASSWORD"])
        click(d, By.ID, "login-submit")
        click(d, By.LINK_TEXT, "Audit log")
        click(d, By.ID, "verify")
        check("audit log verifies the chain", "Chain valid" in text_of(d, By.ID, "chain-status"))
        check("audit log lists the rollback", "rollback" in text_of(d, By.TAG_NAME, "table"))
        shot(d, "08-audit")
        click(d, By.ID, "admin-link")
        check("admin page shows this node ready", text_of(d, By.ID, "readiness") == "ready")
        click(d, By.ID, "plan-retention")
        check("admin page plans retention", "would be deleted" in text_of(d, By.ID, "retention-summary"))
        click(d, By.ID, "plan-gc")
        check("admin page dry-runs GC", "would be deleted" in text_of(d, By.ID, "gc-summary"))
        shot(d, "10-admin")
        d.set_window_size(390, 844)
        d.get(BASE + f"/ui/r/{REPO}")
        shot(d, "09-repository-phone")
    except Exception as e:  # a missing element or a crash is a failed check, with a screenshot
        shot(d, "failure")
        check("browser run completed", False, repr(e))
    finally:
        d.quit()
    passed = sum(results)
    print(f"console: {passed} passed, {len(results) - passed} failed")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
