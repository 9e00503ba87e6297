"""The user guide as a test (issue 16).

test_guide_walkthrough extracts every shell command from the code blocks of
the user guide (../shared/USER_GUIDE.md beside the repository), runs them in
the guide's order against a real stack on a real Kafka broker, and checks each
output against the guide's sample output: table headings and separators,
column alignment, value formats, rejected-row messages, JSON fields and
types. It fails when a command of the guide stops working, and when the guide
gains a command that no step below knows (or loses one a step expects).

From the guide's text to commands that run here:
- The commands run with bash from a scratch directory laid out like the
  repository root: `batchcli` and `batch.cli` made there by `make cli-links`
  (the rule `make up` runs at the root) into $BOK_BUILD_DIR, `sample-data/`
  and `schemas/` linking to the repository's. So the build under test is the
  one that runs (normal or ASan), and the checkout is never written to.
- `http://localhost:8000` (curl, `export BATCH_API_URL=...`) becomes the
  stack's URL; BATCH_API_URL is always set, so nothing reaches a stack that
  may be running on port 8000.
- The guide's placeholders become the real ids of what the walkthrough made,
  per command (see the steps): `<model_id>`, `model_123`, `a5b6c7d8`,
  `a6b7c8d9`, the UUIDs of the HTTP examples; `data.csv` becomes
  sample-data/sample.csv. The tenant `f47ac10b-...` of the guide's POST /jobs
  and GET/DELETE examples becomes `tenant_a`: the guide's own responses give
  that id as the tenant of the model it created with `X-Tenant-ID: tenant_a`.
- Set-up before the first command (PROLOGUE): the guide's examples assume a
  model and a finished job exist (its `job list` shows nine jobs), so the
  walkthrough first makes a model from schemas/new_model_schema.json and runs
  sample-data/sample.csv through it with the same CLI.
- The guide cancels the job it has just created and shows it PENDING; a file
  of a few hundred rows is processed in well under a second, so the steps that
  show or cancel a new job stop the stack's worker first and start it again
  after the cancel (the job really is pending; nothing is faked).

Not run (they need a Docker engine, which the test machines lack;
tests/e2e/test_compose.py checks the compose files statically): see NOT_RUN.

test_sample_ndjson_shows_what_its_readme_says and the csv part of the
walkthrough check the rejected rows against the tables of
sample-data/README.md. test_batch_cli_is_batchcli checks the `batch.cli`
alias: the build's and the install's symlink, the root links of `make up`.
"""
import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import bok_e2e as e

SRC = e.SRC
GUIDE = os.path.join(SRC, "..", "shared", "USER_GUIDE.md")
SAMPLES = os.path.join(SRC, "sample-data")
SCHEMAS = os.path.join(SRC, "schemas")
GUIDE_URL = "http://localhost:8000"

NOT_RUN = {
    r"^docker-compose ": "needs a Docker engine (none on the test machines); tests/e2e/test_compose.py checks "
                         "docker-compose.yml statically, including the `cli` service that gives the host `batch.cli`",
}
# the guide's `./batchcli`, and the names README/docs give the same program
CLI = r"(?:\./batchcli|\./batch\.cli|batchcli|batch\.cli)"
STATES = {"PENDING", "RUNNING", "SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"}
TYPES = {"STRING", "INTEGER", "FLOAT", "BOOLEAN", "CATEGORY", "TIMESTAMP", "VECTOR"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UUID_LIKE = re.compile(r"^\w{8}-\w{4}-\w{4}-\w{4}-\w{12}$")  # the guide's ids are not all hex
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# docs/CLI.md (the guide says "Sample output format TBD" for the model commands)
MODEL_LIST_HEADER = "MODEL    NAME        VERSION COLUMNS CREATED"
# SPEC §7: MISSING_COLUMN of a column that is neither event id nor event time
MISSING_OTHER = "The required column '{col}' is missing."
# the guide's job table heading has a typo that SPEC §10 says not to copy
TYPO = ("PROCESSSING", "PROCESSING")


def guide_text():
    if not os.path.exists(GUIDE):
        raise e.Skip("the user guide is not at %s (a copy of shared/ belongs beside the clone)" % os.path.normpath(GUIDE))
    with open(GUIDE) as f:
        return f.read()


# ---- the guide, parsed --------------------------------------------------------

def shell_commands(lines):
    """The commands of a shell block: `\\` continuations joined, comments and
    blank lines dropped."""
    out, cur = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1].strip() + " "
            continue
        cur += line.strip()
        if cur and not cur.startswith("#"):
            out.append(cur)
        cur = ""
    return out


def parse_guide(text):
    """[{heading, commands, outputs}]: one entry per shell code block. outputs
    are the code blocks after it under the same heading, as (label, lang, body),
    label being the line before the block (e.g. "**Sample Output:**")."""
    entries, heading, label = [], "", ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            body = lines[i + 1:j]
            if m.group(1) in ("bash", "sh", "shell", "console"):
                entries.append({"heading": heading, "commands": shell_commands(body), "outputs": []})
            elif entries and entries[-1]["heading"] == heading:
                entries[-1]["outputs"].append((label, m.group(1), "\n".join(body)))
            i, label = j + 1, ""
            continue
        if lines[i].startswith("#"):
            heading = lines[i].lstrip("#").strip()
        elif lines[i].strip():
            label = lines[i].strip()
        i += 1
    return entries


def example_json(body):
    """An example response of the guide as JSON (the guide annotates some with
    `// comments`)."""
    return json.loads(re.sub(r"(?m)\s//.*$", "", body))


def output(outputs, label_rx):
    for label, _, body in outputs:
        if re.search(label_rx, label):
            return body
    raise e.Failure("the guide has no output labelled /%s/ here; labels: %s" % (label_rx, [x[0] for x in outputs]))


# ---- output shapes --------------------------------------------------------------

def parse_table(text, what, strict=True):
    """A table as the guide prints them: a heading line, a line of dash runs
    (one per column), rows. Returns (names, [dict]). strict: every heading
    starts where its dash run starts and no cell runs into the gap between two
    columns (the guide's own samples are checked with strict=False: a few of
    its lines are a character off)."""
    lines = text.rstrip("\n").split("\n")
    e.check(len(lines) >= 2, "%s: no table:\n%s" % (what, text))
    header, sep = lines[0], lines[1]
    e.check(re.fullmatch(r"-+( +-+)*", sep), "%s: the second line is not dash runs: %r" % (what, sep))
    runs = [(m.start(), m.end()) for m in re.finditer(r"-+", sep)]
    names = header.split()
    e.check(len(names) == len(runs), "%s: %d headings over %d columns:\n%s\n%s" % (what, len(names), len(runs), header, sep))
    if strict:
        for (a, _), name in zip(runs, names):
            e.check(header[a:a + len(name)] == name, "%s: heading %s is not over its column:\n%s\n%s" % (what, name, header, sep))
    rows = []
    for line in lines[2:]:
        cells = []
        for k, (a, b) in enumerate(runs):
            nxt = runs[k + 1][0] if k + 1 < len(runs) else None
            if strict and nxt is not None:
                e.check(line[b:nxt].strip() == "", "%s: a cell runs into the gap after %s:\n%s\n%s\n%s"
                        % (what, names[k], header, sep, line))
            cells.append(line[a:nxt].strip() if nxt is not None else line[a:].strip())
        rows.append(dict(zip(names, cells)))
    return names, rows


NUM = r"\d{1,3}(?:,\d{3})*"
JOB_CELLS = {"JOB": r"[0-9a-f]{8}", "MODEL": r".{1,11}", "STATE": "|".join(sorted(STATES)), "TOTAL": NUM,
             "OK": NUM, "ERRORS": NUM, "PROGRESS": r"\[[#X-]{17}\] +\d{1,3}%", "WAITING": r"\d+:\d\d(?::\d\d)?",
             "PROCESSING": r"\d+:\d\d(?::\d\d)?"}


def check_job_rows(rows, what):
    for r in rows:
        for name, rx in JOB_CELLS.items():
            val = r.get(name, r.get(name.replace(TYPO[1], TYPO[0])))  # the guide's own rows: its heading
            e.check(val is not None and re.fullmatch(rx, val),
                    "%s: %s %r is not in the guide's format /%s/ (row %s)" % (what, name, val, rx, r))


def num(s):
    return int(s.replace(",", ""))


def job_table(out, guide_sample, what):
    """`job list` / `job status` output against the guide's sample table:
    the same heading (less the typo) and separator, rows in its format."""
    g = guide_sample.split("\n")
    got = out.split("\n")
    e.check(got[0] == g[0].replace(*TYPO), "%s: heading\n%r\nguide:\n%r" % (what, got[0], g[0]))
    e.check(got[1] == g[1], "%s: separator\n%r\nguide:\n%r" % (what, got[1], g[1]))
    _, rows = parse_table(out, what)
    check_job_rows(rows, what)
    return rows


def message_templates(guide_sample):
    """code -> the guide's messages with the column (and type) as {col}/{type}."""
    _, rows = parse_table(guide_sample, "the guide's rejected-rows sample", strict=False)
    t = {}
    for r in rows:
        msg = r["MESSAGE"].replace("'%s'" % r["COLUMN"], "'{col}'")
        if r["ERROR"] == "UNSUPPORTED_TYPE":
            msg = msg.replace("'%s'" % r["TYPE"], "'{type}'")
        t.setdefault(r["ERROR"], set()).add(msg)
    t.setdefault("MISSING_COLUMN", set()).add(MISSING_OTHER)
    return t


def rejected_table(out, guide_sample, what):
    """`job rejected` output against the guide's sample: the same headings,
    aligned columns, JSON observed values, and for every code of the guide its
    message (other codes: the docs/REJECTED_CODES.md style)."""
    gnames, _ = parse_table(guide_sample, "the guide's rejected-rows sample", strict=False)
    names, rows = parse_table(out, what)
    e.check(names == gnames, "%s: headings %s, guide %s" % (what, names, gnames))
    templates = message_templates(guide_sample)
    for r in rows:
        where = "%s: row %s" % (what, r)
        e.check(re.fullmatch(r"\d+", r["ROW"]), where)
        code, col, typ, msg = r["ERROR"], r["COLUMN"], r["TYPE"], r["MESSAGE"]
        if code == "MALFORMED_ROW":
            e.check(col == typ == "" and re.fullmatch(r"Row %s is malformed: .+\." % r["ROW"], msg), where)
        elif code == "OUT_OF_RANGE":
            e.check(typ in TYPES and re.fullmatch(r"The value for '%s' is out of range\. Provide .+\." % re.escape(col), msg), where)
        else:
            e.check(code in templates, "%s: code %s is neither the guide's nor documented" % (where, code))
            e.check(typ in TYPES, where)
            want = {m.format(col=col, type=typ) for m in templates[code]}
            e.check(msg in want, "%s: message %r, the guide's: %s" % (where, msg, sorted(want)))
        if r["OBSERVED"]:
            try:
                json.loads(r["OBSERVED"])
            except ValueError:
                raise e.Failure("%s: OBSERVED is not JSON" % where)
    return rows


def json_shape(example, got, what, same=None):
    """The answer has every field of the guide's example with the same JSON
    type; ids are UUIDs where the example's are id-shaped, times ISO-8601 with
    milliseconds; `same` lists fields that must equal given values."""
    if isinstance(example, list):
        e.check(isinstance(got, list), "%s: not an array: %r" % (what, got))
        for x in got:
            json_shape(example[0], x, what + "[]", same)
        return
    e.check(isinstance(got, dict), "%s: not an object: %r" % (what, got))
    for k, v in example.items():
        e.check(k in got, "%s: no field %r (the guide's example has it): %s" % (what, k, got))
        g = got[k]
        e.check(type(g) is type(v) or (isinstance(v, (int, float)) and type(g) in (int, float) and type(g) is not bool),
                "%s: %s is %r, the guide's example has a %s" % (what, k, g, type(v).__name__))
        if same and k in same:
            e.check(g == same[k], "%s: %s is %r, want %r" % (what, k, g, same[k]))
        elif k == "tenant_id":  # SPEC §3: a tenant id is 1-64 of [A-Za-z0-9._-], not a UUID
            e.check(re.fullmatch(r"[A-Za-z0-9._-]{1,64}", g), "%s: tenant_id %r" % (what, g))
        elif isinstance(v, str) and UUID_LIKE.match(v):
            e.check(UUID.match(g), "%s: %s %r is not a UUID" % (what, k, g))
        elif isinstance(v, str) and ISO_MS.match(v):
            e.check(ISO_MS.match(g), "%s: %s %r is not ISO-8601 with milliseconds" % (what, k, g))


# ---- sample-data/README.md ------------------------------------------------------

def readme_rejected(section):
    """{(row, column, code)} from a rejected-rows table of sample-data/README.md,
    and the rows it marks valid after updated_schema.json."""
    with open(os.path.join(SAMPLES, "README.md")) as f:
        text = f.read()
    part = text.split("## " + section, 1)[1].split("\n## ", 1)[0]
    lines = [l for l in part.splitlines() if l.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    want, valid_after = set(), set()
    for line in lines[2:]:
        cells = dict(zip(head, [c.strip() for c in line.strip("|").split("|")]))
        rows = [int(x) for x in cells["row"].split(",")]
        colcell = cells.get("column", cells.get("key"))
        cols = [""] if colcell == "—" else [c.strip() for c in colcell.split(",")]
        codes = re.findall(r"\b[A-Z]+(?:_[A-Z]+)+\b", cells["code"])
        pairs = list(zip(cols, codes)) if len(cols) == len(codes) else [(c, codes[0]) for c in cols]
        for r in rows:
            for c, code in pairs:
                want.add((r, c, code))
            if "yes" in cells.get("valid after `updated_schema.json`?", ""):
                valid_after.add(r)
    return want, valid_after


def csv_rows(path):
    with open(path, newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


# ---- running -----------------------------------------------------------------------

def scratch_root(tmp):
    """A directory laid out like the repository root after `make up`."""
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    r = subprocess.run(["make", "--no-print-directory", "-C", root, "-f", os.path.join(SRC, "Makefile"), "cli-links",
                        "BUILD=" + e.BUILD], capture_output=True, text=True, timeout=60)
    e.check(r.returncode == 0, "make cli-links: %s %s" % (r.stdout, r.stderr))
    for name in ("batchcli", "batch.cli"):
        e.check(os.path.realpath(os.path.join(root, name)) == os.path.realpath(e.binary("cli")),
                "make cli-links: %s -> %s" % (name, os.path.realpath(os.path.join(root, name))))
    for d in ("sample-data", "schemas"):
        os.symlink(os.path.join(SRC, d), os.path.join(root, d))
    return root


class Walk:
    """The guide's commands against one stack, in order; `ids` holds what the
    walkthrough made (placeholders are bound per step)."""

    def __init__(self, stack, root):
        self.s = stack
        self.root = root
        self.env = dict(os.environ, BATCH_API_URL=stack.api_url, BATCH_WATCH_INTERVAL="0.2",
                        PATH=root + os.pathsep + os.environ.get("PATH", ""))
        for k in ("BATCH_TENANT", "TENANT_HEADER"):
            self.env.pop(k, None)
        self.ids = {}

    def sh(self, cmd, want_rc=0, show=True):
        if GUIDE_URL in cmd:
            cmd = cmd.replace(GUIDE_URL, self.s.api_url)
        e.check("localhost:8000" not in cmd, "a command would reach port 8000: %s" % cmd)
        p = subprocess.run(["bash", "-c", cmd], cwd=self.root, env=self.env, capture_output=True, timeout=180)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        if show:
            print("$ " + cmd)
            for line in out.rstrip("\n").split("\n")[:40]:
                print("  " + line)
        e.check(p.returncode == want_rc, "`%s` exited %d (want %d)\nstdout:\n%s\nstderr:\n%s"
                % (cmd, p.returncode, want_rc, out, err))
        return out

    def pause_workers(self):
        for w in self.s.workers:
            w.stop()

    def resume_workers(self):
        for w in self.s.workers:
            if not w.alive():
                w.start()

    def full_id(self, kind, short):
        st, items = self.s.http("GET", "/" + kind)
        e.check(st == 200, "GET /%s: %s" % (kind, st))
        key = "model_id" if kind == "models" else "job_id"
        found = [x[key] for x in items if x[key].startswith(short)]
        e.check(len(found) == 1, "%s %s: %s" % (kind, short, found))
        return found[0]

    def job(self, short):
        st, j = self.s.http("GET", "/jobs/" + self.full_id("jobs", short))
        e.check(st == 200, "GET job %s: %s" % (short, st))
        return j


def bind(cmd, mapping):
    """The command with each placeholder token replaced."""
    for ph, real in mapping.items():
        cmd = re.sub(r"(?<![\w.-])" + re.escape(ph) + r"(?![\w-])", lambda _: real, cmd)
    return cmd


# ---- the steps: one per command of the guide --------------------------------------

def prologue(w):
    """What the guide's examples assume exists: a model and a finished job
    with rejected rows (made with the same CLI)."""
    print("-- set-up: a model from schemas/new_model_schema.json and a finished job over sample-data/sample.csv")
    out = w.sh("./batchcli model create payments ./schemas/new_model_schema.json")
    m = re.fullmatch(r"model ([0-9a-f]{8}) created \(version 1\)\.\n", out)
    e.check(m, "model create: %r" % out)
    w.ids["M"] = m.group(1)
    out = w.sh("./batchcli job create payments sample-data/sample.csv")
    # job warnings follow (SPEC 12: sample.csv's promo_code is unknown to version 1)
    m = re.fullmatch(r"job ([0-9a-f]{8}) created\.\n(warning: [^\n]*\n)*", out)
    e.check(m, "job create: %r" % out)
    w.ids["J1"] = m.group(1)
    w.sh("./batchcli job watch %s" % w.ids["J1"], want_rc=2)  # 2: PARTIAL_SUCCESS


def step_export(w, m, cmd, outputs):
    e.check(m.group(1) == GUIDE_URL, "the guide's BATCH_API_URL %s is not the CLI's default %s" % (m.group(1), GUIDE_URL))
    w.env["BATCH_API_URL"] = m.group(1).replace(GUIDE_URL, w.s.api_url)
    print("$ " + cmd.replace(GUIDE_URL, w.s.api_url) + "   (set in the environment of the commands below)")


def step_model_list(w, m, cmd, outputs):
    out = w.sh(cmd)
    lines = out.split("\n")
    e.check(lines[0] == MODEL_LIST_HEADER, "model list heading %r (docs/CLI.md: %r)" % (lines[0], MODEL_LIST_HEADER))
    _, rows = parse_table(out, "model list")
    e.check([(r["MODEL"], r["NAME"], r["VERSION"], r["COLUMNS"]) for r in rows] == [(w.ids["M"], "payments", "1", "13")]
            and ISO_MS.match(rows[0]["CREATED"]), "model list rows: %s" % rows)


def step_model_describe(w, m, cmd, outputs):
    out = w.sh(bind(cmd, {m.group(1): w.ids["M"]}))
    head, _, schema = out.partition("SCHEMA\n")
    e.check(re.match(r"MODEL    %s-[0-9a-f-]{27}\nNAME     payments\n" % w.ids["M"], head), "model describe: %r" % head)
    with open(os.path.join(SCHEMAS, "new_model_schema.json")) as f:
        e.check(json.loads(schema) == json.load(f), "model describe: the schema is not new_model_schema.json:\n%s" % schema)


def step_model_create(w, m, cmd, outputs):
    out = w.sh(cmd)
    mm = re.fullmatch(r"model ([0-9a-f]{8}) created \(version 1\)\.\n", out)
    e.check(mm, "model create: %r" % out)
    w.ids["N"] = mm.group(1)
    st, model = w.s.http("GET", "/models/" + w.full_id("models", w.ids["N"]))
    e.check(st == 200 and model["name"] == m.group(1), "the new model: %s %s" % (st, model))


def step_model_update(w, m, cmd, outputs):
    # the model of the finished job: its rejected rows are reprocessed below against this version
    out = w.sh(bind(cmd, {m.group(1): w.ids["M"]}))
    e.check(out == "model %s updated (version 2).\n" % w.ids["M"], "model update: %r" % out)


def step_model_delete(w, m, cmd, outputs):
    # the model `model create` just made (the other one has jobs the guide still uses)
    out = w.sh(bind(cmd, {m.group(1): w.ids["N"]}))
    e.check(out == "model %s deleted\n" % w.ids["N"], "model delete: %r" % out)
    st, models = w.s.http("GET", "/models")
    e.check(not any(x["model_id"].startswith(w.ids["N"]) for x in models), "the deleted model is still listed")


def step_job_list(w, m, cmd, outputs):
    out = w.sh(cmd)
    rows = job_table(out, output(outputs, "Sample Output"), "job list")
    total = csv_rows(os.path.join(SAMPLES, "sample.csv"))
    want_bad, _ = readme_rejected("`sample.csv`: the rejected rows")
    bad = len({r for r, _, _ in want_bad})
    e.check(len(rows) == 1, "job list: one job so far: %s" % rows)
    r = rows[0]
    e.check((r["JOB"], r["MODEL"], r["STATE"], num(r["TOTAL"]), num(r["OK"]), num(r["ERRORS"]))
            == (w.ids["J1"], "payments", "PARTIAL_SUCCESS", total, total - bad, bad),
            "job list: the sample.csv job: %s (want %d rows, %d rejected as sample-data/README.md says)" % (r, total, bad))


def step_job_create(w, m, cmd, outputs):
    w.pause_workers()  # so that the job is still PENDING for `job status` and `job cancel`
    out = w.sh(bind(cmd, {m.group(1): w.ids["M"], m.group(2): "sample-data/sample.csv"}))
    sample = output(outputs, "Sample Output").strip()
    rx = re.escape(sample).replace(re.escape("a5b6c7d8"), "([0-9a-f]{8})")
    mm = re.fullmatch(rx + "\n(warning: [^\n]*\n)*", out)  # + job warnings (SPEC 12)
    e.check(mm, "job create: %r, the guide's: %r" % (out, sample))
    w.ids["J2"] = mm.group(1)


def step_job_status(w, m, cmd, outputs):
    out = w.sh(bind(cmd, {m.group(1): w.ids["J2"]}))
    sample = output(outputs, "Sample Output")
    rows = job_table(out, sample, "job status")
    _, grows = parse_table(sample, "the guide's job status sample", strict=False)
    e.check(len(rows) == 1 and grows[0]["STATE"] == "PENDING", "job status: %s" % rows)
    r, g = rows[0], grows[0]
    e.check(r["JOB"] == w.ids["J2"] and r["STATE"] == g["STATE"] and r["OK"] == g["OK"] and r["ERRORS"] == g["ERRORS"]
            and r["PROGRESS"] == g["PROGRESS"] and num(r["TOTAL"]) == csv_rows(os.path.join(SAMPLES, "sample.csv")),
            "job status: %s, the guide's PENDING line: %s" % (r, g))


def step_job_cancel(w, m, cmd, outputs):
    out = w.sh(bind(cmd, {m.group(1): w.ids["J2"]}))
    want = output(outputs, "Sample Output").strip().replace("a5b6c7d8", w.ids["J2"])
    e.check(out == want + "\n", "job cancel: %r, want %r" % (out, want))
    e.check(w.job(w.ids["J2"])["state"] == "CANCELLED", "the job is not CANCELLED")
    w.resume_workers()


def step_job_rejected(w, m, cmd, outputs):
    out = w.sh(bind(cmd, {m.group(1): w.ids["J1"]}))  # the finished sample.csv job
    rows = rejected_table(out, output(outputs, "Sample Output"), "job rejected")
    want, _ = readme_rejected("`sample.csv`: the rejected rows")
    got = {(int(r["ROW"]), r["COLUMN"], r["ERROR"]) for r in rows}
    e.check(got == want, "job rejected differs from sample-data/README.md:\nonly in the output: %s\nonly in the README: %s"
            % (sorted(got - want), sorted(want - got)))
    e.check(len({c for _, _, c in got}) >= 5, "several codes")


def step_reprocess(w, m, cmd, outputs):
    out = w.sh(bind(cmd, {m.group(1): w.ids["J1"]}))
    sample = output(outputs, "Sample Output").strip()
    # the guide's line (with the id given), then the child job to follow (issue 14)
    mm = re.fullmatch(re.escape(sample).replace("a5b6c7d8", "([0-9a-f]{8})") + "\nnew job: ([0-9a-f]{8})\n", out)
    e.check(mm, "reprocess: %r, the guide's: %r" % (out, sample))
    e.check(mm.group(1) == w.ids["J1"], "the guide's line echoes the id it was given: %r" % out)
    rid = w.full_id("jobs", mm.group(2))
    j = w.s.wait_job(rid)
    want, valid_after = readme_rejected("`sample.csv`: the rejected rows")
    bad = len({r for r, _, _ in want})
    e.check(j["parent_job_id"] == w.full_id("jobs", w.ids["J1"]), "reprocess: parent %s" % j)
    e.check((j["state"], j["total"], j["success"], j["errors"])
            == ("PARTIAL_SUCCESS", bad, len(valid_after), bad - len(valid_after)),
            "reprocess after updated_schema.json: %s; sample-data/README.md says %d of %d rows become valid"
            % (j, len(valid_after), bad))


def step_schema(w, m, cmd, outputs):
    out = w.sh(cmd)
    s = json.loads(out)
    with open(os.path.join(w.root, m.group(1)), newline="") as f:
        header = next(csv.reader(f))
    e.check(s.get("type") == "object" and list(s.get("properties", {})) == header,
            "schema: the properties are not the file's columns %s: %s" % (header, out))
    # docs/CLI.md: "prints a schema ready for model create"
    st, body = w.s.http("POST", "/models", {"name": "suggested", "schema": s}, tenant="guide-schema-check")
    e.check(st == 201, "the suggested schema is refused: %s %s" % (st, body))


def curl_json(w, cmd):
    out = w.sh(cmd)
    try:
        return json.loads(out)
    except ValueError:
        raise e.Failure("`%s` did not answer JSON: %r" % (cmd, out))


def step_get_models(w, m, cmd, outputs):
    example = example_json(output(outputs, r"Example Response \(200"))
    got = curl_json(w, cmd)
    tenant = m.group(1) or "tenant_a"
    if tenant == "tenant_a":
        json_shape(example, got, cmd, same={"tenant_id": "tenant_a"})
        e.check([x["name"] for x in got] == ["payments"], "GET /models: %s" % got)
    else:  # another tenant sees none of tenant_a's models
        e.check(got == [], "GET /models for %s: %s" % (tenant, got))


def step_post_model(w, m, cmd, outputs):
    example = example_json(output(outputs, r"Example Response \(201"))
    sent = json.loads(shlex.split(cmd)[shlex.split(cmd).index("-d") + 1])
    got = curl_json(w, cmd)
    json_shape(example, got, "POST /models", same={"tenant_id": "tenant_a", "name": sent["name"], "schema": sent["schema"]})
    w.ids["456a7890-b1cd-23ef-45gh-67890ijklmno"] = got["model_id"]


TENANT_PH = "f47ac10b-58cc-4372-a567-0e02b2c3d479"


def step_post_job(w, m, cmd, outputs):
    example = example_json(output(outputs, r"Example Response \(202"))
    w.pause_workers()  # the guide's answer, GET and DELETE show a PENDING job
    model = w.ids["456a7890-b1cd-23ef-45gh-67890ijklmno"]
    got = curl_json(w, bind(cmd, {TENANT_PH: "tenant_a", "456a7890-b1cd-23ef-45gh-67890ijklmno": model}))
    json_shape(example, got, "POST /jobs", same={"tenant_id": "tenant_a", "model_id": model, "state": "PENDING",
                                                   "success": 0, "errors": 0})
    w.ids["123e4567-e89b-12d3-a456-426614174000"] = got["job_id"]


def not_found(w, cmd, outputs):
    """The same command with the guide's own id, which names nothing here."""
    got = curl_json(w, bind(cmd, {TENANT_PH: "tenant_a"}))
    e.check(got == example_json(output(outputs, r"Example Response \(404")), "404 example: %s" % got)


def step_get_job(w, m, cmd, outputs):
    jid = w.ids["123e4567-e89b-12d3-a456-426614174000"]
    got = curl_json(w, bind(cmd, {TENANT_PH: "tenant_a", m.group(1): jid}))
    json_shape(example_json(output(outputs, r"Job Pending")), got, "GET /jobs/:id",
               same={"tenant_id": "tenant_a", "job_id": jid, "state": "PENDING"})
    json_shape(example_json(output(outputs, r"Job Success")), got, "GET /jobs/:id", same={"job_id": jid})
    not_found(w, cmd, outputs)


def step_delete_job(w, m, cmd, outputs):
    jid = w.ids["123e4567-e89b-12d3-a456-426614174000"]
    got = curl_json(w, bind(cmd, {TENANT_PH: "tenant_a", m.group(1): jid}))
    e.check(got == example_json(output(outputs, r"Example Response \(200")), "DELETE /jobs/:id: %s" % got)
    not_found(w, cmd, outputs)
    w.resume_workers()


CURL_URL = re.escape(GUIDE_URL)
STEPS = [
    (r"^export BATCH_API_URL=(\S+)$", step_export),
    (r"^%s model list$" % CLI, step_model_list),
    (r"^%s model describe (\S+)$" % CLI, step_model_describe),
    (r"^%s model create (\S+) (\./schemas/new_model_schema\.json)$" % CLI, step_model_create),
    (r"^%s model update (\S+) \./schemas/updated_schema\.json$" % CLI, step_model_update),
    (r"^%s model delete (\S+)$" % CLI, step_model_delete),
    (r"^%s job list$" % CLI, step_job_list),
    (r"^%s job create (\S+) (\S+)$" % CLI, step_job_create),
    (r"^%s job status (\S+)$" % CLI, step_job_status),
    (r"^%s job cancel (\S+)$" % CLI, step_job_cancel),
    (r"^%s job rejected (\S+)$" % CLI, step_job_rejected),
    (r"^%s (?:job )?reprocess (\S+)$" % CLI, step_reprocess),
    (r"^%s schema (\S+\.csv)$" % CLI, step_schema),
    (r'^curl (?:-H "X-Tenant-ID: ([\w.-]+)" )?%s/models$' % CURL_URL, step_get_models),
    (r"^curl -X POST -H \"Content-Type: application/json\" .*-d '.*' %s/models$" % CURL_URL, step_post_model),
    (r"^curl -X POST .*-F \"file=@\./sample-data/sample\.csv\" %s/jobs$" % CURL_URL, step_post_job),
    (r'^curl -H "X-Tenant-ID: [\w.-]+" %s/jobs/(\S+)$' % CURL_URL, step_get_job),
    (r'^curl -X DELETE -H "X-Tenant-ID: [\w.-]+" %s/jobs/(\S+)$' % CURL_URL, step_delete_job),
]


def plan(entries):
    """[(command, step or None, match or reason, outputs)] in the guide's
    order; fails on a command no step knows, or a step no command uses."""
    out, used = [], set()
    for ent in entries:
        for cmd in ent["commands"]:
            reason = [r for rx, r in NOT_RUN.items() if re.search(rx, cmd)]
            if reason:
                out.append((cmd, None, reason[0], ent["outputs"]))
                continue
            hits = [(rx, fn, re.match(rx, cmd)) for rx, fn in STEPS if re.match(rx, cmd)]
            e.check(len(hits) == 1, "USER_GUIDE.md (%s): %d steps of tests/e2e/test_user_guide.py know the command\n  %s\n"
                    "add one (or a NOT_RUN entry with the reason)" % (ent["heading"], len(hits), cmd))
            used.add(hits[0][0])
            out.append((cmd, hits[0][1], hits[0][2], ent["outputs"]))
    unused = [rx for rx, _ in STEPS if rx not in used]
    e.check(not unused, "the guide no longer has a command for these steps: %s" % unused)
    return out


# ---- tests -----------------------------------------------------------------------------

def test_guide_samples_parse():
    """The guide's own sample tables fit the shapes the walkthrough checks
    (so a check here is the guide's format, not one of ours)."""
    entries = parse_guide(guide_text())
    todo = plan(entries)
    e.check(sum(1 for _, fn, _, _ in todo if fn) >= 15, "too few commands found: %s" % [c for c, _, _, _ in todo])
    for cmd, fn, _, outputs in todo:
        if fn in (step_job_list, step_job_status):
            _, rows = parse_table(output(outputs, "Sample Output"), "guide: " + cmd, strict=False)
            e.check(rows, "guide: %s has no sample rows" % cmd)
            check_job_rows(rows, "guide: " + cmd)
        if fn is step_job_rejected:
            t = message_templates(output(outputs, "Sample Output"))
            e.check(len(t) == 13, "the guide's rejected sample has 13 codes (MISSING_COLUMN twice), not %d: %s" % (len(t), sorted(t)))
        for label, lang, body in outputs:
            if lang == "json":
                example_json(body)


def test_guide_walkthrough():
    text = guide_text()
    e.skip_if_missing("cli", "model", "job", "worker", "gateway")
    e.check(shutil.which("curl"), "curl is not installed (deploy/deps.sh installs it)")
    todo = plan(parse_guide(text))
    tmp = tempfile.mkdtemp(prefix="bok-guide-")
    try:
        root = scratch_root(tmp)
        with e.Stack(workers=1) as s:
            w = Walk(s, root)
            prologue(w)
            print("-- the guide's commands, in order")
            for cmd, fn, m, outputs in todo:
                if fn is None:
                    print("$ %s\n  NOT RUN: %s" % (cmd, m))
                    continue
                fn(w, m, cmd, outputs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sample_ndjson_shows_what_its_readme_says():
    sample = [output(ent["outputs"], "Sample Output") for ent in parse_guide(guide_text())
              if any(re.search(r" job rejected ", c) for c in ent["commands"])][0]
    e.skip_if_missing("cli", "model", "job", "worker", "gateway")
    tmp = tempfile.mkdtemp(prefix="bok-guide-")
    try:
        root = scratch_root(tmp)
        with e.Stack(workers=1) as s:
            w = Walk(s, root)
            w.sh("./batchcli model create payments ./schemas/new_model_schema.json")
            out = w.sh("./batchcli job create payments sample-data/sample.ndjson")
            jid = out.split()[1]
            w.sh("./batchcli job watch " + jid, want_rc=2)
            j = w.job(jid)
            want, _ = readme_rejected("`sample.ndjson`: the rejected rows")
            with open(os.path.join(SAMPLES, "sample.ndjson")) as f:
                total = sum(1 for line in f if line.strip())
            bad = len({r for r, _, _ in want})
            e.check((j["state"], j["total"], j["success"], j["errors"]) == ("PARTIAL_SUCCESS", total, total - bad, bad),
                    "sample.ndjson: %s, want %d rows, %d rejected" % (j, total, bad))
            rows = rejected_table(w.sh("./batchcli job rejected " + jid), sample, "job rejected (ndjson)")
            got = {(int(r["ROW"]), r["COLUMN"], r["ERROR"]) for r in rows}
            e.check(got == want, "sample.ndjson differs from sample-data/README.md:\nonly in the output: %s\n"
                    "only in the README: %s" % (sorted(got - want), sorted(want - got)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_batch_cli_is_batchcli():
    """`batch.cli` is batchcli under the guide's name: beside it in the build,
    in an install (`cmake --install`), and at the root after `make up`."""
    e.skip_if_missing("cli")
    build_alias = os.path.join(os.path.dirname(e.binary("cli")), "batch.cli")
    e.check(os.path.islink(build_alias) and os.readlink(build_alias) == "batchcli", "build: %s" % build_alias)
    tmp = tempfile.mkdtemp(prefix="bok-guide-")
    try:
        prefix = os.path.join(tmp, "prefix")
        r = subprocess.run(["cmake", "--install", e.BUILD, "--prefix", prefix], capture_output=True, text=True, timeout=120)
        e.check(r.returncode == 0, "cmake --install: %s %s" % (r.stdout, r.stderr))
        inst = os.path.join(prefix, "bin", "batch.cli")
        e.check(os.path.islink(inst) and os.readlink(inst) == "batchcli", "install: %s" % os.listdir(os.path.dirname(inst)))
        root = scratch_root(tmp)
        outs = []
        for prog in (os.path.join(prefix, "bin", "batchcli"), inst, "./batchcli", "./batch.cli"):
            for args in (["--help"], ["schema", "sample-data/sample.csv"]):
                p = subprocess.run([prog] + args, cwd=root, capture_output=True, timeout=60)
                e.check(p.returncode == 0, "%s %s: %s" % (prog, args, p.stderr))
                outs.append((tuple(args), p.stdout))
        for args in (["--help"], ["schema", "sample-data/sample.csv"]):
            e.check(len({o for a, o in outs if a == tuple(args)}) == 1, "the four names answer %s differently" % args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(SRC, "Makefile")) as f:
        mk = f.read()
    e.check(re.search(r"(?m)^up:.*\n(\t.*\n)*?\t.*\$\(MAKE\).* cli-links\s*$", mk), "make up does not run cli-links")
    with open(os.path.join(SRC, ".gitignore")) as f:
        ignored = set(f.read().split())
    e.check({"/batchcli", "/batch.cli"} <= ignored, ".gitignore lacks the root links")


if __name__ == "__main__":
    e.run_tests(globals())
