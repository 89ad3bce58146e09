"""Profiles of ``sesn generalization``: which models, scenarios and seeds, how much
data and how many epochs. Every record and table names its profile and settings.

A profile's models are the registered methods tagged with its name
(:func:`sesn.models.method.tagged`, registration order), so a method a plug-in registers
with ``tags=("cpu",)`` joins the cpu profile's default sweep."""

from __future__ import annotations

import dataclasses
import json

from sesn.models.method import tagged

# STIR's learning-rate grid: each method's rate is the one with the best median validation
# accuracy over the seeds (select_lr)
STIR_LRS = (1e-2, 1e-3)


def select_lr(g) -> tuple[float, dict]:
    """STIR's rule on one method's runs (one scenario, one settings group): the learning rate
    with the best median validation accuracy over its seeds (ties: the first in the grid's
    order, else ascending). Returns it and ``{lr: (median val %, number of seeds)}``."""
    grid = json.loads(g.group_settings.iloc[0]).get("lrs") or sorted(set(g.lr))
    order = [float(v) for v in grid] + sorted(set(g.lr) - {float(v) for v in grid})
    stats = {lr: (float(h.val_acc.median()), len(h)) for lr in order for h in [g[g.lr == lr]] if len(h)}
    best = max(stats, key=lambda lr: (stats[lr][0], -order.index(lr)))
    return best, stats


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    scenarios: tuple[int, ...]
    seeds: tuple[int, ...]
    train_instances: int | None  # per class and size (None: all the file has)
    valid_instances: int | None
    test_instances: int | None
    size_stride: int  # every k-th size of a range (1: all sizes)
    max_epochs: int
    patience: int  # early stop after this many epochs without a validation gain
    lrs: tuple[float, ...]  # the learning-rate grid; each run has one, the table picks per method
    batch_size: int
    equivariance_instances: int  # per class, for the size-equivariance measure
    note: str
    # how many sizes of the scenario's training / test range to use, evenly spread over the
    # range, its ends included (None: every size that size_stride keeps)
    num_train_sizes: int | None = None
    num_test_sizes: int | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The methods tagged with this profile's name, in registration order (read when
        asked, so that plug-ins loaded later join)."""
        return tagged(self.name)

    def settings(self) -> dict:
        """What determines a run's result besides model, scenario, seed and data."""
        keep = (
            "train_instances",
            "valid_instances",
            "test_instances",
            "size_stride",
            "max_epochs",
            "patience",
            "lrs",
            "batch_size",
            "equivariance_instances",
        )
        out = {"profile": self.name}
        for k in keep:
            v = getattr(self, k)
            out[k] = list(v) if isinstance(v, tuple) else v  # as JSON stores it
        for k in ("num_train_sizes", "num_test_sizes"):  # named only when set: older sweeps keep their ids
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out


PROFILES = {
    "full": Profile(
        "full",
        (1, 2, 3, 4),
        tuple(range(25)),
        None,
        None,
        None,
        1,
        200,
        10,
        STIR_LRS,
        16,
        5,
        "STIR's protocol on a GPU: every model, scenarios 1-4, all 50 instances per class and size, batch 16, up "
        "to 200 epochs with early stopping after 10 without a validation gain, learning rate 1e-2 or 1e-3 "
        "chosen per method and scenario by median validation accuracy, 25 seeds (STIR used 50).",
    ),
    "cpu": Profile(
        "cpu",
        (1, 2, 3, 4),
        (0, 1, 2),
        10,
        3,
        16,
        1,
        10,
        10,
        STIR_LRS,
        16,
        1,
        "CPU profile (2 cores, about 4-5 hours per scenario as two 1-thread shards; resumable): every method of "
        "STIR's table and the two later families, scenarios 1-4, 3 seeds, learning rate 1e-2 or 1e-3 chosen per "
        "method and scenario by median validation accuracy (STIR's rule). 3 of the training range's sizes (its "
        "ends and middle) x 10 digits per class (300 training images, 100 digits), 3 validation digits per class "
        "at those sizes, 4 test sizes spread over the test range x 16 digits per class (640 test images, 160 "
        "digits); batch 16, 10 epochs (190 steps) with no early stop, the best-validation epoch's weights kept. "
        "Far less data and training than STIR: accuracies are lower than STIR's; differences are read from the "
        "95% intervals over seeds.",
        num_train_sizes=3,
        num_test_sizes=4,
    ),
    "reduced": Profile(
        "reduced",
        (1, 2),
        (0,),
        5,
        2,
        3,
        1,
        8,
        3,
        (3e-3,),
        32,
        2,
        "REDUCED CPU profile (about 30 minutes on 2 cores): 5 models, scenarios 1 and 2, one seed, 5 training "
        "instances per class and size (800 images), 2 for validation, 3 for testing (960 test images), at most 8 "
        "epochs (early stop after 3 without a validation gain), Adam lr 3e-3. Far less data and training than "
        "STIR: accuracies are much lower than STIR's and comparable in ordering only.",
    ),
    "smoke": Profile(
        "smoke",
        (1,),
        (0,),
        1,
        1,
        1,
        4,
        1,
        1,
        (3e-3,),
        32,
        1,
        "SMOKE profile (CI, seconds): 2 cheap models, scenario 1, every 4th size, 1 instance, 1 epoch. "
        "Numbers mean nothing.",
    ),
}
