"""Profiles of ``sesn bench generalization``: which models, scenarios and seeds, how much
data and how many epochs. Every record and table names its profile and settings."""

from __future__ import annotations

import dataclasses

ALL_MODELS = (
    "stir_cnn",
    "stir_sesn_b",
    "stir_sesn_a",
    "stir_sesn_d",
    "stir_si_convnet",
    "stir_sicnn",
    "stir_dss",
    "stir_sevf",
    "stir_ss_cnn",
    "stir_pixel_pool",
    "stir_pyramid",
)


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    models: tuple[str, ...]
    scenarios: tuple[int, ...]
    seeds: tuple[int, ...]
    train_instances: int | None  # per class and size (None: all the file has)
    valid_instances: int | None
    test_instances: int | None
    size_stride: int  # every k-th size of a range (1: all sizes)
    max_epochs: int
    patience: int  # early stop after this many epochs without a validation gain
    lr: float
    batch_size: int
    equivariance_instances: int  # per class, for the size-equivariance measure
    note: str

    def settings(self) -> dict:
        """What determines a run's result besides model, scenario, seed and data."""
        keep = (
            "train_instances",
            "valid_instances",
            "test_instances",
            "size_stride",
            "max_epochs",
            "patience",
            "lr",
            "batch_size",
            "equivariance_instances",
        )
        return {"profile": self.name, **{k: getattr(self, k) for k in keep}}


PROFILES = {
    "full": Profile(
        "full",
        ALL_MODELS,
        (1, 2, 3, 4),
        (0, 1, 2, 3, 4),
        None,
        None,
        None,
        1,
        200,
        10,
        1e-3,
        64,
        5,
        "STIR's protocol on a GPU: every model, scenarios 1-4, all 50 instances per class and size, up to "
        "200 epochs with early stopping after 10 without a validation gain, 5 seeds (STIR used 50).",
    ),
    "reduced": Profile(
        "reduced",
        ("stir_cnn", "stir_sesn_b", "stir_sesn_d", "stir_dss", "stir_pyramid"),
        (1, 2),
        (0,),
        5,
        2,
        3,
        1,
        8,
        3,
        3e-3,
        32,
        2,
        "REDUCED CPU profile (about 30 minutes on 2 cores): 5 models, scenarios 1 and 2, one seed, 5 training "
        "instances per class and size (800 images), 2 for validation, 3 for testing (960 test images), at most 8 "
        "epochs (early stop after 3 without a validation gain), Adam lr 3e-3. Far less data and training than "
        "STIR: accuracies are much lower than STIR's and comparable in ordering only.",
    ),
    "smoke": Profile(
        "smoke",
        ("stir_cnn", "stir_dss"),
        (1,),
        (0,),
        1,
        1,
        1,
        4,
        1,
        1,
        3e-3,
        32,
        1,
        "SMOKE profile (CI, seconds): 2 cheap models, scenario 1, every 4th size, 1 instance, 1 epoch. "
        "Numbers mean nothing.",
    ),
}
