"""Issue 15 point 5: batchcli fits habits. --version; per-command --help with
examples; bash completion that completes; BATCH_API_URL with a trailing
slash; id prefixes in any case; job list --state/--model/--limit; job create
--format/--separator/--encoding/--quote/--no-header and - for stdin; an upload
progress bar on a terminal only; tables padded by display width, control
characters escaped, OBSERVED/MESSAGE cut with … to the terminal (in full with
--wide and --json)."""
import gzip
import json
import os
import pty
import re
import select
import subprocess
import tempfile

import bok_e2e as e

SCHEMA = {"type": "object", "properties": {
    "event_id": {"type": "string"}, "name": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["event_id", "amount"], "x-event-id": "event_id"}

TMP = tempfile.mkdtemp(prefix="bok_cli_habits_")


def tmpfile(name, data):
    p = os.path.join(TMP, name)
    with open(p, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return p


def cli(s, *args, stdin=None, url=None, env=None):
    en = dict(os.environ, BATCH_API_URL=url or (s.api_url if s else "http://127.0.0.1:1"))
    en.pop("COLUMNS", None)
    en.update(env or {})
    p = subprocess.run([e.binary("cli")] + list(args), capture_output=True, env=en, timeout=120,
                       input=stdin if stdin is not None else b"")
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def cli_tty(s, *args, columns=None):
    """Runs batchcli with stdout and stderr on a terminal; returns (rc, text)."""
    master, slave = pty.openpty()
    en = dict(os.environ, BATCH_API_URL=s.api_url)
    en.pop("COLUMNS", None)
    if columns:
        en["COLUMNS"] = str(columns)
    p = subprocess.Popen([e.binary("cli")] + list(args), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=en)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, out.decode("utf-8", "replace").replace("\r\n", "\n")


def model(s, name="habits"):
    rc, out, err = cli(s, "--json", "model", "create", name, tmpfile("schema.json", json.dumps(SCHEMA)))
    e.check(rc == 0, "model create: %s" % err)
    return json.loads(out)


def job_json(s, ref):
    rc, out, err = cli(s, "--json", "job", "status", ref)
    e.check(rc == 0, "job status %s: %s" % (ref, err))
    return json.loads(out)


def created_id(out):
    m = re.match(r"job ([0-9a-f]{8}) created", out)
    e.check(m, "job created line: %r" % out)
    return m.group(1)


def test_version_help_and_completion():
    rc, out, err = cli(None, "--version")
    e.check(rc == 0 and re.fullmatch(r"batchcli \d+\.\d+\.\d+\n", out), "--version: %r" % out)
    for words in (["model", "list"], ["model", "describe"], ["model", "create"], ["model", "update"],
                  ["model", "delete"], ["job", "list"], ["job", "status"], ["job", "create"], ["job", "watch"],
                  ["job", "cancel"], ["job", "rejected"], ["job", "errors"], ["job", "reprocess"], ["schema"],
                  ["reprocess"], ["completion"]):
        rc, out, err = cli(None, *(words + ["--help"]))
        e.check(rc == 0 and out.startswith("usage: batchcli %s" % " ".join(words)) and "\nExamples:\n  " in out, "%s --help: %r" % (words, out))
    rc, out, _ = cli(None, "job", "create", "--help")
    for flag in ("--format", "--separator", "--encoding", "--quote", "--no-header", "--wait"):
        e.check(flag in out, "job create --help names %s" % flag)
    rc, out, _ = cli(None, "help", "job", "list")
    e.check(rc == 0 and out.startswith("usage: batchcli job list [--state S]"), out)
    rc, script, err = cli(None, "completion", "bash")
    e.check(rc == 0 and "complete -o filenames -F _batchcli batchcli" in script, err)
    path = tmpfile("completion.bash", script)

    def complete(line):
        words = line.split(" ")
        sh = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _batchcli; printf '%%s\\n' \"${COMPREPLY[@]}\""
              % (path, " ".join("'%s'" % w for w in words), len(words) - 1))
        p = subprocess.run(["bash", "-c", sh], capture_output=True, timeout=20)
        return sorted(p.stdout.decode().split())

    e.check(complete("batchcli j") == ["job"], complete("batchcli j"))
    e.check(complete("batchcli job cr") == ["create"], complete("batchcli job cr"))
    e.check(complete("batchcli job create m f --enc") == ["--encoding"], "option")
    e.check(complete("batchcli job create m f --encoding utf-16") == ["utf-16", "utf-16be", "utf-16le"], "values")
    e.check(complete("batchcli job list --state PART") == ["PARTIAL_SUCCESS"], "states")
    rc, out, err = cli(None, "completion", "zsh")
    e.check(rc == 1 and "only bash" in err, err)


def test_url_ids_and_job_list_filters():
    with e.Stack(workers=1) as s:
        m = model(s)
        rc, out, err = cli(s, "model", "list", url=s.api_url + "/")
        e.check(rc == 0 and "habits" in out, "trailing slash: %r %r" % (out, err))
        rc, out, err = cli(s, "model", "list", url=s.api_url + "//")
        e.check(rc == 0 and "habits" in out, "two slashes: %r" % err)
        good = tmpfile("good.csv", "event_id,name,amount\na,A,1\n")
        bad = tmpfile("bad.csv", "event_id,name,amount\nb,B,x\n")
        ids = []
        for f in (good, bad, good):
            rc, out, err = cli(s, "job", "create", m["model_id"][:8].upper(), f, "--wait")
            e.check(rc in (0, 3), "create with an upper-case model prefix: %r %r" % (out, err))
            ids.append(created_id(out))
        rc, out, err = cli(s, "job", "status", ids[0].upper())
        e.check(rc == 0 and ids[0] in out, "upper-case job prefix: %r %r" % (out, err))
        full = job_json(s, ids[0])["job_id"]
        rc, out, err = cli(s, "--json", "job", "status", full.upper())
        e.check(rc == 0 and json.loads(out)["job_id"] == full, "upper-case full id: %r" % err)
        m2 = model(s, "other")
        rc, out, err = cli(s, "job", "create", "other", good, "--wait")
        e.check(rc == 0, err)
        other = created_id(out)

        def listed(*args):
            rc, out, err = cli(s, "--json", "job", "list", *args)
            e.check(rc == 0, "job list %s: %s" % (args, err))
            return [j["job_id"][:8] for j in json.loads(out)]

        e.check(listed() == [other, ids[2], ids[1], ids[0]], listed())
        e.check(listed("--state", "failed") == [ids[1]], listed("--state", "failed"))
        e.check(listed("--state=SUCCESS", "--limit", "2") == [other, ids[2]], "state + limit")
        e.check(listed("--model", "habits") == [ids[2], ids[1], ids[0]], "model filter")
        e.check(listed("--model", m2["model_id"][:6], "--state", "SUCCESS") == [other], "model + state")
        e.check(listed("--model", "habits", "--limit=1") == [ids[2]], "model + limit")
        rc, out, err = cli(s, "job", "list", "--limit", "0")
        e.check(rc == 1 and "--limit" in err, err)
        rc, out, err = cli(s, "job", "list", "--state", "DONE")
        e.check(rc == 1 and "state: expected" in err, err)
        rc, out, err = cli(s, "job", "list", "--state")
        e.check(rc == 1 and "--state needs a value" in err, err)
        rc, out, err = cli(s, "job", "list", "--state", "SUCCESS")
        e.check(rc == 0 and out.startswith("JOB      MODEL") and len(out.splitlines()) == 5, "table: %r" % out)


def test_create_options_and_stdin():
    with e.Stack(workers=1) as s:
        mid = model(s)["model_id"]

        def create(path_or_dash, *opts, stdin=None, want=0):
            rc, out, err = cli(s, "job", "create", mid, path_or_dash, "--wait", *opts, stdin=stdin)
            e.check(rc == want, "job create %s %s: rc %s %r %r" % (path_or_dash, opts, rc, out, err))
            return job_json(s, created_id(out)), out, err

        j, _, _ = create(tmpfile("semi.csv", "event_id;name;amount\ns1;S;1\n"), "--separator", ";")
        e.check(j["total"] == 1 and j["success"] == 1, j)
        j, _, _ = create(tmpfile("tab.tsv", "event_id\tname\tamount\nt1\tT\t1\n"), "--separator=\\t")
        e.check(j["success"] == 1, j)
        j, _, _ = create(tmpfile("rows.txt", '{"event_id":"n1","amount":1}\n'), "--format", "ndjson")
        e.check(j["success"] == 1, j)
        j, _, _ = create(tmpfile("l1.csv", "event_id,name,amount\nl1,Jos\xe9,1\n".encode("latin-1")),
                         "--encoding", "latin-1")
        e.check(j["success"] == 1, j)
        j, _, _ = create(tmpfile("u16.csv", "event_id,name,amount\nu1,\u00e9,1\n".encode("utf-16")),
                         "--encoding=utf-16", "--quote", '"')
        e.check(j["success"] == 1, j)
        j, _, _ = create(tmpfile("q.csv", "event_id,name,amount\nq1,'a,b',1\n"), "--quote", "'")
        e.check(j["success"] == 1, j)
        j, _, _ = create(tmpfile("nohead.csv", "h1,H,1\nh2,I,2\n"), "--no-header")
        e.check(j["total"] == 2 and j["success"] == 2, j)
        j, _, _ = create(tmpfile("head.csv", "event_id,name,amount\nh3,H,1\n"), "--no-header", "--header")
        e.check(j["total"] == 1 and j["success"] == 1, "the last of --no-header/--header wins: %s" % j)
        j, _, _ = create(tmpfile("z.csv.gz", gzip.compress(b"event_id,name,amount\nz1,Z,1\nz2,Z,2\n")))
        e.check(j["success"] == 2, j)
        # stdin, as CSV by content and as NDJSON by content
        j, _, _ = create("-", stdin=b"event_id,name,amount\nd1,D,1\nd2,D,2\nd3,D,3\n")
        e.check(j["total"] == 3 and j["success"] == 3 and j["file_name"] == "stdin", j)
        j, _, _ = create("-", stdin=b'{"event_id":"d4","amount":4}\n')
        e.check(j["success"] == 1, j)
        j, _, _ = create("-", "--encoding", "latin-1", "--separator", "|",
                         stdin="event_id|name|amount\nd5|\xe9|5\n".encode("latin-1"))
        e.check(j["success"] == 1, j)
        events = {x["key"]: json.loads(x["value"]) for x in e.kcat_consume(model_topic(s, mid), expect=16)}
        e.check(events["l1"]["name"] == "Jos\u00e9" and events["u1"]["name"] == "\u00e9" and
                events["d5"]["name"] == "\u00e9" and events["q1"]["name"] == "a,b" and events["h1"] == {"event_id": "h1", "name": "H", "amount": 1},
                "converted events: %s" % events)
        # unknown values: the gateway's 400 message, exit 1, no job
        for opts, msg in ((["--format", "xml"], "format: use csv or ndjson"),
                          (["--encoding", "ebcdic"], "encoding: use utf-8"),
                          (["--quote", "ab"], "quote: one printable ASCII character"),
                          (["--separator", "ab"], "separator:")):
            rc, out, err = cli(s, "job", "create", mid, tmpfile("x.csv", "event_id,amount\nx,1\n"), *opts)
            e.check(rc == 1 and msg in err and "(HTTP 400)" in err, "%s: %r" % (opts, err))
        rc, out, err = cli(s, "job", "create", mid, "x.csv", "--format")
        e.check(rc == 1 and "--format needs a value" in err, err)
        rc, out, err = cli(s, "job", "create", mid, tmpfile("g.csv.gz", b"not gzip\n"))
        e.check(rc == 3 and "FAILED: file is not valid gzip" in err, "corrupt gzip: %r" % err)


def model_topic(s, mid):
    st, m = s.http("GET", "/models/" + mid)
    return m["topic"]


def test_tables_on_a_terminal():
    with e.Stack(workers=1) as s:
        wide_name = "\u6ce8\u6587\u30c7\u30fc\u30bf"  # 注文データ: 5 double-width characters
        rc, out, err = cli(s, "--json", "model", "create", wide_name, tmpfile("schema.json", json.dumps(SCHEMA)))
        mid = json.loads(out)["model_id"]
        model(s, "plain")
        rc, out, err = cli(s, "model", "list")
        lines = out.splitlines()
        e.check(rc == 0 and any(wide_name in l for l in lines) and columns_align(lines),
                "model list aligned by display width:\n%s" % out)
        long_msg = "x" * 300
        data = ("event_id,name,amount\n"
                "\"line\nbreak\",N,notanumber\n"
                "e2,N,%s\n" % long_msg)
        rc, out, err = cli(s, "job", "create", mid, tmpfile("t.csv", data), "--wait")
        jid = created_id(out)
        # not a terminal: never cut, escaped, one line per cell
        rc, out, err = cli(s, "job", "rejected", jid)
        lines = out.splitlines()
        e.check(rc == 0 and len(lines) == 4, "one line per rejected cell: %r" % out)
        e.check(lines[2].split()[1] == "line\\nbreak", "newline escaped: %r" % lines[2])
        e.check(long_msg in lines[3], "full OBSERVED when not a terminal")
        # a terminal 120 columns wide: cut with …, every line fits
        rc, text = cli_tty(s, "job", "rejected", jid, columns=120)
        rows = [l for l in text.splitlines() if l]
        e.check(rc == 0 and len(rows) == 4 and all(e_width(l) <= 120 for l in rows), "fits 120:\n%s" % text)
        e.check("\u2026" in rows[3] and long_msg not in rows[3], "OBSERVED cut: %r" % rows[3])
        rc, text = cli_tty(s, "--wide", "job", "rejected", jid, columns=120)
        e.check(long_msg in text and "\u2026" not in text, "--wide: in full")
        rc, out, err = cli(s, "--json", "job", "rejected", jid)
        e.check(long_msg in out and "line\\nbreak" in out, "--json: in full")
        # the upload progress bar: on a terminal only
        big = "event_id,name,amount\n" + "".join("b%d,%s,%d\n" % (i, "n" * 40, i) for i in range(60000))
        path = tmpfile("big.csv", big)
        rc, text = cli_tty(s, "job", "create", mid, path)
        e.check(rc == 0 and re.search(r"uploading \[[#-]{30}\] 100%  \d+\.\d/\d+\.\d MB  \d+\.\d MB/s", text),
                "progress bar on a terminal: %r" % text[-300:])
        e.check(re.search(r"job [0-9a-f]{8} created\.", text), text[-200:])
        rc, out, err = cli(s, "job", "create", mid, path)
        e.check(rc == 0 and "uploading" not in err and "uploading" not in out and err == "", "quiet: %r" % err)


def e_width(s):
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def columns_align(lines):
    """The VERSION column ends at the same display column on every line."""
    ends = {e_width(lines[0][:lines[0].index("VERSION") + 7])}
    for l in lines[2:]:
        m = re.compile(r" +\d+ ").search(l, 9)
        ends.add(e_width(l[:m.end() - 1]))
    return len(ends) == 1


if __name__ == "__main__":
    e.run_tests(globals())
