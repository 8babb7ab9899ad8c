"""One fit spread over processes, GPUs and nodes with ``torch.distributed`` (launched by torchrun).

The cohort's batch elements (subject x restart) are split by rank into contiguous shares of whole
subjects. Every rank simulates its share only; the loss of the whole batch is the sum of the
shares' losses over the whole batch size, so after an all-reduce (sum) of the gradients every
rank holds the gradient a single process would compute:

- parameters of group scope (``global``, ``regional``, ``map``, ``edge``) are replicated; their
  gradients are all-reduced and every rank takes the same optimiser step;
- parameters with one value per element (``subject``, ``subject_regional``, ``subject_edge``)
  live on the rank that simulates the element, with their optimiser state;
- initial states and noise are the share's rows of the whole batch's draws
  (:attr:`brainfit.network.BrainNetwork.rows`), so a split fit sees the numbers of an unsplit one;
- checkpoints hold the whole batch: rank 0 gathers the shares and writes the files a
  single-process run writes, and a resumed run (with any number of processes) takes its rows.

Every rank reaches every collective: a divergence on one rank is agreed on by all before anyone
acts (:meth:`ProcessGroup.any`), and a rank that crashes ends the job through torchrun (which
stops the other workers) or, failing that, through the collectives' timeout
(``trainer.distributed_timeout``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from typing import Any

import torch
from torch import Tensor

from brainfit.fit.configs import flat_config

log = logging.getLogger("brainfit.fit")


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher) set a world of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


class ProcessGroup:
    """This process's place in a distributed fit, and the collectives the trainer uses.

    Initialises ``torch.distributed`` from torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ...) unless it is already initialised: backend ``nccl`` on CUDA, ``gloo``
    otherwise.

    Args:
        device: where this rank computes (``cuda`` picks ``cuda:LOCAL_RANK``).
        timeout_s: how long a collective waits for the other ranks before failing.

    Raises:
        RuntimeError: torch.distributed is unavailable, or the environment names no world.
    """

    def __init__(self, device: torch.device, timeout_s: float = 600.0) -> None:
        import torch.distributed as dist

        if not dist.is_available():
            raise RuntimeError("this PyTorch build has no torch.distributed; run without "
                               "trainer.distributed")
        self.dist = dist
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        self.device = device
        self.owns = not dist.is_initialized()
        if self.owns:
            if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
                raise RuntimeError("trainer.distributed needs torchrun's environment (RANK, "
                                   "WORLD_SIZE, MASTER_ADDR, MASTER_PORT): launch with torchrun "
                                   "--nproc_per_node=K scripts/train.py ...")
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(seconds=timeout_s))
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.backend = dist.get_backend()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.owns and self.dist.is_initialized():
            self.dist.destroy_process_group()

    # -- the split -------------------------------------------------------------------------------
    def share(self, n_subjects: int) -> tuple[int, int]:
        """This rank's subjects ``lo .. hi - 1``: contiguous, sizes differing by at most one.

        Raises:
            ValueError: more processes than subjects.
        """
        if self.world > n_subjects:
            raise ValueError(f"{self.world} processes for {n_subjects} subjects: every process "
                             f"needs at least one subject; use --nproc_per_node (x nodes) <= "
                             f"{n_subjects}")
        base, extra = divmod(n_subjects, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (self.rank < extra)

    # -- collectives -----------------------------------------------------------------------------
    def all_reduce_(self, tensors: list[Tensor]) -> None:
        """Sum each tensor over the ranks, in place (one flat buffer)."""
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        self.dist.all_reduce(flat)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any."""
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        out: list[Any] = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def check_same_config(self, config: dict[str, Any]) -> None:
        """Refuse a job whose ranks were given different configs (e.g. different command lines
        on different nodes).

        Raises:
            ValueError: naming the settings that differ from rank 0's.
        """
        mine = flat_config(config, skip=("hydra",))
        digest = hashlib.sha256(json.dumps(mine, sort_keys=True, default=str).encode())
        digests = self.gather(digest.hexdigest())
        if len(set(digests)) == 1:
            return
        theirs = self.broadcast(mine if self.is_main else None)
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        bad = [r for r, d in enumerate(digests) if d != digests[0]]
        raise ValueError(f"the processes of this job were given different configs (rank(s) "
                         f"{bad} differ from rank 0{' in ' + ', '.join(diff) if diff else ''}); "
                         f"launch every process with the same overrides")

