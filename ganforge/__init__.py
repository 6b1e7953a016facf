"""ganforge: a small, fast, honest GAN toolkit for PyTorch.

    run = ganforge.train(data="digits", minutes=2, out="runs/quick")
    gan = ganforge.load(run)

`import ganforge` stays light: torch and the training machinery load on first use.
"""

__version__ = "0.1.0"


def load(path, checkpoint: str = "last", device="cpu"):
    """Load a trained GAN from a run directory or checkpoint; see `ganforge.generator.GAN`."""
    from ganforge.generator import load as _load

    return _load(path, checkpoint, device)


def train(data=None, **options):
    """Train a GAN with the train command's options as keywords; returns the run directory (a
    RunDir). See `ganforge.training.api.train`."""
    from ganforge.training.api import train as _train

    return _train(data, **options)


def __getattr__(name: str):
    # `ganforge.Trainer` is a class, so it cannot be wrapped in a function like `train`: import it
    # on first access instead.
    if name == "Trainer":
        from ganforge.training.api import Trainer

        return Trainer
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
