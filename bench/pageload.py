#!/usr/bin/env python
"""Page load: how long a shared link takes to show, featviz beside a bare one-line Streamlit page.

    python bench/pageload.py                       # every page, 5 repeats, warm and first visit after a restart
    python bench/pageload.py --pages compare --repeat 3
    python bench/pageload.py --app-dir OTHER_CHECKOUT   # another checkout (the release before a change)
    python bench/pageload.py --fresh 2             # instead: the default view rendered on an empty cache, twice

Both servers are plain `streamlit run app.py` on loopback, started side by side in one run, the
browser (headless Chromium) on the same cores. Each visit is a new browser context (a visitor who
never opened the server: no HTTP cache, a new session), timed from `goto` until the page shows its
title, every picture of its view decoded (and its chart drawn, where it has one). The bare page is
`st.title` alone.

- warm: the servers have served each view once; then bare and featviz visits alternate, N of each.
- first visit: both servers are stopped and started again (healthy, nothing visited), then one visit
  each, N times.

Before timing, every page's default view is rendered into a cache (`--cache`, kept between runs:
the first run renders about 60 pictures, a few minutes on 2 CPU cores), and the count of pictures
each page shows once settled is what its timed visits wait for. Prints a table of medians and ratios
(featviz / bare) and writes every visit to `--out` (JSON).
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import CHROMIUM, ROOT, Server, free_port  # noqa: E402

PAGES = {  # name: the address a shared link of its default view opens (the Gallery: a 32-picture page)
    "compare": "/compare", "curves": "/curves", "gallery": "/gallery?layer=blocks.5&per=32",
    "evolution": "/evolution", "dream": "/dream",
}
VIEWPORT = {"width": 1400, "height": 2000}  # tall enough that every page's pictures are in view (none lazy)
BARE_APP = 'import streamlit as st\n\nst.title("featviz")\n'
# The floor: the bare page plus the Compare view's own pictures (as featviz sends them), four to a row in
# two bordered columns, and nothing else: what Streamlit itself takes to show those pictures.
PICTURES_APP = """import json
import streamlit as st

st.set_page_config(layout="wide")
st.title("featviz")
urls = json.load(open("urls.json"))
for column, half in zip(st.columns(2, border=True), (urls[: len(urls) // 2], urls[len(urls) // 2:])):
    with column:
        for start in range(0, len(half), 4):
            for cell, url in zip(st.columns(4), half[start:start + 4]):
                cell.image(url, caption="picture", width="stretch")
"""

# Runs in the page: what it shows now (title, decoded pictures in view, drawn charts).
SHOWN = """() => ({
  title: !!document.querySelector('h1'),
  pictures: [...document.querySelectorAll('[data-testid="stImage"] img')]
    .filter(i => i.complete && i.naturalWidth > 0 && i.offsetParent !== null).length,
  charts: document.querySelectorAll('.js-plotly-plot .main-svg').length,
  running: document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState !== 'notRunning',
  rendering: [...document.querySelectorAll('[data-testid="stImageCaption"]')]
    .some(e => /waiting|forming/.test(e.textContent)),
})"""
# wanted.finished: also no picture still a preview (a caption saying it is waiting or forming).
DONE = """wanted => { const s = (%s)();
  return s.title && s.pictures >= wanted.pictures && s.charts >= wanted.charts
    && !(wanted.finished && s.rendering); }""" % SHOWN


def settled(page, timeout: float, quiet_s: float = 3.0) -> dict:
    """What the page shows once its script has stopped for `quiet_s` with nothing left to render."""
    deadline, since, last = time.time() + timeout, None, -1
    while time.time() < deadline:
        shown = page.evaluate(SHOWN)
        idle = shown["title"] and not shown["running"] and not shown["rendering"]
        since = (since or time.time()) if idle and shown["pictures"] == last else None
        last = shown["pictures"]
        if since and time.time() - since >= quiet_s:
            return {"pictures": shown["pictures"], "charts": shown["charts"]}
        time.sleep(0.5)
    raise RuntimeError(f"{page.url} never settled: {page.evaluate(SHOWN)}")


def visit(browser, url: str, wanted: dict, timeout: float = 300) -> float:
    """Seconds from `goto` until the page shows `wanted`, in a fresh browser context."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_function(DONE, arg=wanted, polling="raf", timeout=timeout * 1000)
        return time.perf_counter() - start
    finally:
        context.close()


def as_data_url(src: str) -> str:
    """A picture's address as the page had it (a data URL, or the server's /media/ file) as a data URL."""
    if src.startswith("data:"):
        return src
    with urllib.request.urlopen(src, timeout=30) as reply:
        kind = reply.headers.get_content_type()
        return f"data:{kind};base64," + base64.b64encode(reply.read()).decode("ascii")


def warm_up(browser, server: Server, pages: list[str], timeout: float, work: Path) -> dict[str, dict]:
    """Each page's view rendered (when the cache lacks it) and what it shows when settled; the Compare
    view's pictures, as sent, go to the floor page (PICTURES_APP)."""
    wanted = {}
    for name in pages:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(server.base + PAGES[name])
        wanted[name] = settled(page, timeout)
        if name == "compare":
            urls = [as_data_url(src) for src in page.evaluate(
                """() => [...document.querySelectorAll('[data-testid="stImage"] img')].map(i => i.src)""")]
            (work / "pictures").mkdir(exist_ok=True)
            (work / "pictures" / "urls.json").write_text(json.dumps(urls))
            (work / "pictures" / "app.py").write_text(PICTURES_APP)
        context.close()
        print(f"  {name}: {wanted[name]['pictures']} pictures, {wanted[name]['charts']} charts", flush=True)
    return wanted


class Pair:
    """The bare page's server and featviz's, started (and restarted) together."""

    def __init__(self, app_dir: Path, cache: Path, work: Path):
        self.app_dir, self.cache, self.work = app_dir, cache, work
        (work / "bare").mkdir(exist_ok=True)
        (work / "bare" / "app.py").write_text(BARE_APP)
        self.bare = self.featviz = None

    def start(self) -> None:
        self.bare = Server(self.work / "bare", self.work / "bare-cache", free_port(), self.work, counting=False)
        self.bare.wait_healthy()  # its port taken before the next is chosen
        self.featviz = Server(self.app_dir, self.cache, free_port(), self.work, counting=False)
        self.featviz.wait_healthy()

    def stop(self) -> None:
        for server in (self.bare, self.featviz):
            if server is not None:
                server.stop()


def measure(browser, args, pair: Pair, wanted: dict[str, dict]) -> list[dict]:
    """Warm visits (bare and featviz alternating), then first visits after restarts."""
    rows = []
    floor = None
    if "compare" in args.pages:  # the Compare view's pictures alone, on a page of their own
        floor = Server(pair.work / "pictures", pair.work / "pictures-cache", free_port(), pair.work, counting=False)
        floor.wait_healthy()
        visit(browser, floor.base, {"pictures": wanted["compare"]["pictures"], "charts": 0})
    for name in args.pages:
        for i in range(args.repeat):
            for side, server, want in (("bare", pair.bare, {"pictures": 0, "charts": 0}),
                                       ("featviz", pair.featviz, wanted[name])):
                url = server.base + (PAGES[name] if side == "featviz" else "/")
                rows.append({"page": name, "case": "warm", "side": side, "run": i, "s": visit(browser, url, want)})
            if floor is not None and name == "compare":
                rows.append({"page": name, "case": "warm", "side": "pictures only", "run": i,
                             "s": visit(browser, floor.base, {"pictures": wanted["compare"]["pictures"], "charts": 0})})
    if floor is not None:
        floor.stop()
    for name in args.pages:
        for i in range(args.repeat):
            pair.stop()
            pair.start()
            for side, server, want in (("bare", pair.bare, {"pictures": 0, "charts": 0}),
                                       ("featviz", pair.featviz, wanted[name])):
                url = server.base + (PAGES[name] if side == "featviz" else "/")
                rows.append({"page": name, "case": "first visit", "side": side, "run": i,
                             "s": visit(browser, url, want)})
    return rows


def fresh_render(browser, app_dir: Path, work: Path, repeat: int, timeout: float) -> list[float]:
    """Seconds until the default Compare view shows all its pictures, rendered on an empty cache by a
    freshly started server (the model loaded on the way), `repeat` times."""
    seconds = []
    for i in range(repeat):
        server = Server(app_dir, work / f"fresh-cache-{i}", free_port(), work, counting=False)
        try:
            server.wait_healthy()
            context = browser.new_context(viewport=VIEWPORT)
            start = time.perf_counter()
            context.new_page().goto(server.base + PAGES["compare"], wait_until="commit")
            page = context.pages[0]
            page.wait_for_function(DONE, arg={"pictures": 16, "charts": 0}, polling=250, timeout=timeout * 1000)
            shown = time.perf_counter() - start
            page.wait_for_function(DONE, arg={"pictures": 16, "charts": 0, "finished": True}, polling=250,
                                   timeout=timeout * 1000)
            seconds.append((round(shown, 2), round(time.perf_counter() - start, 2)))
            context.close()
        finally:
            server.stop()
    return seconds


def table(rows: list[dict]) -> str:
    """Medians by page and case, and the ratio featviz / bare."""
    lines = ["| page | case | bare page s (median) | featviz s (median) | featviz min–max s | featviz / bare |",
             "|---|---|---:|---:|---:|---:|"]
    for page in dict.fromkeys(r["page"] for r in rows):
        for case in ("warm", "first visit"):
            bare = [r["s"] for r in rows if (r["page"], r["case"], r["side"]) == (page, case, "bare")]
            ours = [r["s"] for r in rows if (r["page"], r["case"], r["side"]) == (page, case, "featviz")]
            if bare and ours:
                b, f = statistics.median(bare), statistics.median(ours)
                lines.append(f"| {page} | {case} | {b:.2f} | {f:.2f} | {min(ours):.2f}–{max(ours):.2f} | {f / b:.2f} |")
            floor = [r["s"] for r in rows if (r["page"], r["case"], r["side"]) == (page, case, "pictures only")]
            if bare and floor:
                f = statistics.median(floor)
                lines.append(f"| {page}: its pictures alone (floor) | {case} | {statistics.median(bare):.2f} | {f:.2f} "
                             f"| {min(floor):.2f}–{max(floor):.2f} | {f / statistics.median(bare):.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--repeat", type=int, default=5, choices=range(1, 21), metavar="1-20")
    parser.add_argument("--app-dir", default=str(ROOT), help="the featviz checkout to serve (default: this one)")
    parser.add_argument("--cache", default=str(ROOT / "cache" / "pageload"),
                        help="the warm cache (kept between runs; default cache/pageload)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a page may take to render when warming")
    parser.add_argument("--out", help="write every visit's seconds to this JSON file")
    parser.add_argument("--fresh", type=int, default=0, metavar="N",
                        help="instead: N renders of the default Compare view on an empty cache, seconds each")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="featviz-pageload-") as work, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        if args.fresh:
            print("fresh render of the default Compare view, s:",
                  fresh_render(browser, Path(args.app_dir), Path(work), args.fresh, args.timeout))
            browser.close()
            return 0
        pair = Pair(Path(args.app_dir), Path(args.cache), Path(work))
        try:
            pair.start()
            print(f"warming {args.cache} (what each page shows once settled):", flush=True)
            wanted = warm_up(browser, pair.featviz, args.pages, args.timeout, Path(work))
            visit(browser, pair.bare.base, {"pictures": 0, "charts": 0})
            rows = measure(browser, args, pair, wanted)
        finally:
            pair.stop()
            browser.close()
    if args.out:
        Path(args.out).write_text(json.dumps({"app_dir": args.app_dir, "wanted": wanted, "visits": rows}, indent=1))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
