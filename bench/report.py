#!/usr/bin/env python3
"""bench/report.py — turns bench/run.sh's raw rows into latest.md, latest.csv and latest.png.

Medians and spreads (min-max) over the rounds; ferry's ratio to each peer is the median of
the per-round ratios (rounds alternate the proxies, so round r of ferry and of a peer ran
side by side, under the same conditions)."""
import sys
sys.dont_write_bytecode = True
import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import time

PROXIES = ["ferry", "nginx", "haproxy", "h2o"]
PEERS = PROXIES[1:]
SCENARIOS = {
    "1": "HTTP/1.1 keep-alive, wrk -c 64 -> HTTP/1.1 pool",
    "2": "h2 over TLS, h2load -c 16 -m 10 -> HTTP/1.1",
    "3": "h2c gRPC-shaped POST (64 B), h2load -c 16 -m 10 -> h2c upstream",
    "4a": "new connection per request (wrk -c 64, Connection: close)",
    "4b": "new TLS connection per request, full handshake (8 at a time)",
    "4c": "new TLS connection per request, resumed session (8 at a time)",
    "5": "10,000 idle HTTP/1.1 keep-alive client connections",
    "6a": "upstream reuse, wrk -c 128 > keepalive 32 (defaults)",
    "6b": "upstream reuse, backend closes idle connections after 2 s",
    "7": "1 GiB response streamed through the proxy",
    "8": "HTTP/1.1 keep-alive, wrk -c 64 -> HTTP/1.1 over TLS pool (not an issue 7 scenario)",
}
ORDER = ["1", "2", "3", "4a", "4b", "4c", "5", "6a", "6b", "7", "8"]
NUM = ["requests", "seconds", "rps", "p50_ms", "p99_ms", "errors", "cpu_us_per_req",
       "cpu0_busy_pct", "cpu1_busy_pct", "cpu0_other_pct", "upstream_conns", "req_per_upstream_conn",
       "peak_rss_kb", "extra_num"]


def fnum(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def load(raw):
    rows = []
    with open(raw) as f:
        for r in csv.DictReader(f):
            ex = r.get("extra", "")
            r["extra_num"] = ex if ex and "=" not in ex else ""
            if ex.startswith("resumed="):
                r["resumed"] = ex.split("=", 1)[1]
            rows.append(r)
    return rows


def agg(vals):
    v = [x for x in (fnum(a) for a in vals) if x is not None]
    if not v:
        return None
    return statistics.median(v), min(v), max(v)


def fmt(x, nd=1):
    if x is None:
        return "–"
    if abs(x) >= 100 and nd <= 1:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}"


def cell(a, nd=1, spread=True):
    if a is None:
        return "–"
    m, lo, hi = a
    if not spread or lo == hi:
        return fmt(m, nd)
    return f"{fmt(m, nd)} ({fmt(lo, nd)}–{fmt(hi, nd)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--counts")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", default="?")
    ap.add_argument("--duration", default="?")
    ap.add_argument("--elapsed", default="?")
    ap.add_argument("--ferry-version", default="")
    ap.add_argument("--count-n", default="?")
    ap.add_argument("--timestamped", action="store_true")
    a = ap.parse_args()
    rows = load(a.raw)
    counts = {}
    if a.counts and os.path.exists(a.counts):
        with open(a.counts) as f:
            for r in csv.DictReader(f):
                counts[r["proxy"]] = r

    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["proxy"]), []).append(r)
    scen = [s for s in ORDER if any(k[0] == s for k in by)]
    proxies_seen = [p for p in PROXIES + ["direct", "floor"] if any(k[1] == p for k in by)]

    def A(s, p, m):
        return agg([r[m] for r in by.get((s, p), []) if not r["note"].startswith("n/a")])

    def na(s, p):
        for r in by.get((s, p), []):
            if r["note"].startswith("n/a"):
                return r["note"]
        return None

    def paired_ratio(s, p, m):
        """median over rounds of ferry/peer for metric m (rounds paired)."""
        f = {r["round"]: fnum(r[m]) for r in by.get((s, "ferry"), [])}
        g = {r["round"]: fnum(r[m]) for r in by.get((s, p), [])}
        rs = [f[k] / g[k] for k in f if k in g and f[k] and g[k]]
        return statistics.median(rs) if rs else None

    def reuse(s, p):
        v = []
        for r in by.get((s, p), []):
            n, u = fnum(r["requests"]), fnum(r["upstream_conns"])
            if n and u is not None:
                v.append(100.0 * max(0.0, 1 - u / n))
        return agg(v)

    # ------------------------------------------------------------ CSV (aggregated)
    os.makedirs(a.out, exist_ok=True)
    csv_path = os.path.join(a.out, "latest.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        hdr = ["scenario", "proxy", "rounds", "status"]
        for m in NUM:
            name = "extra" if m == "extra_num" else m
            hdr += [f"{name}_median", f"{name}_min", f"{name}_max"]
        hdr += ["upstream_reuse_pct_median", "instr_per_req", "syscalls_per_req"]
        w.writerow(hdr)
        for s in scen:
            for p in proxies_seen:
                if (s, p) not in by:
                    continue
                line = [s, p, len(by[(s, p)]), na(s, p) or "ok"]
                for m in NUM:
                    x = A(s, p, m)
                    line += list(x) if x else ["", "", ""]
                ru = reuse(s, p)
                line.append(f"{ru[0]:.3f}" if ru else "")
                c = counts.get(p, {}) if s == "1" else {}
                line += [c.get("instr_per_req", ""), c.get("syscalls_per_req", "")]
                w.writerow(line)

    # ------------------------------------------------------------ markdown
    L = []
    L.append("# ferry beside nginx, HAProxy and h2o")
    L.append("")
    L.append(f"Generated by `make bench` (bench/run.sh) on {time.strftime('%Y-%m-%d %H:%M %Z')}; "
             f"{a.ferry_version}; nginx, HAProxy and h2o from Debian 12. "
             f"{a.rounds} round(s) of {a.duration} s per run, proxies alternated "
             f"(ferry, nginx, HAProxy, h2o, ferry, …); {a.elapsed} s of measurement. "
             "Each proxy: one worker/thread on CPU 0; load generator and backend (nginx, one "
             "worker) on CPU 1; loopback. Cells: median (min–max) over the rounds. "
             "See [bench/README.md](../README.md) for the method.")
    L.append("")
    L.append("Columns: **req/s**; **p50/p99** latency in ms (wrk --latency; h2load per-request "
             "log; our Go client for 4b/4c); **CPU µs/req** = proxy utime+stime over the "
             "measured window ÷ requests; **CPU0/CPU1** busy % (proxy core / load+backend "
             "core); **up conns** = connections the backend accepted during the window, "
             "**req/up** = requests per upstream connection; **RSS** = peak RSS (VmHWM, summed "
             "over the proxy's processes) in MiB; **err** = non-2xx + socket errors (the worst round). "
             "CPU0 (others) is the share of the proxy's core used by anything but the proxy "
             "during the window: other work on the machine, which makes that run noisier.")
    L.append("")
    others = [fnum(r.get("cpu0_other_pct")) for r in rows]
    others = [x for x in others if x is not None]
    if others and statistics.median(others) > 10:
        L.append(f"**Warning: the machine was busy with other work during this run** (median "
                 f"{statistics.median(others):.0f} % of the proxy's core, up to {max(others):.0f} %, "
                 "went to other processes). Requests/s and latencies are then lower and noisier "
                 "than on a quiet machine and differ between proxies by chance; CPU µs/req (the "
                 "proxy's own CPU time) is less affected, and the callgrind/strace counts not at all.")
        L.append("")
    for s in scen:
        L.append(f"## {s}. {SCENARIOS.get(s, s)}")
        L.append("")
        if s == "5":
            L.append("| proxy | bytes of RSS per idle connection | connections served | peak RSS MiB | note |")
            L.append("|---|---|---|---|---|")
            for p in proxies_seen:
                if (s, p) not in by:
                    continue
                if na(s, p):
                    L.append(f"| {p} | n/a | | | {na(s, p)[5:]} |")
                    continue
                hw = A(s, p, "peak_rss_kb")
                L.append(f"| {p} | {cell(A(s, p, 'extra_num'), 0)} | {cell(A(s, p, 'requests'), 0, False)} "
                         f"| {fmt(hw[0] / 1024 if hw else None)} | {by[(s, p)][-1]['note']} |")
            L.append("")
            continue
        if s == "7":
            L.append("| proxy | MiB/s | seconds | CPU s per GiB | peak RSS MiB | err |")
            L.append("|---|---|---|---|---|---|")
            for p in proxies_seen:
                if (s, p) not in by:
                    continue
                if na(s, p):
                    L.append(f"| {p} | n/a | | | | {na(s, p)[5:]} |")
                    continue
                cpu = A(s, p, "cpu_us_per_req")
                hw = A(s, p, "peak_rss_kb")
                L.append(f"| {p} | {cell(A(s, p, 'extra_num'), 0)} | {cell(A(s, p, 'seconds'), 2)} | "
                         f"{fmt(cpu[0] / 1e6 if cpu else None, 2)} | "
                         f"{cell(tuple(x / 1024 for x in hw) if hw else None)} | "
                         f"{fmt(A(s, p, 'errors')[0] if A(s, p, 'errors') else None, 0)} |")
            L.append("")
            continue
        extra_col = s in ("4c",)
        hdr = "| proxy | req/s | p50 ms | p99 ms | CPU µs/req | CPU0 % (others) | CPU1 % | up conns | req/up | reuse % | RSS MiB | err |"
        sep = "|---|---|---|---|---|---|---|---|---|---|---|---|"
        if s == "1" and counts:
            hdr += " instr/req | syscalls/req |"
            sep += "---|---|"
        if extra_col:
            hdr += " resumed |"
            sep += "---|"
        L.append(hdr)
        L.append(sep)
        for p in proxies_seen:
            if (s, p) not in by:
                continue
            if na(s, p):
                L.append(f"| {p} | n/a: {na(s, p)[5:]} |" + " |" * 10)
                continue
            hw = A(s, p, "peak_rss_kb")
            err = A(s, p, "errors")
            ru = reuse(s, p)
            row = (f"| {p} | {cell(A(s, p, 'rps'), 0)} | {cell(A(s, p, 'p50_ms'), 2, False)} | "
                   f"{cell(A(s, p, 'p99_ms'), 2)} | {cell(A(s, p, 'cpu_us_per_req'), 1)} | "
                   f"{cell(A(s, p, 'cpu0_busy_pct'), 0, False)} ({cell(A(s, p, 'cpu0_other_pct'), 0, False)}) | {cell(A(s, p, 'cpu1_busy_pct'), 0, False)} | "
                   f"{cell(A(s, p, 'upstream_conns'), 0, False)} | {cell(A(s, p, 'req_per_upstream_conn'), 0, False)} | "
                   f"{fmt(ru[0], 3) if ru and p != 'direct' else '–'} | "
                   f"{fmt(hw[0] / 1024 if hw and hw[0] else None)} | {fmt(err[2] if err else None, 0)} |")
            if s == "1" and counts:
                c = counts.get(p, {})
                ipr = fnum(c.get("instr_per_req"))
                row += f" {fmt(ipr / 1000, 1) + 'k' if ipr else '–'} | {c.get('syscalls_per_req') or '–'} |"
            if extra_col:
                res = [fnum(r.get("resumed")) for r in by[(s, p)]]
                req = [fnum(r.get("requests")) for r in by[(s, p)]]
                tot = sum(x for x in req if x)
                row += f" {100 * sum(x for x in res if x) / tot:.0f} % |" if tot else " – |"
            L.append(row)
        notes = sorted({r["note"] for k, v in by.items() if k[0] == s for r in v
                        if r["note"] and not r["note"].startswith("n/a")})
        if notes:
            L.append("")
            L.append("Note: " + "; ".join(notes) + ".")
        L.append("")

    # ratios
    L.append("## ferry ÷ peer (median of per-round ratios)")
    L.append("")
    L.append("Below 1 is better for ferry in CPU µs/req and p99; above 1 is better in req/s.")
    L.append("")
    L.append("| scenario | metric | ÷ nginx | ÷ HAProxy | ÷ h2o |")
    L.append("|---|---|---|---|---|")
    for s in scen:
        if s == "5" or s == "7":
            continue
        for m, label in (("rps", "req/s"), ("cpu_us_per_req", "CPU µs/req"), ("p99_ms", "p99")):
            cells = []
            for p in PEERS:
                r = paired_ratio(s, p, m)
                cells.append(f"{r:.2f}" if r else ("n/a" if na(s, p) else "–"))
            L.append(f"| {s} | {label} | " + " | ".join(cells) + " |")
    for s, m, label in (("5", "extra_num", "RSS bytes/idle conn"), ("7", "extra_num", "MiB/s"),
                        ("7", "peak_rss_kb", "peak RSS")):
        if s not in scen:
            continue
        cells = []
        for p in PEERS:
            r = paired_ratio(s, p, m)
            cells.append(f"{r:.2f}" if r else "–")
        L.append(f"| {s} | {label} | " + " | ".join(cells) + " |")
    if counts.get("ferry"):
        for m, label in (("instr_per_req", "instructions/req"), ("syscalls_per_req", "syscalls/req")):
            f = fnum(counts["ferry"].get(m))
            cells = []
            for p in PEERS:
                g = fnum(counts.get(p, {}).get(m))
                cells.append(f"{f / g:.2f}" if f and g else "–")
            L.append(f"| 1 (counts) | {label} | " + " | ".join(cells) + " |")
    L.append("")

    # targets
    L.append("## Issue 7 targets")
    L.append("")
    L.append("| target | ferry | bar | met |")
    L.append("|---|---|---|---|")

    def med(s, p, m):
        x = A(s, p, m)
        return x[0] if x else None

    def f2(x, digits=2):
        if x is None:
            return "–"
        return fmt(x, 0) if abs(x) >= 1000 else fmt(x, digits)

    def tgt(name, val, bar, ok, unit="", digits=2):
        L.append(f"| {name} | {f2(val, digits)}{unit} | {f2(bar, digits)}{unit} | "
                 f"{'yes' if ok else ('no' if ok is not None else '–')} |")

    for s in ("1", "2", "3"):
        if s not in scen:
            continue
        peers = [med(s, p, "cpu_us_per_req") for p in PEERS]
        peers = [x for x in peers if x]
        f = med(s, "ferry", "cpu_us_per_req")
        if peers and f:
            bar = 0.8 * min(peers)
            tgt(f"{s}: CPU µs/req ≤ 0.8 × best peer", f, bar, f <= bar)
        fl = med(s, "floor", "cpu_us_per_req")
        if s == "1" and peers and fl:
            # Not a target: what bench/floor.c (recv and send, no HTTP) costs beside the bar,
            # as a ratio to the round's cheapest peer and to ferry, paired per round.
            def per_round(p):
                return {r["round"]: fnum(r["cpu_us_per_req"]) for r in by.get((s, p), [])}
            flr, fer = per_round("floor"), per_round("ferry")
            pr = [per_round(p) for p in PEERS]
            vs_peer = [flr[k] / min(d[k] for d in pr if d.get(k)) for k in flr
                       if flr[k] and any(d.get(k) for d in pr)]
            vs_ferry = [fer[k] / flr[k] for k in flr if flr[k] and fer.get(k)]
            L.append(f"| 1: (not a target) the floor, bench/floor.c: "
                     f"{statistics.median(vs_peer):.2f} × the round's cheapest peer; ferry "
                     f"{statistics.median(vs_ferry):.2f} × the floor | {f2(fl)} | "
                     f"{f2(0.8 * min(peers))} | – |")
    if counts.get("ferry"):
        f, g = fnum(counts["ferry"].get("instr_per_req")), fnum(counts.get("h2o", {}).get("instr_per_req"))
        if f and g:
            tgt("1: instructions/req ≤ h2o's", f, g, f <= g)
        f, g = fnum(counts["ferry"].get("syscalls_per_req")), fnum(counts.get("haproxy", {}).get("syscalls_per_req"))
        if f and g:
            tgt("1: syscalls/req ≤ HAProxy's", f, g, f <= g)
    for s in scen:
        if s in ("5", "7", "8"):   # 8 is not one of the scenarios
            continue
        f = med(s, "ferry", "rps")
        peers = [med(s, p, "rps") for p in PEERS]
        peers = [x for x in peers if x]
        if f and peers:
            tgt(f"{s}: req/s ≥ best peer", f, max(peers), f >= max(peers))
        f = med(s, "ferry", "p99_ms")
        peers = [med(s, p, "p99_ms") for p in PEERS]
        peers = [x for x in peers if x]
        if f and peers:
            tgt(f"{s}: p99 ms ≤ best peer", f, min(peers), f <= min(peers))
    for s in ("6a", "6b"):
        if s in scen:
            ru = reuse(s, "ferry")
            if ru:
                tgt(f"{s}: upstream reuse ≥ 99.9 %", ru[0], 99.9, ru[0] >= 99.9, " %", 3)
            e = A(s, "ferry", "errors")
            if e:
                tgt(f"{s}: no errors", e[2], 0, e[2] == 0)
    if "5" in scen:
        f = med("5", "ferry", "extra_num")
        if f is not None:
            tgt("5: RSS per idle h1 connection ≤ 1 KiB", f, 1024, f <= 1024, " B")
    if "7" in scen:
        f = med("7", "ferry", "peak_rss_kb")
        if f:
            tgt("7: peak RSS bounded (≤ 64 MiB for a 1 GiB body)", f / 1024, 64, f / 1024 <= 64, " MiB")
    L.append("")
    if counts:
        L.append(f"Counts: instructions per request = (Ir of a callgrind run serving {a.count_n} requests − "
                 f"Ir of one serving {int(fnum(a.count_n) / 5) if fnum(a.count_n) else '?'}) ÷ the difference "
                 "(start-up, shutdown and connection set-up cancel out; user space only); syscalls per "
                 f"request = `strace -c -f` on the proxy's processes over {a.count_n} requests on warm "
                 "pools ÷ requests. Both with h2load --h1 -c 64, nginx backend.")
        tops = [f"{p}: {counts[p].get('top_syscalls', '')}" for p in PROXIES if p in counts]
        if tops:
            L.append("")
            L.append("Most frequent syscalls per request — " + "; ".join(tops) + ".")
        L.append("")
    L.append("![ferry beside the peers](latest.png)")
    L.append("")
    md_path = os.path.join(a.out, "latest.md")
    with open(md_path, "w") as f:
        f.write("\n".join(L))

    # ------------------------------------------------------------ chart
    png = os.path.join(a.out, "latest.png")
    plot(a.out, scen, by, counts, A, png)

    if a.timestamped:
        stamp = time.strftime("%Y%m%d-%H%M")
        # keep one timestamped set of full runs, the newest; side measurements written by
        # hand beside them (such as 20261122-0844-scenario2-ab.md) stay
        for fn in os.listdir(a.out):
            if re.fullmatch(r"20\d{6}-\d{4}\.(md|csv|png)", fn):
                os.remove(os.path.join(a.out, fn))
        for ext in ("md", "csv", "png"):
            src = os.path.join(a.out, f"latest.{ext}")
            if os.path.exists(src):
                dst = os.path.join(a.out, f"{stamp}.{ext}")
                shutil.copy(src, dst)
                if ext == "md":
                    with open(dst) as f:
                        t = f.read().replace("(latest.png)", f"({stamp}.png)")
                    with open(dst, "w") as f:
                        f.write(t)
    print(md_path)


def plot(out, scen, by, counts, A, png):
    work = os.path.join(out, ".plot")
    os.makedirs(work, exist_ok=True)
    bar_s = [s for s in scen if s not in ("5", "7")]

    def val(s, p, m, scale=1.0):
        x = A(s, p, m)
        return f"{x[0] * scale:.4g}" if x and x[0] else "?"

    def write(name, ss, m, scale=1.0):
        with open(os.path.join(work, name), "w") as f:
            f.write("# scenario " + " ".join(PROXIES) + "\n")
            for s in ss:
                f.write(f'"{s}" ' + " ".join(val(s, p, m, scale) for p in PROXIES) + "\n")

    write("rps.dat", bar_s, "rps", 1e-3)
    write("cpu.dat", bar_s, "cpu_us_per_req")
    with open(os.path.join(work, "counts.dat"), "w") as f:
        def c(p, k, sc=1.0):
            v = fnum(counts.get(p, {}).get(k))
            return f"{v * sc:.4g}" if v else "?"
        f.write('"instr/req (k)" ' + " ".join(c(p, "instr_per_req", 1e-3) for p in PROXIES) + "\n")
        f.write('"syscalls/req" ' + " ".join(c(p, "syscalls_per_req") for p in PROXIES) + "\n")
    with open(os.path.join(work, "mem.dat"), "w") as f:
        f.write('"5: B per idle conn" ' + " ".join(val("5", p, "extra_num") for p in PROXIES) + "\n")
        f.write('"7: peak RSS (MiB)" ' + " ".join(val("7", p, "peak_rss_kb", 1 / 1024) for p in PROXIES) + "\n")
        f.write('"7: GiB/s x 10" ' + " ".join(val("7", p, "extra_num", 10 / 1024) for p in PROXIES) + "\n")
    def has(name):
        with open(os.path.join(work, name)) as f:
            return any(any(t != "?" for t in l.split()[-4:]) for l in f if not l.startswith("#"))

    P = 'using 2:xtic(1) title "ferry", \'\' using 3 title "nginx", \'\' using 4 title "HAProxy", \'\' using 5 title "h2o"'

    def pl(name):
        if has(name):
            return f'plot "{work}/{name}" {P}'
        return ('set label 1 "not measured in this run" at graph 0.5,0.5 center\n'
                'unset logscale y\nplot [0:1] [0:1] NaN notitle\nunset label 1')
    gp = f"""
set terminal pngcairo size 1400,1150 font "DejaVu Sans,11"
set output "{png}"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set grid ytics
set key outside top center horizontal
set linetype 1 lc rgb "#d62728"
set linetype 2 lc rgb "#1f77b4"
set linetype 3 lc rgb "#2ca02c"
set linetype 4 lc rgb "#9467bd"
set multiplot
set origin 0,0.64
set size 1,0.36
set title "requests/s, thousands (higher is better): 1 h1 keep-alive, 2 h2/TLS, 3 h2c gRPC, 4a conn per request,\\n4b TLS full handshake, 4c TLS resumed, 6a clients > keepalive, 6b idle-closing backend, 8 h1 -> TLS upstream"
set logscale y
set format y "%g"
{pl("rps.dat")}
set origin 0,0.30
set size 1,0.34
set title "proxy CPU µs per request (lower is better)"
{pl("cpu.dat")}
unset logscale y
set origin 0,0
set size 0.5,0.30
set title "scenario 1, fixed request count (lower is better)"
set yrange [0:*]
{pl("counts.dat")}
set origin 0.5,0
set size 0.5,0.30
set title "memory and streaming (5: lower is better; 7: RSS lower, GiB/s higher)"
set logscale y
{pl("mem.dat")}
unset multiplot
"""
    with open(os.path.join(work, "chart.gp"), "w") as f:
        f.write(gp)
    try:
        subprocess.run(["gnuplot", os.path.join(work, "chart.gp")], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"gnuplot failed: {e}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
