"""A real single-node Slurm (munged, slurmctld, slurmd from Debian's slurm-wlm and munge) in a
temp dir, with repro's SPANK plugin in its plugstack and deploy/slurm/job_submit.lua as its
submit check. Daemons run as root (SlurmdUser=root), with linuxproc process tracking and no task
plugin, so no cgroups are needed.

    with SlurmCluster(tmp, plugin_args=["reproctl=...", "shim=...", "socket=..."],
                      env={"REPRO_ADDR": addr}) as slurm:
        out = slurm.run("srun", "--repro-job=j", "-n2", "true")   # CompletedProcess
"""
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import time

from reprod_node import DEADLINE_S, LIB, SOURCE

DAEMONS = ("munged", "slurmctld", "slurmd", "srun", "mungekey")


def available():
    """Why a real Slurm cannot run here, or None when it can."""
    missing = [d for d in DAEMONS if shutil.which(d) is None and
               not os.path.exists(f"/usr/sbin/{d}")]
    if missing:
        return "missing " + ", ".join(missing) + " (Debian: slurm-wlm, slurmctld, slurmd, munge)"
    if not (LIB / "spank_repro.so").exists():
        return f"no {LIB / 'spank_repro.so'} (built only with libslurm-dev)"
    if os.geteuid() != 0:
        return "slurmd must run as root"
    return None


class SlurmCluster:
    def __init__(self, directory, plugin_args, env):
        self.dir = pathlib.Path(directory)
        self.plugin_args = plugin_args
        self.env = dict(os.environ, SLURM_CONF=str(self.dir / "slurm.conf"), **env)
        self.pids = []

    def __enter__(self):
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "munge", 0o700)
        key = d / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True)
        os.chmod(key, 0o600)
        subprocess.run(["munged", "--force", f"--key-file={key}",
                        f"--socket={d / 'munge' / 'munge.sock'}",
                        f"--pid-file={d / 'munge' / 'munged.pid'}",
                        f"--log-file={d / 'munge' / 'munged.log'}",
                        f"--seed-file={d / 'munge' / 'seed'}"], check=True)
        self.pid_files = [d / "munge" / "munged.pid"]
        host = socket.gethostname().split(".")[0]
        port = random.randrange(20000, 40000)
        (d / "slurm.conf").write_text(f"""ClusterName=repro
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d / 'munge' / 'munge.sock'}
CredType=cred/munge
SlurmctldPort={port}
SlurmdPort={port + 1}
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'log' / 'slurmctld.log'}
SlurmdLogFile={d / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/linear
MpiDefault=none
ReturnToService=2
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobSubmitPlugins=lua
PlugStackConfig={d / 'plugstack.conf'}
NodeName={host} CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        (d / "plugstack.conf").write_text(
            f"required {LIB / 'spank_repro.so'} {' '.join(self.plugin_args)}\n")
        shutil.copy(SOURCE / "deploy" / "slurm" / "job_submit.lua", d / "job_submit.lua")
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(d / "slurm.conf")], check=True, env=self.env)
            self.pid_files.append(d / f"{daemon}.pid")
        deadline = time.monotonic() + DEADLINE_S
        while "idle" not in self.run("sinfo", "-h", "-o", "%T").stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("slurm did not come up:\n" + self.logs())
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for pid_file in reversed(self.pid_files):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass

    def run(self, *argv, timeout=120):
        return subprocess.run(argv, capture_output=True, text=True, env=self.env,
                              timeout=timeout)

    def logs(self):
        return "".join(p.read_text() for p in (self.dir / "log").glob("*.log"))
