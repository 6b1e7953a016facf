"""Who may talk to the playground, and what a browser may do with its answers: an ASGI middleware in
front of every request (API, page and static files alike, so no route can be forgotten).

- Host header: only the names the server is reached by (localhost, 127.0.0.1, [::1] and the address
  the connection came in on, each with the server's port, plus names given with --allowed-host, at
  any port, for a proxy or DNS name). A web page on evil.example whose name an attacker re-points at
  127.0.0.1 (DNS rebinding) sends `Host: evil.example:PORT`, and is answered 400.
- Token: when the server has one (always, off loopback), every request must carry it, as
  `Authorization: Bearer TOKEN` or in the cookie the page sets. The URL printed at start carries it
  once as `/?token=TOKEN`; the server answers with the cookie and a redirect to `/`, so the token
  leaves the address bar, and the page's own requests (fetch, <img>) carry it without any script.
- Other sites: a page elsewhere may not make the browser send requests here (403), except a plain
  navigation (a link to the playground). Browsers name the origin of every request
  (`Sec-Fetch-Site`; `Origin` on a POST); without this, any page the user visits could drive a
  loopback playground, which needs no token, and spend its CPU. Clients that are not browsers
  (curl, scripts) send neither header and are not affected.
- Size: request headers over 16 KiB are answered 431.
- Headers on every answer: the page loads only its own files (Content-Security-Policy; images also
  from data: URLs, which is how the API returns them), may not be framed, and types are not sniffed.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

MAX_HEAD_BYTES = 16 * 1024  # request headers; a browser sends ~1 KB
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # URL- and cookie-safe, long enough not to guess
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # a page URL may still hold ?token=
]


def valid_token(token: str) -> bool:
    return TOKEN.fullmatch(token) is not None


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header -> (name in lower case, port or None); None when it is not a host[:port]."""
    value = value.strip().lower()
    if value.startswith("["):  # [v6]:port
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] or None
    else:
        name, _, port = value.partition(":") if value.count(":") == 1 else (value, "", None)
        port = port or None
    if not name or (port is not None and not (port.isdigit() and len(port) <= 5)):
        return None
    return name, None if port is None else int(port)


class Guard:
    """ASGI middleware: Host check, token check, security headers (see the module docstring)."""

    def __init__(self, app, token: str | None = None, allowed_hosts: Iterable[str] = ()):
        self.app = app
        self.token = token.encode() if token else None
        self.allowed = frozenset(h.lower() for h in allowed_hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEAD_BYTES:
            # h11 refuses a longer head only while it is incomplete; one that arrives whole passes
            return await answer(send_with_headers, 431, {"error": f"the request headers are over "
                                                         f"{MAX_HEAD_BYTES // 1024} KiB; send fewer"})
        headers = dict(scope["headers"])  # lower-case names; a repeated header: the last one
        port = (scope.get("server") or (None, None))[1]
        host = headers.get(b"host", b"").decode("latin-1")
        if problem := self.host_problem(host, scope.get("server")):
            return await answer(send_with_headers, 400, {"error": problem})
        if cross_site(scope["method"], headers, host):
            return await answer(send_with_headers, 403, {"error": (
                "requests from other web sites are refused; open the playground itself "
                f"(http://{host[:100]}/) and use it from there")})
        if self.token is not None:
            query = parse_qs(scope["query_string"].decode("latin-1"))
            offered = query.get("token", [""])[-1].encode()
            if scope["path"] == "/" and offered and secrets.compare_digest(offered, self.token):
                cookie = f"{cookie_name(port)}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
                return await answer(send_with_headers, 303, None, [(b"location", b"/"),
                                                                   (b"set-cookie", cookie.encode())])
            if not self.carries_token(headers, port):
                return await answer(send_with_headers, 401, {"error": (
                    "this playground needs its token: open the URL 'ganforge serve' printed "
                    "(http://HOST:PORT/?token=...) or send the header 'Authorization: Bearer TOKEN'")})
        await self.app(scope, receive, send_with_headers)

    def host_problem(self, host: str, server) -> str | None:
        """Why a Host header is refused, or None. `server` is the (address, port) the connection
        came in on."""
        parsed = split_host(host)
        if parsed is None:
            return f"the Host header {host[:100]!r} is not a host name; send the name you reached the server by"
        name, port = parsed
        if name in self.allowed:
            return None
        local_address, local_port = server or (None, None)
        if (name in LOOPBACK_NAMES or name == local_address) and port == local_port:
            return None
        return (f"this server does not answer to the host name {host[:100]!r}; open it as "
                f"http://127.0.0.1:{local_port}/, or start it with --allowed-host {name[:100]}")

    def carries_token(self, headers: dict[bytes, bytes], port: int | None) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and secrets.compare_digest(given.strip(), self.token):
            return True
        try:
            cookies = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:
            return False
        morsel = cookies.get(cookie_name(port))
        return morsel is not None and secrets.compare_digest(morsel.value.encode(), self.token)


def cross_site(method: str, headers: dict[bytes, bytes], host: str) -> bool:
    """Whether a browser sent this request on behalf of another site's page. A top-level GET
    navigation (a link someone clicked) is let through: it shows the page and can do nothing else."""
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
    if site:
        navigation = method == "GET" and headers.get(b"sec-fetch-mode", b"").lower() == b"navigate"
        return site in ("cross-site", "same-site") and not navigation
    # Older browsers send Origin, not Sec-Fetch-Site, with a POST; "null" is an opaque origin. The
    # scheme is not compared: behind an HTTPS proxy (--allowed-host) the page's origin is https.
    origin = headers.get(b"origin")
    if method in ("GET", "HEAD") or origin is None:
        return False
    return origin.decode("latin-1").lower().partition("://")[2] != host.strip().lower()


def cookie_name(port: int | None) -> str:
    """Cookies are shared by every port of a host: name it by port, so that two playgrounds on one
    machine do not overwrite each other's token."""
    return f"ganforge_token_{port}"


async def answer(send, status: int, body: dict | None, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = b"" if body is None else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})
