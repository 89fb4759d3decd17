#!/usr/bin/python3
"""deploy/systemd/reprod.service: systemd-analyze verify accepts it (with ExecStart pointing at the
built reprod), its flags are flags of the built reprod, and its hardening holds what README.md
promises: one capability (CAP_DAC_READ_SEARCH, to read every user's data files), no new
privileges, a read-only system with only reprod's state and socket directories writable."""
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_testlib import BIN, SOURCE, reprod_flags, run  # noqa: E402

UNIT = SOURCE / "deploy" / "systemd" / "reprod.service"


def directives(text):
    """{key: [values]} of the [Service] section (comments and other sections left out)."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="repro-systemd-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.text = UNIT.read_text()

    def verify(self, text):
        """systemd-analyze verify of `text` as reprod.service, reprod at the built path."""
        path = os.path.join(self.tmp, "reprod.service")
        with open(path, "w") as f:
            f.write(text.replace("/usr/local/bin/reprod", str(BIN / "reprod")))
        return run(["systemd-analyze", "verify", path])

    def test_systemd_analyze_verify_accepts_it(self):
        out = self.verify(self.text)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("reprod.service", out.stderr, out.stderr)

    def test_the_check_catches_a_broken_unit(self):
        out = self.verify(self.text.replace("ProtectSystem=strict", "ProtectSystem=strickt"))
        self.assertIn("strickt", out.stderr)
        out = self.verify(self.text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
        self.assertIn("NoNewPrivilege", out.stderr)
        out = self.verify(self.text.replace(str("ExecStart=/usr/local/bin/reprod"),
                                            "ExecStart=/nonexistent/reprod"))
        self.assertNotEqual(out.returncode, 0)

    def test_its_flags_are_reprod_flags(self):
        exec_start = directives(self.text)["ExecStart"][0]
        used = set(re.findall(r"--([a-z_]+)=", exec_start))
        self.assertTrue({"data_dir", "grpc_listen", "shim_socket"} <= used, used)
        self.assertEqual(used - reprod_flags(), set())

    def test_hardening(self):
        d = directives(self.text)
        self.assertEqual(d["CapabilityBoundingSet"], ["CAP_DAC_READ_SEARCH"])
        self.assertEqual(d["AmbientCapabilities"], ["CAP_DAC_READ_SEARCH"])
        self.assertEqual(d["NoNewPrivileges"], ["yes"])
        self.assertEqual(d["ProtectSystem"], ["strict"])
        self.assertEqual(d["ProtectHome"], ["read-only"])  # data may live in home directories
        self.assertEqual(d["User"], ["reprod"])
        writable = set(" ".join(d["ReadWritePaths"]).split())
        self.assertEqual(writable, {"/var/lib/reprod", "/run/reprod"})
        exec_start = d["ExecStart"][0]
        self.assertIn("--data_dir=/var/lib/reprod", exec_start)
        self.assertIn("unix:/run/reprod/reprod.sock", exec_start)
        self.assertIn("--shim_socket=/run/reprod/shim.sock", exec_start)


if __name__ == "__main__":
    unittest.main()
