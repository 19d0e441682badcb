"""Bound the CPU threads torch, BLAS and OpenMP (scikit-learn, numpy) may use.

Why: the platform's machines have 2 cores shared by Airflow, PostgreSQL and the models; torch and
OpenMP default to one thread per core each and oversubscribe them. ml.threads caps all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the block with at most `threads` threads in torch, BLAS and OpenMP; restore after."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)
