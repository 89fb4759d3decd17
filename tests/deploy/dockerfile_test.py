#!/usr/bin/python3
"""The Dockerfile can only be built where a Docker engine runs, so this checks what can be checked
without one: the runtime stage installs a Debian package for every shared library the built
binaries need (and only packages Debian 12 has), the build stage installs nothing that
scripts/install-deps.sh does not, the targets and paths it builds and copies are the build's, and
its user and entrypoint are the ones deploy/k8s relies on."""
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_testlib import BIN, LIB, SOURCE, find, manifests, pod_template, run  # noqa: E402

# In every debian:bookworm-slim image (Essential, or needed by apt itself).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def stages():
    """[(FROM line, [instructions joined across line continuations])] of the Dockerfile."""
    text = (SOURCE / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    out = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            out.append((line, []))
        else:
            out[-1][1].append(line)
    return out


def apt_packages(instructions):
    packages = []
    for line in instructions:
        m = re.search(r"apt-get install ((?:-\S+\s+)*)(.*?)(?:&&|$)", line)
        if m:
            packages += m.group(2).split()
    return packages


def needed_packages(binaries):
    """{(binary name, soname): Debian package or None} for the shared libraries each binary needs
    directly (DT_NEEDED); one dpkg call for all of them."""
    needed = {}
    for binary in binaries:
        dynamic = run(["readelf", "-d", str(binary)]).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", run(["ldd", str(binary)]).stdout, re.M))
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic):
            if soname in paths:  # not the dynamic loader itself
                needed[(binary.name, soname)] = paths[soname]
    # dpkg knows a file by the path its package ships, before or after the /usr merge.
    aliases = {}
    for path in set(needed.values()):
        for alias in (path, os.path.realpath(path), re.sub(r"^/usr", "", path),
                      "/usr" + path if not path.startswith("/usr/") else path):
            aliases.setdefault(alias, path)
    owners = {}
    for line in run(["dpkg", "-S", *aliases]).stdout.splitlines():
        package, _, owned = line.partition(": ")
        if owned in aliases:
            owners.setdefault(aliases[owned], package.split(":")[0])
    return {key: owners.get(path) for key, path in needed.items()}


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        (cls.build_from, cls.build), (cls.runtime_from, cls.runtime) = stages()

    def test_stages_are_debian_bookworm(self):
        self.assertEqual(self.build_from, "FROM debian:bookworm AS build")
        self.assertEqual(self.runtime_from, "FROM debian:bookworm-slim")

    def test_runtime_installs_the_package_of_every_library_the_binaries_need(self):
        if shutil.which("dpkg") is None:
            self.skipTest("not a Debian system")
        runtime = set(apt_packages(self.runtime))
        binaries = [BIN / "reprod", BIN / "reproctl", LIB / "libreproshim.so"]
        for binary in binaries:
            self.assertTrue(binary.is_file(), f"{binary} is not built")
        needed = needed_packages(binaries)
        if any(re.match(r"lib(a|ub|t)san\.so", soname) for _, soname in needed):
            self.skipTest("sanitizer build: the image ships the plain build")
        self.assertGreater(len(needed), 10)
        for (binary, soname), package in needed.items():
            self.assertIsNotNone(package, f"{binary}: no Debian package has {soname}")
            self.assertIn(package, runtime | BASE_PACKAGES,
                          f"{binary} needs {soname} from {package}, which the runtime stage does "
                          "not install")

    def test_the_shim_needs_nothing_but_libc(self):
        needed = run(["readelf", "-d", str(LIB / "libreproshim.so")]).stdout
        for soname in re.findall(r"Shared library: \[(.+?)\]", needed):
            self.assertRegex(soname, r"^(libc|libdl|libpthread|ld-linux.*)\.so")

    def test_every_package_exists_in_debian(self):
        if shutil.which("apt-cache") is None:
            self.skipTest("not a Debian system")
        packages = apt_packages(self.build) + apt_packages(self.runtime)
        policy = run(["apt-cache", "policy", *packages]).stdout
        candidates = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (.*)$", policy,
                                     re.M))
        for package in packages:
            self.assertNotIn(candidates.get(package, "(none)"), ("(none)",),
                             f"{package} is not in Debian")

    def test_build_stage_installs_only_what_install_deps_installs(self):
        install_deps = (SOURCE / "scripts" / "install-deps.sh").read_text()
        listed = set(re.search(r"packages=\((.*?)\)", install_deps, re.S).group(1).split())
        for package in apt_packages(self.build):
            self.assertIn(package, listed)

    def test_it_builds_targets_that_exist_and_copies_their_outputs(self):
        cmake = "\n".join((SOURCE / d / "CMakeLists.txt").read_text()
                           for d in ("daemon", "client/cli", "client/shim"))
        build = " ".join(self.build)
        targets = re.search(r"--target ([\w ]+?)(?: &&|$)", build).group(1).split()
        self.assertEqual(set(targets), {"reprod", "reproctl", "reproshim"})
        for target in targets:
            self.assertRegex(cmake, rf"add_(executable|library)\({target}\b")
        copied = dict(re.findall(r"install -D -m \d+ -s (\S+) (\S+)", build))
        outputs = {"/build/bin/reprod": BIN / "reprod", "/build/bin/reproctl": BIN / "reproctl",
                   "/build/lib/libreproshim.so": LIB / "libreproshim.so"}
        self.assertEqual(set(copied), set(outputs))
        for src, built in outputs.items():
            self.assertTrue(built.is_file(), f"the build has no {built}")
        self.assertEqual(copied["/build/bin/reprod"], "/out/usr/bin/reprod")
        self.assertEqual(copied["/build/bin/reproctl"], "/out/usr/bin/reproctl")
        self.assertIn("COPY --from=build /out/ /", self.runtime)
        self.assertIn('ENTRYPOINT ["/usr/bin/reprod"]', self.runtime)

    def test_runs_as_the_non_root_user_the_webhook_expects(self):
        (user,) = [line.split()[1] for line in self.runtime if line.startswith("USER ")]
        uid, gid = user.split(":")
        self.assertNotEqual(uid, "0")
        self.assertRegex(" ".join(self.runtime), rf"useradd .*--uid {uid}\b")
        webhook = pod_template(find(manifests(), "Deployment", "reprod-webhook"))["spec"]
        self.assertEqual(str(webhook["securityContext"]["runAsUser"]), uid)
        self.assertEqual(str(webhook["securityContext"]["runAsGroup"]), gid)
        self.assertTrue(webhook["securityContext"]["runAsNonRoot"])

    def test_dockerignore_keeps_build_trees_out(self):
        ignored = (SOURCE / ".dockerignore").read_text().split()
        for pattern in ("build", "build-*", ".git"):
            self.assertIn(pattern, ignored)


if __name__ == "__main__":
    unittest.main(verbosity=2)
