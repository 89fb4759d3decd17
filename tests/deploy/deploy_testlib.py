"""What the checks of deploy/ share: where things are, the manifests as kustomize lists them, the
flags of the built binaries, and running a manifest's reprod container here, next to an etcd.

    docs = manifests()                      # every document of every kustomization, with its file
    daemonset = find(docs, "DaemonSet", "reprod")
    etcd = Etcd(tmp)
    node = LocalContainer(daemonset, "reprod", tmp + "/node", {"NODE_NAME": "n1"}, etcd, {})
"""
import base64
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import yaml

SOURCE = pathlib.Path(os.environ.get("REPRO_SOURCE_DIR",
                                     pathlib.Path(__file__).resolve().parents[2]))
BIN = pathlib.Path(os.environ.get("REPRO_BIN_DIR", SOURCE / "build" / "bin"))
LIB = pathlib.Path(os.environ.get("REPRO_LIB_DIR", SOURCE / "build" / "lib"))
K8S = SOURCE / "deploy" / "k8s"
REPRO_IMAGE_NAME = "repro"  # the image name kustomization.yaml's `images:` rewrites


class Document(dict):
    """One Kubernetes object, remembering the file it came from."""

    def __init__(self, body, path):
        super().__init__(body)
        self.path = path

    @property
    def name(self):
        return self["metadata"]["name"]


def load_yaml(path):
    """Every non-empty document of a YAML file."""
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomizations():
    """{directory: kustomization} for every kustomization.yaml under deploy/k8s."""
    return {p.parent: load_yaml(p)[0] for p in sorted(K8S.rglob("kustomization.yaml"))}


def manifests():
    """Every document of every resource file the kustomizations list."""
    docs = []
    for directory, kustomization in kustomizations().items():
        for resource in kustomization.get("resources", []):
            path = directory / resource
            docs.extend(Document(d, path) for d in load_yaml(path))
    return docs


def find(docs, kind, name):
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    if len(matches) != 1:
        raise AssertionError(f"expected one {kind} {name}, found {len(matches)}")
    return matches[0]


def pod_template(doc):
    """The Pod template of a workload (its metadata and spec)."""
    return doc["spec"]["template"]


def containers(doc):
    return pod_template(doc)["spec"]["containers"]


def container(doc, name):
    return next(c for c in containers(doc) if c["name"] == name)


def flags(c):
    """--name=value arguments of a container as {name: value}."""
    out = {}
    for arg in c.get("args", []):
        m = re.fullmatch(r"--([a-z_][a-z0-9_]*)(?:=(.*))?", arg)
        assert m, f"argument {arg!r} is not --name=value"
        out[m.group(1)] = m.group(2) if m.group(2) is not None else ""
    return out


def env(c, name):
    return next((e for e in c.get("env", []) if e["name"] == name), None)


def kubelet_expand(text, values):
    """`text` (a command, argument or env value) as the kubelet runs it: $(VAR) becomes the value
    of VAR when `values` has it and stays as it is otherwise; $$ becomes $."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else values.get(m.group(1), m.group(0)), text)


def expand(value, c):
    """kubelet_expand() with the container's literal env values."""
    return kubelet_expand(value, {e["name"]: e["value"] for e in c.get("env", []) if "value" in e})


def volume(doc, name):
    return next(v for v in pod_template(doc)["spec"]["volumes"] if v["name"] == name)


def mount_of(doc, c, path):
    """(volume, mount) of the container mount that holds `path`, deepest mount path first."""
    best = None
    for m in c.get("volumeMounts", []):
        root = m["mountPath"].rstrip("/")
        if path == root or path.startswith(root + "/"):
            if best is None or len(root) > len(best[1]["mountPath"]):
                best = (volume(doc, m["name"]), m)
    return best


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def reprod_flags():
    """Flag names of the built reprod, from --helpfull."""
    out = run([str(BIN / "reprod"), "--helpfull"])
    text = out.stdout + out.stderr
    assert "--data_dir" in text, text
    return set(re.findall(r"^\s+--([a-z_][a-z0-9_]*) ", text, re.M))


def reproctl_flags():
    out = run([str(BIN / "reproctl"), "--help"])
    return set(re.findall(r"^\s+--([a-z_]+) ", out.stdout + out.stderr, re.M))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HostnameHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1, verifying the certificate against another name (a Service's DNS name),
    as the API server does when it calls a webhook Service."""

    def __init__(self, port, context, server_hostname):
        super().__init__("127.0.0.1", port, context=context, timeout=30)
        self.server_hostname = server_hostname

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_hostname)


def post_review(conn, path, obj, uid):
    """POSTs an AdmissionReview v1 of the creation of `obj` on `conn` (then closed), checks the
    200 and the echoed uid, and returns the answer's response part."""
    group, _, version = obj["apiVersion"].rpartition("/")
    request = {"uid": uid, "kind": {"group": group, "version": version, "kind": obj["kind"]},
               "resource": {"group": group, "version": version,
                            "resource": obj["kind"].lower() + "s"},
               "namespace": obj["metadata"].get("namespace", ""),
               "name": obj["metadata"].get("name", ""), "operation": "CREATE", "object": obj}
    try:
        conn.request("POST", path, json.dumps({"apiVersion": "admission.k8s.io/v1",
                                               "kind": "AdmissionReview", "request": request}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 200, (response.status, body)
    answer = json.loads(body)
    assert answer["response"]["uid"] == uid, answer
    return answer["response"]


def patch_of(response):
    """The JSON Patch of an admission response ([] when it has none)."""
    if "patch" not in response:
        return []
    assert response["patchType"] == "JSONPatch", response
    return json.loads(base64.b64decode(response["patch"]))


class Etcd:
    """A one-member etcd (Debian's etcd-server) on loopback; with `tls` (cert, key, ca files), its
    client port speaks TLS and ctl() talks to it with the CA."""

    def __init__(self, directory, tls=None):
        self.endpoint = f"127.0.0.1:{free_port()}"
        self.tls = tls
        scheme = "https://" if tls else "http://"
        peer = f"http://127.0.0.1:{free_port()}"
        health = f"127.0.0.1:{free_port()}"
        self.log = open(os.path.join(directory, "etcd.log"), "w+")
        self.process = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", os.path.join(directory, "etcd"),
             "--listen-client-urls", scheme + self.endpoint,
             "--advertise-client-urls", scheme + self.endpoint, "--listen-peer-urls", peer,
             "--listen-metrics-urls", "http://" + health,
             "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=" + peer]
            + (["--cert-file", tls[0], "--key-file", tls[1]] if tls else []),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            conn = http.client.HTTPConnection(health, timeout=2)
            try:
                conn.request("GET", "/health")
                if json.loads(conn.getresponse().read()).get("health") == "true":
                    return
            except (OSError, ValueError):
                pass
            finally:
                conn.close()
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("etcd did not come up")
            time.sleep(0.1)

    def ctl(self, *args):
        """Runs etcdctl against this member."""
        scheme = "https://" if self.tls else "http://"
        tls = ["--cacert", self.tls[2]] if self.tls else []
        return run(["etcdctl", "--endpoints", scheme + self.endpoint, *tls, *args])

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def prepare_volumes(doc, root, secrets):
    """A directory root/<volume> for each volume of `doc`'s Pods; Secrets filled from `secrets`
    ({secretName: {key: file}})."""
    for v in pod_template(doc)["spec"]["volumes"]:
        local = os.path.join(root, v["name"])
        os.makedirs(local, exist_ok=True)
        for key, path in secrets.get(v.get("secret", {}).get("secretName"), {}).items():
            shutil.copy(path, os.path.join(local, key))


def local_paths(c, root):
    """A function mapping paths under `c`'s mounts (in a flag value or a shell command) to the
    directories prepare_volumes() made, in one pass so that a local path is never mapped again."""
    local = {m["mountPath"].rstrip("/"): os.path.join(root, m["name"])
             for m in c.get("volumeMounts", [])}
    pattern = re.compile(r"(^|[\s:=,])(" + "|".join(
        re.escape(m) for m in sorted(local, key=len, reverse=True)) + r")(?=/|$|,|\s)")
    return lambda value: pattern.sub(lambda m: m.group(1) + local[m.group(2)], value)


def run_init_containers(doc, root, values):
    """Runs the shell commands of `doc`'s init containers here, on prepare_volumes() directories,
    with `values` for their environment."""
    for init in pod_template(doc)["spec"].get("initContainers", []):
        command = [kubelet_expand(a, values) for a in init["command"]]
        assert command[:2] == ["/bin/sh", "-c"], command
        out = run(["/bin/sh", "-c", local_paths(init, root)(command[2])],
                  env={"PATH": os.environ["PATH"],
                       **{e["name"]: values[e["name"]] for e in init.get("env", [])}})
        assert out.returncode == 0, f"init container {init['name']}: {out.stderr}"


def flag_file(path):
    """The flags of an absl --flagfile as {name: value}."""
    with open(path) as f:
        return flags({"args": f.read().split()})


class LocalContainer:
    """A repro container of a manifest, run here as a process with the manifest's own arguments,
    after the Pod's init containers: each volume becomes a directory under `root` (see
    prepare_volumes), $(VAR) references take `values`, 0.0.0.0 listeners move to free loopback
    ports, and --etcd_endpoints points at `etcd`. Flags in `keep` are passed unchanged."""

    def __init__(self, doc, name, root, values, etcd, secrets, keep=()):
        self.ports = {}  # container port -> local port
        c = container(doc, name)
        prepare_volumes(doc, root, secrets)
        run_init_containers(doc, root, values)
        self.local_path = local_paths(c, root)
        self.argv = [str(BIN / "reprod")]
        self.flags = {}
        for flag, value in flags(c).items():
            value = kubelet_expand(value, values)
            if flag == "etcd_endpoints":
                value = etcd.endpoint
            elif flag not in keep:
                value = re.sub(r"0\.0\.0\.0:(\d+)", self._local_port, self.local_path(value))
            self.flags[flag] = value
            self.argv.append(f"--{flag}={value}")
        self.log = open(os.path.join(root, "reprod.log"), "w+")
        self.process = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)

    def _local_port(self, m):
        port = int(m.group(1))
        self.ports.setdefault(port, free_port())
        return f"127.0.0.1:{self.ports[port]}"

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        code = self.process.wait(timeout=30)
        self.log.close()
        return code
