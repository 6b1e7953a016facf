"""The playground's sockets under abuse: idle and half-sent connections, too many connections, a
full file table. uvicorn alone (0.54, h11) leaves these open:

- its keep-alive timer starts only after a first response and stops at the first byte received, so
  a connection that sends nothing, or half a request, or one byte every minute, stays open for ever.
  `GuardedH11Protocol` gives every request head HEADER_TIMEOUT_S to arrive in full (from the
  connection's start or from the end of the previous response) and every answer RESPONSE_TIMEOUT_S;
  after that the connection is dropped.
- its `limit_concurrency` answers 503 only once a request arrives, so silent connections still take
  a file descriptor each. Here a connection over the limit is answered 503 and closed at once, and the
  limit is set from the open-file limit (`ulimit -n`), so the file table cannot fill with sockets.
- asyncio, when accept() fails with EMFILE, logs a traceback once per listen backlog slot, every
  second (Python 3.11: 2048 tracebacks a second with uvicorn's backlog, 47 MB of stderr in 12 s
  measured); `serve` logs it once a minute, in one line that says what to do. uvicorn's own
  warnings ("Invalid HTTP request received.", one per bad request) are throttled the same way.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import time

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ganforge.errors import GanforgeError
from ganforge.serve.guard import MAX_HEAD_BYTES  # also the most h11 buffers of an unfinished head

HEADER_TIMEOUT_S = 10.0  # a browser sends its request head in one packet; a slow link in well under 1 s
RESPONSE_TIMEOUT_S = 60.0  # the slowest answer (a 16x16 grid on a busy CPU) takes well under a second
KEEP_ALIVE_S = 5  # uvicorn's default: idle time allowed between requests on one connection
MAX_CONNECTIONS = 64  # a browser opens 6 per host; 64 leaves room for a few people and scripts
FDS_PER_CONNECTION = 2  # its socket, and a file a request may open (checkpoint, sample, page)
FD_RESERVE = 16  # files the server itself opens besides connections (reloads, logs, imports)
BACKLOG = 128  # the listen queue; also the number of times asyncio retries accept() per tick
SHUTDOWN_S = 5  # Ctrl-C waits this long for answers in progress
LINGER_S = 1.0  # a connection turned away is kept this long to read its request (see connection_made)
LOG_EVERY_S = 60.0  # how often a repeating resource warning is logged

BUSY = b'{"error": "too many connections are open; try again in a few seconds"}'
SERVICE_UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                       b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BUSY), BUSY))

log = logging.getLogger("ganforge.serve")


class Throttled:
    """Logs a warning at most once per LOG_EVERY_S, with the count of the ones held back."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.last: float | None = None
        self.held_back = 0

    def warn(self, message: str) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < LOG_EVERY_S:
            self.held_back += 1
            return
        more = f" ({self.held_back} more since the last report)" if self.held_back else ""
        log.warning("%s%s", message, more)
        self.last, self.held_back = now, 0


FILE_TABLE_FULL = Throttled()
TURNED_AWAY = Throttled()


class OncePerMinute(logging.Filter):
    """Lets each distinct warning through at most once per LOG_EVERY_S; errors always pass."""

    def __init__(self, clock=time.monotonic):
        super().__init__()
        self.clock = clock
        self.last: dict[str, float] = {}  # keyed by the format string: uvicorn has a handful

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        now, key = self.clock(), str(record.msg)
        if key in self.last and now - self.last[key] < LOG_EVERY_S:
            return False
        self.last[key] = now
        return True


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on every request head and answer, and the
    connection limit applied at connect time."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waited_on = None  # the request whose answer got RESPONSE_TIMEOUT_S more
        self._turned_away = False
        # uvicorn's own rule for 503 (it counts this connection too), applied before any byte
        # arrives, so that silent connections beyond the limit do not hold a file descriptor long.
        if self.limit_concurrency is not None and len(self.connections) >= self.limit_concurrency:
            TURNED_AWAY.warn(f"turned a connection away: {len(self.connections) - 1} are open, "
                             f"the limit is {self.limit_concurrency - 1}")
            self._turned_away = True
            transport.write(SERVICE_UNAVAILABLE)
            # Half-close and drain rather than close: closing with the client's request unread
            # would send a reset, which can destroy the 503 before the client reads it.
            transport.write_eof()
            self._arm(LINGER_S)
            return
        self._arm(HEADER_TIMEOUT_S)

    def data_received(self, data: bytes) -> None:
        if not self._turned_away:  # a turned-away connection's request is read and dropped
            super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(HEADER_TIMEOUT_S)  # the next request head must arrive in time too

    def connection_lost(self, exc) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        answering = self.cycle is not None and not self.cycle.response_complete
        if answering and self._waited_on is not self.cycle:
            self._waited_on = self.cycle
            self._arm(RESPONSE_TIMEOUT_S)
            return
        # abort, not close: close() would wait to flush to a client that may never read.
        self.transport.abort()


def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """asyncio's exception handler, but a full file table is one throttled line, not a traceback
    per backlog slot per second."""
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        FILE_TABLE_FULL.warn("the file table is full (too many open files): new connections wait "
                             "until some close; raise the limit with 'ulimit -n' (now "
                             f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}) or close other programs")
        return
    loop.default_exception_handler(context)


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: assume a typical count
        return 32


def connection_limit(soft_limit: int, in_use: int) -> int:
    """How many connections may be open at once without filling the file table. Raises
    GanforgeError when the limit is too low to serve even a few."""
    limit = min(MAX_CONNECTIONS, (soft_limit - in_use - FD_RESERVE) // FDS_PER_CONNECTION)
    if limit < 4:
        need = in_use + FD_RESERVE + 4 * FDS_PER_CONNECTION
        raise GanforgeError(f"the open-file limit is {soft_limit}, too low to serve the playground; "
                            f"raise it to at least {need} (ulimit -n {max(need, 1024)})")
    return limit


def build_server(app) -> uvicorn.Server:
    """A uvicorn server for `app` with the guards above; raises GanforgeError if the open-file
    limit is too low (before anything is printed or served)."""
    limit = connection_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0], open_fds())
    config = uvicorn.Config(
        app, log_level="warning", http=GuardedH11Protocol, backlog=BACKLOG, timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES, timeout_graceful_shutdown=SHUTDOWN_S,
        limit_concurrency=limit + 1)  # uvicorn counts the connection asking: limit + 1 lets `limit` be open
    logging.getLogger("uvicorn.error").addFilter(OncePerMinute())  # after Config, which sets up logging
    return uvicorn.Server(config)


def run_server(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on the listening socket `sock` until Ctrl-C."""

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(on_loop_error)
        await server.serve(sockets=[sock])

    asyncio.run(main())
