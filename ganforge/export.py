"""A trained generator as one file that runs without ganforge: TorchScript (needs torch only) or
ONNX (any ONNX runtime).

The exported model maps noise `z` float32 (B, z_dim) and, for conditional models, class `labels`
int64 (B,) to images float32 (B, C, H, W) in [-1, 1]; `(images + 1) * 127.5` gives pixels (a model of
2-D points, exported through the Python API, to points float32 (B, 2); the command exports image
models only). Noise is standard normal, as in training. Both formats carry the model's facts (z_dim, class names, ...)
as JSON: TorchScript as the extra file `ganforge.json`, ONNX as metadata property `ganforge`.

    g = torch.jit.load("digits.pt")
    images = g(torch.randn(8, 64), torch.full((8,), 7))                        # eight sevens
    images = onnxruntime.InferenceSession("digits.onnx").run(None, {"z": z, "labels": labels})[0]
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.files import atomic_write
from ganforge.generator import GAN

FORMATS = ("torchscript", "onnx")
METADATA = "ganforge"  # ONNX metadata key; TorchScript extra file is METADATA + ".json"
OPSET = 17
TOLERANCE = 1e-4  # largest pixel difference (on the [-1, 1] scale) accepted when checking an export


def export(gan: GAN, fmt: str, out: str | Path) -> Path:
    """Write `gan`'s generator to `out` as `fmt` ('torchscript' | 'onnx'), checked against the original."""
    if fmt not in FORMATS:
        raise GanforgeError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if gan.device.type != "cpu":
        raise GanforgeError("export a GAN loaded on the CPU: ganforge.load(run, device='cpu')")
    out = Path(out)
    G = gan.generator
    probe = example_inputs(gan, 4)
    m = gan.model
    made = ({"output": "float32 2-D points (B, 2)"} if m.points else
            {"img_channels": m.img_channels, "img_resolution": m.img_resolution,
             "output": "float32 images (B, C, H, W) in [-1, 1]"})
    info = json.dumps({"z_dim": m.z_dim, "num_classes": m.num_classes, "class_names": gan.class_names,
                       "conditional": gan.conditional, "step": gan.step, **made})
    data = to_torchscript(G, probe, info) if fmt == "torchscript" else to_onnx(G, probe, info)
    check = run_torchscript if fmt == "torchscript" else run_onnx
    with torch.no_grad():
        probe = example_inputs(gan, 7)  # another batch size: the batch dimension must stay free
        expected = G(*probe).numpy()
    got = check(data, probe)
    if got is not None and not abs(got - expected).max() <= TOLERANCE:
        raise GanforgeError(f"the exported {fmt} model does not reproduce the generator "
                            f"(largest difference {abs(got - expected).max():.3g}); please report this")
    atomic_write(out, data)
    return out


def example_inputs(gan: GAN, n: int) -> tuple[torch.Tensor, ...]:
    z = gan.noise(n, seed=0)
    return (z, torch.arange(n) % gan.model.num_classes) if gan.conditional else (z,)


@contextlib.contextmanager
def jit_deprecation_silenced():
    """torch.jit is deprecated in favour of torch.export, but a .pt2 file from torch.export needs
    Python code to rebuild the module; a TorchScript file still runs from torch.jit.load alone."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit", category=DeprecationWarning)
        yield


def to_torchscript(G: torch.nn.Module, inputs: tuple[torch.Tensor, ...], info: str) -> bytes:
    buf = io.BytesIO()
    with jit_deprecation_silenced(), torch.no_grad():
        traced = torch.jit.trace(G, inputs)
        torch.jit.save(traced, buf, _extra_files={METADATA + ".json": info})
    return buf.getvalue()


def run_torchscript(data: bytes, inputs: tuple[torch.Tensor, ...]):
    with jit_deprecation_silenced(), torch.no_grad():
        return torch.jit.load(io.BytesIO(data))(*inputs).numpy()


def to_onnx(G: torch.nn.Module, inputs: tuple[torch.Tensor, ...], info: str) -> bytes:
    try:
        import onnx
    except ImportError:
        raise GanforgeError("ONNX export needs the onnx package: pip install 'ganforge[export]'") from None
    names = ["z", "labels"][:len(inputs)]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter (dynamo=False) is deprecated but needs no onnxscript and
        # keeps the batch dimension free with dynamic_axes; these small nets have no control flow.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(G, inputs, buf, input_names=names, output_names=["images"], opset_version=OPSET,
                          dynamic_axes={k: {0: "batch"} for k in [*names, "images"]}, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(model, {METADATA: info})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_onnx(data: bytes, inputs: tuple[torch.Tensor, ...]):
    """The model's output under onnxruntime, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in zip(["z", "labels"], inputs)})[0]
