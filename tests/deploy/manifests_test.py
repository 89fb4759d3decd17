#!/usr/bin/python3
"""deploy/k8s holds together: every manifest parses and is installed by a kustomization, every
reprod flag it uses exists, ports, socket paths, secrets, labels and names agree across files,
make-certs.sh makes what the manifests mount, and the DaemonSet's and the webhook's own command
lines, run here against etcd, admit what they should and inject what the DaemonSet serves."""
import base64
import os
import posixpath
import re
import shutil
import ssl
import sys
import tempfile
import time
import unittest

import jsonpatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_testlib import (BIN, K8S, REPRO_IMAGE_NAME, SOURCE, Etcd,  # noqa: E402
                            HostnameHTTPSConnection, LocalContainer, container, containers, env,
                            expand, find, flag_file, flags, kustomizations, load_yaml,
                            local_paths, manifests, mount_of, patch_of, pod_template, post_review,
                            prepare_volumes, reproctl_flags, reprod_flags, run,
                            run_init_containers, volume)

DOCS = manifests()
ROOT = kustomizations()[K8S]
NAMESPACE = ROOT["namespace"]
DAEMONSET = find(DOCS, "DaemonSet", "reprod")
WEBHOOK = find(DOCS, "Deployment", "reprod-webhook")
NODE = container(DAEMONSET, "reprod")
SERVER = container(WEBHOOK, "webhook")
EXAMPLE_JOB = next(d for d in DOCS if d["kind"] == "Job")
CSI_DRIVER = find(DOCS, "CSIDriver", "shim.repro.dev")
REGISTRAR = container(DAEMONSET, "node-driver-registrar")
CLUSTER_SCOPED = {"Namespace", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
                  "CSIDriver"}


def repro_containers(init=False):
    """(workload, container) for every container that runs the repro image (init containers too
    when asked)."""
    for doc in DOCS:
        if "template" in doc.get("spec", {}):
            spec = pod_template(doc)["spec"]
            for c in spec["containers"] + (spec.get("initContainers", []) if init else []):
                if c["image"].split(":")[0] == REPRO_IMAGE_NAME:
                    yield doc, c


def listen_port(address):
    return int(address.rsplit(":", 1)[1])


def container_port(c, name_or_number):
    for p in c.get("ports", []):
        if name_or_number in (p.get("name"), p["containerPort"]):
            return p["containerPort"]
    raise AssertionError(f"container {c['name']} has no port {name_or_number}")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def advertised(doc, c, pod_ip="10.1.2.3"):
    """The flags that `doc`'s init containers write for reprod to read with --flagfile, for a Pod
    with IP `pod_ip`."""
    with tempfile.TemporaryDirectory() as root:
        prepare_volumes(doc, root, {})
        run_init_containers(doc, root, {"POD_IP": pod_ip, "POD_NAMESPACE": NAMESPACE})
        return flag_file(local_paths(c, root)(flags(c)["flagfile"]))


def local_etcd_certificate(certs):
    """(cert, key, ca) of a serving certificate for 127.0.0.1 signed by make-certs.sh's CA."""
    key, cert = os.path.join(certs, "local-etcd.key"), os.path.join(certs, "local-etcd.crt")
    ext = os.path.join(certs, "local-etcd.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    for argv in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-out", key],
                 ["openssl", "req", "-new", "-key", key, "-subj", "/CN=127.0.0.1", "-out",
                  key + ".csr"],
                 ["openssl", "x509", "-req", "-in", key + ".csr", "-CA", f"{certs}/ca.crt",
                  "-CAkey", f"{certs}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", ext,
                  "-out", cert]):
        out = run(argv)
        assert out.returncode == 0, out.stderr
    return cert, key, f"{certs}/ca.crt"


def fake_kubectl(directory):
    """A kubectl that records its arguments in $FAKE_KUBECTL_LOG and prints a stand-in Secret."""
    path = os.path.join(directory, "kubectl")
    with open(path, "w") as f:
        f.write('#!/bin/sh\necho "$*" >> "$FAKE_KUBECTL_LOG"\n'
                'case "$*" in *"--dry-run=client -o yaml"*) echo "kind: Secret";; '
                '"apply -f -") cat > /dev/null;; esac\n')
    os.chmod(path, 0o755)
    return path


def make_certs(directory, *args):
    """Runs make-certs.sh with its certificates in directory/certs; returns kubectl's calls."""
    log = os.path.join(directory, "kubectl.log")
    out = run([str(K8S / "make-certs.sh"), "--dir", os.path.join(directory, "certs"), *args],
              env=dict(os.environ, KUBECTL=fake_kubectl(directory), FAKE_KUBECTL_LOG=log))
    assert out.returncode == 0, out.stderr
    with open(log) as f:
        return f.read()


class ManifestsTest(unittest.TestCase):
    def test_every_yaml_file_parses_and_is_installed_by_a_kustomization(self):
        listed = set()
        for directory, kustomization in kustomizations().items():
            self.assertEqual(kustomization["kind"], "Kustomization")
            for resource in kustomization["resources"]:
                path = directory / resource
                self.assertTrue(path.is_file(), f"{path} is listed but missing")
                listed.add(path)
        for path in K8S.rglob("*.yaml"):
            docs = load_yaml(path)
            self.assertTrue(docs, f"{path} is empty")
            if path.name == "kustomization.yaml":
                continue
            self.assertIn(path, listed, f"{path} is in no kustomization.yaml")
            for doc in docs:
                for key in ("apiVersion", "kind", "metadata"):
                    self.assertIn(key, doc, f"{path}: a document without {key}")

    def test_kubectl_kustomize_builds(self):
        if shutil.which("kubectl") is None:
            self.skipTest("kubectl is not installed")
        for directory in kustomizations():
            out = run(["kubectl", "kustomize", str(directory)])
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_namespaced_objects_live_in_the_kustomization_namespace(self):
        for doc in DOCS:
            if doc.path.parent == K8S and doc["kind"] not in CLUSTER_SCOPED:
                self.assertEqual(doc["metadata"].get("namespace"), NAMESPACE, doc.name)
        find(DOCS, "Namespace", NAMESPACE)

    def test_every_reprod_flag_exists(self):
        known = reprod_flags()
        seen = 0
        for doc, c in repro_containers():
            for name in flags(c):
                self.assertIn(name, known, f"{doc.path.name}: --{name} is not a reprod flag")
                seen += 1
        self.assertGreater(seen, 10)

    def test_probes_use_existing_reproctl_flags_and_named_ports(self):
        ctl = reproctl_flags()
        for doc, c in repro_containers():
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                self.assertIn(probe, c, f"{doc.name} has no {probe}")
                spec = c[probe]
                if "exec" in spec:
                    command = spec["exec"]["command"]
                    self.assertEqual(command[0], "reproctl")
                    for arg in command[1:]:
                        if arg.startswith("--"):
                            self.assertIn(arg[2:].split("=")[0], ctl, arg)
                    addr = next(a for a in command if a.startswith("--addr="))
                    unix_socket = flags(c)["grpc_listen"].split(",")[0]
                    self.assertEqual(addr, "--addr=" + unix_socket)
                else:
                    container_port(c, spec["httpGet"]["port"])
                    self.assertEqual(spec["httpGet"]["path"], "/healthz")
            self.assertIn("requests", c["resources"])

    def test_image_is_the_same_everywhere(self):
        images = {c["image"] for _, c in repro_containers(init=True)}
        self.assertEqual(len(images), 1, images)
        image = images.pop()
        (entry,) = [i for i in ROOT["images"] if i["name"] == REPRO_IMAGE_NAME]
        self.assertEqual(image, f"{entry['newName']}:{entry['newTag']}")

    def test_listeners_match_declared_ports(self):
        for doc, c in repro_containers():
            f = flags(c)
            tcp = [a for a in f["grpc_listen"].split(",") if not a.startswith("unix:")]
            self.assertEqual(len(tcp), 1)
            grpc = container_port(c, "grpc")
            self.assertEqual(listen_port(tcp[0]), grpc)
            self.assertEqual(listen_port(advertised(doc, c)["advertise_addr"]), grpc)
            self.assertEqual(listen_port(f["metrics_listen"]), container_port(c, "metrics"))
            if "webhook_listen" in f:
                self.assertEqual(listen_port(f["webhook_listen"]), container_port(c, "https"))

    def test_peers_advertise_the_dns_name_of_their_ip_under_the_headless_service(self):
        peers = find(DOCS, "Service", "reprod-peers")
        self.assertEqual(peers["spec"]["clusterIP"], "None")
        self.assertTrue(peers["spec"]["publishNotReadyAddresses"])
        for doc, c in repro_containers():
            labels = pod_template(doc)["metadata"]["labels"]
            self.assertTrue(selects(peers["spec"]["selector"], labels))
            # Written by an init container into a volume reprod reads it from.
            self.assertEqual(advertised(doc, c, "10.1.2.3"),
                             {"advertise_addr": f"10-1-2-3.{peers.name}.{NAMESPACE}.svc:"
                                                f"{peers['spec']['ports'][0]['port']}"})
            self.assertEqual(advertised(doc, c, "fd00::1:2")["advertise_addr"],
                             f"fd00--1-2.{peers.name}.{NAMESPACE}.svc:7070")
            self.assertEqual(flags(c)["etcd_endpoints"], flags(NODE)["etcd_endpoints"])

    def test_tls_files_come_from_mounted_secrets(self):
        for doc, c in repro_containers():
            for flag in ("tls_cert", "tls_key", "tls_client_ca", "webhook_tls_cert",
                         "webhook_tls_key", "etcd_tls_ca"):
                path = flags(c).get(flag)
                if path is None:
                    continue
                vol, mount = mount_of(doc, c, path)
                self.assertIn("secret", vol, f"--{flag}={path} is not in a Secret")
                self.assertIn(posixpath.basename(path), ("tls.crt", "tls.key", "ca.crt"))

    def test_node_name_comes_from_the_downward_api(self):
        self.assertEqual(flags(NODE)["node_name"], "$(NODE_NAME)")
        self.assertEqual(env(NODE, "NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
                         "spec.nodeName")

    def test_node_sockets_and_data_live_on_the_host(self):
        f = flags(NODE)
        for path, host in ((f["data_dir"], "/var/lib/reprod"),
                           (posixpath.dirname(f["shim_socket"]), "/run/reprod"),
                           (f["grpc_listen"].split(",")[0][len("unix:"):], None)):
            vol, mount = mount_of(DAEMONSET, NODE, path)
            self.assertIn("hostPath", vol, path)
            self.assertEqual(mount["mountPath"], vol["hostPath"]["path"], "same inside and out")
            if host:
                self.assertEqual(vol["hostPath"]["path"], host)

    def test_the_csi_plugin_is_registered_with_kubelet_and_mounts_into_its_pod_directory(self):
        # The CSIDriver the webhook injects and the node serves: Pod info, inline volumes only.
        name = CSI_DRIVER.name
        self.assertEqual(flags(SERVER)["csi_driver_name"], name)
        self.assertEqual(flags(NODE)["csi_driver_name"], name)
        spec = CSI_DRIVER["spec"]
        self.assertIs(spec["podInfoOnMount"], True)
        self.assertEqual(spec["volumeLifecycleModes"], ["Ephemeral"])
        self.assertIs(spec["attachRequired"], False)
        # The CSI socket: in kubelet's plugin directory on the host, where the registrar tells
        # kubelet it is, and the registrar reaches it through the same volume.
        endpoint = flags(NODE)["csi_endpoint"]
        vol, mount = mount_of(DAEMONSET, NODE, endpoint)
        self.assertEqual(mount["mountPath"], vol["hostPath"]["path"], "same inside and out")
        self.assertEqual(vol["hostPath"]["path"], f"/var/lib/kubelet/plugins/{name}")
        registrar = dict(a[2:].split("=", 1) for a in REGISTRAR["args"])
        self.assertEqual(registrar["kubelet-registration-path"], endpoint)
        csi_vol, csi_mount = mount_of(DAEMONSET, REGISTRAR, registrar["csi-address"])
        self.assertEqual(csi_vol, vol)
        self.assertEqual(posixpath.basename(registrar["csi-address"]),
                         posixpath.basename(endpoint))
        reg_vol, reg_mount = mount_of(DAEMONSET, REGISTRAR, "/registration/x")
        self.assertEqual(reg_vol["hostPath"]["path"], "/var/lib/kubelet/plugins_registry")
        # Volumes are bind-mounts into kubelet's Pod directory, propagated to the host: a
        # privileged container with that directory mounted Bidirectional, at its host path.
        pods_vol, pods_mount = mount_of(DAEMONSET, NODE, flags(NODE)["csi_kubelet_dir"] + "/x")
        self.assertEqual(pods_mount["mountPath"], flags(NODE)["csi_kubelet_dir"])
        self.assertEqual(pods_vol["hostPath"]["path"], pods_mount["mountPath"])
        self.assertEqual(pods_mount["mountPropagation"], "Bidirectional")
        self.assertIs(NODE["securityContext"]["privileged"], True)
        # The Pods' volume directories live in the data dir on the host, which survives restarts.
        data_vol, _ = mount_of(DAEMONSET, NODE, flags(NODE)["data_dir"] + "/csi")
        self.assertIn("hostPath", data_vol)

    def test_dataset_roots_are_mounted_at_one_path_everywhere(self):
        paths = set()
        for doc in (DAEMONSET, WEBHOOK, EXAMPLE_JOB):
            vol = volume(doc, "ml-data")
            (c,) = [c for c in containers(doc)
                    if any(m["name"] == "ml-data" for m in c.get("volumeMounts", []))]
            (mount,) = [m for m in c["volumeMounts"] if m["name"] == "ml-data"]
            self.assertTrue(mount.get("readOnly"), doc.name)
            paths.add((vol["hostPath"]["path"], mount["mountPath"]))
        self.assertEqual(paths, {("/ml_data", "/ml_data")})

    def test_webhook_configurations_call_the_webhook_service(self):
        service = find(DOCS, "Service", "reprod-webhook")
        self.assertTrue(selects(service["spec"]["selector"],
                                pod_template(WEBHOOK)["metadata"]["labels"]))
        (port,) = service["spec"]["ports"]
        self.assertEqual(container_port(SERVER, port["targetPort"]),
                         listen_port(flags(SERVER)["webhook_listen"]))
        paths = {}
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            (config,) = [d for d in DOCS if d["kind"] == kind]
            for hook in config["webhooks"]:
                client = hook["clientConfig"]["service"]
                self.assertEqual((client["name"], client["namespace"], client["port"]),
                                 (service.name, NAMESPACE, port["port"]))
                self.assertEqual(hook["failurePolicy"], "Fail")
                self.assertEqual(hook["admissionReviewVersions"], ["v1"])
                self.assertEqual(hook["sideEffects"], "None")
                self.assertEqual(hook["namespaceSelector"],
                                 {"matchLabels": {"repro.dev/enforce": "true"}})
                for rule in hook["rules"]:
                    self.assertEqual(rule["operations"], ["CREATE"])
                paths[kind] = client["path"]
        self.assertEqual(paths, {"MutatingWebhookConfiguration": "/mutate",
                                 "ValidatingWebhookConfiguration": "/validate"})
        mutating = next(d for d in DOCS if d["kind"] == "MutatingWebhookConfiguration")
        self.assertEqual(mutating["webhooks"][0]["objectSelector"]["matchExpressions"],
                         [{"key": "repro.dev/job", "operator": "Exists"}])

    def test_the_example_runs_in_an_enforcing_namespace_and_is_labelled(self):
        namespace = find(DOCS, "Namespace", EXAMPLE_JOB["metadata"]["namespace"])
        self.assertEqual(namespace["metadata"]["labels"]["repro.dev/enforce"], "true")
        own = find(DOCS, "Namespace", NAMESPACE)["metadata"]["labels"]
        self.assertNotIn("repro.dev/enforce", own, "the webhook would wait on itself")
        job = EXAMPLE_JOB["metadata"]["labels"]["repro.dev/job"]
        self.assertEqual(pod_template(EXAMPLE_JOB)["metadata"]["labels"]["repro.dev/job"], job)


class MakeCertsTest(unittest.TestCase):
    """make-certs.sh against a kubectl that only records what it is asked."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="repro-make-certs-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def make_certs(self, *args):
        return make_certs(self.dir, *args)

    def cert(self, name):
        return os.path.join(self.dir, "certs", name)

    def test_makes_what_the_manifests_mount(self):
        calls = self.make_certs()
        secrets = {v["secret"]["secretName"] for d in (DAEMONSET, WEBHOOK)
                   for v in pod_template(d)["spec"]["volumes"] if "secret" in v}
        made = set(re.findall(r"create secret \w+ (\S+)", calls))
        self.assertEqual(made, secrets)
        self.assertEqual(set(re.findall(r"^-n (\S+) create", calls, re.M)), {NAMESPACE})
        configurations = {f"{d['kind'].lower()}/{d.name}" for d in DOCS
                          if d["kind"].endswith("WebhookConfiguration")}
        self.assertEqual(set(re.findall(r"^patch (\S+)", calls, re.M)), configurations)
        self.assertIn(f"rollout restart deployment/{WEBHOOK.name} daemonset/{DAEMONSET.name}",
                      calls)

        # The caBundle is the CA, which signed both certificates, for the names clients dial.
        bundle = re.search(r'"value":"([^"]+)"', calls).group(1)
        with open(self.cert("ca.crt")) as f:
            self.assertEqual(base64.b64decode(bundle).decode(), f.read())
        out = run(["openssl", "verify", "-CAfile", self.cert("ca.crt"), self.cert("webhook.crt"),
                   self.cert("peer.crt")])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        san = lambda name: run(["openssl", "x509", "-in", self.cert(name), "-noout", "-ext",
                                "subjectAltName,extendedKeyUsage"]).stdout
        self.assertIn(f"DNS:reprod-webhook.{NAMESPACE}.svc,", san("webhook.crt"))
        peer_host = advertised(DAEMONSET, NODE)["advertise_addr"].split(":")[0]
        self.assertIn(f"DNS:*.{peer_host.split('.', 1)[1]},", san("peer.crt"))
        self.assertIn("TLS Web Client Authentication", san("peer.crt"))

    def test_a_second_run_keeps_the_ca(self):
        self.make_certs("--no-restart")
        with open(self.cert("ca.crt")) as f:
            first = f.read()
        calls = self.make_certs("--no-restart", "--namespace", "other")
        with open(self.cert("ca.crt")) as f:
            self.assertEqual(f.read(), first)
        self.assertNotIn("rollout restart", calls)
        self.assertIn("reprod-webhook.other.svc", run(["openssl", "x509", "-in",
                                                       self.cert("webhook.crt"),
                                                       "-noout", "-ext", "subjectAltName"]).stdout)


@unittest.skipIf(shutil.which("etcd") is None, "etcd is not installed")
class DeployedTopologyTest(unittest.TestCase):
    """The DaemonSet's and the webhook Deployment's own command lines, run here against a real etcd
    with the certificates make-certs.sh makes, the webhook called by its Service's DNS name as the
    API server calls it: the probes pass, the injected spec agrees with the DaemonSet and the
    image, and a job pinned through a node is admitted by the webhook."""

    @classmethod
    def setUpClass(cls):
        # Class cleanups run even when setUpClass fails half-way.
        cls.dir = tempfile.mkdtemp(prefix="repro-topology-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        calls = make_certs(cls.dir, "--no-restart")
        certs = os.path.join(cls.dir, "certs")
        secrets = {"reprod-webhook-tls": {"tls.crt": f"{certs}/webhook.crt",
                                          "tls.key": f"{certs}/webhook.key"},
                   "reprod-peer-tls": {"tls.crt": f"{certs}/peer.crt",
                                       "tls.key": f"{certs}/peer.key",
                                       "ca.crt": f"{certs}/ca.crt"},
                   "etcd-tls": {"ca.crt": f"{certs}/ca.crt"},
                   "etcd-auth": {"reprod-password": f"{certs}/etcd-reprod.password"}}
        cls.context = ssl.create_default_context(cafile=f"{certs}/ca.crt")
        # etcd as etcd.yaml runs it (TLS on the client port, by make-certs.sh's CA; the name
        # here is 127.0.0.1), with authentication turned on by make-certs.sh's own etcdctl calls.
        cls.etcd = Etcd(cls.dir, local_etcd_certificate(certs))
        cls.addClassCleanup(cls.etcd.stop)
        for line in calls.splitlines():
            if " exec etcd-0 " in line:
                args = line.split(" -- etcdctl ", 1)[1].split()
                args = [a for a in args if not a.startswith(("--endpoints=", "--cacert="))]
                out = cls.etcd.ctl(*args)
                assert out.returncode == 0 or args[-2:] == ["auth", "status"], out.stderr
        cls.processes = []
        values = {"POD_NAMESPACE": NAMESPACE, "POD_IP": "127.0.0.1", "NODE_NAME": "node-1"}
        for name, doc, c, keep in (("node", DAEMONSET, NODE, ()),
                                   ("webhook", WEBHOOK, SERVER, ())):
            root = os.path.join(cls.dir, name)
            os.makedirs(root)
            local = LocalContainer(doc, c["name"], root, dict(values, POD_NAME=f"reprod-{name}"),
                                   cls.etcd, secrets, keep)
            cls.addClassCleanup(local.stop)
            cls.processes.append(local)
            setattr(cls, name, local)
        # The DaemonSet's liveness probe as the kubelet runs it in the container; the webhook's.
        probe = [cls.node.local_path(a) if a.startswith("--addr=") else a
                 for a in NODE["livenessProbe"]["exec"]["command"]]
        cls.wait(lambda: run([str(BIN / "reproctl"), *probe[1:]]).returncode == 0,
                 "the DaemonSet's probe never passed")
        cls.wait(lambda: cls.get(SERVER["livenessProbe"]["httpGet"]["path"]) == 200,
                 "the webhook's probe never passed")

    @classmethod
    def wait(cls, condition, what):
        deadline = time.monotonic() + 30
        while True:
            try:
                if condition():
                    return
            except OSError:
                pass
            for local in cls.processes:
                if local.process.poll() is not None:
                    raise AssertionError(f"reprod exited:\n{local.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(what)
            time.sleep(0.1)

    @classmethod
    def connection(cls):
        """HTTPS to the webhook, verifying its certificate for the Service's DNS name."""
        service = find(DOCS, "Service", "reprod-webhook")
        port = cls.webhook.ports[container_port(SERVER, service["spec"]["ports"][0]["targetPort"])]
        return HostnameHTTPSConnection(port, cls.context, f"{service.name}.{NAMESPACE}.svc")

    @classmethod
    def get(cls, path):
        conn = cls.connection()
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def review(self, path, obj, uid):
        return post_review(self.connection(), path, obj, uid)

    def ctl(self, *args):
        return run([str(BIN / "reproctl"), "--addr", self.node.flags["grpc_listen"].split(",")[0],
                    *args])

    @staticmethod
    def example_pod():
        """A Pod of the example Job as the Job controller creates it."""
        template = pod_template(EXAMPLE_JOB)
        metadata = dict(template["metadata"], name="train-42-0-x", namespace="ml")
        metadata["annotations"] = dict(metadata.get("annotations", {}),
                                       **{"batch.kubernetes.io/job-completion-index": "0"})
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}

    def test_the_injected_spec_agrees_with_the_daemonset_and_the_image(self):
        pod = self.example_pod()
        response = self.review("/mutate", pod, "uid-10")
        self.assertTrue(response["allowed"])
        injected = jsonpatch.apply_patch(pod, patch_of(response))
        spec = injected["spec"]

        # The shim and the socket: one inline volume of the node's CSI plugin, read-only, and
        # no host path; the library in it is the one the Dockerfile installs, which the node
        # copies in (--csi_shim_library's default).
        (shim,) = [v for v in spec["volumes"] if "csi" in v]
        self.assertEqual(shim["csi"], {"driver": flags(NODE)["csi_driver_name"], "readOnly": True})
        self.assertEqual([v for v in spec["volumes"] if v not in pod["spec"]["volumes"]], [shim])
        self.assertNotIn("hostPath", str(patch_of(response)))
        self.assertEqual(spec.get("initContainers"), pod["spec"].get("initContainers"))
        trainer = spec["containers"][0]
        (mount,) = [m for m in trainer["volumeMounts"] if m["name"] == shim["name"]]
        self.assertTrue(mount["readOnly"])
        self.assertEqual(env(trainer, "REPRO_SHIM_SOCKET")["value"], mount["mountPath"] + "/shim.sock")
        self.assertTrue(env(trainer, "LD_PRELOAD")["value"].startswith(
            mount["mountPath"] + "/libreproshim.so"))
        dockerfile = (SOURCE / "Dockerfile").read_text()
        installed = re.search(r"install .* /out(/\S*libreproshim\.so)", dockerfile).group(1)
        helpfull = run([str(BIN / "reprod"), "--helpfull"])
        default = re.search(r'--csi_shim_library \([^)]*\);\s*default: "([^"]*)"',
                            helpfull.stdout + helpfull.stderr)
        self.assertEqual(default.group(1), installed)
        self.assertNotIn("csi_shim_library", flags(NODE))
        # The node serves the plugin at its endpoint.
        self.assertTrue(os.path.exists(self.node.flags["csi_endpoint"]))

        # What the example asks for, and what it had, intact.
        asked = pod_template(EXAMPLE_JOB)["metadata"]
        self.assertEqual(env(trainer, "REPRO_JOB")["value"], asked["labels"]["repro.dev/job"])
        self.assertEqual(env(trainer, "REPRO_MODE")["value"],
                         asked["annotations"]["repro.dev/mode"])
        self.assertIn("job-completion-index",
                      env(trainer, "REPRO_RANK")["valueFrom"]["fieldRef"]["fieldPath"])
        self.assertIn(pod["spec"]["volumes"][0], spec["volumes"])
        self.assertIn(pod["spec"]["containers"][0]["volumeMounts"][0], trainer["volumeMounts"])

        self.assertEqual(patch_of(self.review("/mutate", injected, "uid-11")), [])

    def test_a_job_pinned_on_a_node_is_admitted_by_the_webhook(self):
        refused = self.review("/validate", EXAMPLE_JOB, "uid-1")
        self.assertFalse(refused["allowed"])
        self.assertIn("reproctl pin train-42", refused["status"]["message"])
        data = os.path.join(self.dir, "ml", "user_ctr", "v1")
        os.makedirs(data)
        with open(os.path.join(data, "part-0.csv"), "w") as f:
            f.write("id\n1\n")
        for args in (("version", "add", "user_ctr", "v1", data),
                     ("pin", "train-42", "user_ctr@v1", "--owner", "k8s:ml")):
            out = self.ctl(*args)
            self.assertEqual(out.returncode, 0, out.stderr)
        # The pin reaches the webhook through etcd.
        self.wait(lambda: self.review("/validate", EXAMPLE_JOB, "uid-2")["allowed"],
                  "the webhook never admitted the pinned job:\n" + self.webhook.output())
        self.assertTrue(self.review("/validate", self.example_pod(), "uid-3")["allowed"])
        # etcd's authentication is on: a client without the role cannot write pins.
        intruder = self.etcd.ctl("put", "/repro/pins/train-42", "forged")
        self.assertNotEqual(intruder.returncode, 0, intruder.stdout)
        self.assertIn("user name", intruder.stderr)
        # Both run in cluster mode at the address their init container wrote.
        for local in self.processes:
            self.assertIn("other nodes reach this one at 127-0-0-1.reprod-peers."
                          f"{NAMESPACE}.svc:7070", local.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
