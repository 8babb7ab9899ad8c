"""What the metrics share: input validation (shapes, dtypes, batch handling) and the flat-safe
standardisation behind every correlation."""

from __future__ import annotations

import torch
from torch import Tensor

#: a signal is flat when std <= _FLAT_REL * eps(dtype) * max|x| (see :mod:`brainfit.metrics`)
_FLAT_REL = 16.0
#: arctanh is applied to correlations clamped to +/- (1 - _FISHER_CLAMP)
_FISHER_CLAMP = 1e-7


# ----------------------------------------------------------------------------- input checks


def _check_float_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with "
                        f"torch.as_tensor(..., dtype=torch.float32)")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got "
                        f"{x.dtype}; convert it with .to(torch.float32) or .double()")
    return x


def _series(x: object, name: str = "x", min_t: int = 1) -> tuple[Tensor, bool]:
    """Validate a time series; return it as (B, T, N) and whether it came unbatched (T, N)."""
    x = _check_float_tensor(x, name)
    if x.dim() not in (2, 3):
        raise ValueError(f"{name} must be a time series of shape (B, T, N) or (T, N), got shape "
                         f"{tuple(x.shape)} ({x.dim()} dims)")
    unbatched = x.dim() == 2
    x3 = x.unsqueeze(0) if unbatched else x
    if x3.shape[1] < min_t:
        raise ValueError(f"{name} needs at least {min_t} time samples along dim -2, got "
                         f"{x3.shape[1]} (shape {tuple(x.shape)})")
    if x3.shape[2] < 1:
        raise ValueError(f"{name} has no regions (N = 0), shape {tuple(x.shape)}")
    return x3, unbatched


def _square(m: object, name: str) -> tuple[Tensor, bool]:
    """Validate a (B, N, N) or (N, N) matrix; return it as (B, N, N) and whether it was (N, N)."""
    m = _check_float_tensor(m, name)
    if m.dim() not in (2, 3) or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (N, N) or a batch of them (B, N, N), got "
                         f"shape {tuple(m.shape)}")
    unbatched = m.dim() == 2
    return (m.unsqueeze(0) if unbatched else m), unbatched


def _samples(v: object, name: str) -> tuple[Tensor, bool]:
    """Validate samples (B, M) or (M,); return (B, M) and whether they were 1-D."""
    v = _check_float_tensor(v, name)
    if v.dim() not in (1, 2):
        raise ValueError(f"{name} must be samples of shape (B, M) or (M,), got shape "
                         f"{tuple(v.shape)}")
    if v.shape[-1] < 1:
        raise ValueError(f"{name} is empty (M = 0); a distribution needs at least one sample")
    unbatched = v.dim() == 1
    return (v.unsqueeze(0) if unbatched else v), unbatched


def _broadcast_batch(a: Tensor, b: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Broadcast the leading (batch) dimension of two tensors, keeping their other dims."""
    ba, bb = a.shape[0], b.shape[0]
    if ba != bb and 1 not in (ba, bb):
        raise ValueError(f"{what}: batch sizes {ba} and {bb} do not match; pass equal batch sizes, "
                         f"or one unbatched input to compare every batch element against it")
    n = max(ba, bb)
    return a.expand(n, *a.shape[1:]), b.expand(n, *b.shape[1:])


def _same_dtype_device(a: Tensor, b: Tensor, what: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{what}: inputs have different dtypes {a.dtype} and {b.dtype}; convert "
                        f"one of them")
    if a.device != b.device:
        raise ValueError(f"{what}: inputs are on different devices {a.device} and {b.device}; move "
                         f"one of them")


def _unbatch(out: Tensor, unbatched: bool) -> Tensor:
    return out[0] if unbatched else out


# ----------------------------------------------------------------------------- helpers


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt with value 0 and gradient 0 (not inf/NaN) where x <= 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _standardize(x: Tensor, dim: int) -> Tensor:
    """Centre along ``dim`` and scale to unit Euclidean norm; flat slices become exactly 0.

    The first element is subtracted before the mean, so a constant slice centres to exactly 0 (and
    large offsets lose no precision). Pearson r of two slices is then the dot product of the
    results.
    """
    n = x.shape[dim]
    finfo = torch.finfo(x.dtype)
    scale = x.detach().abs().amax(dim=dim, keepdim=True)
    xs = x - x.narrow(dim, 0, 1)
    xc = xs - xs.mean(dim=dim, keepdim=True)
    ss = (xc * xc).sum(dim=dim, keepdim=True)
    thresh = torch.clamp(n * (_FLAT_REL * finfo.eps * scale) ** 2, min=finfo.tiny)
    flat = ss.detach() <= thresh
    norm = torch.sqrt(torch.where(flat, torch.ones_like(ss), ss))
    return torch.where(flat, torch.zeros_like(xc), xc / norm)


def _set_diagonal_one(m: Tensor) -> Tensor:
    eye = torch.eye(m.shape[-1], dtype=torch.bool, device=m.device)
    return torch.where(eye, torch.ones_like(m), m)


def _triu_flat(m: Tensor, k: int) -> Tensor:
    n = m.shape[-1]
    idx = torch.triu_indices(n, n, offset=k, device=m.device)
    return m[..., idx[0], idx[1]]
