#!/usr/bin/env python
"""`streamlit run app.py` from APP_DIR, logging every picture a batch starts to render.

    python bench/counting_server.py APP_DIR RENDER_LOG [streamlit run options...]

One line per picture ("layer:channel" and the time, from time.time()) is appended to RENDER_LOG whenever
featviz_core.jobs.runner starts a batch (and the native id of each thread that renders to RENDER_LOG.threads),
so a load test can count renders per distinct picture on any featviz checkout (the logging wraps runner's one
optimization loop, which every version calls). The process is the server itself:
its /proc/<pid>/status is the server's.
"""
from __future__ import annotations

import os
import sys
import threading
import time


def count_renders(log_path: str) -> None:
    from featviz_core.jobs import pictures as runner  # where a batch calls render

    real, lock, renderers = runner.render, threading.Lock(), set()

    def logged(model, targets, *args, **kwargs):
        with lock, open(log_path, "a") as log:
            log.writelines(f"{t.layer}:{t.channel} {time.time():.2f}\n" for t in targets)
            if threading.get_native_id() not in renderers:  # so a load test can tell their CPU time apart
                renderers.add(threading.get_native_id())
                with open(log_path + ".threads", "a") as threads:
                    threads.write(f"{threading.get_native_id()}\n")
        return real(model, targets, *args, **kwargs)

    runner.render = logged


def main() -> None:
    app_dir, log_path, options = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.chdir(app_dir)
    sys.path.insert(0, app_dir)
    count_renders(log_path)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", "app.py", *options]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
