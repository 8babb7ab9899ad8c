"""brainfit.registry: one name -> component mechanism for models, couplings, integrators, noise and
BOLD presets."""

import pytest

from brainfit import bold, coupling, integrate, models, noise
from brainfit.registry import Registry, UnknownNameError


def test_register_get_create_available():
    shapes = Registry("shape")

    @shapes.register("square")
    class Square:
        def __init__(self, side=1.0):
            self.side = side

    @shapes.register()
    class Circle:
        name = "circle"

    assert Square.name == "square"  # the registered name is written to the class
    assert shapes.available() == ["circle", "square"] == sorted(shapes)
    assert shapes.get("square") is Square and shapes["circle"] is Circle
    assert shapes.create("square", side=2.0).side == 2.0
    assert "square" in shapes and "triangle" not in shapes and [] not in shapes
    assert len(shapes) == 2 and dict(shapes) == {"square": Square, "circle": Circle}
    assert shapes.get("triangle", None) is None


def test_unknown_name_lists_the_valid_ones():
    shapes = Registry("shape", hint=" (see the docs)")
    shapes.register("square", object())
    for call in (lambda: shapes.get("squre"), lambda: shapes["squre"],
                 lambda: shapes.create("squre"), lambda: shapes.get(["unhashable"])):
        with pytest.raises(UnknownNameError) as err:
            call()
        assert isinstance(err.value, ValueError) and isinstance(err.value, KeyError)
    assert str(err.value) == ("unknown shape ['unhashable']; valid names are ['square'] "
                              "(see the docs)")
    with pytest.raises(ValueError, match=r"unknown shape 'squre'; valid names are \['square'\]"):
        shapes.get("squre")
    listed = Registry("model", listing="available models")
    with pytest.raises(ValueError, match=r"unknown model 'x'; available models are \[\]"):
        listed.get("x")


def test_a_taken_or_missing_name_is_refused():
    shapes = Registry("shape")
    shapes.register("square", 1)
    shapes.register("square", 1)  # the same object again is fine
    with pytest.raises(ValueError, match="'square' is already registered"):
        shapes.register("square", 2)
    with pytest.raises(ValueError, match="with a name"):
        shapes.register(obj=object())
    objects = Registry("object", name_attr=None)
    objects.register("d", {"a": 1.0})  # a plain value, no name attribute written
    assert objects["d"] == {"a": 1.0}


def test_every_family_uses_it():
    """Models, couplings, integrators, noise and BOLD presets are all Registries, reachable through
    the modules' own functions."""
    for reg in (models.REGISTRY, coupling.COUPLINGS, integrate.INTEGRATORS, noise.NOISES,
                bold.PRESETS):
        assert isinstance(reg, Registry) and len(reg) > 0
    assert models.available() == models.REGISTRY.available()
    assert models.get("hopf").name == "hopf"
    assert coupling.available() == ["diffusive", "kuramoto", "linear", "sigmoidal",
                                    "sigmoidal_jr", "tanh"]
    assert all(coupling.COUPLINGS[n].name == n for n in coupling.available())
    assert all(integrate.INTEGRATORS[n].name == n for n in integrate.INTEGRATORS)
    assert noise.NOISES.available() == ["ou", "white"]
    assert noise.create("ou", ("x",), sigma=0.1).kind == "ou"
    assert set(bold.PRESETS) == {"friston2003", "stephan2007", "stephan2007_3t"}
