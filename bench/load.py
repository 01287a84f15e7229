#!/usr/bin/env python
"""Load test: N visitors (headless Chromium pages) opening views of one dashboard server at once.

    python bench/load.py --quick                               # a smoke run: 3 visitors, tiny pictures
    python bench/load.py                                       # 8 visitors: different views, identical views,
                                                               # and the different views one after another
    python bench/load.py --scenarios different sequential --repeat 3   # A B A B A B, medians and ratios
    python bench/load.py --scenarios different --app-dir OTHER_CHECKOUT  # another checkout (before a change)
    python bench/load.py --cpus split ...                      # the server and the browsers on separate cores
    FEATVIZ_RENDER_WORKERS=1 python bench/load.py ...          # the server inherits the environment

Each scenario starts a fresh `streamlit run` (bench/counting_server.py, which logs every picture a
batch starts and the threads that render) on an empty cache, loads the model with a one-picture
warm-up view, opens a browser tab per visitor, then asks for the visitors' views and waits until
every page shows all its pictures (a script in each page notes the moment, so polling the pages
costs them little). It reports the wall time, each visitor's time, the server's peak resident memory
and thread count (sampled from /proc/<pid>/status), the CPU seconds spent by the server (and by its
rendering threads alone), by the browsers and by this harness, and the renders per distinct picture
(1.0: no picture rendered twice). Scenarios: `different` (visitor i asks for its own channels),
`identical` (every visitor opens the same link), `sequential` (the different views, one visitor
after another: the baseline the concurrent run must not be slower than).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
LAYERS = ("blocks.1", "blocks.5")  # the Compare page's default layers: 24 and 192 channels
PORTS = range(8630, 8650)


def free_port(ports=PORTS) -> int:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {ports.start}-{ports.stop - 1}")


class Server:
    """A real `streamlit run app.py` of `app_dir` on loopback, logging the pictures it renders."""

    def __init__(self, app_dir: Path, cache: Path, port: int, log_dir: Path, env: dict | None = None,
                 cpus: set[int] | None = None, counting: bool = True):
        """`counting`: through bench/counting_server.py (which imports featviz_core before the first
        visit); otherwise plain `streamlit run app.py`, as a host starts it."""
        self.base, self.render_log = f"http://127.0.0.1:{port}", log_dir / f"renders-{port}.log"
        self.output = open(log_dir / f"server-{port}.log", "w")
        environment = {k: v for k, v in os.environ.items() if k != "FEATVIZ_HOSTED"}
        environment.update({"FEATVIZ_CACHE": str(cache), **(env or {})})
        start = ([str(ROOT / "bench" / "counting_server.py"), str(app_dir), str(self.render_log)] if counting
                 else ["-m", "streamlit", "run", "app.py"])
        self.proc = subprocess.Popen(
            [sys.executable, *start, "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=app_dir, env=environment, stdout=self.output, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("streamlit did not become healthy:\n" + Path(self.output.name).read_text()[-3000:])
            time.sleep(0.3)

    def status(self) -> tuple[int, int]:
        """(resident kB, threads) from /proc/<pid>/status."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]), int(fields["Threads"])

    def render_cpu_s(self) -> float:
        """CPU seconds the server's rendering threads spent so far (the rest of the server: Streamlit,
        the sessions' scripts, the web server)."""
        threads = Path(str(self.render_log) + ".threads")
        total = 0
        for tid in (threads.read_text().split() if threads.exists() else []):
            try:
                fields = Path(f"/proc/{self.proc.pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / TICK

    def renders(self) -> list[str]:
        if not self.render_log.exists():
            return []
        return [line.split()[0] for line in self.render_log.read_text().splitlines()]

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup, as a crash or an OOM killer would
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.output.close()


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, int, float]]:
    """Every process's (command, parent, CPU seconds so far), from /proc/<pid>/stat."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        found[int(stat.parent.name)] = (name, int(rest[1]), (int(rest[11]) + int(rest[12])) / TICK)
    return found


def cpu_split(before: dict, after: dict, server_pid: int) -> dict[str, float]:
    """CPU seconds spent between two `cpu_by_process` samples by the server, the browsers, and this
    harness (itself and its Playwright driver); a process born meanwhile counts from zero."""
    spent = {"server": 0.0, "browsers": 0.0, "harness": 0.0}
    me = os.getpid()

    def under_me(pid: int) -> bool:
        while pid > 1 and pid in after:
            if pid == me:
                return True
            pid = after[pid][1]
        return False

    for pid, (name, _, seconds) in after.items():
        delta = seconds - (before[pid][2] if pid in before and before[pid][0] == name else 0.0)
        group = ("server" if pid == server_pid else "browsers" if "chrom" in name.lower()
                 else "harness" if under_me(pid) else None)
        if group:
            spent[group] += delta
    return spent


class Peaks(threading.Thread):
    """Samples the server's memory and threads every 0.1 s."""

    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server, self.rss_kb, self.threads, self.done = server, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                rss, threads = self.server.status()
            except (OSError, KeyError, ValueError):
                continue
            self.rss_kb, self.threads = max(self.rss_kb, rss), max(self.threads, threads)


def view_query(channels: dict[str, list[int]], size: int, steps: int) -> str:
    return "&".join([f"size={size}", f"steps={steps}"] +
                    [f"ch.{layer}={','.join(map(str, chosen))}" for layer, chosen in channels.items()])


def views(scenario: str, visitors: int, per_layer: int) -> list[dict[str, list[int]]]:
    """The channels each visitor asks for: its own (different, sequential) or visitor 0's (identical)."""
    own = [{layer: [(i * per_layer + c) % 24 for c in range(per_layer)] for layer in LAYERS} for i in range(visitors)]
    return own if scenario != "identical" else [own[0]] * visitors


# Runs in the page: every 0.25 s compares the finished pictures' captions ('blocks.1:0', or
# 'blocks.1:0 · dead' for a channel that never fired; 'blocks.1:0 · forming…' while it renders) with the
# wanted ones and notes the moment they first match (the page's clock, Date.now(), is this machine's).
# Installed once per document, so polling it costs the page little whatever the poll rate.
WATCH = """wanted => {
  const key = JSON.stringify(wanted);
  if (window.__featvizWanted !== key) {
    window.__featvizWanted = key; window.__featvizDone = 0;
    setInterval(() => {
      const shown = [...document.querySelectorAll('[data-testid="stImageCaption"]')]
        .map(e => e.textContent.trim().replace(/ · dead$/, '')).filter(Boolean).sort();
      const same = JSON.stringify(shown) === window.__featvizWanted;
      window.__featvizDone = same ? (window.__featvizDone || Date.now()) : 0;
    }, 250);
  }
  return [window.__featvizDone,
          [...document.querySelectorAll('[data-testid="stImageCaption"]')].map(e => e.textContent.trim())];
}"""


def wait_for_pages(pages: list, wanted: list[list[str]], timeout: float) -> list[float]:
    """perf_counter() at which each page first showed exactly its finished pictures."""
    start, done, shown = time.perf_counter(), [None] * len(pages), [[] for _ in pages]
    offset = time.perf_counter() - time.time()
    while None in done:
        for i, page in enumerate(pages):
            if done[i] is None:
                finished_ms, shown[i] = page.evaluate(WATCH, sorted(wanted[i]))
                if finished_ms:
                    done[i] = finished_ms / 1000 + offset
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"pages never settled: {[s for s, d in zip(shown, done) if d is None]}")
        if None in done:
            time.sleep(0.5)
    return done


def settle(browser, base: str, queries: list[str], labels: list[list[str]], timeout: float,
           server_pid: int = 0) -> tuple[float, list[float], dict[str, float]]:
    """Opens the pages at once (not waiting for each to load); returns the seconds from the first
    request until the last page showed all its pictures, each visitor's from its own request, and
    the CPU seconds the server, the browsers and the harness spent meanwhile."""
    pages, starts, before = [], [], cpu_by_process()
    try:
        for _ in queries:  # every visitor's browser tab is open before the first asks for its view
            pages.append(browser.new_context(viewport={"width": 1400, "height": 1000}).new_page())
        for page, query in zip(pages, queries):
            starts.append(time.perf_counter())
            page.goto(f"{base}/?{query}", wait_until="commit")
        done = wait_for_pages(pages, labels, timeout)
        spent = cpu_split(before, cpu_by_process(), server_pid)  # before the pages close: theirs counts
        return max(done) - starts[0], [d - s for d, s in zip(done, starts)], spent
    finally:
        for page in pages:
            page.context.close()


def run_scenario(browser, args, scenario: str, work: Path) -> dict:
    cache = work / f"cache-{scenario}"
    shutil.rmtree(cache, ignore_errors=True)
    server = Server(Path(args.app_dir), cache, free_port(), work, cpus=args.server_cpus)
    try:
        server.wait_healthy()
        warm = view_query({layer: [0] for layer in LAYERS}, 32, 2)  # loads the model; not counted
        settle(browser, server.base, [warm], [[f"{layer}:0" for layer in LAYERS]], args.timeout)
        counted_from, idle, render_cpu = len(server.renders()), server.status(), server.render_cpu_s()
        chosen = views(scenario, args.visitors, args.per_layer)
        queries = [view_query(v, args.size, args.steps) for v in chosen]
        labels = [[f"{layer}:{c}" for layer, cs in v.items() for c in cs] for v in chosen]
        peaks = Peaks(server)
        peaks.start()
        if scenario == "sequential":
            runs = [settle(browser, server.base, [q], [lab], args.timeout, server.proc.pid)
                    for q, lab in zip(queries, labels)]
            wall, each = sum(w for w, _, _ in runs), [seconds for _, (seconds,), _ in runs]
            spent = {group: sum(cpu[group] for _, _, cpu in runs) for group in runs[0][2]}
        else:
            wall, each, spent = settle(browser, server.base, queries, labels, args.timeout, server.proc.pid)
        peaks.done.set()
        spent["server_rendering"] = server.render_cpu_s() - render_cpu
        renders = Counter(server.renders()[counted_from:])
        distinct = {label for group in labels for label in group}
        return {"scenario": scenario, "app_dir": str(args.app_dir), "visitors": args.visitors,
                "pictures_per_view": len(labels[0]), "size": args.size, "steps": args.steps,
                "workers_env": os.environ.get("FEATVIZ_RENDER_WORKERS", ""),
                "threads_env": os.environ.get("FEATVIZ_RENDER_THREADS", ""), "server_cpus": sorted(args.server_cpus),
                "browser_cpus": sorted(os.sched_getaffinity(0)),
                "wall_s": round(wall, 2),
                "slowest_visitor_s": round(max(each), 2), "fastest_visitor_s": round(min(each), 2),
                "visitors_s": [round(seconds, 1) for seconds in each],
                "peak_rss_mb": round(peaks.rss_kb / 1024), "idle_rss_mb": round(idle[0] / 1024),
                "peak_threads": peaks.threads, "idle_threads": idle[1],
                **{f"{group}_cpu_s": round(seconds, 1) for group, seconds in spent.items()},
                "distinct_pictures": len(distinct), "renders": sum(renders.values()),
                "renders_per_picture": round(sum(renders.values()) / len(distinct), 2)}
    finally:
        server.stop()


def summary(results: list[dict]) -> dict:
    """Median wall time by scenario, and the ratio different / sequential of each round (the two ran
    one after the other, so the ratio holds when the machine's speed drifts between rounds)."""
    walls: dict[str, list[float]] = {}
    for result in results:
        walls.setdefault(result["scenario"], []).append(result["wall_s"])
    out = {f"median_wall_s_{name}": round(statistics.median(values), 2) for name, values in walls.items()}
    if "different" in walls and "sequential" in walls:
        ratios = [round(d / s, 3) for d, s in zip(walls["different"], walls["sequential"])]
        out.update(ratios_different_to_sequential=ratios, median_ratio=statistics.median(ratios))
    return out


def cpu_sets(mode: str) -> tuple[set[int], set[int]]:
    """(the server's cores, the browsers' and this harness's). `split`: the visitors' browsers stand in
    for browsers on their own machines, so they get cores of their own (on 2 cores: one each) and the
    server is measured alone on its share; `shared`: everything on every core."""
    cores = sorted(os.sched_getaffinity(0))
    if mode == "shared" or len(cores) < 2:
        return set(cores), set(cores)
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["different", "identical", "sequential"],
                        choices=["different", "identical", "sequential"])
    parser.add_argument("--visitors", type=int, default=8)
    parser.add_argument("--per-layer", type=int, default=2, help="channels per layer in each view (2 layers)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--app-dir", default=str(ROOT), help="the featviz checkout to serve (default: this one)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--repeat", type=int, default=1, choices=range(1, 21), metavar="1-20",
                        help="run the scenarios in turn this many times (A B A B ...) and print the median "
                             "wall time of each and, pair by pair, different / sequential")
    parser.add_argument("--cpus", choices=["shared", "split"], default="shared",
                        help="shared (default): the server and the browsers on every core; split: the server "
                             "on half the cores, the browsers on the other half, as if on their own machines")
    parser.add_argument("--out", help="append each scenario's result to this JSON-lines file")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 visitors, 1 channel per layer, 64 px, 8 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.visitors, args.per_layer, args.size, args.steps = 3, 1, 64, 8
    from playwright.sync_api import sync_playwright

    args.server_cpus, browser_cpus = cpu_sets(args.cpus)
    os.sched_setaffinity(0, browser_cpus)  # this harness, its Playwright driver and the browsers it starts

    with tempfile.TemporaryDirectory(prefix="featviz-load-") as work, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        results = []
        try:
            for _ in range(args.repeat):
                for scenario in args.scenarios:
                    results.append(run_scenario(browser, args, scenario, Path(work)))
                    print(json.dumps(results[-1]), flush=True)
                    if args.out:
                        with open(args.out, "a") as out:
                            out.write(json.dumps(results[-1]) + "\n")
        finally:
            browser.close()
    print(json.dumps(summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
