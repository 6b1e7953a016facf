"""The playground under attack (issue 12, items 4-6), through FastAPI's TestClient: Host names it
does not serve (DNS rebinding), requests without the token, oversized headers, framing and sniffing,
links and special files planted in samples/, a metrics.jsonl that grows, is rewritten or holds junk.
Sockets, file limits and the real server: tests/test_serve_sockets.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ganforge.cli import cli
from ganforge.cli.serve import listen
from ganforge.serve import connections
from ganforge.serve.app import create_app
from ganforge.serve.connections import (
    MAX_CONNECTIONS,
)
from ganforge.serve.guard import cookie_name, split_host
from ganforge.serve.metrics_tail import MAX_LINE, MAX_SERIES, MetricsTail

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token-for-tests_0123456789"
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def run(tmp_path, tiny_run):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    return copy


@pytest.fixture(scope="module")
def client(tiny_run):
    return TestClient(create_app(tiny_run), base_url=BASE)


@pytest.fixture(scope="module")
def locked(tiny_run):
    """A playground with a token, as `ganforge serve --host 0.0.0.0` runs it."""
    return create_app(tiny_run, token=TOKEN)


def assert_security_headers(response):
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "img-src 'self' data:" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


# -- item 5: Host header (DNS rebinding) --------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000"])
def test_the_names_of_this_machine_are_served(client, host):
    assert client.get("/api/info", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example:8000", "evil.example", "127.0.0.1.evil.example:8000",
                                  "localhost:9999", "localhost", "127.0.0.1", "[::1]", "localhost.:8000",
                                  "", "localhost:80:80", "[::1", "localhost:abc", "a b:8000"])
def test_other_host_names_are_refused(client, host):
    for path in ("/api/info", "/", "/static/app.js", "/openapi.json"):
        r = client.get(path, headers={"host": host})
        assert r.status_code == 400, (host, path)
        assert "host" in r.json()["error"].lower()
        assert_security_headers(r)


def test_allowed_host_adds_a_name_at_any_port(tiny_run):
    c = TestClient(create_app(tiny_run, allowed_hosts=["Box.Lan"]), base_url=BASE)
    for host in ("box.lan:8000", "box.lan", "box.lan:443"):
        assert c.get("/api/info", headers={"host": host}).status_code == 200
    r = c.get("/api/info", headers={"host": "other.lan:8000"})
    assert r.status_code == 400 and "--allowed-host other.lan" in r.json()["error"]


@pytest.mark.parametrize("value, parsed", [("localhost:8000", ("localhost", 8000)), ("[::1]:80", ("::1", 80)),
                                           ("Example.COM", ("example.com", None)), ("[::1]", ("::1", None)),
                                           ("::1", ("::1", None)), ("x:", ("x", None)), ("", None),
                                           (":80", None), ("x:123456", None), ("[::1]x", None)])
def test_split_host(value, parsed):
    assert split_host(value) == parsed


# -- other web sites: a page elsewhere cannot drive the playground through the user's browser --
@pytest.mark.parametrize("headers", [{"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
                                     {"sec-fetch-site": "same-site", "sec-fetch-mode": "cors"},
                                     {"origin": "http://evil.example"}, {"origin": "null"}])
def test_requests_from_other_sites_are_refused(client, headers):
    r = client.post("/api/lab?width=8&batch_size=32", headers=headers)
    assert r.status_code == 403 and "other web sites" in r.json()["error"]
    assert_security_headers(r)
    if "sec-fetch-site" in headers:  # browsers send it on every request, reads included
        assert client.get("/api/generate", headers=headers).status_code == 403


@pytest.mark.parametrize("headers", [{}, {"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"},
                                     {"sec-fetch-site": "none", "sec-fetch-mode": "navigate"},
                                     {"origin": "http://127.0.0.1:8000"}])
def test_the_page_itself_and_clients_without_a_browser_are_served(client, headers):
    r = client.post("/api/lab?width=8&batch_size=32", headers=headers)
    assert r.status_code == 200, r.text
    client.delete("/api/lab")


def test_a_link_from_another_site_opens_the_page(client):
    r = client.get("/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]


def test_oversized_headers_are_refused(client):
    r = client.get("/api/info", headers={"x-junk": "a" * 17_000})
    assert r.status_code == 431 and "16 KiB" in r.json()["error"]
    assert_security_headers(r)


# -- item 5: headers on every answer --------------------------------------------------------------
@pytest.mark.parametrize("path, status", [("/", 200), ("/static/app.js", 200), ("/api/info", 200),
                                          ("/api/generate?cls=99", 422), ("/missing", 404),
                                          ("/api/samples/latest", 200)])
def test_every_answer_carries_the_security_headers(client, path, status):
    r = client.get(path)
    assert r.status_code == status
    assert_security_headers(r)


def test_the_page_needs_nothing_the_policy_forbids(client):
    """No inline script or style, no external source: `default-src 'self'` leaves the page whole
    (tests/test_browser.py checks the same in Chromium, with no console error)."""
    page = client.get("/").text
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>']
    assert "<style" not in page and not re.search(r"\s(style|on[a-z]+)=", page)
    assert not re.search(r"\beval\(|new Function", client.get("/static/app.js").text)


# -- item 4: the token --------------------------------------------------------------------------
def test_without_the_token_nothing_is_served(locked):
    c = TestClient(locked, base_url=BASE)
    for path in ("/", "/api/info", "/api/training", "/api/samples/latest", "/static/app.js", "/openapi.json"):
        r = c.get(path)
        assert r.status_code == 401 and "needs its token" in r.json()["error"], path
        assert_security_headers(r)
    for headers in ({"authorization": "Bearer wrong-token-0123456789"}, {"authorization": TOKEN},
                    {"authorization": f"Basic {TOKEN}"}, {"cookie": f"{cookie_name(9999)}={TOKEN}"},
                    {"cookie": f"{cookie_name(8000)}=wrong"}, {"cookie": "\x00;;=="}):
        assert c.get("/api/info", headers=headers).status_code == 401, headers
    assert c.get(f"/api/info?token={TOKEN}").status_code == 401  # a token in a URL only opens the page


def test_the_token_as_a_bearer_header(locked):
    c = TestClient(locked, base_url=BASE, headers={"authorization": f"Bearer {TOKEN}"})
    assert c.get("/api/info").status_code == 200
    assert c.get("/api/generate", params={"cls": 1, "seed": 2}).status_code == 200


def test_the_printed_url_opens_the_page_and_sets_the_cookie(locked):
    c = TestClient(locked, base_url=BASE, follow_redirects=False)
    r = c.get(f"/?token={TOKEN}")
    assert r.status_code == 303 and r.headers["location"] == "/"  # the token leaves the address bar
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(8000)}={TOKEN}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.get("/").status_code == 200  # the client keeps the cookie, as a browser does
    for path in ("/static/app.js", "/api/info", "/api/training", "/api/samples/latest"):
        assert c.get(path).status_code == 200, path
    assert TestClient(locked, base_url=BASE).get("/?token=wrong").status_code == 401


def test_the_host_is_checked_before_the_token(locked):
    r = TestClient(locked, base_url=BASE).get("/api/info", headers={"host": "evil.example:8000",
                                                                    "authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400


def serve_offline(monkeypatch, *args) -> tuple[object, dict]:
    """Run `ganforge serve` up to the point of serving: listen on loopback whatever --host says, and
    hand back the app instead of serving it."""
    served = {}
    monkeypatch.setattr("ganforge.cli.serve.listen", lambda host, port: socket.create_server(("127.0.0.1", 0)))
    monkeypatch.setattr(connections, "run_server", lambda server, sock: served.update(
        app=server.config.app, limit=server.config.limit_concurrency) or sock.close())
    result = CliRunner().invoke(cli, ["serve", *args])
    return result, served


def test_off_loopback_a_token_is_generated_and_printed(monkeypatch, tiny_run):
    r, served = serve_offline(monkeypatch, str(tiny_run), "--host", "192.0.2.1")
    assert r.exit_code == 0, r.output
    token = re.search(r"/\?token=([A-Za-z0-9_-]+) ", r.stdout).group(1)
    assert len(token) >= 32 and "requests need the token" in r.stderr
    c = TestClient(served["app"], base_url="http://192.0.2.1:8000")
    assert c.get("/api/info").status_code == 401
    assert c.get("/api/info", headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert 4 < served["limit"] <= MAX_CONNECTIONS + 1


def test_a_given_token_is_used_on_loopback_too(monkeypatch, tiny_run):
    monkeypatch.setenv("GANFORGE_TOKEN", TOKEN)
    r, served = serve_offline(monkeypatch, str(tiny_run))
    assert r.exit_code == 0 and f"/?token={TOKEN} " in r.stdout
    assert TestClient(served["app"], base_url=BASE).get("/api/info").status_code == 401


@pytest.mark.parametrize("token", ["", "short", "has space in it 0123456789", "semi;colon=0123456789abc", "x" * 257])
def test_a_weak_or_unsafe_token_is_refused(monkeypatch, tiny_run, token):
    r, served = serve_offline(monkeypatch, str(tiny_run), "--host", "0.0.0.0", "--token", token)
    assert r.exit_code == 2 and "error: --token must be 16 to 256 letters" in r.stderr
    assert not served


def test_a_host_name_given_to_listen_on_is_served(monkeypatch, tiny_run):
    r, served = serve_offline(monkeypatch, str(tiny_run), "--host", "box.lan", "--allowed-host", "alias.lan")
    c = TestClient(served["app"], base_url=BASE)
    token = re.search(r"\?token=(\S+) ", r.stdout).group(1)
    for host in ("box.lan:8000", "alias.lan:8000"):
        assert c.get("/api/info", headers={"host": host, "authorization": f"Bearer {token}"}).status_code == 200


def test_accepted_connections_have_nagle_off():
    """asyncio sets TCP_NODELAY only on sockets made as TCP; `listen` made them with proto 0, so
    every answer (uvicorn writes head and body apart) waited 40 ms for the client's delayed ACK."""
    sock = listen("127.0.0.1", 0)

    async def accept_one() -> int:
        loop = asyncio.get_running_loop()
        accepted = loop.create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport):
                s = transport.get_extra_info("socket")
                accepted.set_result(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await loop.create_server(Accept, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accept_one()) != 0


# -- item 5: files planted in samples/ --------------------------------------------------------------
def test_a_hard_link_in_samples_is_not_served(run, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n private")
    os.link(secret, run / "samples" / "step-999999.png")
    c = TestClient(create_app(run), base_url=BASE)
    r = c.get("/api/samples/latest")
    assert r.status_code == 400 and "not a sample grid written by training" in r.json()["error"]
    assert b"private" not in r.content
    assert c.get("/api/samples/latest", params={"step": 6}).status_code == 200  # the run's own still are


def test_a_samples_folder_that_is_a_symlink_is_not_followed(run, tmp_path):
    outside = tmp_path / "outside"
    shutil.move(run / "samples", outside)
    (run / "samples").symlink_to(outside)
    r = TestClient(create_app(run), base_url=BASE).get("/api/samples/latest", params={"step": 6})
    assert r.status_code == 400 and "not a link" in r.json()["error"]


def test_a_fifo_or_a_non_png_in_samples_is_refused_at_once(run):
    os.mkfifo(run / "samples" / "step-999998.png")  # opening it for reading would block for ever
    (run / "samples" / "step-999997.png").write_text("#!/bin/sh\n")
    c = TestClient(create_app(run), base_url=BASE)
    start = time.monotonic()
    assert c.get("/api/samples/latest", params={"step": 999998}).status_code == 400
    assert time.monotonic() - start < 5
    r = c.get("/api/samples/latest", params={"step": 999997})
    assert r.status_code == 400 and "not a PNG" in r.json()["error"]


def test_sample_grids_are_served_by_step_number(run):
    c = TestClient(create_app(run), base_url=BASE)
    grid = c.get("/api/samples/latest", params={"step": 3})
    assert grid.content == (run / "samples" / "step-000003.png").read_bytes()
    r = c.get("/api/samples/latest", params={"step": 4})
    assert r.status_code == 404 and "no sample grid of step 4" in r.json()["error"]
    assert c.get("/api/samples/latest", params={"step": 2**63}).status_code == 422


def test_a_class_name_that_was_not_utf8_is_shown_not_a_500(run):
    from ganforge.checkpoint import load_checkpoint, save_checkpoint

    ckpt = run / "checkpoints" / "last.safetensors"
    tensors, meta = load_checkpoint(ckpt)
    meta["class_names"][1] = b"caf\xe9".decode("utf-8", "surrogateescape")  # a Latin-1 folder name
    save_checkpoint(ckpt, tensors, meta)
    r = TestClient(create_app(run), base_url=BASE).get("/api/info")
    assert r.status_code == 200 and r.json()["class_names"][1] == "caf\ufffd"


# -- item 6: metrics.jsonl, incrementally --------------------------------------------------------
def line(step: int, **extra) -> str:
    return json.dumps({"step": step, "loss_d": step / 10, "loss_g": 1.0, "time_s": 0.5, **extra}) + "\n"


def test_a_poll_reads_only_what_was_appended(tmp_path):
    """Measured on a 200,000-line (32 MB) metrics.jsonl on the busy 2-core machine: a poll that
    re-read the file took 3.5 s; now the first poll takes 2.5 s, a poll with nothing new 0.09 ms
    (0 bytes read) and one with 100 new lines 0.75 ms (16 KB read). Asserted here in bytes read,
    on 20,000 lines."""
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(line(s) for s in range(20_000)))
    tail = MetricsTail(path)
    tail.refresh()
    assert tail.bytes_read == path.stat().st_size and tail.logged_step == 19_999
    for _ in range(3):
        tail.refresh()
    assert tail.bytes_read == path.stat().st_size  # nothing new: nothing read
    new = "".join(line(s) for s in range(20_000, 20_100))
    with open(path, "a") as f:
        f.write(new)
    before = tail.bytes_read
    tail.refresh()
    assert tail.bytes_read - before == len(new.encode())  # O(new lines), not O(file)
    assert tail.logged_step == 20_099 and len(tail.series["loss_d"][0]) == 20_100


def test_a_torn_last_line_waits_for_its_end(tmp_path):
    path = tmp_path / "metrics.jsonl"
    full = line(1) + line(2)
    path.write_text(full[:-15])
    tail = MetricsTail(path)
    tail.refresh()
    assert tail.logged_step == 1
    with open(path, "a") as f:
        f.write(full[-15:])
    tail.refresh()
    assert tail.logged_step == 2 and list(tail.series["loss_d"][1]) == [0.1, 0.2]


def test_a_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(line(s) for s in range(1, 11)))
    tail = MetricsTail(path)
    tail.refresh()
    assert tail.logged_step == 10
    # a resume's drop_metrics_after: an atomic replace (new inode), here one line longer
    new = tmp_path / "new.jsonl"
    new.write_text("".join(line(s) for s in range(1, 5)) + line(5, fid=3.0) + line(6) * 6)
    os.replace(new, path)
    tail.refresh()
    assert tail.logged_step == 6 and list(tail.series["fid"][0]) == [5]
    # rewritten in place: shorter, then the same size with other values
    path.write_text(line(1) + line(2))
    tail.refresh()
    assert tail.logged_step == 2 and "fid" not in tail.series
    os.utime(path, ns=(0, 0))
    path.write_text(line(3) + line(4))
    tail.refresh()
    assert tail.logged_step == 4


def test_junk_lines_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    huge = '{"step": 3, "loss_d": ' + "9" * 5000 + "}\n"  # ValueError: over 4,300 digits
    path.write_text(line(1) + huge + "[" * 100_000 + "\n" + "[1, 2]\n" + "not json\n" + '"text"\n'
                    + '{"step": "7", "loss_d": 1}\n' + '{"step": true}\n' + "\xff\xfe\n"
                    + line(2, loss_d=float("nan"), big=10**400, flag=True, name="x") + line(4))
    tail = MetricsTail(path)
    tail.refresh()
    assert tail.logged_step == 4
    assert list(tail.series["loss_d"][0]) == [1, 4] and "big" not in tail.series  # a huge int is no point
    assert "flag" not in tail.series and "name" not in tail.series and "time_s" not in tail.series


def test_an_endless_line_and_endless_keys_are_bounded(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"x" * (3 * MAX_LINE) + b"\n" + line(1).encode())
    tail = MetricsTail(path)
    tail.refresh()
    assert tail.logged_step == 1
    with open(path, "a") as f:
        f.write("y" * (2 * MAX_LINE))  # no newline yet: not buffered
        f.flush()
        tail.refresh()
        assert len(tail._partial) == 0
        f.write("\n" + json.dumps({"step": 2, **{f"k{i}": i for i in range(1000)}}) + "\n")
    tail.refresh()
    assert tail.logged_step == 2 and len(tail.series) == MAX_SERIES


def test_training_view_follows_a_growing_and_rewritten_log(run):
    c = TestClient(create_app(run), base_url=BASE)
    assert c.get("/api/training").json()["logged_step"] == 6
    with open(run / "metrics.jsonl", "a") as f:
        f.write(line(8) + '{"step": 9, "loss_d": ' + "1" * 4400 + "}\n" + line(10)[:-5])
    t = c.get("/api/training")
    assert t.status_code == 200 and t.json()["logged_step"] == 8 and t.json()["series"]["loss_d"]["x"][-1] == 8
    (run / "new").write_text(line(2))
    os.replace(run / "new", run / "metrics.jsonl")
    assert c.get("/api/training").json()["logged_step"] == 2
