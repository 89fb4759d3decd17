"""A real reprod for Python integration tests: started on a temp data dir with its own sockets,
driven with the real reproctl, stopped at the end.

    with ReprodNode(tmp) as node:
        node.ctl("version", "add", "users", "v1", data)      # CompletedProcess; raises on exit != 0
        node.ctl("export", "j", check=False).returncode
        env = node.shim_env("train-1", rank=0)                # LD_PRELOAD and REPRO_* for a process
"""
import os
import pathlib
import signal
import subprocess
import time

SOURCE = pathlib.Path(os.environ.get("REPRO_SOURCE_DIR",
                                     pathlib.Path(__file__).resolve().parents[3]))
BIN = pathlib.Path(os.environ.get("REPRO_BIN_DIR", SOURCE / "build" / "bin"))
LIB = pathlib.Path(os.environ.get("REPRO_LIB_DIR", SOURCE / "build" / "lib"))
PYTHON = "/usr/bin/python3"  # Debian's, with numpy and torch
DEADLINE_S = 60


class ReprodNode:
    def __init__(self, directory, node_name="n1"):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.grpc = self.dir / "grpc.sock"
        self.shim_socket = self.dir / "shim.sock"
        self.node_name = node_name
        self.process = None

    def __enter__(self):
        self.log = open(self.dir / "reprod.log", "w")
        self.process = subprocess.Popen(
            [str(BIN / "reprod"), f"--data_dir={self.dir / 'data'}",
             f"--grpc_listen=unix:{self.grpc}", f"--shim_socket={self.shim_socket}",
             f"--node_name={self.node_name}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("reprod exited: " + (self.dir / "reprod.log").read_text())
            if self.grpc.exists() and self.shim_socket.exists() and \
                    self.ctl("node", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("reprod did not come up: " + (self.dir / "reprod.log").read_text())

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    @property
    def addr(self):
        return f"unix:{self.grpc}"

    def ctl(self, *args, check=True, cwd=None):
        out = subprocess.run([str(BIN / "reproctl"), "--addr", self.addr, *map(str, args)],
                             capture_output=True, text=True, timeout=120, cwd=cwd)
        if check and out.returncode != 0:
            raise AssertionError(f"reproctl {' '.join(map(str, args))} exited {out.returncode}:\n"
                                 f"{out.stdout}{out.stderr}")
        return out

    def shim_env(self, job, **extra):
        """The environment `reproctl run` gives a job's processes, plus `extra`."""
        env = dict(os.environ)
        env.update({"LD_PRELOAD": str(LIB / "libreproshim.so"), "REPRO_JOB": job,
                    "REPRO_SHIM_SOCKET": str(self.shim_socket), "REPRO_ADDR": self.addr,
                    "REPRO_CTL": str(BIN / "reproctl"),
                    "PYTHONPATH": str(SOURCE / "client" / "python")})
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def journal(self, job):
        import json
        out = self.ctl("--output", "json", "journal", job)
        return [json.loads(line)["entry"] for line in out.stdout.splitlines() if line]
