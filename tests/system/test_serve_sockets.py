"""The playground's sockets under abuse (issue 12, item 4): idle, half-sent and trickled
connections, more connections than file descriptors, a full file table, flooding warnings; and the
page in a real browser under its Content-Security-Policy and token. The in-process tests are fast;
those marked slow start a real `ganforge serve` (or asyncio server) process on a free 127.0.0.1
port (nothing else is ever contacted) and bound every wait in count and time."""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganforge.errors import GanforgeError
from ganforge.serve.connections import (
    FILE_TABLE_FULL,
    HEADER_TIMEOUT_S,
    LOG_EVERY_S,
    MAX_CONNECTIONS,
    OncePerMinute,
    Throttled,
    connection_limit,
    on_loop_error,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token-for-tests_0123456789"

# -- item 4: connection guards, in process ------------------------------------------------------
def test_a_repeated_warning_is_logged_once_a_minute(caplog):
    now = [0.0]
    throttled = Throttled(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ganforge.serve"):
        for _ in range(5000):
            throttled.warn("full")
        now[0] += LOG_EVERY_S + 1
        throttled.warn("full")
    assert [r.getMessage() for r in caplog.records] == ["full", "full (4999 more since the last report)"]


def test_uvicorn_warnings_pass_once_a_minute_errors_always():
    now = [0.0]
    once = OncePerMinute(clock=lambda: now[0])

    def record(level, msg):
        return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, None, None)

    passed = [once.filter(record(logging.WARNING, "Invalid HTTP request received.")) for _ in range(1000)]
    assert passed.count(True) == 1
    assert once.filter(record(logging.WARNING, "Exceeded concurrency limit."))
    assert all(once.filter(record(logging.ERROR, "Exception in ASGI application")) for _ in range(3))
    now[0] += LOG_EVERY_S + 1
    assert once.filter(record(logging.WARNING, "Invalid HTTP request received."))


def test_a_full_file_table_is_one_line_not_a_traceback_each(caplog, monkeypatch):
    monkeypatch.setattr(FILE_TABLE_FULL, "last", None)
    passed = []

    class Loop:
        def default_exception_handler(self, context):
            passed.append(context)

    with caplog.at_level(logging.WARNING, logger="ganforge.serve"):
        for _ in range(2048):
            on_loop_error(Loop(), {"message": "socket.accept() out of system resource",
                                   "exception": OSError(errno.EMFILE, "Too many open files")})
    assert len(caplog.records) == 1 and "ulimit -n" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is None and not passed
    on_loop_error(Loop(), {"message": "other", "exception": ValueError()})
    assert len(passed) == 1  # anything else: asyncio's own report


def test_the_connection_limit_follows_the_file_limit():
    assert connection_limit(1_048_576, 20) == MAX_CONNECTIONS
    assert connection_limit(64, 8) == 20  # (64 - 8 - 16) // 2: a socket and a file each
    with pytest.raises(GanforgeError, match=r"open-file limit is 30, too low .*at least 32 \(ulimit -n 1024\)"):
        connection_limit(30, 8)


# -- item 4: a real server ------------------------------------------------------------------------
# `python -m ganforge`, under an open-file limit of argv[1] (0: unchanged)
LIMITED = ("import resource, runpy, sys\n"
           "n = int(sys.argv.pop(1))\n"
           "if n: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))\n"
           "runpy.run_module('ganforge', run_name='__main__')\n")


def start_server(run: Path, nofile: int = 0, token: str | None = None) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if k != "GANFORGE_TOKEN"} | ({"GANFORGE_TOKEN": token} if token else {})
    proc = subprocess.Popen([sys.executable, "-c", LIMITED, str(nofile), "serve", str(run), "--port", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    first = proc.stdout.readline().decode() if ready else ""
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
    if not found:
        proc.kill()
        pytest.fail(f"the server did not start: {first!r} {proc.communicate(timeout=10)[1][-2000:]!r}")
    return proc, int(found.group(1))


def stop(proc: subprocess.Popen) -> bytes:
    proc.terminate()
    try:
        return proc.communicate(timeout=15)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


def request(port: int, path: str = "/api/info", host: str | None = None, timeout: float = 10) -> tuple[int, str]:
    """One raw HTTP/1.1 GET -> (status, head); -1 if the connection was refused, reset or timed out."""
    host = host if host is not None else f"127.0.0.1:{port}"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return -1, ""
    head = data.split(b"\r\n\r\n")[0].decode("latin-1")
    return (int(head.split()[1]) if head.startswith("HTTP/") else -1), head


def closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: closed too
        return True


@pytest.fixture(scope="module")
def server(tiny_run):
    proc, port = start_server(tiny_run)
    yield port
    stop(proc)


@pytest.mark.slow
def test_real_server_refuses_foreign_host_names(server):
    status, head = request(server, host=f"evil.example:{server}")
    assert status == 400 and "x-frame-options: DENY" in head
    status, head = request(server, "/")
    assert status == 200 and "content-security-policy: default-src 'self'" in head


@pytest.mark.slow
def test_silent_and_half_sent_connections_are_closed(server):
    silent = socket.create_connection(("127.0.0.1", server))
    half = socket.create_connection(("127.0.0.1", server))
    half.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1")
    drip = socket.create_connection(("127.0.0.1", server))  # slowloris: a byte now and then
    start = time.monotonic()
    open_socks = [silent, half, drip]
    while open_socks and time.monotonic() - start < HEADER_TIMEOUT_S + 10:
        assert request(server)[0] == 200  # served all along
        if drip in open_socks:
            try:
                drip.sendall(b"G")
            except OSError:
                pass
        open_socks = [s for s in open_socks if not closed_by_server(s)]
        time.sleep(0.5)
    waited = time.monotonic() - start
    for s in (silent, half, drip):
        s.close()
    assert not open_socks and HEADER_TIMEOUT_S - 1 < waited < HEADER_TIMEOUT_S + 10


@pytest.mark.slow
def test_idle_sockets_under_a_low_file_limit_do_not_stop_the_server(tiny_run):
    proc, port = start_server(tiny_run, nofile=64)
    idle = []
    try:
        for _ in range(50):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1)
        start = time.monotonic()
        status, _ = request(port, timeout=5)
        assert status == 503 and time.monotonic() - start < 5  # over the limit: answered at once, never hung
        for s in idle:
            s.close()
        idle = []
        deadline = time.monotonic() + 10
        while (status := request(port, timeout=5)[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200  # service is back once they close
        for _ in range(100):  # uvicorn warns once per malformed request: throttled
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"NOT HTTP\r\n\r\n")
                s.recv(1024)
    finally:
        for s in idle:
            s.close()
        stderr = stop(proc)
    assert len(stderr) < 2000, stderr[-2000:]  # a line or two, not a traceback per second


EMFILE_SERVER = """
import asyncio, os, resource, sys
from ganforge.serve.connections import on_loop_error

async def main():
    loop = asyncio.get_running_loop()
    if sys.argv[1] == "guarded":
        loop.set_exception_handler(on_loop_error)
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(4)

in_use = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 8, in_use + 8))
asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("handler", ["guarded", "asyncio's own"])
def test_a_full_file_table_is_logged_once(handler):
    """asyncio's accept loop with a full file table: ganforge's handler logs one line; asyncio's
    own (the control) logs a traceback per backlog slot per second."""
    proc = subprocess.Popen([sys.executable, "-c", EMFILE_SERVER, handler], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    port = int(proc.stdout.readline()) if ready else pytest.fail("the server did not start")
    clients = []
    try:
        for _ in range(20):  # 8 accepted, the rest wait in the backlog: accept() fails with EMFILE
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        _, stderr = proc.communicate(timeout=60)
    finally:
        for s in clients:
            s.close()
        proc.kill()
    lines = stderr.decode(errors="replace").splitlines()
    if handler == "guarded":
        assert len(lines) == 1 and "the file table is full" in lines[0], lines[:5]
    else:
        assert len(lines) > 100


@pytest.mark.slow
def test_the_page_works_in_a_browser_with_a_token_and_its_policy(tiny_run, tmp_path):
    """Chromium opens the printed URL (/?token=...): the redirect sets the cookie, and every later
    request of the page (fetch, the sample grid's <img>) is served, with no CSP violation."""
    import importlib.util

    script = ROOT / "scripts" / "playground_screenshot.py"
    spec = importlib.util.spec_from_file_location("playground_screenshot", script)
    playground = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(playground)
    if not Path(playground.CHROMIUM).exists():
        pytest.skip(f"{playground.CHROMIUM} is not installed (apt-get install chromium)")
    proc, port = start_server(tiny_run, token=TOKEN)
    try:
        with playground.chromium_page() as page:
            url = f"http://127.0.0.1:{port}/?token={TOKEN}"
            seen = playground.click_through(page, url, tmp_path / "shot.png")
            assert page.url == f"http://127.0.0.1:{port}/"  # the token left the address bar
    finally:
        stop(proc)
    assert seen["errors"] == [] and seen["status"] == 200
    assert seen["grid_pictures"] == 80 and any("/api/samples/latest" in c for c in seen["api_calls"])
