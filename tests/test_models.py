import io

import pytest
import torch

import sesn.models as m
from sesn.models.registry import register_model

PAPER_MODELS = {
    "mnist_cnn_28": 494_549,
    "mnist_cnn_56": 494_549,
    "mnist_ses_scalar_28": 494_549,
    "mnist_ses_scalar_28p": 494_549,
    "mnist_ses_scalar_56": 494_549,
    "mnist_ses_scalar_56p": 494_549,
    "mnist_ses_vector_28": 494_549,
    "mnist_ses_vector_28p": 494_549,
    "mnist_ses_vector_56": 494_549,
    "mnist_ses_vector_56p": 494_549,
    "wrn_16_8": 10_961_370,
    "wrn_16_8_ses_a": 10_961_370,
    "wrn_16_8_ses_b": 10_961_370,
    "wrn_16_8_ses_c": 10_979_802,
}


def _disco_available() -> bool:
    from sesn.basis import make_spec
    from sesn.basis.disco import DiscoBasisError, find_file

    try:
        find_file(make_spec(15, 7, [1.0, 1.26, 1.59, 2.0], "DISCO", mult=1.5))
        return True
    except DiscoBasisError:
        return False


DISCO_AVAILABLE = _disco_available()  # DISCO's data file is not shipped (docs/optimised-basis.md)
TINY = m.list_models("test_*")
LARGE = [n for n in m.list_models() if n.startswith("wrn_")]  # full-size STL-10 models: eval forward only
FAST = [n for n in m.list_models() if n not in LARGE and (DISCO_AVAILABLE or not n.startswith("disco_"))]


def test_registry_lists_paper_and_tiny_models():
    names = m.list_models()
    assert set(PAPER_MODELS) <= set(names)
    assert {"test_cnn", "test_ses_scalar", "test_ses_vector", "test_wrn", "test_wrn_ses_a"} <= set(names)
    assert m.list_models("mnist_ses_vector_*") == [
        "mnist_ses_vector_28",
        "mnist_ses_vector_28p",
        "mnist_ses_vector_56",
        "mnist_ses_vector_56p",
    ]


@pytest.mark.parametrize("name", list(PAPER_MODELS) + TINY)
def test_parameter_counts(name):
    model = m.get_model(name)
    info = m.get_model_info(name)
    assert m.count_parameters(model) == info.num_params
    if name in PAPER_MODELS:
        assert info.num_params == PAPER_MODELS[name]


def test_tiny_models_share_the_cnn_budget():
    assert m.get_model_info("test_ses_scalar").num_params == m.get_model_info("test_cnn").num_params


def test_unknown_name_lists_closest():
    with pytest.raises(ValueError, match=r"unknown model 'mnist_ses_scalar_82'.*closest: mnist_ses_scalar_28"):
        m.get_model("mnist_ses_scalar_82")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model("mnist_cnn_28", dataset="x", input_shape=(1, 1, 1))(lambda: None)


def test_metadata():
    info = m.get_model_info("mnist_ses_scalar_28p")
    assert info.published == (1.79, 0.09) and info.column == "28x28 +" and info.dataset == "mnist-scale"
    assert "mnist_ses_scalar_28p" in info.reproduce
    assert m.get_model_info("mnist_ses_vector_56p").published == (1.42, 0.07)
    assert m.get_model_info("wrn_16_8").dataset == "stl10"


@pytest.mark.parametrize("name", FAST)
def test_forward_backward_shapes_train_eval(name):
    torch.manual_seed(0)
    model = m.get_model(name)
    shape = m.get_model_info(name).input_shape
    x = torch.randn(3, *shape)
    model.train()
    y = model(x)
    assert y.shape == (3, 10)
    y.square().sum().backward()
    params = [p for p in model.parameters() if p.requires_grad]
    if m.get_model_info(name).family == "baseline" or name == "stir_ss_cnn":
        # some reference baselines own trainable parameters they never use (SEVF's
        # VectorBatchNorm weight, SS-CNN's const_real and bn3): counted, but gradient-free
        params = [p for p in params if p.grad is not None]
        assert params
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)  # eval is deterministic (dropout off, running stats)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_large_models_forward_shape(name):
    torch.manual_seed(0)
    model = m.get_model(name).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 96, 96))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize(
    "name", ["test_cnn", "test_ses_scalar", "test_ses_vector", "test_wrn_ses_b", "mnist_ses_vector_28"]
)
def test_state_dict_round_trip(name):
    torch.manual_seed(1)
    src = m.get_model(name)
    x = torch.randn(2, *m.get_model_info(name).input_shape)
    src.train()
    src(x)  # move running stats away from their defaults
    src.eval()
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(2)
    dst = m.get_model(name).eval()
    dst.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))


@pytest.mark.parametrize("name", ["test_ses_scalar", "test_wrn_ses_c", "mnist_cnn_56"])
def test_deterministic_for_a_seed(name):
    shape = m.get_model_info(name).input_shape
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = m.get_model(name).eval()
        x = torch.randn(2, *shape)
        with torch.no_grad():
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("mnist_ses_scalar_28", (2, 3, 28, 28), "expected 1 input channel"),
        ("mnist_ses_scalar_56", (2, 1, 56, 56), "expected 28x28 inputs, got 56x56"),
        ("mnist_cnn_28", (1, 28, 28), "rank 4"),
        ("test_wrn_ses_a", (2, 3, 40, 40), "expected 32x32 inputs"),
        ("test_wrn", (2, 1, 32, 32), "expected 3 input channel"),
    ],
)
def test_bad_input(name, shape, message):
    with pytest.raises(ValueError, match=message):
        m.get_model(name)(torch.randn(*shape))


def test_overrides_and_wrn_init():
    model = m.get_model("test_wrn_ses_a", num_classes=7)
    assert model.fc.out_features == 7
    assert torch.all(model.fc.bias == 0)
    conv = model.blocks[0].conv1
    n = conv.weight.numel() // conv.weight.shape[1]
    assert abs(conv.weight.std().item() - (2 / n) ** 0.5) < 0.5 * (2 / n) ** 0.5


def test_56_models_upsample_inside():
    model = m.get_model("mnist_ses_scalar_56")
    assert isinstance(model[1], torch.nn.Upsample) and model[1].scale_factor == 2


# --- STL-10 SESN models exactly as the authors' code -----------------------------------------


def test_wrn_ses_scales_are_not_rounded():
    from sesn.nn import SESConv_H_H, SESConv_Z2_H

    expected = {"wrn_16_8_ses_a": [0.9, 0.9 * 1.41, 0.9 * 1.41**2], "wrn_16_8_ses_b": [0.9, 0.9 * 1.41, 0.9 * 1.41**2],
                "wrn_16_8_ses_c": [1.1, 1.1 * 1.41, 1.1 * 1.41**2]}  # fmt: skip
    for name, scales in expected.items():
        model = m.get_model(name)
        layers = [mod for mod in model.modules() if isinstance(mod, (SESConv_Z2_H, SESConv_H_H))]
        assert layers and all(layer.scales == scales for layer in layers), name
    assert expected["wrn_16_8_ses_a"][2] != round(expected["wrn_16_8_ses_a"][2], 2)  # 1.789290..., not the rounded 1.79


def test_wrn_ses_b_lifting_blocks_as_the_reference():
    from sesn.nn import ScaleBatchNorm, SESConv_H_H, SESConv_H_H_1x1, SESConv_Z2_H, SESMaxProjection

    model = m.get_model("wrn_16_8_ses_b")
    for index, (c_in, c_out) in ((2, (128, 256)), (4, (256, 512))):  # first block of groups 2 and 3
        block = model.blocks[index]
        assert isinstance(block.bn1, ScaleBatchNorm) and block.bn1.num_features == c_in
        proj, lift = block.conv1
        assert isinstance(proj, SESMaxProjection) and isinstance(lift, SESConv_Z2_H)
        assert (
            lift.in_channels,
            lift.out_channels,
            lift.kernel_size,
            lift.effective_size,
            lift.stride,
            lift.padding,
            lift.basis_type,
        ) == (c_in, c_out, 7, 3, 2, 3, "A")
        assert isinstance(block.shortcut, SESConv_H_H_1x1) and block.shortcut.stride == 2
    for index in (0, 1, 3, 5):
        assert isinstance(model.blocks[index].conv1, SESConv_H_H)
    # the shortcut and the lifting conv both see the block's BN-ReLU'd H input (all scales)
    tiny = m.get_model("test_wrn_ses_b").eval()
    seen = {}
    block = tiny.blocks[2]
    block.register_forward_hook(lambda mod, inp, out: seen.__setitem__("block", inp[0]))
    block.shortcut.register_forward_hook(lambda mod, inp, out: seen.__setitem__("shortcut", inp[0]))
    block.conv1[0].register_forward_hook(lambda mod, inp, out: seen.__setitem__("project", inp[0]))
    with torch.no_grad():
        tiny(torch.randn(1, 3, 32, 32))
        expected = torch.relu(block.bn1(seen["block"]))  # the block's BN-ReLU'd H input
    assert (
        seen["shortcut"].dim() == 5
        and torch.equal(seen["shortcut"], expected)
        and torch.equal(seen["project"], expected)
    )


def test_wrn_ses_reference_layout_state_dict_loads():
    """The authors' checkpoints also store every steerable layer's basis (a persistent
    buffer); such a state_dict loads strictly and gives the same outputs, and one whose basis
    was built from rounded scales (our old models) is refused."""
    from sesn.basis import BasisSpec, basis_tensor
    from sesn.nn.steerable import SteerableConvBase

    for name in ("test_wrn_ses_b", "test_wrn_ses_c"):
        torch.manual_seed(0)
        ours = m.get_model(name).eval()
        reference = dict(ours.state_dict())
        for prefix, mod in ours.named_modules():
            if isinstance(mod, SteerableConvBase):
                reference[f"{prefix}.basis"] = mod.basis.clone()
        torch.manual_seed(1)
        loaded = m.get_model(name).eval()
        loaded.load_state_dict(reference, strict=True)
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert torch.equal(loaded(x), ours(x))
    model = m.get_model("wrn_16_8_ses_a")
    stem = model.stem
    rounded = BasisSpec(stem.kernel_size, stem.effective_size, (0.9, 1.27, 1.79), "A")
    bad = {f"stem.{k}": v for k, v in stem.state_dict().items()}
    bad["stem.basis"] = basis_tensor(rounded)
    with pytest.raises(RuntimeError, match="checkpoint basis differs"):
        model.load_state_dict({**model.state_dict(), **bad}, strict=True)


@pytest.mark.skipif(not DISCO_AVAILABLE, reason="DISCO's basis file not found (see sesn.basis.disco)")
def test_disco_model_as_disco_defines_it():
    from sesn.nn import ScaleAvgPool2d, SESConv_H_H, SESConv_Z2_H

    for name, mult in (("disco_mnist_28", 1.5), ("disco_mnist_28p", 1.9)):
        model = m.get_model(name)
        assert m.count_parameters(model) == 494_549
        convs = [mod for mod in model.modules() if isinstance(mod, (SESConv_Z2_H, SESConv_H_H))]
        assert [type(c).__name__ for c in convs] == ["SESConv_Z2_H", "SESConv_H_H", "SESConv_H_H"]
        assert all(
            c.basis_type == "DISCO" and c.spec.mult == mult and c.spec.disco_sigma == 1.9 and c.bias is not None
            for c in convs
        )
        assert all(c.scales == [1.0, 1.26, 1.59, 2.0] and c.kernel_size == 15 and c.effective_size == 7 for c in convs)
        assert sum(isinstance(mod, ScaleAvgPool2d) for mod in model.modules()) == 2
        assert model.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_every_builder_is_a_partial_of_a_named_function():
    import functools

    from sesn.models.registry import _REGISTRY

    for name, info in _REGISTRY.items():
        assert isinstance(info.builder, functools.partial), name
        assert info.builder.func.__name__ != "<lambda>", name


def test_reproduce_reads_its_table_layout_from_the_registry():
    import functools

    from sesn import reproduce
    from sesn.models.registry import _REGISTRY, register

    assert not [k for k in vars(reproduce) if k.endswith("_ROWS") or k == "ROWS"]
    register(
        "user_net_28",
        functools.partial,  # any factory: here one that returns a model-like callable
        torch.nn.Identity,
        metadata=dict(
            dataset="mnist-scale",
            input_shape=(1, 28, 28),
            row="User net",
            reproduce_columns=("28", "28+"),
            profiles=("quick",),
        ),
    )
    try:
        args = reproduce.get_args_parser().parse_args(["--profile", "quick"])
        runs = reproduce.plan(args, reproduce.PROFILES["quick"])
        mine = [(r.row, r.column, r.augment) for r in runs if r.model == "user_net_28"]
        assert mine == [("User net", "28", False), ("User net", "28+", True)]
        paper = reproduce.plan(
            reproduce.get_args_parser().parse_args(["--profile", "paper"]), reproduce.PROFILES["paper"]
        )
        assert "user_net_28" not in {r.model for r in paper}  # not in the paper profile's default sweep
    finally:
        _REGISTRY.pop("user_net_28")


def test_stir_net_pools_are_the_max_over_scales_and_space():
    """StirNet's fast pools (scale_max, one flattened amax) give the plain maxima."""
    torch.manual_seed(0)
    model = m.get_model("stir_sesn_b").eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        f = model.body(x)
        torch.testing.assert_close(model.features(x), f.amax(2), rtol=0, atol=0)
        torch.testing.assert_close(model(x), model.head(f.amax((2, 3, 4))), rtol=0, atol=0)
