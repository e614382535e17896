#!/usr/bin/python3
"""statuspage.py — drives ferry's admin status page in headless Chromium (python3-selenium,
chromium-driver) for test_status_page.sh. Reads one command per line on stdin and answers
each with one JSON line on stdout (so the shell test keeps the processes and the assertions):

  open URL WIDTH HEIGHT      load the page; waits until it shows a live /status answer
  snapshot                   what the page shows (process facts, servers, listeners)
  match STATUS_URL MODE SECS page vs /status fetched at the same moment, until they agree or
                             SECS pass. MODE "stable": names, generation, workers, health;
                             "exact": every counter shown too (use with no traffic)
  wait_state SERVER STATE SECS   until the server's health cell says STATE ("up"/"down")
  polls SECS                 /status requests the page made during a SECS window (browser
                             network log), with the window measured
  console                    SEVERE browser-log entries so far (console errors, CSP
                             violations, failed loads)
  layout                     document width vs viewport (horizontal overflow), element counts
  resize WIDTH HEIGHT
  screenshot PATH [full]     PNG of the viewport, or of the whole page with "full"
  quit

Chromium runs with --headless --no-sandbox --disable-gpu --disable-background-networking
--no-first-run --disable-dev-shm-usage and a profile under --profile DIR.
"""
import argparse
import json
import signal
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# Reads what the page renders, from the DOM only (what a person sees, by element role).
SNAPSHOT_JS = r"""
function txt(e) { return e ? e.textContent.trim() : null; }
function num(s) { if (s === null) return null; var m = s.replace(/,/g, '').match(/-?\d+(\.\d+)?/);
  return m ? Number(m[0]) : null; }
var out = {conn: txt(document.getElementById('conn')),
  generation: txt(document.getElementById('generation')),
  workers: txt(document.getElementById('workers')),
  reload: txt(document.getElementById('reload')),
  reload_error: document.getElementById('reload-error').hidden ? null : txt(document.getElementById('reload-error')),
  config: txt(document.getElementById('config')),
  upstreams: [], servers: {}, listeners: {}};
document.querySelectorAll('[data-upstream]').forEach(function (u) { out.upstreams.push(u.getAttribute('data-upstream')); });
document.querySelectorAll('tr[data-server]').forEach(function (tr) {
  function c(cls) { return tr.querySelector('td.' + cls); }
  var conns = txt(c('conns').querySelector('.big')) || '';
  var m = conns.match(/(\d+) active · (\d+) idle/);
  out.servers[tr.getAttribute('data-server')] = {
    address: txt(c('name')), state: c('health').getAttribute('data-state'),
    requests: num(txt(c('rps').querySelector('.total'))), rps: txt(c('rps').querySelector('.big')),
    opened: num(txt(c('conns').querySelector('.opened'))),
    active: m ? Number(m[1]) : null, idle: m ? Number(m[2]) : null,
    queued: num(txt(c('queue').querySelector('.big'))), streams: txt(c('streams')),
    reuse: txt(c('reuse')), learned: txt(c('learned')), closes: txt(c('reasons')),
    error_rate: txt(c('err').querySelector('.big')), sparkline: !!c('spark').querySelector('svg.spark')};
});
document.querySelectorAll('tr[data-listener]').forEach(function (tr) {
  function c(cls) { return tr.querySelector('td.' + cls); }
  out.listeners[tr.getAttribute('data-listener')] = {
    connections: num(txt(c('conns').querySelector('.big'))),
    accepted: num(txt(c('conns').querySelector('.accepted'))),
    requests: num(txt(c('rps').querySelector('.total'))), share: txt(c('share-cell')),
    closes: txt(c('reasons'))};
});
return out;
"""


def fetch_status(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def compare(page, st, exact):
    """Mismatches between what the page shows and a /status document."""
    bad = []

    def eq(what, shown, want):
        if shown != want:
            bad.append("%s: page %r, /status %r" % (what, shown, want))

    eq("generation", page["generation"], str(st["generation"]))
    eq("workers", page["workers"], str(st["workers"]))
    eq("config", page["config"], st["config"])
    eq("upstreams", page["upstreams"], [u["name"] for u in st["upstreams"]])
    want_servers = {}
    for u in st["upstreams"]:
        for s in u["servers"]:
            want_servers[u["name"] + " " + s["address"]] = s
    eq("servers", sorted(page["servers"]), sorted(want_servers))
    eq("listeners", sorted(page["listeners"]), sorted(l["name"] for l in st["listeners"]))
    for key, s in want_servers.items():
        p = page["servers"].get(key)
        if not p:
            continue
        state = "down" if not s["healthy"] else "ejected" if s["ejected"] else "up"
        eq(key + " health", p["state"], state)
        if exact:
            for f in ("requests", "opened", "active", "idle", "queued"):
                eq(key + " " + f, p[f], s[f])
    if exact:
        for l in st["listeners"]:
            p = page["listeners"].get(l["name"])
            if not p:
                continue
            eq(l["name"] + " connections", p["connections"], l["connections"])
            eq(l["name"] + " accepted", p["accepted"], l["accepted"])
            eq(l["name"] + " requests", p["requests"], l["requests_http1"] + l["requests_h2"])
    return bad


class Driver:
    def __init__(self, profile):
        o = webdriver.ChromeOptions()
        o.binary_location = "/usr/bin/chromium"
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-dev-shm-usage", "--user-data-dir=" + profile):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
        self.d.set_script_timeout(10)
        self.severe = []

    def _drain_browser_log(self):
        for e in self.d.get_log("browser"):
            if e.get("level") == "SEVERE":
                self.severe.append(e.get("message"))

    def _status_requests(self):
        """/status requests in the network log since the last call (the log is drained)."""
        n = []
        for e in self.d.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m.get("method") == "Network.requestWillBeSent":
                url = m["params"]["request"]["url"]
                if url.split("?")[0].endswith("/status"):
                    n.append(e["timestamp"])
        return n

    def snapshot(self):
        return self.d.execute_script(SNAPSHOT_JS)

    def cmd_open(self, url, w, h):
        self.d.set_window_size(int(w), int(h))
        t0 = time.monotonic()
        self.d.get(url)
        deadline = t0 + 15
        while time.monotonic() < deadline:
            if self.snapshot()["conn"] == "live":
                return {"ok": True, "seconds": round(time.monotonic() - t0, 3)}
            time.sleep(0.05)
        return {"ok": False, "seconds": round(time.monotonic() - t0, 3), "page": self.snapshot()}

    def cmd_snapshot(self):
        return self.snapshot()

    def cmd_match(self, url, mode, secs):
        t0 = time.monotonic()
        while True:
            page = self.snapshot()
            bad = compare(page, fetch_status(url), mode == "exact")
            el = round(time.monotonic() - t0, 3)
            if not bad:
                return {"ok": True, "seconds": el, "servers": len(page["servers"])}
            if el > float(secs):
                return {"ok": False, "seconds": el, "mismatches": bad}
            time.sleep(0.1)

    def cmd_wait_state(self, server, state, secs):
        t0 = time.monotonic()
        while True:
            s = self.snapshot()["servers"].get(server.replace("+", " "))
            el = round(time.monotonic() - t0, 3)
            if s and s["state"] == state:
                return {"ok": True, "seconds": el}
            if el > float(secs):
                return {"ok": False, "seconds": el, "server": s}
            time.sleep(0.05)

    def cmd_polls(self, secs):
        self._status_requests()                 # forget what came before the window
        t0 = time.monotonic()
        time.sleep(float(secs))                 # a measurement window, not a synchronisation
        n = self._status_requests()
        return {"count": len(n), "window": round(time.monotonic() - t0, 3)}

    def cmd_console(self):
        self._drain_browser_log()
        return {"severe": self.severe}

    def cmd_layout(self):
        return self.d.execute_script(
            "return {scroll_width: document.documentElement.scrollWidth, inner_width: window.innerWidth,"
            " height: document.documentElement.scrollHeight, rows: document.querySelectorAll('tr[data-server]').length,"
            " svgs: document.querySelectorAll('svg.spark').length, scripts: document.scripts.length,"
            " images: document.images.length, text: document.body.innerText};")

    def cmd_resize(self, w, h):
        self.d.set_window_size(int(w), int(h))
        return {"ok": True}

    def cmd_screenshot(self, path, full=None):
        size = self.d.get_window_size()
        if full:   # the whole page: a window as tall as the document
            h = self.d.execute_script("return document.documentElement.scrollHeight")
            self.d.set_window_size(size["width"], max(int(h) + 140, size["height"]))
        ok = self.d.save_screenshot(path)
        if full:
            self.d.set_window_size(size["width"], size["height"])
        return {"ok": bool(ok), "path": path}

    def quit(self):
        self.d.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True, help="Chromium profile directory")
    a = ap.parse_args()
    # Stopped by the test's EXIT trap: quit Chromium too rather than leave it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    drv = Driver(a.profile)
    print(json.dumps({"ready": True}), flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "quit":
                break
            try:
                res = getattr(drv, "cmd_" + words[0])(*words[1:])
            except Exception as e:  # report, keep serving: the test decides
                res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            print(json.dumps(res), flush=True)
    finally:
        drv.quit()


if __name__ == "__main__":
    main()
