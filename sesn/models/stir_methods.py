"""The methods of the scale-generalization benchmark, one registration each
(:func:`sesn.models.method.register_method`), in the order of STIR's table (its scenario-1
ranking), then the later families and this project's additions.

``published``: STIR's test accuracy % on its mnist domain (2-layer nets; mean and sd over 25
seeds of its per-run results), per scenario. ``tags``: the ``sesn generalization`` profiles
that train the method by default (``full``: every method; ``cpu``: STIR's table, the two later
families and SESN with basis D; ``reduced`` and ``smoke``: a few cheap ones).
"""

from __future__ import annotations

import functools

from sesn.basis.registry import basis_kind
from sesn.models.method import Method, register_method
from sesn.models.method_layers import METHOD_LAYERS
from sesn.models.stir import stir_fov, stir_gdn, stir_pyramid, stir_sesn, stir_sesn_pyramid

CPU, FULL, REDUCED, SMOKE = "cpu", "full", "reduced", "smoke"


def _published(*scenarios: tuple[float, float]) -> dict[int, tuple[float, float]]:
    return {i + 1: v for i, v in enumerate(scenarios)}


def _mnist(*stems: str, plus: bool = False) -> tuple[str, ...]:
    """``stem_28``, ``stem_56`` (and their ``p`` variants with ``plus``) for each stem."""
    return tuple(f"{s}_{n}{p}" for s in stems for n in (28, 56) for p in (("", "p") if plus else ("",)))


def _sesn(basis: str, **overrides):
    return functools.partial(stir_sesn, basis, **overrides)


# DISCO in STIR: its published MNIST basis at its own scales [1, 1.26, 1.59, 2] (kernel 15,
# effective size 7, Hermite sigma_min 1.9), the file read from $SESN_DISCO_DIR or datasets/disco
# (a missing file is a DiscoBasisError naming where it looked)
_DISCO = basis_kind("DISCO").configurations["mnist"]

for _m in (
    Method("stir_pyramid", "image-pyramid ensemble", stir_pyramid, tags=(FULL, CPU, REDUCED),
           published=_published((92.77, 1.33), (90.84, 1.48), (84.93, 1.95), (94.75, 0.73))),
    Method("stir_pixel_pool", "pixel pool", layer=METHOD_LAYERS["pixel pool"], tags=(FULL, CPU),
           published=_published((89.29, 2.33), (89.13, 1.20), (82.92, 2.81), (95.26, 0.65))),
    Method("stir_slice_pool", "slice pool", layer=METHOD_LAYERS["slice pool"], tags=(FULL, CPU),
           published=_published((85.67, 2.84), (89.74, 1.37), (81.04, 1.84), (93.94, 1.24))),
    Method("stir_disco", "DISCO", _sesn("DISCO", **{**_DISCO, "scales": list(_DISCO["scales"])}), basis="DISCO",
           mnist_models=("disco_mnist_28", "disco_mnist_28p"), tags=(FULL, CPU),
           published=_published((77.90, 2.15), (83.57, 1.62), (78.58, 0.95), (90.67, 0.61))),
    Method("stir_sesn_b", "SESN (Hermite B)", _sesn("B"), basis="B", tags=(FULL, CPU, REDUCED),
           mnist_models=_mnist("mnist_ses_scalar", "mnist_ses_vector", plus=True),
           published=_published((74.75, 2.75), (84.33, 1.34), (79.89, 1.67), (91.74, 0.60))),
    Method("stir_sesn_d", "SESN (basis D)", _sesn("D"), basis="D", tags=(FULL, CPU, REDUCED),
           mnist_models=_mnist("mnist_disco_scalar", "mnist_disco_vector", plus=True)),
    Method("stir_si_convnet", "SI-ConvNet", layer=METHOD_LAYERS["SI-ConvNet"], tags=(FULL, CPU),
           mnist_models=_mnist("mnist_kanazawa"),
           published=_published((69.35, 4.19), (83.23, 1.36), (70.99, 2.31), (93.36, 0.96))),
    Method("stir_conv3d", "conv3d", layer=METHOD_LAYERS["conv3d"], tags=(FULL, CPU),
           published=_published((65.91, 4.23), (83.53, 0.97), (72.60, 3.06), (94.66, 0.53))),
    Method("stir_cnn", "CNN", layer=METHOD_LAYERS["CNN"], tags=(FULL, CPU, REDUCED, SMOKE),
           mnist_models=_mnist("mnist_cnn"),
           published=_published((63.40, 4.35), (76.65, 2.84), (68.50, 2.20), (91.35, 0.95))),
    Method("stir_sicnn", "SiCNN", layer=METHOD_LAYERS["SiCNN"], tags=(FULL, CPU), mnist_models=_mnist("mnist_xu"),
           published=_published((62.61, 5.17), (79.81, 2.13), (66.26, 5.92), (90.68, 1.01))),
    Method("stir_stn", "spatial transformer", layer=METHOD_LAYERS["STN"], tags=(FULL, CPU),
           published=_published((35.39, 29.37), (85.30, 4.23), (72.28, 13.43), (94.83, 1.43))),
    Method("stir_gdn_max", "Gaussian derivative (max)", functools.partial(stir_gdn, "max"),
           layer=METHOD_LAYERS["Gaussian derivative"], tags=(FULL, CPU)),
    Method("stir_gdn_avg", "Gaussian derivative (avg)", functools.partial(stir_gdn, "avg"),
           layer=METHOD_LAYERS["Gaussian derivative"], tags=(FULL, CPU)),
    Method("stir_fovmax", "FovMax", functools.partial(stir_fov, "max"), layer=METHOD_LAYERS["FovMax"],
           tags=(FULL, CPU)),
    Method("stir_fovavg", "FovAvg", functools.partial(stir_fov, "avg"), layer=METHOD_LAYERS["FovAvg"],
           tags=(FULL, CPU)),
    # this project's attempt at scenario 1's goal (an equivariant model above the pyramid ensemble)
    Method("stir_sesn_pyramid", "SESN pyramid ensemble", functools.partial(stir_sesn_pyramid, "B"), basis="B",
           tags=(FULL, CPU)),
    Method("stir_sesn_a", "SESN (Hermite A)", _sesn("A"), basis="A", tags=(FULL,)),
    Method("stir_sesn_r", "SESN (basis R)", _sesn("R"), basis="R", tags=(FULL,),
           mnist_models=_mnist("mnist_sesr_scalar", "mnist_sesr_vector", plus=True)),
    Method("stir_dss", "DSS", layer=METHOD_LAYERS["DSS"], tags=(FULL, REDUCED, SMOKE),
           mnist_models=_mnist("mnist_dss_scalar", "mnist_dss_vector")),
    Method("stir_sevf", "SEVF scalar", layer=METHOD_LAYERS["SEVF scalar"], tags=(FULL,),
           mnist_models=_mnist("mnist_sevf_scalar")),
    Method("stir_ss_cnn", "SS-CNN", layer=METHOD_LAYERS["SS-CNN"], tags=(FULL,), mnist_models=_mnist("mnist_ss")),
):  # fmt: skip
    register_method(_m)
