"""Dashboard render time in Debian's Chromium, printed as one Markdown table (run by hand).

    python benchmarks/dashboard.py                          # ~500 and ~2,000 in-flight projects
    python benchmarks/dashboard.py --histories 5000 --runs 10

Trains 25-tree champions in a temp registry, then for each history size serves the real app
(uvicorn on loopback, in a thread) over a generated history and opens /dashboard in a fresh
page `--runs` times. The figure is the page's own `opm-rendered-portfolio` mark: navigation
start to the table and the risk matrix drawn, data fetch and scoring included. The first run
also reads and scores the history on the server (it is cached after). Browser and server share
the machine's cores. (Was a 2 s assertion in tests/test_dashboard_browser.py: timings on shared
CI cores belong here.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from harness import free_port, registry_settings, train_champions, write_history

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, nargs="+", default=[5000, 20000],
                        help="generated projects per history (about a tenth are in flight)")
    parser.add_argument("--runs", type=int, default=5, help="page loads per history")
    args = parser.parse_args()
    from opm_ml.synthetic import generate_history
    from opm_ml.synthetic import write_history as write

    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} missing: run scripts/install_os_packages.sh")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = registry_settings(Path(tmp))
        history = write_history(settings, 1500, seed=11)
        print("training 25-tree champions ...", file=sys.stderr)
        train_champions(settings, history, seed=3, n_estimators=25)
        for size in args.histories:
            folder = Path(tmp) / f"history_{size}"
            write(generate_history(size, seed=21), folder)
            with serve(settings, folder) as base:
                count, times = render_times(base, args.runs)
            rows.append((size, count, times))

    print("| history | in-flight projects | runs | first ms | p50 ms | max ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, count, times in rows:
        print(f"| {size:,} | {count:,} | {len(times)} | {times[0]:,.0f} | "
              f"{statistics.median(times):,.0f} | {max(times):,.0f} |")


class serve:
    """The real app under uvicorn on a free loopback port, its dashboard over `folder`."""

    def __init__(self, settings, folder: Path):
        self.settings, self.folder = settings, folder

    def __enter__(self) -> str:
        import uvicorn

        from serving.app import create_app
        from serving.model_store import ModelStore

        store = ModelStore(self.settings)
        if not store.reload(wait=True):
            sys.exit(f"error: cannot load the models: {store.last_error}")
        app = create_app(self.settings, store)
        app.state.dashboard_dir = self.folder
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                sys.exit("error: uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def render_times(base: str, runs: int) -> tuple[int, list[float]]:
    """(rows shown, the `opm-rendered-portfolio` time of each fresh page load in ms)."""
    from playwright.sync_api import sync_playwright

    times, count = [], 0
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1400, "height": 900})
        try:
            for _ in range(runs):
                page = context.new_page()
                page.goto(f"{base}/dashboard")
                page.wait_for_selector('body[data-ready="portfolio"]', timeout=120_000)
                times.append(page.evaluate(
                    "performance.getEntriesByName('opm-rendered-portfolio')[0].startTime"))
                count = page.locator("#portfolio-table tbody tr").count()
                page.close()
        finally:
            context.close()
    return count, times


if __name__ == "__main__":
    main()
