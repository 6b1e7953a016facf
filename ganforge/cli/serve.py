"""`ganforge serve`: the web playground, on a socket opened before the model is served."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import click

from ganforge.errors import GanforgeError


@click.command("serve")
@click.argument("run", type=click.Path(path_type=Path), required=False)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 opens the playground to your whole network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one.")
def command(run, host, port):
    """Open a web playground for a run: generate, grid, interpolate, watch training; and the lab,
    where a toy GAN trains live in two dimensions. Without RUN, the lab alone.
    Example: ganforge serve runs/digits, then open http://127.0.0.1:8000/"""
    try:
        import uvicorn

        from ganforge.serve import create_app
    except ImportError as e:
        raise GanforgeError(f"the playground needs {e.name}: pip install 'ganforge[serve]'") from None

    from ganforge.checkpoint import read_model
    from ganforge.serve.lab import create_lab_app

    if run is None:
        import torch

        torch.set_num_threads(1)  # the lab's nets are tiny: more threads only contend on a busy CPU
        app, what = create_lab_app(), "ganforge lab"
    elif read_model(run).config.model.points:
        raise GanforgeError(f"{run} is a model of 2-D points; the playground shows image models. Use "
                            "'ganforge generate RUN --out points.png' and 'ganforge evaluate RUN'")
    else:
        app, what = create_app(run), f"ganforge playground for {run}"  # an unusable run fails here
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"{what}: http://{shown}:{sock.getsockname()[1]}/ "
               "(API schema at /openapi.json; Ctrl-C stops)")
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use it", err=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port or a bad address is a clear error before starting,
    and the printed URL already accepts connections (they wait until uvicorn serves them)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError as e:
        raise GanforgeError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                            "pick another --port or --host") from None
    return sock
