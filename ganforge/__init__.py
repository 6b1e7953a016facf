"""ganforge: a small, fast, honest GAN toolkit for PyTorch."""

__version__ = "0.1.0"


def load(path, checkpoint: str = "last", device="cpu"):
    """Load a trained GAN from a run directory or checkpoint; see `ganforge.generator.GAN`."""
    from ganforge.generator import load as _load

    return _load(path, checkpoint, device)
