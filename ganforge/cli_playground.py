"""Commands that put a trained generator to use: `serve` (the web playground), `export`
(TorchScript/ONNX) and `interpolate` (an animated GIF). Registered on the `ganforge` group in cli.py."""

from __future__ import annotations

import io
import ipaddress
import socket
from pathlib import Path

import click

from ganforge.errors import GanforgeError

MAX_FRAMES = 1000


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 opens the playground to your whole network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one.")
def serve(run, host, port):
    """Open a web playground for a run: generate, grid, interpolate, watch training.
    Example: ganforge serve runs/digits, then open http://127.0.0.1:8000/"""
    try:
        import uvicorn

        from ganforge.serve import create_app
    except ImportError as e:
        raise GanforgeError(f"the playground needs {e.name}: pip install 'ganforge[serve]'") from None

    app = create_app(run)  # a run that is not usable fails here, before listening
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"ganforge playground for {run}: http://{shown}:{sock.getsockname()[1]}/ "
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


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="File to write (.pt, .onnx).")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True)
def export(run, fmt, out, checkpoint):
    """Write the generator as a file that runs without ganforge: (z, labels) -> images in [-1, 1].
    Example: ganforge export RUN --format onnx --out digits.onnx"""
    from ganforge.export import export as write_export
    from ganforge.sample import load

    gan = load(run, checkpoint, device="cpu")
    write_export(gan, fmt, out)
    inputs = "z float32 (B, %d), labels int64 (B,)" % gan.model.z_dim if gan.conditional else \
        "z float32 (B, %d)" % gan.model.z_dim
    click.echo(f"wrote {out}: {inputs} -> images float32 (B, {gan.model.img_channels}, "
               f"{gan.model.img_resolution}, {gan.model.img_resolution}) in [-1, 1]")


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--from-seed", type=int, default=0, show_default=True)
@click.option("--to-seed", type=int, default=1, show_default=True)
@click.option("--class-from", type=int, help="Class at the start (conditional models) [default: 0].")
@click.option("--class-to", type=int, help="Class at the end [default: --class-from].")
@click.option("--classes", help="Both ends at once, like 3,8 (instead of --class-from/--class-to).")
@click.option("--steps", type=int, default=24, show_default=True, help="Frames from one end to the other.")
@click.option("--linear", is_flag=True, help="Move the noise along a line instead of the arc (slerp).")
@click.option("--frame-ms", type=click.IntRange(20, 10_000), default=80, show_default=True)
@click.option("--scale", type=click.IntRange(1, 16), default=4, show_default=True, help="Pixel size.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="FILE.gif to write.")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True)
def interpolate(run, from_seed, to_seed, class_from, class_to, classes, steps, linear, frame_ms, scale,
                out, checkpoint):
    """Write an animated GIF that walks from one seed (and class) to another.
    Example: ganforge interpolate RUN --from-seed 0 --to-seed 5 --classes 3,8 --out walk.gif"""
    from ganforge.checkpoint import atomic_write
    from ganforge.data import to_uint8
    from ganforge.images import to_pil
    from ganforge.sample import interpolation, load

    if out.suffix.lower() != ".gif":
        raise GanforgeError(f"--out {out}: give a .gif file")
    if not 2 <= steps <= MAX_FRAMES:
        raise GanforgeError(f"--steps must be in 2..{MAX_FRAMES} (got {steps})")
    ends = class_ends(classes, class_from, class_to)
    gan = load(run, checkpoint)
    if gan.conditional and ends is None:
        ends = (0, 0)
    z, labels = interpolation(gan, steps, (from_seed, to_seed), ends, spherical=not linear)
    images = to_uint8(gan.generate(z, labels)).cpu()  # (steps, C, H, W)
    frames = [to_pil(img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy(), scale)
              for img in images]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    atomic_write(out, buf.getvalue())
    click.echo(f"wrote {steps} frames to {out}")


def class_ends(classes: str | None, class_from: int | None, class_to: int | None) -> tuple[int, int] | None:
    if classes is not None:
        if class_from is not None or class_to is not None:
            raise GanforgeError("give either --classes A,B or --class-from/--class-to, not both")
        try:
            a, b = (int(c) for c in classes.split(","))
        except ValueError:
            raise GanforgeError(f"--classes must be two classes like 3,8 (got {classes!r})") from None
        return a, b
    if class_from is None and class_to is None:
        return None
    return (class_from if class_from is not None else class_to, class_to if class_to is not None else class_from)
