"""The lagged-sum operators: native kernels equal the reference, gradients, tracing, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from brainfit import kernels
from brainfit.kernels import cpu

F64 = torch.float64
HAS_NUMBA = cpu.available()
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")


def _problem(B=3, C=2, N=7, T=40, k=5, start=31, shared=False, dtype=F64, seed=0,
             ahead=False):
    """A history, sparse weights and lags that keep every read in range (negative lags, which
    read ahead as the engine's backward pass does, with ``ahead``)."""
    g = torch.Generator().manual_seed(seed)
    nb = 1 if shared else B
    buf = torch.randn(B, C, N, T, generator=g, dtype=dtype)
    A = torch.randn(nb, N, N, generator=g, dtype=dtype)
    A = A * (torch.rand(nb, N, N, generator=g) > 0.3)
    lo = start + k - T if ahead else 0
    off = torch.randint(lo, start + 1, (nb, N, N), generator=g)
    return buf, A, off, start, k


CASES = {
    "per-element": {},
    "shared": {"shared": True},
    "one channel, long": {"B": 2, "C": 1, "N": 40, "T": 70, "k": 20, "start": 45},
    "read ahead": {"ahead": True, "start": 20},
    "k = 1": {"k": 1, "start": 39},
}


@needs_numba
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_numba_kernels_equal_the_reference(case):
    buf, A, off, start, k = _problem(**CASES[case])
    assert kernels.backend("cpu") == "numba"
    u = kernels.lagged_sum(buf, A, off, start, k)
    torch.testing.assert_close(u, kernels.lagged_sum_reference(buf, A, off, start, k),
                               rtol=1e-12, atol=1e-12)
    g = torch.randn_like(u)
    torch.testing.assert_close(kernels.lagged_dot(g, buf, off.expand(buf.shape[0], -1, -1),
                                                  start),
                               kernels.lagged_dot_reference(g, buf, off, start),
                               rtol=1e-12, atol=1e-12)
    # one direct sum as the definition reads
    b, c, i, t = 1 % buf.shape[0], buf.shape[1] - 1, 2, k - 1
    ab, ob = A[min(b, A.shape[0] - 1)], off[min(b, off.shape[0] - 1)]
    direct = sum(ab[i, j] * buf[b, c, j, start + t - ob[i, j]] for j in range(buf.shape[2]))
    torch.testing.assert_close(u[b, c, i, t], direct, rtol=1e-12, atol=1e-12)


@needs_numba
def test_float32_kernels_agree_with_the_reference_to_rounding():
    buf, A, off, start, k = _problem(dtype=torch.float32, N=30, T=60, start=50, k=8)
    torch.testing.assert_close(kernels.lagged_sum(buf, A, off, start, k),
                               kernels.lagged_sum_reference(buf, A, off, start, k),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("native", [True, False], ids=["native", "reference"])
def test_opcheck_and_gradcheck(native):
    buf, A, off, start, k = _problem(B=2, N=5, T=20, start=14, k=4)
    buf.requires_grad_()
    A.requires_grad_()
    g = torch.randn(2, 2, 5, 4, dtype=F64, requires_grad=True)
    ctx = kernels.reference() if not native else torch.enable_grad()
    with ctx:
        torch.library.opcheck(torch.ops.brainfit.lagged_sum.default, (buf, A, off, start, k))
        torch.library.opcheck(torch.ops.brainfit.lagged_dot.default, (g, buf, off, start))
        assert torch.autograd.gradcheck(lambda b, a: kernels.lagged_sum(b, a, off, start, k),
                                        (buf, A))
        assert torch.autograd.gradcheck(lambda x, b: kernels.lagged_dot(x, b, off, start),
                                        (g, buf))
        # weights shared by the batch: their gradient sums over it
        A1 = A[:1].detach().requires_grad_()
        assert torch.autograd.gradcheck(lambda a: kernels.lagged_sum(buf, a, off, start, k),
                                        (A1,))


@needs_numba
def test_results_are_bitwise_the_same_run_to_run_and_across_threads():
    buf, A, off, start, k = _problem(B=4, N=30, T=60, start=50, k=8, dtype=torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kernels.lagged_sum(buf, A, off, start, k)
        torch.set_num_threads(2)
        two = [kernels.lagged_sum(buf, A, off, start, k) for _ in range(3)]
    finally:
        torch.set_num_threads(threads)
    for u in two:
        assert torch.equal(u, one)


def test_reads_outside_the_history_are_refused():
    buf, A, off, start, k = _problem()
    for impl in (kernels.lagged_sum, kernels.lagged_sum_reference):
        with pytest.raises(IndexError, match="outside the history"):
            impl(buf, A, off, start + 10, k)  # past the end
    with kernels.reference(), pytest.raises(IndexError, match="outside the history"):
        kernels.lagged_sum(buf, A, off + start, start, k)  # before the start


def test_the_reference_is_selectable():
    assert kernels.backend("meta") == "reference"
    with kernels.reference():
        assert kernels.backend("cpu") == "reference"
    assert kernels.backend("cpu") == ("numba" if HAS_NUMBA else "reference")


def test_torch_compile_traces_through_the_operators_without_a_graph_break():
    buf, A, off, start, k = _problem(B=2, N=5, T=20, start=14, k=4)
    A.requires_grad_()

    def f(buf, A):
        u = kernels.lagged_sum(buf, A, off, start, k)
        return torch.tanh(u).sum() + kernels.lagged_dot(u, buf, off, start).sum()

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    out = compiled(buf, A)
    ref = f(buf, A)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    (ga,) = torch.autograd.grad(out, A)
    (gr,) = torch.autograd.grad(ref, A)
    torch.testing.assert_close(ga, gr, rtol=1e-12, atol=1e-12)


def test_the_engine_gives_the_same_numbers_with_the_reference_operator():
    """The fast engine's values and gradients through the native kernels equal those through the
    reference implementation of the operators (float64)."""
    from test_engine import _network, _run

    out = {}
    for native in (True, False):
        net = _network("wilson_cowan", "linear", "heun", "interpolated", "ou", "fast",
                       subject_lengths=True)
        with kernels.reference() if not native else torch.enable_grad():
            out[native] = _run(net, 0.1)
    (a, ga), (b, gb) = out[True], out[False]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-12, atol=1e-14)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-14)


_TRITON_SCRIPT = textwrap.dedent("""
    import json, torch
    from brainfit import kernels
    from brainfit.kernels import cuda
    from test_kernels import CASES, _problem
    worst = 0.0
    for case in CASES.values():
        buf, A, off, start, k = _problem(**case)
        u = cuda.lagged_sum(buf, A.contiguous(), off.contiguous(), start, k)
        worst = max(worst, float((u - kernels.lagged_sum_reference(buf, A, off, start, k))
                                 .abs().max()))
        g = torch.randn_like(u)
        d = cuda.lagged_dot(g, buf, off.contiguous(), start)
        worst = max(worst, float((d - kernels.lagged_dot_reference(g, buf, off, start))
                                 .abs().max()))
    print(json.dumps({"worst": worst}))
""")


def test_the_triton_kernels_equal_the_reference_in_the_interpreter():
    """The CUDA kernels, run on CPU tensors by Triton's interpreter (a subprocess, since
    ``TRITON_INTERPRET`` must be set before Triton is imported)."""
    pytest.importorskip("triton")
    tests = Path(__file__).parent
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(tests), str(tests.parent),
                                           os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    worst = json.loads(done.stdout.strip().splitlines()[-1])["worst"]
    assert worst < 1e-12


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device present")
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_the_cuda_operators_equal_the_reference(dtype):
    buf, A, off, start, k = (t.cuda() if isinstance(t, torch.Tensor) else t
                             for t in _problem(dtype=dtype, N=40, T=70, k=16, start=50))
    tol = 1e-12 if dtype == F64 else 1e-5
    assert kernels.backend("cuda") == "triton"
    u = kernels.lagged_sum(buf, A, off, start, k)
    torch.testing.assert_close(u, kernels.lagged_sum_reference(buf, A, off, start, k),
                               rtol=tol, atol=tol)
    g = torch.randn_like(u)
    torch.testing.assert_close(kernels.lagged_dot(g, buf, off, start),
                               kernels.lagged_dot_reference(g, buf, off, start),
                               rtol=tol, atol=tol)
    if dtype == F64:
        torch.library.opcheck(torch.ops.brainfit.lagged_sum.default, (buf, A, off, start, k))


@needs_numba
def test_the_kernels_leave_torchs_thread_count_alone():
    """numba's OpenMP pool, started by the first parallel kernel of a process, resets the
    OpenMP thread count torch reads as its own; the kernels put it back (a fresh process)."""
    script = textwrap.dedent("""
        import torch
        from brainfit import kernels
        from test_kernels import _problem
        seen = []
        for n in (1, 2, 1):
            torch.set_num_threads(n)
            buf, A, off, start, k = _problem(dtype=torch.float32)
            kernels.lagged_sum(buf, A, off, start, k)
            kernels.lagged_dot(torch.ones(3, 2, 7, k), buf, off, start)
            seen.append(torch.get_num_threads())
        print(seen)
    """)
    tests = Path(__file__).parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests), str(tests.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[1, 2, 1]"
