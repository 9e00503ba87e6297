#!/usr/bin/env python3
"""Writes the messy sample files of the detection corpus (deterministic).
The expected schemas beside them (*.schema.json) are written by hand, not
by this script: they are what a data engineer expects, not what the code
happens to produce. Run from this folder: python3 make_corpus.py"""
import json

STATUSES = ["new", "paid", "shipped"]


def w(name, text):
    with open(name, "w", newline="") as f:
        f.write(text)


def orders():
    """60 rows: one blank event_id, price with 'abc' and 1e309, qty with an
    integer beyond 64 bits, zip codes with leading zeros, a one-value column,
    a 3-value status, booleans, vectors, optional notes, ISO times."""
    lines = ["event_id,timestamp,price,qty,zip,status,country,ok,vec,note,created_at"]
    for i in range(1, 61):
        eid = "" if i == 7 else "e%d" % i
        price = {10: "abc", 20: "1e309"}.get(i, "%d.%02d" % (i, i % 100))
        qty = "9223372036854775808" if i == 30 else str(i * 3)
        zipc = "%05d" % (i * 1234 % 100000) if i % 2 else str(90000 + i)
        note = "" if i % 3 == 0 else "note %d" % i
        vec = '"[%d, %d.5]"' % (i, i)
        lines.append("%s,%d,%s,%s,%s,%s,r,%s,%s,%s,2024-05-%02dT12:%02d:00+02:00" % (
            eid, 1714560000 + i * 60, price, qty, zipc, STATUSES[i % 3], "true" if i % 2 else "FALSE", vec, note,
            i % 28 + 1, i % 60))
    w("orders.csv", "\n".join(lines) + "\n")


def overflow_small():
    w("overflow_small.csv", "n,x\n1,1.5\n2,2.5\n9223372036854775808,1e309\n")


def overflow_many():
    lines = ["n,x"]
    for i in range(40):
        lines.append("%s,%s" % ("9223372036854775808" if i == 5 else str(i), "1e309" if i == 5 else "%d.25" % i))
    w("overflow_many.csv", "\n".join(lines) + "\n")


def events_ndjson(name):
    rows = []
    for i in range(30):
        r = {"id": "u-%03d" % i, "event_time": "2024-05-01T%02d:00:00.%03dZ" % (i % 24, i),
             "amount": i * 1.5 if i != 4 else 6, "count": i, "flag": i % 2 == 0,
             "meta": {"k": i}, "tags": [i, i + 0.5], "label": "x%d" % i}
        if i == 3:
            r["label"] = None
        if i == 5:
            r["count"] = "7"  # a string in an integer column: a misfit in NDJSON
        rows.append(json.dumps(r))
    w(name, "\n".join(rows) + "\n")


def iso_times():
    lines = ["when,day,timestamp,local"]
    samples = ["2024-05-01T12:00:00Z", "2024-05-01t12:00:00.5z", "2024-02-29T23:59:59.123456789+02:00",
               "1969-07-20T20:17:40-05:00", "2024-05-01 08:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
    for i in range(21):
        when = samples[i % len(samples)]
        lines.append("%s,2024-05-%02d,%d,2024-05-01T12:00:00" % (when, i + 1, 1714564800000 + i))
    w("iso_times.csv", "\n".join(lines) + "\n")


def ms_timestamp():
    w("ms_timestamp.csv", "name,timestamp\na,1714564800000\nb,1714564800001\n")


def codes():
    w("codes.csv", "code,amount,int_code,plain\n007,-0.5,01,0\n0123,0.25,02,10\n42,00.5,3,-7\n")


def booleans():
    lines = ["flag01,flag,yesno"]
    for i in range(24):
        lines.append("%d,%s,%s" % (i % 2, ["true", "0", "False", "1"][i % 4], "yes" if i % 2 else "no"))
    w("booleans.csv", "\n".join(lines) + "\n")


def malformed():
    # rows 3 (too few), 4 (too many) and 6 (quote never closed) are left out
    w("malformed.csv", 'a,b,c\n1,x,2\n2,y,3\n3,z\n4,w,5,extra\n5,v,6\n6,"open,7\n7,u,8\n')


def header_names():
    w("header_names.csv", " a ,,a,b,\"c\"\n1,2,3,x,4\n2,3,4,y,5\n")


def semicolon():
    w("semicolon.csv", "id;price;when_at\n1;2.5;1714564800\n2;3;1714564900\n")


if __name__ == "__main__":
    orders()
    overflow_small()
    overflow_many()
    events_ndjson("events.ndjson")
    events_ndjson("events_named.json")
    iso_times()
    ms_timestamp()
    codes()
    booleans()
    malformed()
    header_names()
    semicolon()
