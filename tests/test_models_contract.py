"""Every registered model keeps the contract: shapes, gradients, batching, dtypes, devices."""

from __future__ import annotations

import re

import pytest
import torch
from problems import TOL, run_fixed
from torch.autograd import gradcheck

from brainfit import models

NAMES = models.available()
N = 3


def _perturbed_values(cls, n_batch: int) -> dict:
    """One distinct, in-bounds value per batch element for every parameter."""
    out = {}
    for name, spec in cls.param_specs.items():
        vals = []
        for k in range(n_batch):
            v = spec.default * (1 + 0.05 * k) + 0.01 * k
            if spec.low is not None:
                v = max(v, spec.low)
            if spec.high is not None:
                v = min(v, spec.high)
            vals.append(v)
        out[name] = {"value": torch.tensor(vals), "scope": "subject"}
    return out


def _inputs(model, batch, gen, dtype=torch.float64):
    x = model.initial_state(batch, generator=gen, dtype=dtype)
    c = 0.1 * torch.randn(batch, model.n_regions, generator=gen, dtype=dtype)
    f = 0.1 * torch.randn(batch, model.n_regions, generator=gen, dtype=dtype)
    return x, c, f


#: every model of the ladder, and the state whose derivative the coupling input enters
COUPLING_ENTERS = {
    "harmonic": "x",
    "hopf": "x",
    "van_der_pol": "y",
    "fitzhugh_nagumo": "v",
    "kuramoto": "theta",
    "threshold_linear": "E",
    "wilson_cowan": "E",
    "wong_wang": "S",
    "wong_wang_ei": "S_E",
    "mpr": "v",
    "mpr_ei": "v_E",
    "jansen_rit": "y4",
}

# "Deco et al. 2014", "Jansen & Rit 1995", "Montbrió, Pazó & Roxin 2015", "Cabral et al. (2011"
REFERENCE = re.compile(r"[A-Z][\w\-]+(?: et al\.|,? (?:&|and) [A-Z][\w\-]+)?,? \(?(?:19|20)\d\d\b")
# a chain of ``names`` followed by their [unit] in the "Parameters (units):" paragraph
DOC_UNITS = re.compile(r"((?:``[^`]+``(?:,\s*|\s+and\s+))*``[^`]+``)\s*\[([^\]]+)\]")


def _documented_units(doc: str) -> dict[str, str]:
    """``{parameter: unit}`` as the docstring's "Parameters (units):" paragraph states them."""
    _, sep, text = doc.partition("Parameters (units):")
    assert sep, "the class docstring lacks its 'Parameters (units):' paragraph"
    out = {}
    for names, unit in DOC_UNITS.findall(" ".join(text.split())):
        for name in re.findall(r"``([^`]+)``", names):
            m = re.fullmatch(r"([A-Za-z_]+)(\d+)\.\.([A-Za-z_]+)(\d+)", name)  # c1..c4
            if m and m[1] == m[3]:
                out.update({f"{m[1]}{k}": unit for k in range(int(m[2]), int(m[4]) + 1)})
            else:
                out[name] = unit
    return out


def _unit(u: str) -> str:
    return u.replace(" ", "").replace("*", "")


def test_registry_lists_the_whole_ladder():
    expected = {"harmonic", "hopf"}
    assert expected <= set(NAMES)
    assert set(NAMES) == set(COUPLING_ENTERS)
    assert NAMES == sorted(NAMES)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="available models are"):
        models.create("not_a_model")


@pytest.mark.parametrize("name", NAMES)
def test_class_documents_equations_units_and_reference(name):
    cls = models.get(name)
    doc = cls.__doc__ or ""
    assert len(doc) > 200, f"{name} needs its equations and reference in the class docstring"
    assert all(spec.unit for spec in cls.param_specs.values())
    # equations: a derivative, and every state named
    assert ".. math::" in doc and "\\dot" in doc, f"{name}: no equations in the class docstring"
    for state in cls.state_names:
        assert re.search(rf"\b{state}\b", doc), f"{name}: state {state!r} is not in the docstring"
    # the reference: an author and a year
    assert REFERENCE.search(" ".join(doc.split())), f"{name}: no reference (author, year)"
    # a unit on every parameter, the one its ParamSpec declares
    documented = _documented_units(doc)
    for pname, spec in cls.param_specs.items():
        assert pname in documented, f"{name}: parameter {pname!r} has no [unit] in the docstring"
        assert _unit(documented[pname]) == _unit(spec.unit), (
            f"{name}.{pname}: docstring says [{documented[pname]}], ParamSpec says {spec.unit!r}")


@pytest.mark.parametrize("name", NAMES)
def test_coupling_enters_one_state_derivative(name, gen):
    """The coupling input changes the derivative of one state only, the documented one."""
    m = models.create(name, n_regions=N).double()
    assert m.state_names and COUPLING_ENTERS[name] in m.state_names
    x, c, _ = _inputs(m, 2, gen)
    changed = (m.derivative(x, c, None) - m.derivative(x, None, None)).abs().sum(dim=(0, 2))
    assert [m.state_names[k] for k in changed.nonzero().flatten()] == [COUPLING_ENTERS[name]]


@pytest.mark.parametrize("name", NAMES)
def test_derivative_shape_and_finite(name, gen):
    m = models.create(name, n_regions=N)
    x, c, f = _inputs(m, 2, gen, torch.float32)
    for coupling, forcing in ((c, f), (None, None)):
        d = m.derivative(x, coupling, forcing)
        assert d.shape == x.shape
        assert torch.isfinite(d).all()
    assert m.coupled_observable(x).shape == (2, N)
    assert m.bold_observable(x).shape == (2, N)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_derivative_wrt_parameters_and_state(name, gen):
    cls = models.get(name)
    m = models.create(name, n_regions=N,
                      params={p: {"trainable": True} for p in cls.param_specs}).double()
    x, c, f = _inputs(m, 2, gen)
    keys = list(m.params.raw.keys())
    raws = [m.params.raw[k].detach().clone().requires_grad_(True) for k in keys]
    x = x.requires_grad_(True)

    def fn(state, *raw):
        sd = {f"params.raw.{k}": r for k, r in zip(keys, raw)}
        return torch.func.functional_call(m, sd, (state, c, f))

    assert gradcheck(fn, (x, *raws), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_parameterisations_equals_separate_runs(name, gen):
    cls = models.get(name)
    B = 3
    batched = models.create(name, n_regions=N, n_batch=B,
                            params=_perturbed_values(cls, B)).double()
    x, c, f = _inputs(batched, B, gen)
    out = run_fixed(batched, x, 0.05, 40, c, f)
    for b in range(B):
        single = models.create(name, n_regions=N, params={
            k: v["value"][b].item() for k, v in _perturbed_values(cls, B).items()}).double()
        ref = run_fixed(single, x[b:b + 1], 0.05, 40, c[b:b + 1], f[b:b + 1])
        torch.testing.assert_close(out[:, b:b + 1], ref, **TOL[torch.float64])


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64(name, gen):
    m64 = models.create(name, n_regions=N).double()
    m32 = models.create(name, n_regions=N).float()
    x, c, f = _inputs(m64, 2, gen)
    a = run_fixed(m64, x, 0.05, 40, c, f)[-1]
    b = run_fixed(m32, x.float(), 0.05, 40, c.float(), f.float())[-1].double()
    scale = a.abs().max().clamp_min(1.0)
    assert (a - b).abs().max() / scale < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_wrong_state_shape_is_rejected(name):
    m = models.create(name, n_regions=N)
    with pytest.raises(ValueError, match="expects state of shape"):
        m.check_state(torch.zeros(2, m.n_states + 1, N))
    with pytest.raises(ValueError, match="regions"):
        m.check_state(torch.zeros(2, m.n_states, N + 1))


@pytest.mark.parametrize("name", NAMES)
def test_same_result_on_every_device(name, device, gen):
    m = models.create(name, n_regions=N).double()
    x, c, f = _inputs(m, 2, gen)
    ref = m.derivative(x, c, f)
    got = m.to(device).derivative(x.to(device), c.to(device), f.to(device)).cpu()
    torch.testing.assert_close(got, ref, **TOL[torch.float64])
