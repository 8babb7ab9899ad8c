"""The Balloon-Windkessel head's parameters: their declarations, the field-strength dependent
BOLD coefficients and the named presets (Friston et al. 2003; Stephan et al. 2007)."""

from __future__ import annotations

from collections.abc import Callable

from brainfit.checks import positive
from brainfit.params import ParamSpec
from brainfit.registry import Registry

__all__ = ["FIELD_CONSTANTS", "PARAM_SPECS", "PRESETS", "stephan2007_coefficients"]

#: Declarations of the haemodynamic parameters (defaults of ``friston2003``), units in seconds.
PARAM_SPECS: dict[str, ParamSpec] = {
    "kappa": ParamSpec(0.65, "1/s", low=0.05, high=5.0,
                       doc="rate of decay of the vasodilatory signal"),
    "gamma": ParamSpec(0.41, "1/s", low=0.05, high=5.0,
                       doc="rate of flow-dependent elimination (autoregulation)"),
    "tau": ParamSpec(0.98, "s", low=0.1, high=10.0, doc="haemodynamic transit time"),
    "alpha": ParamSpec(0.32, "1", low=0.05, high=1.0, doc="Grubb's exponent (vessel stiffness)"),
    "rho": ParamSpec(0.34, "1", low=0.01, high=0.99,
                     doc="resting oxygen extraction fraction (E0)"),
    "V0": ParamSpec(0.02, "1", low=0.0, high=0.2, doc="resting venous blood volume fraction"),
    "k1": ParamSpec(7 * 0.34, "1", doc="BOLD coefficient of (1 - q) (intravascular)"),
    "k2": ParamSpec(2.0, "1", doc="BOLD coefficient of (1 - q/v) (extravascular)"),
    "k3": ParamSpec(2 * 0.34 - 0.2, "1", doc="BOLD coefficient of (1 - v)"),
    "efficacy": ParamSpec(1.0, "1/s", low=0.0, high=10.0,
                          doc="neuronal efficacy epsilon: the drive is z = epsilon u, u the "
                              "model's dimensionless bold_input"),
}

#: Field-strength dependent constants of the revised BOLD coefficients, per B0 in tesla:
#: ``nu0`` frequency offset at the outer surface of magnetised vessels for fully deoxygenated
#: blood [1/s], ``r0`` slope of the intravascular relaxation rate against oxygen saturation [1/s],
#: ``te`` echo time [s], ``epsilon`` ratio of intra- to extravascular signal [1].
#:
#: - 1.5 T: nu0 = 40.3 /s, r0 = 25 /s, TE = 40 ms (Obata et al. 2004; Stephan et al. 2007, the
#:   constants of SPM's implementation); epsilon = 1, the prior mean of Stephan et al. 2007
#:   (log epsilon has prior mean 0; some implementations use 1.43 instead).
#: - 3 T: nu0 = 28.265 B0 = 84.8 /s, r0 = 110 /s, epsilon = 0.47 (Heinzle et al. 2016), with
#:   TE = 33.1 ms, the Human Connectome Project resting-state echo time; the set used for HCP
#:   data by Wang et al. 2019 (Sci Adv 5:eaat7854).
FIELD_CONSTANTS: dict[float, dict[str, float]] = {
    1.5: {"nu0": 40.3, "r0": 25.0, "te": 0.040, "epsilon": 1.0},
    3.0: {"nu0": 28.265 * 3.0, "r0": 110.0, "te": 0.0331, "epsilon": 0.47},
}


def stephan2007_coefficients(
    rho: float,
    field_strength: float = 1.5,
    te: float | None = None,
    epsilon: float | None = None,
    nu0: float | None = None,
    r0: float | None = None,
) -> tuple[float, float, float]:
    """Revised BOLD coefficients (Obata et al. 2004; Stephan et al. 2007, eq. 12).

    ``k1 = 4.3 nu0 rho TE``, ``k2 = epsilon r0 rho TE``, ``k3 = 1 - epsilon``.

    Args:
        rho: resting oxygen extraction fraction [1].
        field_strength: B0 [T]. 1.5 and 3.0 have tabulated constants (:data:`FIELD_CONSTANTS`);
            for any other field give ``r0``, ``te`` and ``epsilon``; ``nu0`` then defaults to
            28.265 B0 [1/s] (Heinzle et al. 2016).
        te: echo time [s]; default from the table.
        epsilon: ratio of intra- to extravascular signal [1]; default from the table.
        nu0: frequency offset [1/s]; default from the table (or 28.265 B0).
        r0: intravascular relaxation slope [1/s]; default from the table.

    Returns:
        ``(k1, k2, k3)``, dimensionless.

    Raises:
        ValueError: a field strength without tabulated constants and missing values, or a
            non-positive rho, TE, nu0 or r0.
    """
    table = FIELD_CONSTANTS.get(float(field_strength))
    if table is None:
        missing = [n for n, v in (("te", te), ("epsilon", epsilon), ("r0", r0)) if v is None]
        if missing:
            raise ValueError(
                f"no tabulated constants for field_strength = {field_strength} T (tabulated: "
                f"{sorted(FIELD_CONSTANTS)} T); pass {missing} explicitly"
            )
        table = {"nu0": 28.265 * float(field_strength)}
    te = table["te"] if te is None else float(te)
    epsilon = table["epsilon"] if epsilon is None else float(epsilon)
    nu0 = table["nu0"] if nu0 is None else float(nu0)
    r0 = table["r0"] if r0 is None else float(r0)
    rho = positive(rho, "rho")
    te = positive(te, "te", "seconds")
    nu0 = positive(nu0, "nu0", "1/s")
    r0 = positive(r0, "r0", "1/s")
    return 4.3 * nu0 * rho * te, epsilon * r0 * rho * te, 1.0 - epsilon


def _friston_k(rho: float) -> tuple[float, float, float]:
    return 7.0 * rho, 2.0, 2.0 * rho - 0.2


_HAEMO_2003 = {"kappa": 0.65, "gamma": 0.41, "tau": 0.98, "alpha": 0.32, "rho": 0.34,
               "efficacy": 1.0}

#: Rules giving (k1, k2, k3) from rho, per preset (used when rho is overridden by a scalar).
_K_RULES: dict[str, Callable[[float], tuple[float, float, float]]] = {
    "friston2003": _friston_k,
    "stephan2007": lambda rho: stephan2007_coefficients(rho, 1.5),
    "stephan2007_3t": lambda rho: stephan2007_coefficients(rho, 3.0),
}


def _preset(v0: float, name: str) -> dict[str, float]:
    k1, k2, k3 = _K_RULES[name](_HAEMO_2003["rho"])
    return {**_HAEMO_2003, "V0": v0, "k1": k1, "k2": k2, "k3": k3}


#: Parameter values of each preset. All share the haemodynamics of Friston et al. 2003
#: (kappa 0.65 /s, gamma 0.41 /s, tau 0.98 s, alpha 0.32, rho 0.34, the DCM priors of that
#: paper, and a neuronal efficacy of 1) and differ only in the BOLD output equation:
#:
#: - ``friston2003``: V0 = 0.02, k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2 (classical coefficients,
#:   1.5 T, TE = 40 ms).
#: - ``stephan2007``: V0 = 0.04, revised coefficients at 1.5 T, TE = 40 ms, epsilon = 1:
#:   k1 = 2.357, k2 = 0.34, k3 = 0.
#: - ``stephan2007_3t``: V0 = 0.04, revised coefficients at 3 T, TE = 33.1 ms, epsilon = 0.47:
#:   k1 = 4.103, k2 = 0.582, k3 = 0.53.
PRESETS: Registry[dict[str, float]] = Registry("BOLD preset", listing="valid presets",
                                               name_attr=None)
PRESETS.register("friston2003", _preset(0.02, "friston2003"))
PRESETS.register("stephan2007", _preset(0.04, "stephan2007"))
PRESETS.register("stephan2007_3t", _preset(0.04, "stephan2007_3t"))
