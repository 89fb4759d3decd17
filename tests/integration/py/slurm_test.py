#!/usr/bin/python3
"""repro on a real single-node Slurm (slurm_cluster.py) with a real reprod: the SPANK plugin's
options pin the job at submit time and put every task under the shim with its rank from
SLURM_PROCID, and job_submit.lua refuses unpinned jobs with a clear message at submission."""
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reprod_node import BIN, DEADLINE_S, LIB, PYTHON, ReprodNode  # noqa: E402
from slurm_cluster import SlurmCluster, available  # noqa: E402

WHY_NOT = available()

READ = ("import os; open(os.path.join(%r, 'shard-%%s.csv' %% os.environ['SLURM_PROCID'])).read(); "
        "print(os.environ['REPRO_RANK'], os.environ['REPRO_JOB'], os.environ.get('REPRO_SEED'))")


@unittest.skipIf(WHY_NOT is not None, f"no real Slurm here: {WHY_NOT}")
class SlurmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="repro-slurm-"))
        os.chmod(cls.tmp, 0o755)
        cls.data = cls.tmp / "ml" / "shards" / "v1"
        cls.data.mkdir(parents=True)
        for rank in range(2):
            (cls.data / f"shard-{rank}.csv").write_text(f"value\n{rank}\n")
        cls.node = ReprodNode(cls.tmp / "node").__enter__()
        cls.node.ctl("version", "add", "shards", "v1", cls.data)
        cls.slurm = SlurmCluster(
            cls.tmp / "slurm",
            plugin_args=[f"reproctl={BIN / 'reproctl'}", f"shim={LIB / 'libreproshim.so'}",
                         f"socket={cls.node.shim_socket}", f"addr={cls.node.addr}"],
            env={"REPRO_ADDR": cls.node.addr, "REPRO_CTL": str(BIN / "reproctl")}).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.slurm.__exit__(None, None, None)
        cls.node.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def srun(self, *args):
        return self.slurm.run("srun", "-N1", *args)

    def test_options_pin_the_job_and_put_each_task_under_the_shim(self):
        out = self.srun("--repro-job=slurm-a", "--repro-pin=shards@v1", "--repro-seed=5", "-n2",
                        PYTHON, "-c", READ % str(self.data))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr + self.slurm.logs())
        self.assertEqual(sorted(out.stdout.split("\n")[:2]), ["0 slurm-a 5", "1 slurm-a 5"])
        pin = json.loads(self.node.ctl("--output", "json", "pin", "show", "slurm-a").stdout)["pin"]
        self.assertEqual([(v["dataset"], v["version"]) for v in pin["versions"]], [("shards", "v1")])
        self.assertEqual(pin["seed"], "5")
        deadline = time.monotonic() + DEADLINE_S
        while True:
            entries = self.node.journal("slurm-a")
            starts = [e["processStart"] for e in entries if "processStart" in e]
            opens = [e["dataOpen"] for e in entries if "dataOpen" in e]
            if (len(starts) >= 2 and len(opens) >= 2) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(sorted(s["rank"] for s in starts), ["0", "1"])
        for s in starts:
            self.assertRegex(s["launcher"]["slurmJobId"], r"^\d+$")
            self.assertEqual(s["launcher"]["slurmStepId"], "0")
        self.assertEqual(sorted((o["relativePath"], o["rank"]) for o in opens),
                         [("shard-0.csv", "0"), ("shard-1.csv", "1")])

    def test_unpinned_jobs_are_refused_at_submission(self):
        out = self.srun("-n1", "true")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("repro: this cluster runs only pinned jobs", out.stderr)
        out = self.srun("--repro-job=never-pinned", "-n1", "true")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("repro: job never-pinned is not pinned", out.stderr)
        out = self.slurm.run("sbatch", "--repro-job=never-pinned", "--wrap", "true")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("is not pinned", out.stderr)

    def test_a_conflicting_pin_fails_the_submission(self):
        self.node.ctl("pin", "slurm-b", "shards@v1", "--seed", "1")
        out = self.srun("--repro-job=slurm-b", "--repro-pin=shards@v1", "--repro-seed=2", "-n1",
                        "true")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("repro: could not pin job slurm-b", out.stderr)

    def test_bad_option_values_are_refused(self):
        out = self.srun("--repro-job=bad/id", "-n1", "true")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("not a valid job id", out.stderr)
        out = self.srun("--repro-job=x", "--repro-mode=sometimes", "-n1", "true")
        self.assertIn("record or enforce", out.stderr)


if __name__ == "__main__":
    unittest.main()
