"""`ganforge serve`: the web playground, on a socket opened before the model is served.

On loopback it is open to this machine's users, as any local port is; anywhere else it requires a
token, generated at start unless --token (or GANFORGE_TOKEN) gives one: there is no way to open it to
a network without one.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from pathlib import Path

import click

from ganforge.errors import GanforgeError
from ganforge.rundir import PRETRAINED_NAME


@click.command("serve")
@click.argument("run", type=click.Path(path_type=Path), required=False)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 opens the playground to your whole network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--token", envvar="GANFORGE_TOKEN", default=None,
              help="Secret every request must carry (16+ letters, digits, - _ . ~). Required off "
                   "loopback: left out there, one is generated and printed. Also read from GANFORGE_TOKEN, "
                   "which other users cannot see in 'ps'.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests addressed to this host name (a DNS name or a proxy's); "
                   "repeatable. localhost, 127.0.0.1, [::1] and the listening address always work.")
@click.option("--reference", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Real images the police ranks D's verdicts among (one sub-folder per class, or IDX "
                   "files): a run trained on a folder of images needs it, because a checkpoint cannot "
                   "make ganforge read a folder; digit models use the bundled digits.")
def command(run, host, port, token, allowed_hosts, reference):
    """Open a web playground for a run: generate, grid, interpolate, watch training; and the lab,
    where a toy GAN trains live in two dimensions. Without RUN: the pretrained digit model.
    Example: ganforge serve runs/digits, then open http://127.0.0.1:8000/"""
    try:
        from ganforge.serve import create_app
        from ganforge.serve.connections import build_server, run_server
        from ganforge.serve.guard import valid_token
    except ImportError as e:
        raise GanforgeError(f"the playground needs {e.name}: pip install 'ganforge[serve]'") from None

    if token is not None and not valid_token(token):
        raise GanforgeError("--token must be 16 to 256 letters, digits, '-', '_', '.' or '~'; "
                            "leave it out to have one generated")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    run = run or Path(PRETRAINED_NAME)
    names = [*allowed_hosts, *([] if is_address(host) else [host])]  # --host NAME: requests name it
    # a run that is not usable, or a --reference that is no directory, fails here
    app = create_app(run, token=token, allowed_hosts=names, reference=reference)
    server = build_server(app)
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={token}" if token else ""
    click.echo(f"ganforge playground for {run}: http://{shown}:{sock.getsockname()[1]}/{query} "
               "(API schema at /openapi.json; Ctrl-C stops)")
    if not is_loopback(host):
        click.echo(f"listening on {host}: requests need the token above (header 'Authorization: Bearer "
                   "TOKEN', or open the URL once in a browser); traffic is not encrypted", err=True)
    run_server(server, sock)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port or a bad address is a clear error before starting,
    and the printed URL already accepts connections (they wait until uvicorn serves them)."""
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0][:3]
        # proto IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
        # that say they are TCP. With it on, every answer (uvicorn writes head and body apart) waited
        # for the client's delayed ACK: 40 ms a request, the lab page's frame rate halved.
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError as e:
        raise GanforgeError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                            "pick another --port or --host") from None
    return sock
