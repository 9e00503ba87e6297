"""The web console (issue 18) in a real headless Chromium against a real
stack (model and job services, a worker, the gateway, the shared Kafka).

- test_console_files_http: GET / and /console/<file> over plain HTTP:
  content types, ETag + If-None-Match -> 304, Cache-Control, HEAD, 404 for
  an unknown file (every answer checked against docs/openapi.yaml). Needs no
  browser.
- test_console_in_chromium: a user's session in the browser: picks a
  tenant, creates a model from a sample file (POST /schema), sees the
  server's 400 at the property it names, uploads a file with bad rows (the
  upload progress bar), watches the job finish on the jobs page, opens the
  job's rejected rows (paged) and the error summary (charts and table equal
  to GET /jobs/{id}/errors), downloads the rejected rows (plain and
  annotated: the files equal the API's), reprocesses it; then the job
  diagnostics: a dry run (flagged on the job and list pages, its model's
  events topic never created), an error budget set at upload that stops a
  job (FAILED, the budget message shown), the warning of a header with
  'Timestamp', a model's default budget set and cleared on its page, the
  409 of reprocessing a job whose model was deleted said readably;
  cancels a job that cannot finish (its worker is stopped), checks a
  phone-sized screen and the keyboard, and shows a readable error for an
  unknown job. Any JavaScript console error fails the test; the only
  network errors allowed are the API answers the test provokes (400, 404).
  Screenshots of every page go to $BOK_BUILD_DIR/console-screenshots/.

Skipped (with the reason) when chromium, chromedriver or python3-selenium is
missing: deploy/deps.sh installs them (Debian chromium, chromium-driver,
python3-selenium).
"""
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request

import bok_e2e as e

SHOTS = os.path.join(e.BUILD, "console-screenshots")
UUID_RX = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
HEADER = "event_id,timestamp,amount,qty,ok\n"


def sample_csv(n=20):
    return HEADER + "".join("s%d,%d,%d.5,%d,%s\n" % (i, 1700000000 + i, i, i, "true" if i % 2 else "false")
                            for i in range(1, n + 1))


def bad_csv(n=120):
    """n rows; every even row is bad: qty not an integer, every 4th also amount not a float."""
    out = [HEADER]
    for i in range(1, n + 1):
        amount = "abc" if i % 4 == 0 else "%d.25" % i
        qty = "x%d" % i if i % 2 == 0 else str(i)
        out.append("b%d,%d,%s,%s,true\n" % (i, 1700000000 + i, amount, qty))
    return "".join(out)


def raw(url, method="GET", headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            st, h, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as ex:
        st, h, body = ex.code, ex.headers, ex.read()
    path = url.split("/", 3)[3] if url.count("/") >= 3 else ""
    e.conform(method, "/" + path, st, h.get("Content-Type"), body, h.get("Allow"))
    return st, h, body


def test_console_files_http():
    with e.Stack(model=False, job=False, workers=0) as s:
        st, h, page = raw(s.api_url + "/")
        e.check(st == 200 and h.get("Content-Type") == "text/html; charset=utf-8", "GET /: %s %s" % (st, h))
        e.check(b'<script type="module" src="/console/app.js">' in page, "the page loads app.js: %r" % page[:300])
        etag = h.get("ETag")
        e.check(re.fullmatch(r'"[0-9a-f]{32}"', etag or ""), "ETag: %s" % etag)
        e.check(h.get("Cache-Control") == "no-cache", "Cache-Control: %s" % h.get("Cache-Control"))
        e.check("script-src 'self'" in (h.get("Content-Security-Policy") or ""), "CSP: %s" % h)
        st, h2, body = raw(s.api_url + "/", headers={"If-None-Match": etag})
        e.check(st == 304 and body == b"" and h2.get("ETag") == etag, "revalidation: %s %r %s" % (st, body, h2))
        st, _, _ = raw(s.api_url + "/", headers={"If-None-Match": 'W/"x", ' + etag})
        e.check(st == 304, "weak/list If-None-Match: %s" % st)
        st, _, body = raw(s.api_url + "/", headers={"If-None-Match": '"0000"'})
        e.check(st == 200 and body == page, "stale ETag gets the page: %s" % st)
        st, h, body = raw(s.api_url + "/", "HEAD")
        e.check(st == 200 and body == b"" and h.get("Content-Length") == str(len(page)), "HEAD /: %s %s" % (st, h))
        for name, ctype in [("app.js", "text/javascript; charset=utf-8"), ("console.css", "text/css; charset=utf-8"),
                            ("icon.svg", "image/svg+xml"), ("jobs.js", "text/javascript; charset=utf-8")]:
            st, h, body = raw(s.api_url + "/console/" + name)
            e.check(st == 200 and h.get("Content-Type") == ctype and body, "%s: %s %s" % (name, st, h))
            e.check(h.get("ETag") and h.get("ETag") != etag and h.get("X-Content-Type-Options") == "nosniff",
                    "%s headers: %s" % (name, h))
            with open(os.path.join(e.SRC, "gateway", "console", name), "rb") as f:
                e.check(f.read() == body, "%s: served bytes differ from gateway/console/%s" % (name, name))
            st, _, _ = raw(s.api_url + "/console/" + name, headers={"If-None-Match": h.get("ETag")})
            e.check(st == 304, "%s revalidation: %s" % (name, st))
        for path in ["/console/nope.js", "/console/..%2fgateway.c", "/console/README.md"]:
            st, _, body = raw(s.api_url + path)
            e.check(st == 404, "%s: %s %r" % (path, st, body))
        for path in ["/console", "/console/"]:
            st, body = s.http("GET", path)
            e.check(st == 404 and body == {"error": "not found"}, "%s: %s %s" % (path, st, body))
        st, body = s.http("POST", "/")
        e.check(st == 405, "POST /: %s %s" % (st, body))


# ---- the browser ------------------------------------------------------------

def find_browser():
    """(chromium, chromedriver) paths, or raises Skip saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise e.Skip("python3-selenium is not installed (deploy/deps.sh installs it)")
    chrome = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver") if os.path.exists(p)), None)
    if not chrome or not driver:
        raise e.Skip("chromium cannot be found (%s missing; deploy/deps.sh installs chromium and chromium-driver)"
                     % ("chromium" if not chrome else "chromedriver"))
    return chrome, driver


class Browser:
    """Headless Chromium through chromedriver; collects the console log."""

    def __init__(self, base):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        chrome, driver = find_browser()
        opts = webdriver.ChromeOptions()
        opts.binary_location = chrome
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                  "--disable-gpu", "--lang=en-US", "--force-prefers-reduced-motion"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.profile = tempfile.mkdtemp(prefix="bok-chromium-")
        opts.add_argument("--user-data-dir=" + self.profile)
        self.d = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
        self.base = base
        self.allowed = []  # (regex on the message, why) of network errors the test provokes
        self.problems = []
        os.makedirs(SHOTS, exist_ok=True)

    def close(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # navigation and waiting
    def go(self, hash_):
        self.d.get(self.base + "/" + hash_)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, cond, what, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                v = cond()
                if v:
                    return v
            except Exception as ex:  # element not there yet, stale, ...
                last = ex
            time.sleep(0.1)
        self.shot("timeout")
        raise e.Failure("browser: timed out waiting for %s (last: %s)\npage text:\n%s"
                        % (what, last, self.text("body")[:3000]))

    def css(self, sel):
        from selenium.webdriver.common.by import By
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def el(self, sel, timeout=30):
        return self.wait(lambda: (self.css(sel) or [None])[0], "element %s" % sel, timeout)

    def click(self, sel):
        """Clicks the element `sel` names (found again if a refresh replaced it)."""
        from selenium.common.exceptions import StaleElementReferenceException
        for _ in range(20):
            try:
                return self.el(sel).click()
            except StaleElementReferenceException:
                time.sleep(0.1)
        raise e.Failure("browser: %s keeps being replaced" % sel)

    def text(self, sel):
        els = self.css(sel)
        return els[0].text if els else ""

    def wait_text(self, sel, needle, timeout=30):
        return self.wait(lambda: needle in self.text(sel) and self.text(sel), "%r in %s" % (needle, sel), timeout)

    def hash(self):
        return self.js("return location.hash")

    def set_value(self, sel, value):
        """Sets an input's or textarea's value as typing would (an input event)."""
        self.js("const el = document.querySelector(arguments[0]); el.value = arguments[1];"
                "el.dispatchEvent(new Event('input', {bubbles: true}));", sel, value)

    def select(self, sel, value):
        from selenium.webdriver.support.ui import Select
        Select(self.el(sel)).select_by_value(value)

    def shot(self, name):
        path = os.path.join(SHOTS, name + ".png")
        self.d.save_screenshot(path)
        return path

    def full_shot(self, name):
        """A screenshot of the whole page (the window grown to its height)."""
        w, h = self.js("return [window.outerWidth, window.outerHeight]")
        height = self.js("return document.documentElement.scrollHeight")
        self.d.set_window_size(w, min(max(h, height + 140), 4000))
        time.sleep(0.2)
        path = self.shot(name)
        self.d.set_window_size(w, h)
        return path

    # the console log
    def expect_network_error(self, rx, why):
        self.allowed.append((re.compile(rx), why))

    def check_log(self):
        for entry in self.d.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            msg = entry["message"]
            if entry.get("source") == "network" and any(rx.search(msg) for rx, _ in self.allowed):
                continue
            self.problems.append(msg)
        e.check(not self.problems, "console errors in the browser:\n  " + "\n  ".join(self.problems))


def upload_file(dirpath, name, data):
    """The file to choose in the page. An existing file with the same bytes
    is left untouched: Chrome reads a chosen file as it was when chosen, and
    choosing the same path again does not replace the page's File, so
    rewriting it (a new mtime) made the upload fail as a network error."""
    path = os.path.join(dirpath, name)
    try:
        with open(path) as f:
            if f.read() == data:
                return path
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(data)
    return path


def test_console_in_chromium():
    find_browser()
    tenant = "console_" + e.rand_suffix(6)
    files = tempfile.mkdtemp(prefix="bok-console-files-")
    with e.Stack(workers=1) as s:
        b = Browser(s.api_url)
        try:
            session(s, b, tenant, files)
        finally:
            b.close()
            shutil.rmtree(files, ignore_errors=True)


def test_console_api_key():
    """With API keys required: the 401 is a readable message pointing at
    Settings; the key typed there goes as Authorization: Bearer on every call
    (the page itself loads without one), and a tenant the key is not for is
    the gateway's 403, said as such."""
    import hashlib
    find_browser()
    key = "console-key-" + e.rand_suffix(12)
    cfg = {"auth": {"required": True, "api_keys": [{"tenant": "keyed", "sha256": hashlib.sha256(key.encode()).hexdigest()}]}}
    with e.Stack(job=False, workers=0, overrides={"gateway": cfg}) as s:
        st, m = s.http("POST", "/models", {"name": "secret model", "schema": {"type": "object", "properties": {
            "a": {"type": "string"}}}}, headers={"Authorization": "Bearer " + key})
        e.check(st == 201, "model with the key: %s %s" % (st, m))
        b = Browser(s.api_url)
        try:
            b.expect_network_error(r"/models - Failed to load resource: the server responded with a status of 401",
                                   "no key yet")
            b.go("#/models")
            b.wait_text("main .error", "401 UNAUTHENTICATED: API key required")
            e.check("set a valid API key in Settings" in b.text("main .error"), "hint: %s" % b.text("main .error"))
            b.shot("20-key-missing")
            b.el("#settings summary").click()
            b.set_value("#api-key", key)
            b.el("#settings-form button").click()
            b.wait_text("#settings-status", "Saved.")
            # the tenant header names tenant_a, the key is for "keyed": 403
            b.expect_network_error(r"/models - Failed to load resource: the server responded with a status of 403",
                                   "the key is another tenant's")
            b.wait_text("main .error", "403 PERMISSION_DENIED")
            e.check("belongs to another tenant" in b.text("main .error"), "403 hint: %s" % b.text("main .error"))
            b.shot("21-key-other-tenant")
            b.set_value("#tenant", "keyed")
            b.el("#tenant-form button").click()
            b.wait(lambda: b.css("#models-table tr[data-model='%s']" % m["model_id"]), "the key's models")
            b.el("#settings summary").click()  # close it
            b.shot("22-key-ok")
            e.check(b.js("return sessionStorage.getItem('bok.console.apiKey')") == key, "key kept for the tab")
            e.check(b.js("return localStorage.getItem('bok.console.apiKey')") is None, "key not in localStorage")
            b.check_log()
        finally:
            b.close()


BAD_SCHEMAS = [
    {"type": "object", "properties": {}},
    {"type": "array", "properties": {"a": {"type": "string"}}},
    {"type": "object", "properties": {"a": {"type": "foo"}}},
    {"type": "object", "properties": {"a": {"format": "unix-time"}}},
    {"type": "object", "properties": {"a": {"type": "integer", "format": "date"}}},
    {"type": "object", "properties": {"a": {"type": "integer", "enum": ["x"]}}},
    {"type": "object", "properties": {"a": {"type": "string", "enum": []}}},
    {"type": "object", "properties": {"a": {"type": "string", "enum": ["x", 1]}}},
    {"type": "object", "properties": {"a": {"type": "integer", "minLength": 2}}},
    {"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}},
    {"type": "object", "properties": {"a": {"type": "number", "minimum": 5, "maximum": 1}}},
    {"type": "object", "properties": {"a": {"type": "array"}}},
    {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 1}}},
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": "yes"},
    {"type": "object", "properties": {"a": {"type": "string"}}, "x-event-id": "b"},
    {"type": "object", "properties": {"a": {"type": "boolean"}}, "x-event-id": "a"},
    {"type": "object", "properties": {"t": {"type": "string"}}, "x-event-time": "t"},
]


def test_schema_editor_checks_match_the_model_service():
    """The editor's as-you-type check (console/schema.js) says what the
    model service says, word for word, for each kind of bad schema."""
    find_browser()
    with e.Stack(job=False, workers=0) as s:
        b = Browser(s.api_url)
        try:
            b.go("#/models")
            b.el("#new-model")
            got = b.d.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "import('/console/schema.js').then((m) => done(arguments[0].map((x) => m.check(JSON.stringify(x)))),"
                " (err) => done(String(err)));", BAD_SCHEMAS)
            e.check(isinstance(got, list), "schema.js: %s" % got)
            e.check(len(got) == len(BAD_SCHEMAS), "one answer per schema: %s" % got)
            for schema, mine in zip(BAD_SCHEMAS, got):
                st, r = s.http("POST", "/models", {"name": "x", "schema": schema})
                e.check(st == 400, "the service accepts %s: %s %s" % (schema, st, r))
                e.check(mine.get("error") == r["error"], "schema %s:\n  editor:  %s\n  service: %s"
                        % (schema, mine.get("error"), r["error"]))
            ok = b.d.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "import('/console/schema.js').then((m) => done(m.check(arguments[0])))",
                '{"type":"object","properties":{"event_id":{"type":"string"},"n":{"type":"integer","minimum":0}},'
                '"required":["event_id"]}')
            e.check("schema" in ok and "error" not in ok, "a good schema: %s" % ok)
            b.check_log()
            # the log check itself: a console error is caught
            b.js("console.error('probe: a console error')")
            time.sleep(0.2)
            try:
                b.check_log()
            except e.Failure as ex:
                e.check("probe: a console error" in str(ex), "the probe: %s" % ex)
            else:
                raise e.Failure("check_log missed a console.error")
        finally:
            b.close()


def session(s, b, tenant, files):
    # the console opens on the jobs page of the default tenant
    b.go("")
    b.wait(lambda: b.hash() == "#/jobs", "redirect to #/jobs")
    b.wait_text("main", "has no jobs yet")
    e.check(b.el("#tenant").get_attribute("value") == "tenant_a", "default tenant")

    # pick a tenant: remembered in localStorage, sent on every call
    b.set_value("#tenant", tenant)
    b.el("#tenant-form button").click()
    b.wait_text("main", "Tenant %s has no jobs yet" % tenant)
    e.check(b.js("return localStorage.getItem('bok.console.tenant')") == tenant, "tenant stored")
    b.check_log()

    model_id = create_model(s, b, tenant, files)
    job_id = upload_and_watch(s, b, tenant, files, model_id)
    job_page(s, b, tenant, job_id)
    jobs_page(s, b, tenant, job_id)
    diagnostics(s, b, tenant, files, model_id)
    cancel_running_job(s, b, tenant, files, model_id)
    phone_and_keyboard(s, b, job_id)
    readable_errors(s, b)
    b.check_log()


def create_model(s, b, tenant, files):
    b.go("#/models")
    b.wait_text("main", "has no models yet")
    b.el("#new-model").click()
    b.wait(lambda: b.hash() == "#/models/new", "the new model page")
    b.el("#sample-file").send_keys(upload_file(files, "payments.csv", sample_csv()))
    b.wait_text("#suggest-status", "Suggested from payments.csv: 5 column(s)")
    schema_text = b.el("#schema-text").get_attribute("value")
    e.check('"qty"' in schema_text and '"integer"' in schema_text, "suggested schema: %s" % schema_text)
    e.check(b.el("#model-name").get_attribute("value") == "payments", "name from the file")
    b.wait_text("#schema-status", "valid JSON schema: 5 column(s)")
    e.check(len(b.css("#columns-preview-table tbody tr")) == 5, "columns preview")
    b.full_shot("01-model-new-suggested")

    # as you type: invalid JSON is pointed at, and Save does not send it
    b.set_value("#schema-text", schema_text.replace('"properties"', '"properties" x', 1))
    b.wait_text("#schema-status", "invalid JSON")
    e.check("line" in b.text("#schema-status"), "JSON error position: %s" % b.text("#schema-status"))
    # a schema the service refuses: the server's 400 at the property it names
    bad = schema_text.replace('"qty": {\n      "type": "integer"', '"qty": {\n      "type": "integer",\n      "minLength": 2', 1)
    e.check(bad != schema_text, "could not edit the suggested schema:\n" + schema_text)
    b.set_value("#schema-text", bad)
    b.wait_text("#schema-status", "properties.qty.minLength: only string columns take minLength")
    b.expect_network_error(r"/models - Failed to load resource: the server responded with a status of 400",
                           "saving a schema the model service refuses")
    b.el("#model-save").click()
    b.wait_text("#server-error-at-property", "Server: 400 INVALID_ARGUMENT: properties.qty.minLength")
    e.check("bad" in b.el("#columns-preview-table tr[data-column='qty']").get_attribute("class"), "qty row marked")
    b.wait_text("#save-error", "The server refused the model")
    b.full_shot("02-model-server-400")
    st, models = s.http("GET", "/models", tenant=tenant)
    e.check(st == 200 and models == [], "nothing created: %s" % models)

    b.set_value("#schema-text", schema_text)
    b.wait_text("#schema-status", "valid JSON schema")
    b.el("#model-save").click()
    b.wait(lambda: re.fullmatch("#/models/" + UUID_RX, b.hash()), "the model's page")
    model_id = b.hash().split("/")[-1]
    b.wait_text("main h1", "payments")
    rows = b.css("#columns-table tbody tr")
    e.check([r.get_attribute("data-column") for r in rows] == ["event_id", "timestamp", "amount", "qty", "ok"],
            "columns table: %s" % [r.text for r in rows])
    e.check("INTEGER" in b.text("#columns-table tr[data-column='qty']"), "qty type")
    e.check("event id" in b.text("#columns-table tr[data-column='event_id']"), "event id role")
    b.full_shot("03-model-view")
    st, m = s.http("GET", "/models/" + model_id, tenant=tenant)
    e.check(st == 200 and m["name"] == "payments", "the model is the tenant's: %s %s" % (st, m))

    # the list, and delete with confirmation (a second, throw-away model)
    st, extra = s.http("POST", "/models", {"name": "throwaway", "schema": m["schema"]}, tenant=tenant)
    e.check(st == 201, "second model: %s" % st)
    b.go("#/models")
    b.wait(lambda: len(b.css("#models-table tbody tr")) == 2, "two models listed")
    b.full_shot("04-models")
    b.el("tr[data-model='%s'] button.danger" % extra["model_id"]).click()
    b.wait(lambda: b.js("return document.getElementById('confirm').open"), "the confirm dialog")
    b.wait_text("#confirm-text", 'Delete model "throwaway"')
    b.shot("05-model-delete-confirm")
    b.el("#confirm-no").click()  # keep it first
    time.sleep(0.3)
    e.check(len(b.css("#models-table tbody tr")) == 2, "kept")
    b.el("tr[data-model='%s'] button.danger" % extra["model_id"]).click()
    b.el("#confirm-yes").click()
    b.wait(lambda: len(b.css("#models-table tbody tr")) == 1, "one model left")
    b.wait_text("#notices", 'Model "throwaway" deleted')
    st, _ = s.http("GET", "/models/" + extra["model_id"], tenant=tenant)
    e.check(st == 404, "deleted on the server: %s" % st)
    b.check_log()
    return model_id


def upload_and_watch(s, b, tenant, files, model_id):
    b.go("#/upload?model=" + model_id)
    b.el("#upload-file").send_keys(upload_file(files, "bad-rows.csv", bad_csv()))
    b.wait_text("#upload-file-info", "bad-rows.csv")
    e.check("read as CSV" in b.text("#upload-file-info"), "format: %s" % b.text("#upload-file-info"))
    e.check(b.el("#upload-model").get_attribute("value") == model_id, "model preselected")
    b.full_shot("06-upload")
    b.el("#upload-start").click()
    b.wait(lambda: re.fullmatch("#/jobs/" + UUID_RX, b.hash()), "the job page after the upload", 60)
    job_id = b.hash().split("/")[-1]
    st, j = s.http("GET", "/jobs/" + job_id, tenant=tenant)
    e.check(st == 200 and j["file_name"] == "bad-rows.csv" and j["total"] == 120, "the job: %s %s" % (st, j))
    return job_id


def job_page(s, b, tenant, job_id):
    b.wait_text("main h1", "PARTIAL_SUCCESS", 90)  # polled until it finishes
    counters = b.text("#job-counters")
    for want in ("120", "60"):
        e.check(want in counters, "counters %r: %s" % (want, counters))
    e.check(len(b.css(".job-progress .pbar .seg")) == 3, "progress bar segments")
    label = b.el(".job-progress .pbar").get_attribute("aria-label")
    e.check(label == "60 valid, 60 rejected, 0 unprocessed of 120 rows", "progress bar: %s" % label)
    # the error summary: bars by code, by column and by both, and the table,
    # from GET /jobs/{id}/errors (reloaded as rejected rows arrive: wait for all 60)
    b.wait_text("#summary-note", "in 60 rejected row")
    b.wait(lambda: len(b.css("#chart-code svg rect")) == 2, "the summary by code")
    st, summary = s.http("GET", "/jobs/%s/errors" % job_id, tenant=tenant)
    e.check(st == 200 and len(summary) == 2, "the API's summary: %s %s" % (st, summary))
    def sums(key):
        out = {}
        for x in summary:
            out[key(x)] = out.get(key(x), 0) + x["count"]
        return out
    e.check(chart(b, "chart-code") == sums(lambda x: x["code"]) == {"NOT_AN_INTEGER": 60, "NOT_A_FLOAT": 30},
            "by code: chart %s, API %s" % (chart(b, "chart-code"), summary))
    e.check(chart(b, "chart-column") == sums(lambda x: x["column"]) == {"qty": 60, "amount": 30},
            "by column: chart %s, API %s" % (chart(b, "chart-column"), summary))
    e.check(chart(b, "chart-pair") == sums(lambda x: "%s · %s" % (x["code"], x["column"])),
            "by code and column: chart %s, API %s" % (chart(b, "chart-pair"), summary))
    rows = [[td.text for td in tr.find_elements("css selector", "td")] for tr in b.css("#summary-table tbody tr")]
    want = [[x["code"], x["column"], x["type"] or "—", "%d" % x["count"], str(x["first_row"]),
             json.dumps(x["example"]), x["message"]] for x in summary]
    e.check(rows == want, "summary table:\n  page %s\n  API  %s" % (rows, want))
    e.check(rows[0][:6] == ["NOT_AN_INTEGER", "qty", "INTEGER", "60", "2", '"x2"'], "first entry: %s" % rows[0])
    # the rejected rows, paged with after_row
    b.wait(lambda: len(b.css("#rejected-table tbody tr")) > 0, "rejected rows")
    first = b.css("#rejected-table tbody tr")[0].text
    e.check("2" in first and "qty" in first and "NOT_AN_INTEGER" in first and '"x2"' in first
            and "is not an integer" in first, "first rejected cell: %s" % first)
    b.select("#rejected-size", "25")
    b.wait_text("#rejected-where", "Page 1: rows 2–50 (25 row(s)")
    b.full_shot("07-job")
    b.el("#rejected-next").click()
    b.wait_text("#rejected-where", "Page 2: rows 52–100")
    b.el("#rejected-next").click()
    b.wait_text("#rejected-where", "Page 3: rows 102–120 (10 row(s)")
    e.check(b.el("#rejected-next").get_attribute("disabled") is not None, "last page: no next")
    b.el("#rejected-prev").click()
    b.wait_text("#rejected-where", "Page 2: rows 52–100")

    download_rejected(s, b, tenant, job_id)

    # a gateway without GET /jobs/{id}/errors (404): the summary is computed from the rejected rows
    b.js("window.fetch = ((f) => (u, o) => /\\/errors$/.test(String(u)) ?"
         " Promise.resolve(new Response('{\"error\": \"not found\"}', {status: 404})) : f(u, o))(window.fetch);"
         "location.hash = '#/jobs'")
    b.el("#jobs-table")
    b.js("location.hash = arguments[0]", "#/jobs/" + job_id)
    b.wait_text("#summary-note", "Bad cells counted in 60 of 60 rejected row(s).")
    e.check(chart(b, "chart-code") == {"NOT_AN_INTEGER": 60, "NOT_A_FLOAT": 30}, "computed: %s" % chart(b, "chart-code"))
    e.check(not b.css("#summary-table"), "no summary table without the endpoint")
    b.d.refresh()  # the real fetch again
    b.wait_text("#summary-note", "counted by the job service")

    # reprocess: the API's answer (202, a new job) is shown
    b.click("#job-actions button[data-action='reprocess']")
    b.wait_text("#notices", "Reprocessing job %s: new job" % job_id[:8])
    st, jobs = s.http("GET", "/jobs", tenant=tenant)
    e.check(any(j.get("parent_job_id") == job_id for j in jobs), "the reprocess job exists: %s" % jobs)
    b.check_log()


def chart(b, id_):
    """{label: value} of a bar chart (its screen-reader table holds the full labels)."""
    out = {}
    for tr in b.css("#%s table tr" % id_)[1:]:
        label, value = [td.get_attribute("textContent") for td in tr.find_elements("css selector", "td")]
        out[label] = int(value)
    return out


def api_bytes(s, path, tenant):
    req = urllib.request.Request(s.api_url + path, headers={"X-Tenant-ID": tenant})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def download_rejected(s, b, tenant, job_id):
    """The download buttons save the API's file (fetched with the tenant header)."""
    where = tempfile.mkdtemp(prefix="bok-console-dl-")
    try:
        b.d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": where})
        for button, annotate in (("#download-rejected", False), ("#download-annotated", True)):
            before = set(os.listdir(where))
            b.click(button)
            b.wait_text("#download-status", "Saved ")
            name = b.wait(lambda: [n for n in set(os.listdir(where)) - before if not n.endswith(".crdownload")],
                          "the downloaded file")[0]
            e.check(name == "rejected-%s%s.csv" % (job_id[:8], "-annotated" if annotate else ""), "file name: %s" % name)
            with open(os.path.join(where, name), "rb") as f:
                got = f.read()
            e.check(got == api_bytes(s, "/jobs/%s/rejected/download%s" % (job_id, "?annotate=true" if annotate else ""), tenant),
                    "%s: the file differs from the API's" % name)
            lines = got.decode().splitlines()
            if not annotate:  # the even rows of bad_csv, as uploaded, under its header
                e.check(got.decode() == HEADER + "".join(bad_csv().splitlines(True)[2::2]), "rejected rows file:\n%s" % got[:300])
            else:
                e.check(lines[0] == HEADER.strip() + ",_row,_errors" and len(lines) == 61, "annotated header: %s" % lines[:2])
                e.check(lines[1].startswith("b2,") and ",2," in lines[1] and "qty: NOT_AN_INTEGER" in lines[1],
                        "annotated row 2: %s" % lines[1])
        b.full_shot("07b-job-downloaded")
    finally:
        shutil.rmtree(where, ignore_errors=True)


def upload_in_page(b, files, model_id, name, data, dry_run=False, max_errors="", max_rate=""):
    """Uploads through the Upload page with its options; returns the new job's id."""
    b.go("#/upload?model=" + model_id)
    b.el("#upload-file").send_keys(upload_file(files, name, data))
    b.wait_text("#upload-file-info", name)
    if b.el("#upload-dry-run").is_selected() != dry_run:
        b.el("#upload-dry-run").click()
    b.set_value("#upload-max-errors", max_errors)
    b.set_value("#upload-max-rate", max_rate)
    before = b.hash()
    b.el("#upload-start").click()
    b.wait(lambda: b.hash() != before and re.fullmatch("#/jobs/" + UUID_RX, b.hash()), "the job page of " + name, 60)
    return b.hash().split("/")[-1]


def diagnostics(s, b, tenant, files, model_id):
    st, model = s.http("GET", "/models/" + model_id, tenant=tenant)
    # a dry run, to a model of its own: flagged, counted, and its events topic never created
    st, dry_model = s.http("POST", "/models", {"name": "dry only", "schema": model["schema"]}, tenant=tenant)
    e.check(st == 201, "dry-run model: %s %s" % (st, dry_model))
    b.go("#/upload?model=" + dry_model["model_id"])
    e.check(b.el("#upload-max-errors").get_attribute("placeholder") == "none", "no default budget")
    b.el("#upload-dry-run").click()
    b.full_shot("30-upload-options")
    dry = upload_in_page(b, files, dry_model["model_id"], "dry.csv", bad_csv(), dry_run=True)
    b.wait_text("main h1", "PARTIAL_SUCCESS", 90)
    e.check("dry run" in b.text("main h1"), "dry run tag: %s" % b.text("main h1"))
    b.wait_text("#job-dry-run", "Dry run: rows validated and counted, no event published.")
    st, j = s.http("GET", "/jobs/" + dry, tenant=tenant)
    e.check(st == 200 and j["dry_run"] is True and j["success"] == 60 and j["errors"] == 60, "dry-run job: %s" % j)
    b.full_shot("31-job-dry-run")
    meta = json.loads(e.kcat_metadata() or b"{}")
    topics = {t["topic"] for t in meta.get("topics", [])}
    e.check(topics and model["topic"] in topics, "kcat metadata lists the real job's topic %s" % model["topic"])
    # the events topic is made with the model (test_retention): a dry run leaves it empty
    e.check(dry_model["topic"] in topics and not e.kcat_consume(dry_model["topic"], timeout=20, read_committed=False),
            "a dry run published events to %s" % dry_model["topic"])
    b.go("#/jobs")
    row = b.el("#jobs-table tr[data-job='%s']" % dry)
    e.check("dry run" in row.text, "the list marks the dry run: %s" % row.text)
    e.check(len([r for r in b.css("#jobs-table tbody tr") if "dry run" in r.text]) == 1, "only the dry run is marked")

    # a file changed on disk after it was chosen: the page says so, not "the gateway closed the connection"
    b.go("#/upload?model=" + model_id)
    path = upload_file(files, "changed.csv", sample_csv(5))
    b.el("#upload-file").send_keys(path)
    b.wait_text("#upload-file-info", "changed.csv")
    st = os.stat(path)
    os.utime(path, (st.st_atime, st.st_mtime + 10))
    b.el("#upload-start").click()
    b.wait_text("#upload-result", "file: changed.csv changed on disk after it was chosen")

    # an error budget typed at upload: a bad value is refused in the page, a good one stops the job
    b.go("#/upload?model=" + model_id)
    b.el("#upload-file").send_keys(upload_file(files, "budget.csv", bad_csv()))
    b.wait_text("#upload-file-info", "budget.csv")
    b.set_value("#upload-max-rate", "1.5")
    b.el("#upload-start").click()
    b.wait_text("#upload-result", "max error rate: expected a share from 0 to 1")
    failed = upload_in_page(b, files, model_id, "budget.csv", bad_csv(), max_errors="5")
    b.wait_text("main h1", "FAILED", 90)
    b.wait_text("#job-failure", "Job error: error budget exceeded:")
    st, j = s.http("GET", "/jobs/" + failed, tenant=tenant)
    e.check(st == 200 and j["state"] == "FAILED" and j["max_errors"] == 5 and j["error"] in b.text("#job-failure"),
            "budget job: %s / page %s" % (j, b.text("#job-failure")))
    e.check("at most 5 rejected row(s)" in b.text("#job-info"), "the budget shown: %s" % b.text("#job-info"))
    b.full_shot("32-job-budget-failed")

    # a header with 'Timestamp': the job's warning listed (code, column, message)
    warned = upload_in_page(b, files, model_id, "case.csv", sample_csv(5).replace("timestamp", "Timestamp", 1))
    b.wait(lambda: re.search("SUCCESS|FAILED", b.text("main h1")), "the warned job to finish", 90)
    b.el("#warnings-table")
    st, j = s.http("GET", "/jobs/" + warned, tenant=tenant)
    e.check(st == 200 and j.get("warnings"), "the API's warnings: %s" % j)
    rows = [[td.text for td in tr.find_elements("css selector", "td")] for tr in b.css("#warnings-table tbody tr")]
    e.check(rows == [[w["code"], w["column"] or "—", w["message"]] for w in j["warnings"]], "warnings: %s vs %s" % (rows, j["warnings"]))
    e.check(any(r[0] == "HEADER_CASE_MISMATCH" and r[1] == "timestamp" and "'Timestamp'" in r[2] for r in rows),
            "the case warning: %s" % rows)
    b.full_shot("33-job-warnings")

    # a model's default budget: shown and edited on its page, offered on the upload page, cleared
    b.go("#/models/" + model_id)
    b.wait_text("#budget-current", "Default error budget of new jobs: none.")
    b.set_value("#budget-max-errors", "7")
    b.set_value("#budget-max-rate", "0.25")
    b.el("#budget-save").click()
    b.wait_text("#budget-status", "Saved.")
    b.wait_text("#budget-current", "at most 7 rejected row(s), at most 25% of processed rows rejected")
    st, m = s.http("GET", "/models/" + model_id, tenant=tenant)
    e.check(st == 200 and m.get("max_errors") == 7 and m.get("max_error_rate") == 0.25, "the model's budget: %s" % m)
    b.full_shot("34-model-budget")
    b.go("#/upload?model=" + model_id)
    e.check(b.el("#upload-max-errors").get_attribute("placeholder") == "7", "default offered")
    b.wait_text("#upload-budget-help", "Empty = the model's default: at most 7 rejected row(s)")
    b.go("#/models/" + model_id)
    b.el("#budget-form")
    b.set_value("#budget-max-errors", "")
    b.set_value("#budget-max-rate", "")
    b.el("#budget-save").click()
    b.wait_text("#budget-current", "Default error budget of new jobs: none.")
    st, m = s.http("GET", "/models/" + model_id, tenant=tenant)
    e.check(st == 200 and "max_errors" not in m and "max_error_rate" not in m, "budget removed: %s" % m)

    # reprocess a job whose model was deleted: the API's 409, readably
    st, doomed = s.http("POST", "/models", {"name": "doomed", "schema": model["schema"]}, tenant=tenant)
    st, j = s.upload(doomed["model_id"], "doomed.csv", bad_csv(8), tenant=tenant)
    e.check(st == 202, "doomed upload: %s %s" % (st, j))
    s.wait_job(j["job_id"], tenant=tenant)
    st, _ = s.http("DELETE", "/models/" + doomed["model_id"], tenant=tenant)
    e.check(st in (200, 204), "model deleted: %s" % st)
    b.expect_network_error(r"/reprocess - Failed to load resource: the server responded with a status of 409",
                           "reprocessing a job whose model was deleted")
    b.go("#/jobs/" + j["job_id"])
    b.click("#job-actions button[data-action='reprocess']")
    b.wait_text("#notices", "was not reprocessed: 409")
    note = b.text("#notices")
    e.check("the model of this job was deleted" in note and "upload the rejected rows to another model" in note,
            "409 notice: %s" % note)
    b.shot("35-reprocess-409")
    # the other 409 (the button is only offered on finished jobs, so it takes a race): its hint
    hint = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([import('/console/jobs.js'), import('/console/api.js')]).then(([j, a]) =>"
        " done(j.reprocessHint(new a.ApiError(409, 'FAILED_PRECONDITION', 'job is still running'))), (x) => done(String(x)))")
    e.check(hint == " — wait until it finishes (or cancel it), then reprocess.", "still-running hint: %r" % hint)
    b.check_log()


def jobs_page(s, b, tenant, job_id):
    b.go("#/jobs")
    b.wait(lambda: len(b.css("#jobs-table tbody tr")) == 2, "two jobs listed (the upload and its reprocess)")
    row = b.el("#jobs-table tr[data-job='%s']" % job_id)
    e.check("PARTIAL_SUCCESS" in row.text and "bad-rows.csv" in row.text and "payments" in row.text,
            "job row: %s" % row.text)
    b.wait(lambda: b.text("#jobs-live").startswith("Updated"), "the live status line")
    b.full_shot("08-jobs")
    b.select("#filter-state", "PARTIAL_SUCCESS")
    b.wait(lambda: "state=PARTIAL_SUCCESS" in b.hash(), "state filter in the URL")
    b.wait(lambda: b.css("#jobs-table tr[data-job='%s']" % job_id), "the job under its state filter")
    b.select("#filter-state", "SUCCESS")  # the reprocess job failed: its 60 rows are still bad
    b.wait_text("#jobs-body", "No job matches these filters.")
    b.select("#filter-state", "")
    b.wait(lambda: len(b.css("#filter-model option")) >= 2, "model filter options")
    b.select("#filter-model", b.css("#filter-model option")[1].get_attribute("value"))
    b.wait(lambda: "model=" in b.hash() and len(b.css("#jobs-table tbody tr")) == 2, "the model filter")
    b.check_log()


def cancel_running_job(s, b, tenant, files, model_id):
    # no worker: the job cannot finish, so it can be cancelled
    for w in s.workers:
        w.stop()
    big = HEADER + "".join("c%d,%d,%d.5,%d,true\n" % (i, 1700000000 + i, i, i) for i in range(150000))
    path = upload_file(files, "big.csv", big)
    b.go("#/upload?model=" + model_id)
    b.el("#upload-file").send_keys(path)
    b.wait_text("#upload-file-info", "big.csv")
    # a slow link (DevTools throttling) so the progress bar can be seen moving
    b.d.execute_cdp_cmd("Network.enable", {})
    b.d.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 5,
                        "downloadThroughput": -1, "uploadThroughput": 1500 * 1024})
    b.el("#upload-start").click()
    # the bar moves with the browser's upload progress events: bytes, %, MB/s
    def midway():
        m = re.search(r"^([0-9.]+) (KB|MB) of 5.40 MB · ([0-9]+)% · ([0-9.]+) MB/s$", b.text("#upload-progress-text"))
        return m and 0 < int(m.group(3)) < 100 and float(m.group(4)) > 0 and m.group(0)
    seen = b.wait(midway, "upload progress between 0% and 100%", 60)
    pct = int(b.el("#upload-progress .ubar").get_attribute("aria-valuenow"))
    e.check(0 < pct < 100, "progressbar value: %s" % pct)
    b.shot("09-upload-progress")
    b.wait(lambda: re.fullmatch("#/jobs/" + UUID_RX, b.hash()), "the job page after the big upload", 180)
    b.d.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                        "downloadThroughput": -1, "uploadThroughput": -1})
    job_id = b.hash().split("/")[-1]
    b.wait(lambda: b.css("#job-actions button[data-action='cancel']"), "the cancel button")
    e.check(re.search("PENDING|RUNNING", b.text("main h1")), "still running: %s" % b.text("main h1"))
    b.full_shot("10-job-running")
    # the page refreshes every second while the job waits, but never swaps the button under the pointer
    from selenium.common.exceptions import StaleElementReferenceException
    btn = b.el("#job-actions button[data-action='cancel']")
    time.sleep(2.5)
    try:
        btn.click()
    except StaleElementReferenceException:
        raise e.Failure("a refresh replaced the cancel button")
    b.wait_text("#confirm-text", "Cancel job %s" % job_id[:8])
    b.el("#confirm-yes").click()
    b.wait_text("#notices", "Job %s: cancelled" % job_id[:8])
    b.wait_text("main h1", "CANCELLED")
    e.check(not b.css("#job-actions button[data-action='cancel']"), "no cancel button on a cancelled job")
    st, j = s.http("GET", "/jobs/" + job_id, tenant=tenant)
    e.check(st == 200 and j["state"] == "CANCELLED", "cancelled on the server: %s" % j)
    # the running job's page followed its event stream (WatchJob through the gateway)
    metrics = urllib.request.urlopen(s.api_url + "/metrics", timeout=10).read().decode()
    e.check(re.search(r'bok_http_requests_total\{[^}]*route="/jobs/\{id\}/events"[^}]*code="200"', metrics),
            "the job page opened GET /jobs/{id}/events")
    b.full_shot("11-job-cancelled")
    print("upload progress seen: %s" % seen)
    b.check_log()


def phone_and_keyboard(s, b, job_id):
    # a phone's screen (390 x 844 CSS pixels, touch, mobile viewport)
    b.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1,
                                                              "mobile": True})
    try:
        for name, hash_, ready in [("12-phone-jobs", "#/jobs", "#jobs-table"), ("13-phone-job", "#/jobs/" + job_id, "#rejected-table"),
                                   ("14-phone-models", "#/models", "#models-table")]:
            b.go(hash_)
            b.el(ready)
            time.sleep(0.3)
            over = b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            e.check(b.js("return window.innerWidth") == 390, "phone viewport: %s" % b.js("return window.innerWidth"))
            e.check(over <= 1, "%s: the page is %spx wider than the phone's screen" % (hash_, over))
            b.shot(name)
    finally:
        b.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # the keyboard: Tab from the top reaches the navigation, Enter follows it
    from selenium.webdriver.common.keys import Keys
    b.go("#/jobs")
    b.d.refresh()  # a fresh load: nothing focused yet
    b.el("#jobs-table")
    b.el("body").send_keys(Keys.TAB)
    e.check(b.js("return document.activeElement.textContent") == "Skip to content", "first Tab: the skip link")
    for _ in range(6):
        if b.js("return document.activeElement.textContent") == "Upload":
            break
        b.d.switch_to.active_element.send_keys(Keys.TAB)
    e.check(b.js("return document.activeElement.textContent") == "Upload", "Tab reaches the Upload link")
    b.d.switch_to.active_element.send_keys(Keys.ENTER)
    b.wait(lambda: b.hash() == "#/upload", "Enter follows the link")
    b.wait(lambda: b.js("return document.activeElement.tagName") == "H1", "focus on the new page's heading")
    b.check_log()


def readable_errors(s, b):
    unknown = "123e4567-e89b-12d3-a456-426614174000"
    b.expect_network_error(r"/jobs/%s - Failed to load resource: the server responded with a status of 404" % unknown,
                           "opening a job that does not exist")
    b.go("#/jobs/" + unknown)
    b.wait_text("#job-info .error", "Cannot load job %s: 404: not found" % unknown)
    b.shot("15-job-not-found")
    # a service down: the gateway's 503 as a sentence, never a blank page
    s["model"].stop()
    b.expect_network_error(r"/models - Failed to load resource: the server responded with a status of 503",
                           "the model service is stopped")
    b.go("#/models")
    b.wait_text("main .error", "Cannot list the models: 503 UNAVAILABLE: model service unavailable")
    b.shot("16-service-down")
    b.go("#/nowhere")
    b.wait_text("main h1", "Page not found")
    s["model"].start()


if __name__ == "__main__":
    e.run_tests(globals())
