#!/usr/bin/python3
"""Launcher identity and determinism facts, with a real reprod and real processes under the shim:

- ranks started with exactly the environment torchrun (torch.distributed.run) gives its workers,
  over two elastic attempts (TORCHELASTIC_RESTART_COUNT 0 and 1), and a Slurm step: each process
  start journals its launcher, and the restart is visible in `journal`, `export` and `diff`
  (Debian's torchrun itself dies on Python 3.11, so the environment is set here);
- torch.multiprocessing workers doing a real gloo all-reduce on CPU, each seeded by repro_seed,
  recording the determinism settings and a DataLoader's worker seeds, which `diff` then shows."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reprod_node import DEADLINE_S, PYTHON, ReprodNode  # noqa: E402

READ_SHARD = """
import os, sys
open(os.path.join(sys.argv[1], "shard-%s.csv" % os.environ["RANK"])).read()
"""

GLOO = r"""
import os, sys
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import repro_seed

def worker(rank, world, port, data, out, deterministic):
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank,
                            world_size=world)
    repro_seed.seed_everything()
    torch.use_deterministic_algorithms(deterministic)
    repro_seed.record_determinism()
    with open(os.path.join(data, "shard-%d.csv" % rank)) as f:
        value = float(f.read().split()[-1])
    t = torch.tensor([value])
    dist.all_reduce(t)
    if rank == 0:
        loader = torch.utils.data.DataLoader(list(range(8)), batch_size=2, num_workers=2,
                                             worker_init_fn=repro_seed.worker_init_fn)
        assert sum(len(b) for b in loader) == 8
        with open(out, "w") as f:
            f.write("%g" % t.item())
    dist.destroy_process_group()

if __name__ == "__main__":
    port, data, out, deterministic = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    ctx = mp.get_context("spawn")
    procs = []
    for rank in range(2):
        # What torchrun would give each worker: the shim reads the rank and the launcher from it.
        os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2"})
        p = ctx.Process(target=worker, args=(rank, 2, port, data, out, deterministic))
        p.start()
        procs.append(p)
    for p in procs:
        p.join()
        assert p.exitcode == 0, p.exitcode
"""


def torchrun_env(run_id, restart, rank, world=2, port=29500):
    """The variables torch.distributed.run sets for a worker (torch 1.13, one node)."""
    return {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world,
            "GROUP_RANK": 0, "GROUP_WORLD_SIZE": 1, "ROLE_RANK": rank, "ROLE_NAME": "default",
            "ROLE_WORLD_SIZE": world, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
            "TORCHELASTIC_RESTART_COUNT": restart, "TORCHELASTIC_MAX_RESTARTS": 3,
            "TORCHELASTIC_RUN_ID": run_id, "TORCHELASTIC_USE_AGENT_STORE": "True",
            "NCCL_ASYNC_ERROR_HANDLING": 1, "TORCHELASTIC_ERROR_FILE": "/tmp/none/error.json",
            "OMP_NUM_THREADS": 1}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LauncherTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="repro-launcher-"))
        cls.data = cls.tmp / "ml" / "shards" / "v1"
        cls.data.mkdir(parents=True)
        for rank, value in enumerate((1.5, 2.25)):
            (cls.data / f"shard-{rank}.csv").write_text(f"value\n{value}\n")
        cls.node = ReprodNode(cls.tmp / "node").__enter__()
        cls.node.ctl("version", "add", "shards", "v1", cls.data)

    @classmethod
    def tearDownClass(cls):
        cls.node.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def starts(self, job, count):
        """The job's process_start entries, once there are `count`."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            starts = [e["processStart"] for e in self.node.journal(job) if "processStart" in e]
            if len(starts) >= count or time.monotonic() > deadline:
                return starts
            time.sleep(0.2)

    def run_ranks(self, job, attempts, extra=None):
        for restart in attempts:
            procs = [subprocess.Popen([PYTHON, "-c", READ_SHARD, str(self.data)],
                                      env=self.node.shim_env(job, **torchrun_env("elastic-7", restart, rank),
                                                             **(extra or {})))
                     for rank in range(2)]
            for p in procs:
                self.assertEqual(p.wait(timeout=120), 0)

    def test_torchrun_attempts_are_journaled_exported_and_diffed(self):
        self.node.ctl("pin", "elastic", "shards@v1")
        self.node.ctl("pin", "elastic-once", "--like", "elastic")
        self.run_ranks("elastic", attempts=(0, 1), extra={"SLURM_JOB_ID": 4242, "SLURM_STEP_ID": 3})
        self.run_ranks("elastic-once", attempts=(0,))

        starts = self.starts("elastic", 4)
        seen = sorted((s["rank"], s["launcher"]["torchelasticRestartCount"]) for s in starts)
        self.assertEqual(seen, [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")])
        for s in starts:
            launcher = s["launcher"]
            self.assertEqual(launcher["torchelasticRunId"], "elastic-7")
            self.assertEqual(launcher["localRank"], s["rank"])
            self.assertEqual(launcher["worldSize"], "2")
            self.assertEqual(launcher["groupRank"], "0")
            self.assertEqual((launcher["slurmJobId"], launcher["slurmStepId"]), ("4242", "3"))
        text = self.node.ctl("journal", "elastic").stdout
        self.assertIn("torchelastic_run_id=elastic-7 restart=1", text)

        statement = json.loads(self.node.ctl("--output", "json", "export", "elastic", "--format",
                                             "in-toto").stdout)
        launches = statement["predicate"]["buildDefinition"]["internalParameters"]["launches"]
        self.assertEqual(sorted((l["rank"], l["torchelasticRestartCount"]) for l in launches),
                         [(0, "0"), (0, "1"), (1, "0"), (1, "1")])

        self.starts("elastic-once", 2)
        out = self.node.ctl("--output", "json", "diff", "elastic-once", "elastic", check=False)
        self.assertEqual(out.returncode, 1, out.stderr)
        groups = {g["name"]: g["differences"] for g in json.loads(out.stdout)["groups"]}
        by_key = {d["key"]: d for d in groups["launches"]}
        self.assertEqual(set(by_key), {"rank 0", "rank 1"})
        self.assertIn("restart=1", by_key["rank 0"]["b"])
        self.assertNotIn("restart=1", by_key["rank 0"]["a"])
        self.assertIn("launches", self.node.ctl("diff", "elastic-once", "elastic", check=False).stdout)

    def run_gloo(self, job, deterministic):
        self.node.ctl("pin", job, "shards@v1", "--seed", "11")
        out = self.tmp / f"{job}.sum"
        script = self.tmp / "gloo_train.py"  # a file: spawned workers import it by name
        script.write_text(GLOO)
        subprocess.run([PYTHON, str(script), str(free_port()), str(self.data), str(out),
                        "1" if deterministic else "0"],
                       env=self.node.shim_env(job), check=True, timeout=300)
        self.assertEqual(out.read_text(), "3.75")  # 1.5 + 2.25, all-reduced over gloo

    def test_gloo_workers_with_seeds_and_determinism_facts(self):
        self.run_gloo("gloo-det", deterministic=True)
        self.run_gloo("gloo-free", deterministic=False)

        starts = self.starts("gloo-det", 3)
        workers = {s["rank"]: s for s in starts if s.get("launcher", {}).get("worldSize") == "2"}
        self.assertEqual(set(workers), {"0", "1"})
        self.assertEqual(workers["1"]["launcher"]["localRank"], "1")
        opens = {e["dataOpen"]["relativePath"]: e["dataOpen"]["rank"]
                 for e in self.node.journal("gloo-det") if "dataOpen" in e}
        self.assertEqual(opens, {"shard-0.csv": "0", "shard-1.csv": "1"})

        facts = json.loads(self.node.ctl("--output", "json", "export", "gloo-det").stdout)["facts"]
        facts = {f["key"]: f["value"] for f in facts}
        for rank in (0, 1):
            self.assertEqual(facts[f"rank{rank}/torch/deterministic_algorithms"], "true")
            self.assertIn(f"rank{rank}/torch/cudnn/benchmark", facts)
            self.assertEqual(facts[f"rank{rank}/env/CUBLAS_WORKSPACE_CONFIG"], "unset")
        for worker in (0, 1):
            self.assertRegex(facts[f"rank0/dataloader/worker{worker}/seed"], r"^\d+$")

        out = self.node.ctl("--output", "json", "diff", "gloo-free", "gloo-det", check=False)
        groups = {g["name"]: {d["key"]: d for d in g["differences"]}
                  for g in json.loads(out.stdout)["groups"]}
        changed = groups["facts"]["rank0/torch/deterministic_algorithms"]
        self.assertEqual((changed["a"], changed["b"]), ("false", "true"))


if __name__ == "__main__":
    unittest.main()
