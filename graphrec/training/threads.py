"""How many intra-op threads torch uses when ``train.num_threads`` is left unset.

torch's own default is one OpenMP thread per core.  On a machine where anything else
runs, that oversubscribes the cores: OpenMP's threads spin at every barrier while the
thread they wait for has been descheduled, and an epoch takes 3-20x its quiet time
(issue 18: LightGCN 16-18 s/epoch instead of 0.8-0.9 beside other jobs on 2 cores).
graphrec's default therefore uses half the CPUs this process may run on (at least
one, at most :data:`MAX_DEFAULT_THREADS`), split among the processes of a
distributed run on the same machine: beside one CPU-bound job an epoch stays within
2x of its quiet time, beside three within 4x (``benchmarks/speed.py --load 1 3``),
for a 10-20% loss on an otherwise idle 2-core machine.  ``num_threads: 0`` leaves
torch's setting alone (its default, one per core); a positive value is used as given.
"""

from __future__ import annotations

import os

import torch

from graphrec.errors import ConfigError

#: beyond this the CSR products and the small dense ops of a batch stop scaling
MAX_DEFAULT_THREADS = 8


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_num_threads(processes: int = 1) -> int:
    """graphrec's default thread count: half the available CPUs per process, in ``[1, 8]``."""
    return max(1, min(MAX_DEFAULT_THREADS, available_cpus() // (2 * max(1, processes))))


def configure_threads(num_threads: int | None, processes: int = 1) -> int:
    """Apply ``train.num_threads`` (``None``: :func:`default_num_threads`; ``0``: leave torch's
    setting, by default one per core) to torch and return the count in use."""
    if num_threads is not None and num_threads < 0:
        raise ConfigError(
            f"train.num_threads must be >= 0 (0 = torch's default), got {num_threads}"
        )
    if num_threads is None:
        torch.set_num_threads(default_num_threads(processes))
    elif num_threads > 0:
        torch.set_num_threads(num_threads)
    return torch.get_num_threads()
