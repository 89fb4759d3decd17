"""Seed a training process from the seed repro pinned for it.

    import repro_seed
    seed = repro_seed.seed_everything()      # random, numpy and torch, when they are installed
    loader = DataLoader(ds, num_workers=4, worker_init_fn=repro_seed.worker_init_fn)

Under `reproctl run` (or the Kubernetes webhook) the shim exports REPRO_RANK_SEED, this rank's seed,
derived by reprod from the job's seed and the rank. When reprod could not be reached at start, the
same seed is derived here from REPRO_SEED and the rank, with the formula of daemon/registry/seeds.h.
Outside repro both are absent and nothing is seeded (seed_everything returns None).

What decides bit-identical reruns on GPUs is journaled too, as facts of the job (`reproctl
record`, shown by `reproctl journal`, `export` and `diff`), under rank<R>/...:

    repro_seed.record_determinism()          # deterministic algorithms, cuDNN flags, CUBLAS_WORKSPACE_CONFIG
    # worker_init_fn records each DataLoader worker's seed: rank<R>/dataloader/worker<W>/seed

Recording goes through reproctl ($REPRO_CTL, else `reproctl` on PATH; reprod at $REPRO_ADDR or the
default socket). A failure to record never stops training: it is reported once on stderr.
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys

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
    hands the same seed to random and numpy, which otherwise share the parent's state, and
    journals it as rank<R>/dataloader/worker<W>/seed."""
    try:
        import torch
        seed = seed_everything(torch.initial_seed())
    except ImportError:
        seed = seed_everything((rank_seed() or 0) + worker_id)
    record({f"rank{rank()}/dataloader/worker{worker_id}/seed": str(seed)})


def determinism_facts():
    """The settings that decide whether a rerun is bit-identical, as fact key -> value text:
    torch.use_deterministic_algorithms (and its warn_only), the cuDNN flags, TF32 use and
    CUBLAS_WORKSPACE_CONFIG ("unset" when absent)."""
    prefix = f"rank{rank()}/"
    facts = {prefix + "env/CUBLAS_WORKSPACE_CONFIG":
             os.environ.get("CUBLAS_WORKSPACE_CONFIG", "unset")}
    try:
        import torch
    except ImportError:
        return facts

    def text(value):
        return str(value).lower() if isinstance(value, bool) else str(value)

    facts[prefix + "torch/deterministic_algorithms"] = text(
        torch.are_deterministic_algorithms_enabled())
    warn_only = getattr(torch, "is_deterministic_algorithms_warn_only_enabled", None)
    if warn_only is not None:
        facts[prefix + "torch/deterministic_algorithms_warn_only"] = text(warn_only())
    cudnn = torch.backends.cudnn
    for flag in ("enabled", "deterministic", "benchmark", "allow_tf32"):
        facts[prefix + "torch/cudnn/" + flag] = text(getattr(cudnn, flag))
    facts[prefix + "torch/cuda_matmul_allow_tf32"] = text(torch.backends.cuda.matmul.allow_tf32)
    return facts


def record_determinism():
    """Journals determinism_facts() for this job; returns them (None outside repro)."""
    facts = determinism_facts()
    return facts if record(facts) else None


_warned = False


def record(facts):
    """Journals `facts` (key -> value) for $REPRO_JOB with `reproctl record`. True when recorded;
    False outside repro or when it failed (said once on stderr; training goes on)."""
    global _warned
    job = os.environ.get("REPRO_JOB", "")
    if not job or not facts:
        return False
    reproctl = os.environ.get("REPRO_CTL") or shutil.which("reproctl")
    # reproctl itself is not part of the job: keep the shim out of it.
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "REPRO_JOB")}
    try:
        if reproctl is None:
            raise OSError("reproctl is not on PATH (set REPRO_CTL)")
        out = subprocess.run([reproctl, "record", job] + [f"{k}={v}" for k, v in facts.items()],
                             env=env, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise OSError(out.stderr.strip() or f"reproctl exited {out.returncode}")
        return True
    except (OSError, subprocess.SubprocessError) as e:
        if not _warned:
            _warned = True
            print(f"repro_seed: could not record {len(facts)} fact(s) for job {job}: {e}",
                  file=sys.stderr)
        return False
