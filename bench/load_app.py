"""The app under load: `app.py` in a subprocess, N concurrent `gradio_client` users, p50/p95 latency, errors.

    python bench/load_app.py --model checkpoints/default            # 1, 8 and 20 users
    python bench/load_app.py --users 1 8 --requests 2 --json        # one JSON line on stdout (bench/run.py)

Each user is its own `gradio_client.Client` and sends `--requests` full single-image analyses
(`/classify`: prediction, Grad-CAM, metadata hints) one after another, with images from the bundled
examples; latency is per request, client side (queueing included).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(model: str | None, port: int, timeout: float = 300.0, env: dict[str, str] | None = None,
              log: Path | None = None, new_session: bool = True) -> subprocess.Popen:
    """`python app.py --port PORT`, returned once it answers HTTP. Used by the app tests too.

    `env` adds to (or overrides) this process's environment; `log` receives the app's output, which is
    otherwise dropped but for the stderr quoted when the app exits early. `new_session` puts the app in a
    session of its own, so stopping it reaches its whole process group; it also gives the app its own
    scheduler autogroup on Linux, which changes how the cores are shared with the clients (the app tests'
    queueing assertions are calibrated in the caller's session).
    """
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1"]
    if model:
        command += ["--model", model]
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    environment.pop("GRADIO_SERVER_PORT", None)  # --port decides
    with open(log, "w") if log else open(os.devnull, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out,
                                   stderr=subprocess.STDOUT if log else subprocess.PIPE, start_new_session=False)

    def output() -> str:
        text = log.read_text() if log else (process.stderr.read().decode() if process.stderr else "")
        return text[-3000:]

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{output()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5):
                return process
        except OSError:
            time.sleep(1.0)
    stop_app(process)
    raise RuntimeError(f"app.py did not answer on port {port} within {timeout:.0f} s")


def stop_app(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s: to the app's process group when it leads one, else to the app alone."""
    try:
        if process.poll() is not None:
            return
        if os.getpgid(process.pid) == process.pid:  # started with new_session: the group is ours alone
            def send(sig: int) -> None:
                os.killpg(process.pid, sig)
        else:
            send = process.send_signal
        send(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait()
    except ProcessLookupError:  # it exited in between
        process.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def run_level(url: str, users: int, requests: int, images: list[str]) -> dict[str, Any]:
    from gradio_client import Client, handle_file

    messages: set[str] = set()

    def user(index: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        try:
            client = Client(url, verbose=False)
        except Exception as error:
            messages.add(f"client: {type(error).__name__}: {str(error)[:120]}")
            return [], requests
        for r in range(requests):
            image = images[(index + r) % len(images)]
            start = time.perf_counter()
            try:
                client.predict(handle_file(image), api_name="/classify")
                latencies.append(time.perf_counter() - start)
            except Exception as error:
                errors += 1
                messages.add(f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}")
        return latencies, errors

    with ThreadPoolExecutor(max_workers=users) as pool:
        results = list(pool.map(user, range(users)))
    latencies = [x for lat, _ in results for x in lat]
    return {"users": users, "n": users * requests, "errors": sum(e for _, e in results),
            "p50_s": statistics.median(latencies) if latencies else float("nan"),
            "p95_s": percentile(latencies, 95), "messages": sorted(messages)[:5]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint dir or repo id (default: the app's default)")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 20])
    parser.add_argument("--requests", type=int, default=3, help="requests per user per level")
    parser.add_argument("--json", action="store_true", help="print one JSON line (for bench/run.py)")
    args = parser.parse_args(argv)
    images = [str(p) for p in sorted((ROOT / "examples").glob("*.jpg"))]
    if not images:
        print("error: no example images under examples/", file=sys.stderr)
        return 2
    port = free_port()
    process = start_app(args.model, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        run_level(url, 1, 1, images)  # warm-up: first request loads lazily-built parts
        levels = [run_level(url, users, args.requests, images) for users in args.users]
    finally:
        stop_app(process)
    result = {"model": args.model or "the app's default model", "requests": args.requests, "levels": levels}
    if args.json:
        print(json.dumps(result))
    else:
        for row in levels:
            print(f"{row['users']:>3} users  n={row['n']:<4} p50 {row['p50_s']:.2f} s  p95 {row['p95_s']:.2f} s  "
                  f"errors {row['errors']}")
    return 0 if all(row["errors"] == 0 for row in levels) else 1


if __name__ == "__main__":
    sys.exit(main())
