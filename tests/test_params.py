import pytest
import torch

from brainfit.params import ParameterSet, ParamSpec

SPECS = {
    "bounded": ParamSpec(0.5, "1", low=0.0, high=2.0, trainable=True),
    "positive": ParamSpec(3.0, "ms", low=0.0, trainable=True),
    "upper": ParamSpec(-1.0, "mV", high=0.0, trainable=True),
    "free": ParamSpec(1.5, "1", trainable=True),
    "fixed": ParamSpec(0.0, "1", low=0.0, high=1.0),
}


def test_transforms_round_trip_in_natural_units():
    p = ParameterSet(SPECS, n_regions=4, n_batch=2)
    for name, spec in SPECS.items():
        assert p[name].item() == pytest.approx(spec.default, rel=1e-5, abs=1e-6)
    # fixed parameters keep a value exactly on a bound
    assert p["fixed"].item() == 0.0
    # trainable ones are nn.Parameters in the state dict; fixed ones do not get gradients
    sd = p.state_dict()
    assert set(sd) == {f"raw.{n}" for n in SPECS}
    assert p.raw["bounded"].requires_grad and not p.raw["fixed"].requires_grad


def test_bounded_transform_stays_in_bounds_for_any_raw_value():
    p = ParameterSet(SPECS)
    with torch.no_grad():
        for raw in (-1e3, -5.0, 0.0, 5.0, 1e3):
            p.raw["bounded"].fill_(raw)
            p.raw["positive"].fill_(raw)
            p.raw["upper"].fill_(raw)
            assert 0.0 <= p["bounded"].item() <= 2.0
            assert p["positive"].item() >= 0.0
            assert p["upper"].item() <= 0.0


@pytest.mark.parametrize("value", [-0.1, 2.5, float("nan")])
def test_out_of_bounds_value_raises(value):
    with pytest.raises(ValueError, match="bounded"):
        ParameterSet(SPECS, overrides={"bounded": value})


def test_unknown_name_and_scope_raise():
    with pytest.raises(ValueError, match="unknown parameter.*valid names"):
        ParameterSet(SPECS, overrides={"bonded": 1.0})
    with pytest.raises(ValueError, match="unknown scope"):
        ParameterSet(SPECS, overrides={"free": {"scope": "everywhere"}})
    with pytest.raises(ValueError, match="needs spatial maps"):
        ParameterSet(SPECS, overrides={"free": {"scope": "map"}})


def test_scopes_give_shapes_broadcastable_to_batch_by_region():
    B, N = 3, 5
    scopes = {"global": (), "regional": (N,), "subject": (B, 1), "subject_regional": (B, N)}
    for scope, shape in scopes.items():
        p = ParameterSet(SPECS, N, B, overrides={"bounded": {"scope": scope}})
        assert tuple(p["bounded"].shape) == shape
        assert torch.broadcast_shapes(p["bounded"].shape, (B, N)) == (B, N)


def test_map_scope_is_linear_in_the_maps_for_a_free_parameter():
    N = 6
    maps = torch.stack([torch.linspace(-1, 1, N), torch.linspace(0, 1, N) ** 2], dim=1)
    p = ParameterSet(SPECS, N, maps=maps, overrides={"free": {"scope": "map", "value": 0.7}})
    assert p.raw["free"].shape == (3,)
    with torch.no_grad():
        p.raw["free"][1:] = torch.tensor([0.5, -2.0])
    expected = 0.7 + 0.5 * maps[:, 0] - 2.0 * maps[:, 1]
    torch.testing.assert_close(p["free"], expected)
    # a bounded parameter under a map stays in bounds whatever the coefficients
    q = ParameterSet(SPECS, N, maps=maps, overrides={"bounded": {"scope": "map"}})
    with torch.no_grad():
        q.raw["bounded"][1:] = 100.0
    assert bool(((q["bounded"] >= 0) & (q["bounded"] <= 2)).all())


def test_set_value_and_table_report_natural_units():
    p = ParameterSet(SPECS, n_regions=2, n_batch=2, overrides={"positive": {"scope": "subject"}})
    p.set_value("positive", torch.tensor([1.0, 4.0]))
    rows = [r for r in p.table() if r["parameter"] == "positive"]
    assert [r["batch"] for r in rows] == [0, 1]
    assert [round(r["value"], 5) for r in rows] == [1.0, 4.0]
    assert rows[0]["unit"] == "ms"
    with pytest.raises(ValueError, match="below its lower bound"):
        p.set_value("positive", -1.0)
    with pytest.raises(ValueError, match="needs a scalar or shape"):
        p.set_value("positive", torch.ones(3))


def test_cached_values_still_carry_gradients():
    p = ParameterSet(SPECS)
    with p.cached():
        loss = p["bounded"] * 2 + p["positive"]
    loss.backward()
    assert p.raw["bounded"].grad is not None and p.raw["positive"].grad is not None


def test_cached_yields_the_values_and_installed_values_are_read_then_restored():
    """The public API the fast engine uses: cached() gives every value, computed once;
    installed()/install() make reads return given values (a leaf to differentiate against, say),
    and the values read before come back when the block ends."""
    p = ParameterSet(SPECS)
    with p.cached() as values:
        assert set(values) == set(SPECS) and p["bounded"] is values["bounded"]
        values["bounded"] = torch.tensor(9.0)  # a copy: the set still reads its own value
        assert p["bounded"] is not values["bounded"]
        leaf = torch.tensor(1.25, requires_grad=True)
        with p.installed({"bounded": leaf}):
            assert p["bounded"] is leaf
            with pytest.raises(KeyError):
                p["free"]  # noqa: B018 (a name not installed is not read silently)
            p.install({"bounded": 2 * leaf})
            assert p["bounded"].item() == 2.5
        assert p["bounded"].item() == pytest.approx(0.5, rel=1e-6)
    with p.installed({"free": torch.tensor(7.0)}):
        p.install(None)  # compute on read again
        assert p["free"].item() == pytest.approx(1.5, rel=1e-6)
    assert p["free"].item() == pytest.approx(1.5, rel=1e-6)


def test_unit_can_be_given_where_it_depends_on_the_model():
    p = ParameterSet(SPECS, overrides={"free": {"value": 2.0, "unit": "1/ms"}})
    assert p.table()[3]["unit"] == "1/ms" and p.specs["free"].unit == "1/ms"
    with pytest.raises(ValueError, match="unknown setting"):
        ParameterSet(SPECS, overrides={"free": {"value": 2.0, "units": "1/ms"}})
