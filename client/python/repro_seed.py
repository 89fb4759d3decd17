"""Seed a training process from the seed repro pinned for it.

    import repro_seed
    seed = repro_seed.seed_everything()      # random, numpy and torch, when they are installed
    loader = DataLoader(ds, num_workers=4, worker_init_fn=repro_seed.worker_init_fn)

Under `reproctl run` (or the Kubernetes webhook) the shim exports REPRO_RANK_SEED, this rank's seed,
derived by reprod from the job's seed and the rank. When reprod could not be reached at start, the
same seed is derived here from REPRO_SEED and the rank, with the formula of daemon/registry/seeds.h.
Outside repro both are absent and nothing is seeded (seed_everything returns None).
"""
import hashlib
import os
import random

_RANK_VARIABLES = ("REPRO_RANK", "RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def rank():
    """This process's rank, as the shim reads it: REPRO_RANK, else the launcher's variables, else 0."""
    for name in _RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def rank_seed():
    """REPRO_RANK_SEED, else derived from REPRO_SEED and the rank, else None."""
    if os.environ.get("REPRO_RANK_SEED", "").isdigit():
        return int(os.environ["REPRO_RANK_SEED"])
    if not os.environ.get("REPRO_SEED", "").isdigit():
        return None
    job_seed = int(os.environ["REPRO_SEED"])
    digest = hashlib.sha256(b"repro.rank_seed.v1\0" + job_seed.to_bytes(8, "big") +
                            rank().to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def seed_everything(seed=None):
    """Seeds random, numpy (legacy global RNG: seed % 2**32) and torch (CPU and CUDA) with `seed`,
    by default rank_seed(). Returns the seed used, or None when there is none."""
    if seed is None:
        seed = rank_seed()
    if seed is None:
        return None
    random.seed(seed)
    try:
        import numpy
        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    try:
        import torch
        torch.manual_seed(seed)  # also seeds every CUDA device
    except ImportError:
        pass
    return seed


def worker_init_fn(worker_id):
    """DataLoader worker_init_fn: torch already gives each worker base_seed + worker_id; this
    hands the same seed to random and numpy, which otherwise share the parent's state."""
    try:
        import torch
        seed_everything(torch.initial_seed())
    except ImportError:
        seed_everything((rank_seed() or 0) + worker_id)
