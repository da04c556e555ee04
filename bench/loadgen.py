"""Load: wrk for pages and the approve POST, a small threaded client for the comment form."""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk" / "scenario.lua"
CONNECTIONS = 2
THREADS = 1


@dataclass
class Run:
    """One measured run: throughput and latency percentiles in milliseconds."""

    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    bytes_per_request: int = 0
    cpu_ms_per_request: float | None = None  # the server workers' CPU time (utime + stime)
    command: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def wrk(
    name: str,
    port: int,
    paths: list[str],
    seconds: float = 5,
    warmup: float = 1,
    method: str = "GET",
    body: str = "",
    cookie: str = "",
    headers: dict[str, str] | None = None,
    once: bool = False,
    connections: int = CONNECTIONS,
    cpu: Callable[[], float] | None = None,
) -> Run:
    """Run wrk against 127.0.0.1:port cycling through `paths`; a warm-up run is discarded.
    `cpu` reads the server's CPU seconds, sampled around the measured run."""
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as fh:
        fh.write("\n".join(paths) + "\n")
        paths_file = fh.name
    env = {
        **os.environ,
        "BENCH_PATHS": paths_file,
        "BENCH_METHOD": method,
        "BENCH_BODY": body,
        "BENCH_COOKIE": cookie,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
        "BENCH_ONCE": "1" if once else "0",
    }
    url = f"http://127.0.0.1:{port}{paths[0]}"

    def run(duration: float) -> tuple[dict, list[str]]:
        cmd = [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{math.ceil(duration)}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA),
            url,
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
        match = re.search(r"^BENCH_RESULT (\{.*\})$", out.stdout, re.M)
        if out.returncode != 0 or not match:
            raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
        return json.loads(match.group(1)), cmd

    try:
        if warmup and not once:
            run(warmup)
        cpu_before = cpu() if cpu else 0.0
        data, cmd = run(seconds)
        cpu_used = (cpu() - cpu_before) if cpu else None
    finally:
        os.unlink(paths_file)
    secs = data["duration_us"] / 1e6
    errors = sum(data["errors"].values())
    return Run(
        name=name,
        requests=data["requests"],
        seconds=round(secs, 2),
        rps=round(data["requests"] / secs, 1),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        bytes_per_request=data["bytes"] // max(1, data["requests"]),
        cpu_ms_per_request=round(cpu_used * 1000 / data["requests"], 2)
        if cpu_used is not None and data["requests"]
        else None,
        command=" ".join(cmd[:-3])
        + " bench/wrk/scenario.lua "
        + url.split(str(port))[1]
        + f"  ({len(paths)} path{'s' if len(paths) > 1 else ''})",
    )


# --- plain HTTP for scraping and the comment form -------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str
    cookies: dict[str, str]


def request(
    port: int,
    method: str,
    path: str,
    cookie: str = "",
    form: dict | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = dict(headers or {})
    if cookie:
        headers["Cookie"] = cookie
    data = None
    if form is not None:
        data = urlencode(form, doseq=True)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    cookies = {}
    for name, value in resp.getheaders():
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            cookies[key.strip()] = val.strip()
    conn.close()
    return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, cookies)


def hidden_value(html: str, name: str) -> str:
    """The value of the first <input name=...> in a page (the forms' csrf_token and such)."""
    for tag in re.findall(r"<input\b[^>]*>", html):
        if re.search(rf'\bname="{re.escape(name)}"', tag):
            found = re.search(r'\bvalue="([^"]*)"', tag)
            if found:
                return found.group(1).replace("&#34;", '"').replace("&amp;", "&")
    raise LookupError(f"no input named {name!r} on the page")


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items() if v)


def post_comments(
    port: int,
    page_path: str | None,
    form_path: str,
    bodies: list[str],
    seconds: float = 5,
    connections: int = CONNECTIONS,
    cpu: Callable[[], float] | None = None,
) -> Run:
    """Guests posting through the real form: each client loads the page once (cookie, CSRF
    token, signed rendered_at), then POSTs distinct comments; only the POSTs are timed.
    `page_path` None: no page and no token (the bare POST of bench/baseline_app.py)."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sizes: list[int] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        cookie, token, rendered = "", "", ""
        if page_path is not None:
            page = request(port, "GET", page_path)
            cookie = cookie_header(page.cookies)
            token = hidden_value(page.body, "csrf_token")
            rendered = hidden_value(page.body, "rendered_at")
        n = 0
        while time.monotonic() < deadline:
            n += 1
            form = {
                "csrf_token": token,
                "rendered_at": rendered,
                "parent_id": "",
                "body": f"{bodies[(index * 7919 + n) % len(bodies)]}\n\nClient {index} #{n}.",
                "author_name": f"Poster {index}-{n}",
                "author_email": f"poster{index}.{n}.{time.time_ns()}@example.org",
                "author_url": "",
                "homepage": "",
            }
            start = time.perf_counter()
            resp = request(port, "POST", form_path, cookie, form)
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                sizes.append(len(resp.body.encode()))

    cpu_before = cpu() if cpu else 0.0
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu_used = (cpu() - cpu_before) if cpu else None
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, max(0, int(p * n + 0.5) - 1))] * 1000, 2) if n else 0.0

    return Run(
        name="post comment (form)",
        requests=n,
        seconds=round(elapsed, 2),
        rps=round(n / elapsed, 1),
        p50_ms=pct(0.50),
        p90_ms=pct(0.90),
        p99_ms=pct(0.99),
        max_ms=round(latencies[-1] * 1000, 2) if n else 0.0,
        errors=sum(v for k, v in statuses.items() if k != 302),
        bytes_per_request=sum(sizes) // max(1, len(sizes)),
        # Includes the one page load per client.
        cpu_ms_per_request=round(cpu_used * 1000 / n, 2) if cpu_used is not None and n else None,
        command=f"bench/loadgen.py post_comments: {connections} threads, http.client, "
        f"{seconds:g} s",
        extra={"statuses": {str(k): v for k, v in statuses.items()}},
    )


def login(port: int, user: str, password: str, landing: str = "/") -> tuple[str, str]:
    """Sign in through /auth/login; returns (cookie, csrf token of the landing page)."""
    page = request(port, "GET", "/auth/login")
    token = hidden_value(page.body, "csrf_token")
    resp = request(
        port,
        "POST",
        "/auth/login",
        cookie_header(page.cookies),
        {"csrf_token": token, "username": user, "password": password},
    )
    if resp.status != 302:
        raise RuntimeError(f"login as {user} failed: {resp.status}")
    cookie = cookie_header({**page.cookies, **resp.cookies})
    first = request(port, "GET", landing, cookie)
    if first.status != 200:
        raise RuntimeError(f"GET {landing}: {first.status}")
    # Signing in starts a new session: its CSRF secret comes with the first page.
    cookie = cookie_header({**page.cookies, **resp.cookies, **first.cookies})
    return cookie, hidden_value(first.body, "csrf_token")
