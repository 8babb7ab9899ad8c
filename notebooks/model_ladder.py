# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The model ladder: from the harmonic oscillator to next-generation neural masses
#
# After the *Rosetta Stone of neural mass models* (Castaldo, de Palma Aristides, Clusella,
# Garcia-Ojalvo, Ruffini 2025, arXiv:2512.10982): every neural mass model rests on one **push-pull
# motif**, a variable that drives the system away from rest (x, "excitation") and one that pulls
# it back (y, "inhibition"). Climbing the ladder adds damping, a nonlinearity, sigmoidal E-I
# populations, second-order synapses and finally an exact mean field of spiking neurons; the
# motif stays. Each rung below shows a single node's time series, phase portrait and spectrum,
# and the bifurcation its key parameter drives. About a minute on a laptop CPU.
#
# | rung | model (`create_model` name) | push-pull | regime change |
# |---|---|---|---|
# | 1-2 | harmonic oscillator, undamped and damped (`harmonic`) | `-omega y`, `+omega x` | damping `alpha < 0` |
# | 3 | Stuart-Landau / Hopf normal form (`hopf`) | the same rotation, saturated by `gamma r^3` | Hopf bifurcation at `a = 0` |
# | 4 | Wilson-Cowan (`wilson_cowan`) | E excites I, I inhibits E | Hopf bifurcation in the drive `h_E` |
# | 5 | Jansen-Rit, NMM1 (`jansen_rit`) | the same loop through second-order synapses | alpha rhythm as the input `p` rises |
# | 6 | Montbrio-Pazo-Roxin E-I, NMM2 (`mpr_ei`) | QIF populations through synaptic kernels | E-I (PING-like) oscillation as `eta_E` rises |

# %%
# %matplotlib inline
import numpy as np
import torch

import brainfit
from brainfit import plotting

torch.set_num_threads(1)


def run_node(name, duration, dt, record, burn_in=0.0, noise=None, seed=0, **params):
    """Simulate uncoupled copies of one node (time in ms): a "network" without connections.

    A parameter given as a list gets one copy per value (a regional parameter), so one call
    sweeps it. Returns {state: (T, copies)} and the sample times in ms."""
    copies = max([len(v) for v in params.values() if isinstance(v, list)] or [1])
    params = {k: ({"value": torch.tensor(v), "scope": "regional"} if isinstance(v, list) else v)
              for k, v in params.items()}
    model = brainfit.create_model(name, n_regions=copies, **params)
    noise = None if noise is None else brainfit.WhiteNoise(model.state_names, sigma=noise)
    net = brainfit.BrainNetwork(model, torch.zeros(copies, copies), G=0.0, noise=noise)
    with torch.no_grad():
        out, _ = net.simulate(duration, dt, record=list(record), burn_in=burn_in,
                              generator=torch.Generator().manual_seed(seed))
    t = np.arange(1, int(round(duration / dt)) + 1) * dt
    return {k: v[0].numpy() for k, v in out.items()}, t


def flow(name, x, y, **params):
    """The vector field of a two-state model in its (x, y) plane, for the phase portraits."""
    model = brainfit.create_model(name, n_regions=1, **params)

    def field(X, Y):
        state = torch.tensor(np.stack([X.ravel(), Y.ravel()]), dtype=torch.float32)[None]
        with torch.no_grad():
            d = model.derivative(state, None, None)[0].numpy()
        i, j = model.index(x), model.index(y)
        return d[i].reshape(X.shape), d[j].reshape(X.shape)
    return field


TEN_HZ = 2 * np.pi * 10 / 1000  # rad/ms

# %% [markdown]
# ## Rungs 1-2: the harmonic oscillator, undamped and damped
#
# $\dot x = \alpha x - \omega y, \; \dot y = \omega x + \alpha y$, i.e. $\dot z = (\alpha + i\omega) z$
# for $z = x + iy$. When y is positive it pushes x down, when x is positive it pushes y up: the
# chase never ends (undamped, $\alpha = 0$: a closed orbit) or spirals into rest ($\alpha < 0$:
# a damped resonator, the linear model behind many resting-state FC studies).

# %%
alphas = [0.0, -0.005]
x0 = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # (batch, state, copy): both at x = 1, y = 0
model = brainfit.create_model("harmonic", n_regions=2,
                              alpha={"value": torch.tensor(alphas), "scope": "regional"},
                              omega=TEN_HZ)
net = brainfit.BrainNetwork(model, torch.zeros(2, 2), G=0.0)
with torch.no_grad():
    out, _ = net.simulate(600.0, 0.1, record=["x", "y"], x0=x0)
t = np.arange(1, 6001) * 0.1  # ms
labels = ["undamped (alpha = 0)", "damped (alpha = -0.005 /ms)"]
plotting.plot_oscillator(t, {lab: out["x"][0, :, k].numpy() for k, lab in enumerate(labels)},
                         {lab: out["y"][0, :, k].numpy() for k, lab in enumerate(labels)},
                         field=flow("harmonic", "x", "y", alpha=-0.005, omega=TEN_HZ),
                         fmax=40, title="Harmonic oscillator at 10 Hz")

# %% [markdown]
# ## Rung 3: Stuart-Landau, the Hopf normal form
#
# $\dot z = (a + i\omega) z - (\gamma + i\beta)|z|^2 z$: in polar form $\dot r = a r - \gamma r^3$.
# For $a < 0$ a stable focus that noise keeps ringing at $\omega$ (the regime of whole-brain fits);
# at $a = 0$ a **Hopf bifurcation**; for $a > 0$ a limit cycle of radius $\sqrt{a / \gamma}$.

# %%
out, t = run_node("hopf", 1000.0, 0.1, ["x", "y"], burn_in=500.0, noise=0.005,
                  a=[-0.02, 0.02], omega=TEN_HZ, gamma=1.0)
labels = ["a = -0.02 /ms (noisy focus)", "a = +0.02 /ms (limit cycle)"]
plotting.plot_oscillator(t, {lab: out["x"][:, k] for k, lab in enumerate(labels)},
                         {lab: out["y"][:, k] for k, lab in enumerate(labels)},
                         field=flow("hopf", "x", "y", a=0.02, omega=TEN_HZ, gamma=1.0),
                         fmax=40, title="Stuart-Landau node with noise")

# %%
a_values = np.linspace(-0.05, 0.05, 21).tolist()
out, t = run_node("hopf", 500.0, 0.1, ["x"], burn_in=1000.0, noise=1e-3, a=a_values,
                  omega=TEN_HZ, gamma=1.0)
radius = out["x"].max(axis=0)
print("limit-cycle radius at a = 0.05:", radius[-1].round(3), "theory sqrt(a/gamma) =",
      np.sqrt(0.05).round(3))
plotting.plot_bifurcation(a_values, out["x"].T, name="a", unit="1/ms", observable="x",
                          dt=0.1, critical=0.0, critical_label="Hopf bifurcation")

# %% [markdown]
# ## Rung 4: Wilson-Cowan, the push-pull made of E and I populations
#
# $\tau_E \dot E = -E + (1 - E) S_E(c_{EE} E - c_{EI} I + h_E)$,
# $\tau_I \dot I = -I + (1 - I) S_I(c_{IE} E - c_{II} I + h_I)$. Excitation drives inhibition
# ($c_{IE}$), inhibition restrains excitation ($c_{EI}$). At the default drive $h_E = 0.6$ the node
# rests at a damped focus; above $h_E \approx 0.78$ it oscillates (a Hopf bifurcation), and at
# high drive it saturates again.

# %%
out, t = run_node("wilson_cowan", 200.0, 0.05, ["E", "I"], burn_in=300.0, h_E=[0.6, 1.5])
labels = ["h_E = 0.6 (focus)", "h_E = 1.5 (limit cycle)"]
plotting.plot_oscillator(t, {lab: out["E"][:, k] for k, lab in enumerate(labels)},
                         {lab: out["I"][:, k] for k, lab in enumerate(labels)},
                         names=("E (fraction active)", "I (fraction active)"),
                         field=flow("wilson_cowan", "E", "I", h_E=1.5), fmax=150,
                         title="Wilson-Cowan node")

# %%
h_values = np.linspace(0.0, 3.5, 15).tolist()
out, t = run_node("wilson_cowan", 300.0, 0.05, ["E"], burn_in=300.0, h_E=h_values)
plotting.plot_bifurcation(h_values, out["E"].T, name="h_E", observable="E", dt=0.05,
                          critical=0.78, critical_label="Hopf bifurcation")

# %% [markdown]
# **The motif at work.** Cut the pull (inhibition onto E, $c_{EI}$) and the oscillation goes:
# at $h_E = 1.5$ the node oscillates only while inhibition is strong enough to pull E back.

# %%
c_values = np.linspace(0.0, 16.0, 17).tolist()
out, t = run_node("wilson_cowan", 300.0, 0.05, ["E"], burn_in=300.0, h_E=1.5, c_EI=c_values)
plotting.plot_bifurcation(c_values, out["E"].T, name="c_EI (I -> E weight)", observable="E",
                          dt=0.05, title="No pull, no oscillation: Wilson-Cowan in c_EI")

# %% [markdown]
# ## Rung 5: Jansen-Rit (NMM1), second-order synapses
#
# Each synapse is a second-order filter $h(t) = G k t e^{-kt}$ with rise and decay; pyramidal
# cells excite both interneuron populations and receive their excitation ($y_1$) and inhibition
# ($y_2$). The membrane potential $y_1 - y_2$ is the EEG-like output. With the extrinsic input
# $p$ between about 0.12 and 0.32 /ms (120-320 pulses/s) the column produces the **alpha rhythm**.

# %%
out, t = run_node("jansen_rit", 1000.0, 0.1, ["y0", "y1", "y2"], burn_in=1000.0,
                  p=[0.05, 0.22])
labels = ["p = 0.05 /ms (rest)", "p = 0.22 /ms (alpha)"]
v = out["y1"] - out["y2"]
plotting.plot_oscillator(t, {lab: v[:, k] for k, lab in enumerate(labels)},
                         {lab: out["y0"][:, k] for k, lab in enumerate(labels)},
                         names=("y1 - y2: pyramidal potential (mV)", "y0: interneuron PSP (mV)"),
                         fmax=40, title="Jansen-Rit column")

# %%
p_values = np.linspace(0.0, 0.4, 17).tolist()
out, t = run_node("jansen_rit", 1000.0, 0.1, ["y1", "y2"], burn_in=1000.0, p=p_values)
v = out["y1"] - out["y2"]
plotting.plot_bifurcation(p_values, v.T, name="p", unit="1/ms", observable="y1 - y2 (mV)",
                          dt=0.1, title="Jansen-Rit: the alpha rhythm as the input p rises")

# %% [markdown]
# ## Rung 6: Montbrio-Pazo-Roxin E-I (NMM2), exact mean field of spiking neurons
#
# Each population is the exact mean field of quadratic integrate-and-fire neurons (rate $r$,
# mean potential $v$; Montbrio, Pazo & Roxin 2015), coupled through first-order synaptic kernels
# ($s_E$, $s_I$). With strong E-I loops and narrow excitability distributions, raising the
# excitability of E ($\eta_E$) starts an E-I oscillation (the PING mechanism: E fires, I follows
# and silences E, E recovers).

# %%
ping = dict(Delta_E=0.3, Delta_I=0.3, J_EE=5.0, J_IE=20.0, J_EI=20.0)
out, t = run_node("mpr_ei", 200.0, 0.02, ["r_E", "r_I"], burn_in=300.0, eta_E=[-1.0, 7.0],
                  **ping)
labels = ["eta_E = -1 (asynchronous)", "eta_E = 7 (E-I oscillation)"]
plotting.plot_oscillator(t, {lab: out["r_E"][:, k] for k, lab in enumerate(labels)},
                         {lab: out["r_I"][:, k] for k, lab in enumerate(labels)},
                         names=("r_E (1/ms)", "r_I (1/ms)"), fmax=120,
                         title="Montbrio-Pazo-Roxin E-I column")

# %%
eta_values = np.linspace(-5.0, 15.0, 11).tolist()
out, t = run_node("mpr_ei", 200.0, 0.02, ["r_E"], burn_in=300.0, eta_E=eta_values, **ping)
plotting.plot_bifurcation(eta_values, out["r_E"].T, name="eta_E", observable="r_E (1/ms)",
                          dt=0.02, title="Montbrio-Pazo-Roxin E-I: oscillation onset in eta_E")

# %% [markdown]
# From here, every rung is a node of a whole-brain network: `brainfit.BrainNetwork` couples N of
# them through a connectome (`notebooks/perturbation.py` drives one, `notebooks/fitting.py`
# fits one to fMRI).
