"""The police's verdict, told honestly.

D's raw score on an image means something different under each loss, and only under BCE (and
minimax) is sigmoid(score) D's probability that the image is real: hinge pushes real scores above
+1, LSGAN regresses them towards 1, a WGAN critic's scores have no fixed zero or scale at all. What
a reader can trust under every loss is a rank: where an image's score falls among D's scores on a
fixed batch of real images — "more real-looking than 73% of real digits". The batch is chosen once
per data set (a seeded draw) and scored once per model (see `GAN.police`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.config import TrainConfig
from ganforge.data import BUNDLED, load_dataset
from ganforge.data.mnist import FAMILIES, cache_dir, file_names, find_idx
from ganforge.errors import GanforgeError

REFERENCE_SIZE = 1000  # real images a rank is taken among: percentiles to within ~0.1 points
REFERENCE_SEED = 0
DIGIT_SETS = (BUNDLED, "mnist")  # the bundled digits stand in for MNIST: no download needed

MEANING = {
    "bce": "D's logit: sigmoid(score) is D's probability that the image is real; above 0 D leans real",
    "hinge": "D's raw score: training pushes real images above +1 and fakes below -1, and between the "
             "two D is unsure; not a probability",
    "lsgan": "D's raw output: training pulls real images towards 1 and fakes towards 0; not a probability",
    "wgan-gp": "the critic's score: higher looks more real, but its zero and scale drift during training, "
               "so only comparisons with other scores of the same model mean something; not a probability",
}
MEANING["minimax"] = MEANING["bce"]


@dataclass(frozen=True)
class Reference:
    """A fixed batch of real images (uint8 (n, C, H, W)) and their labels, named for messages."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str  # "real digits", "real training images"


@dataclass(frozen=True)
class Verdict:
    """The police on n images: D's raw scores, their percentile ranks among D's scores on real
    images (None when there is no reference), what the score means under the model's loss, and
    against what the rank was taken (or why there is none)."""

    score: torch.Tensor  # (n,) float
    realness: torch.Tensor | None  # (n,) float in [0, 100]
    meaning: str
    reference: str

    def describe(self, i: int = 0) -> str:
        """One sentence for image i."""
        rank = (f"more real-looking than {float(self.realness[i]):.0f}% of {self.reference}"
                if self.realness is not None else f"no rank: {self.reference}")
        return f"{rank} (score {float(self.score[i]):.3g}: {self.meaning})"


def meaning(loss: str | None) -> str:
    return MEANING.get(loss, "D's raw score; the loss it was trained with is unknown, so only its rank "
                             "means something")


def reference_images(cfg: TrainConfig | None, folder: str | None = None) -> Reference | str:
    """The fixed batch of real images for a model trained as `cfg`, or why there is none. Never
    downloads: a named data set counts only when it is already in the cache. A folder of images is
    read only when the caller names it (`folder`): a checkpoint, which may come from anyone, could
    otherwise make ganforge scan, decode and cache any folder on this machine. A directory of IDX
    files is read by its fixed file names, so the one a checkpoint names is read as it is."""
    if cfg is None:
        return "the model's training configuration is unknown"
    m = cfg.model
    try:  # a directory may be unreadable or gone: the verdict then comes without a rank
        if folder is not None:
            # abspath, not resolve: no file system access for a path the checkpoint chose
            where, spec = os.path.abspath(folder), folder
            name = "real training images" if where == os.path.abspath(cfg.data) else f"real images in {Path(where).name}"
        elif cfg.data in DIGIT_SETS:
            spec, name = BUNDLED, "real digits"
        elif cfg.data in FAMILIES:
            if find_idx(cache_dir() / cfg.data, file_names("train")[0]) is None:
                return f"the training data ({cfg.data}) is not downloaded"
            spec, name = cfg.data, f"real {cfg.data} images"
        elif Path(cfg.data).is_dir():
            if find_idx(Path(cfg.data), file_names("train")[0]) is None:
                return ("the training data is a folder of images, which is read only when you name it: "
                        "ganforge serve RUN --reference DIR, or gan.rank_among(DIR)")
            spec, name = cfg.data, "real training images"
        else:
            return f"the training data ({cfg.data}) is not available here"
        data = load_dataset(spec, resolution=m.img_resolution, channels=m.img_channels)
    except (GanforgeError, OSError) as e:
        return f"the real images could not be read ({e})"
    if m.conditional and data.num_classes != m.num_classes:
        return f"the real images have {data.num_classes} classes, the model {m.num_classes}"
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(REFERENCE_SEED))[:REFERENCE_SIZE]
    return Reference(data.images[pick], data.labels[pick], name)


def percentile(scores: torch.Tensor, reference_scores: torch.Tensor) -> torch.Tensor:
    """The percentage of reference scores below each score, ties counting half: a real image
    drawn like the reference ranks 50 on average."""
    ref = reference_scores.sort().values.to(scores)
    below = torch.searchsorted(ref, scores, right=False)
    not_above = torch.searchsorted(ref, scores, right=True)
    return 100 * (below + not_above).double() / (2 * len(ref))
