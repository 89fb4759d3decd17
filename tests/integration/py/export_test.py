#!/usr/bin/python3
"""`reproctl export --format in-toto|runtime-trace|openlineage [--sign] [--subject GLOB]` and
`reproctl verify-export` against a real reprod, with a real process under the shim reading a pinned
data version and writing a checkpoint. Every document is validated against JSON Schemas written
from the published specs (schemas/), and signed envelopes are checked by verifiers this project did
not write: Python securesystemslib (Debian) and `openssl pkeyutl -verify` over the DSSE PAE."""
import base64
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import jsonschema
from securesystemslib.signer import Signature, SSlibKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reprod_node import DEADLINE_S, PYTHON, ReprodNode  # noqa: E402

SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"
FILES = {"part-0.csv": "id,clicks\n1,3\n", "part-1.csv": "id,clicks\n2,5\n",
         "part-2.csv": "id,clicks\n3,8\n"}
READER = """
import pathlib, sys
root = pathlib.Path(sys.argv[1])
for name in sorted(p.name for p in root.iterdir()):
    open(root / name).read()
pathlib.Path("ckpt").mkdir(exist_ok=True)
pathlib.Path("ckpt/model.pt").write_bytes(b"weights after epoch 1")
pathlib.Path("ckpt/notes.txt").write_text("not a subject")
"""


def validate(document, *names):
    """Validates `document` against each schema file in `names` (cross-file $refs resolved)."""
    store = {}
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        store[schema["$id"]] = schema
    for name in names:
        schema = json.loads((SCHEMAS / name).read_text())
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        jsonschema.Draft202012Validator(schema, resolver=resolver).validate(document)


def sha256_hex(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def pae(payload_type, payload):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="repro-export-"))
        cls.data = cls.tmp / "ml" / "users" / "v1"
        cls.data.mkdir(parents=True)
        for name, text in FILES.items():
            (cls.data / name).write_text(text)
        cls.work = cls.tmp / "work"
        cls.work.mkdir()
        cls.node = ReprodNode(cls.tmp / "node").__enter__()
        cls.node.ctl("version", "add", "users", "v1", cls.data)
        cls.node.ctl("pin", "train-a", "users@v1", "--seed", "7")
        subprocess.run([PYTHON, "-c", READER, str(cls.data)], cwd=cls.work, check=True,
                       env=cls.node.shim_env("train-a"), timeout=120)
        # The reads, and the libraries the process loaded: reprod hashes those after the process
        # has gone, so they may land after its last read.
        deadline = time.monotonic() + DEADLINE_S
        while True:
            entries = cls.node.journal("train-a")
            if (sum("dataOpen" in e for e in entries) >= len(FILES)
                    and any("libraries" in e for e in entries)):
                break
            assert time.monotonic() < deadline, entries
            time.sleep(0.2)
        version = json.loads(cls.node.ctl("--output", "json", "version", "show", "users@v1").stdout)
        cls.version_digest = version["version"]["digest"]
        cls.public_key = json.loads(cls.node.ctl("--output", "json", "node").stdout)["publicKey"]

    @classmethod
    def tearDownClass(cls):
        cls.node.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def export(self, *args, code=0):
        out = self.node.ctl("--output", "json", "export", "train-a", *args, check=False,
                            cwd=self.work)
        self.assertEqual(out.returncode, code, out.stdout + out.stderr)
        return out

    def test_json_output_prints_digests_in_hex_like_sha256sum(self):
        self.assertRegex(self.version_digest, "^[0-9a-f]{64}$")
        text = self.node.ctl("version", "show", "users@v1").stdout
        self.assertIn(self.version_digest, text)  # the same digest as the text output
        opens = [e["dataOpen"] for e in self.node.journal("train-a") if "dataOpen" in e]
        for o in opens:
            self.assertEqual(o["sha256"], sha256_hex(o["openedPath"]))

    def test_in_toto_statement_is_slsa_provenance_v1(self):
        statement = json.loads(self.export("--format", "in-toto", "--subject", "ckpt/*.pt").stdout)
        validate(statement, "in_toto_statement_v1.json", "slsa_provenance_v1.json")
        self.assertEqual(statement["subject"], [
            {"name": "ckpt/model.pt", "digest": {"sha256": sha256_hex(self.work / "ckpt/model.pt")}}])
        build = statement["predicate"]["buildDefinition"]
        self.assertEqual(build["externalParameters"]["job"], "train-a")
        self.assertEqual(build["externalParameters"]["seed"], "7")
        self.assertEqual(build["externalParameters"]["pinnedVersions"], [
            {"dataset": "users", "version": "v1", "digest": {"sha256": self.version_digest}}])
        self.assertEqual([r["rank"] for r in build["internalParameters"]["ranks"]], [0])
        deps = {d.get("uri"): d for d in build["resolvedDependencies"]}
        self.assertEqual(deps["repro:users@v1"]["digest"]["sha256"], self.version_digest)
        kinds = {d["annotations"]["kind"] for d in build["resolvedDependencies"]}
        self.assertTrue({"data-version-manifest", "program", "shared-library"} <= kinds, kinds)
        libc = [d for d in build["resolvedDependencies"] if d.get("name") == "libc.so.6"]
        self.assertEqual(libc[0]["digest"]["sha256"], sha256_hex(libc[0]["uri"][len("file://"):]))
        heads = statement["predicate"]["runDetails"]["byproducts"]
        self.assertEqual(heads[0]["name"], "repro-journal-head/n1")
        self.assertEqual(heads[0]["annotations"]["publicKey"], self.public_key)
        # The node's signed tree head of its head log, with the journal head's place in it.
        tree = [b for b in heads if b["name"] == "repro-tree-head/n1"]
        self.assertEqual(len(tree), 1, heads)
        self.assertEqual(tree[0]["annotations"]["publicKey"], self.public_key)
        self.assertGreater(tree[0]["annotations"]["size"], tree[0]["annotations"]["leafIndex"])
        self.assertEqual(len(tree[0]["digest"]["sha256"]), 64)

    def test_without_subjects_the_statement_is_about_the_journal(self):
        statement = json.loads(self.export("--format", "in-toto").stdout)
        validate(statement, "in_toto_statement_v1.json", "slsa_provenance_v1.json")
        head = statement["predicate"]["runDetails"]["byproducts"][0]
        self.assertEqual(statement["subject"], [
            {"name": "repro-journal/n1/train-a", "digest": head["digest"]}])

    def test_runtime_trace_lists_every_file_read_with_its_digest(self):
        statement = json.loads(self.export("--format", "runtime-trace").stdout)
        validate(statement, "in_toto_statement_v1.json", "runtime_trace_v0_1.json")
        files = {f["name"]: f["digest"]["sha256"]
                 for f in statement["predicate"]["monitorLog"]["fileAccess"]}
        self.assertEqual(files, {name: sha256_hex(self.data / name) for name in FILES})
        self.assertEqual(statement["predicate"]["monitoredProcess"]["event"], "train-a")

    def test_openlineage_start_and_complete_with_the_dataset_version(self):
        events = [json.loads(line) for line in self.export("--format", "openlineage").stdout.splitlines()]
        self.assertEqual([e["eventType"] for e in events], ["START", "COMPLETE"])
        for e in events:
            validate(e, "openlineage_run_event.json")
            self.assertEqual(e["job"]["name"], "train-a")
            self.assertEqual(e["inputs"][0]["name"], "users")
            self.assertEqual(e["inputs"][0]["facets"]["version"]["datasetVersion"], "v1")
            self.assertEqual(e["inputs"][0]["facets"]["repro"]["digest"],
                             "sha256:" + self.version_digest)
        self.assertEqual(events[0]["run"]["runId"], events[1]["run"]["runId"])

    def signed(self, *subjects):
        args = ["--format", "in-toto", "--sign"]
        for s in subjects:
            args += ["--subject", s]
        lines = self.export(*args).stdout.splitlines()
        self.assertEqual(len(lines), 1)
        envelope = json.loads(lines[0])
        validate(envelope, "dsse_envelope.json")
        return envelope

    def write(self, name, envelope):
        path = self.tmp / name
        path.write_text(json.dumps(envelope))
        return path

    def openssl_verifies(self, envelope):
        """`openssl pkeyutl -verify` of the envelope's PAE with the node's key."""
        der = bytes.fromhex("302a300506032b6570032100" + self.public_key)
        pem = self.tmp / "node.pub.pem"
        pem.write_text("-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der).decode() +
                       "\n-----END PUBLIC KEY-----\n")
        (self.tmp / "pae").write_bytes(pae(envelope["payloadType"],
                                           base64.b64decode(envelope["payload"])))
        (self.tmp / "sig").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
        out = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem),
                              "-rawin", "-in", str(self.tmp / "pae"), "-sigfile",
                              str(self.tmp / "sig")], capture_output=True, text=True)
        return out.returncode == 0

    def securesystemslib_verifies(self, envelope):
        key = SSlibKey(self.public_key, "ed25519", "ed25519", {"public": self.public_key})
        signature = Signature(envelope["signatures"][0]["keyid"],
                              base64.b64decode(envelope["signatures"][0]["sig"]).hex())
        try:
            key.verify_signature(signature, pae(envelope["payloadType"],
                                                base64.b64decode(envelope["payload"])))
            return True
        except Exception:  # securesystemslib's UnverifiedSignatureError and friends
            return False

    def test_signed_statement_verifies_with_independent_verifiers(self):
        envelope = self.signed("ckpt/*.pt")
        self.assertEqual(envelope["signatures"][0]["keyid"], self.public_key)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        validate(statement, "in_toto_statement_v1.json", "slsa_provenance_v1.json")
        self.assertEqual(statement["subject"][0]["digest"]["sha256"],
                         sha256_hex(self.work / "ckpt/model.pt"))
        # reprod built the journal-derived parts itself: the same as reproctl's unsigned export.
        unsigned = json.loads(self.export("--format", "in-toto").stdout)
        self.assertEqual(statement["predicate"]["buildDefinition"],
                         unsigned["predicate"]["buildDefinition"])
        checked = statement["predicate"]["runDetails"]["byproducts"][-1]
        self.assertEqual(checked["name"], "repro-subjects-check")
        self.assertEqual(checked["annotations"]["checkedBy"], "n1")

        self.assertTrue(self.openssl_verifies(envelope))
        self.assertTrue(self.securesystemslib_verifies(envelope))
        path = self.write("signed.json", envelope)
        out = self.node.ctl("verify-export", path, check=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("signature OK", out.stdout)
        out = self.node.ctl("verify-export", path, "--public_key", self.public_key, check=False)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_a_changed_statement_or_another_key_is_refused_by_every_verifier(self):
        envelope = self.signed("ckpt/*.pt")
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["subject"][0]["digest"]["sha256"] = "0" * 64  # claim another checkpoint
        forged = dict(envelope, payload=base64.b64encode(json.dumps(statement).encode()).decode())
        self.assertFalse(self.openssl_verifies(forged))
        self.assertFalse(self.securesystemslib_verifies(forged))
        out = self.node.ctl("verify-export", self.write("forged.json", forged), check=False)
        self.assertEqual(out.returncode, 4, out.stdout + out.stderr)
        out = self.node.ctl("verify-export", self.write("ok.json", envelope), "--public_key",
                            "ab" * 32, check=False)
        self.assertEqual(out.returncode, 4, out.stdout + out.stderr)
        (self.tmp / "garbage.json").write_text("{not json")
        out = self.node.ctl("verify-export", self.tmp / "garbage.json", check=False)
        self.assertEqual(out.returncode, 4, out.stdout + out.stderr)

    def test_usage_errors(self):
        out = self.export("--format", "openlineage", "--sign", code=1)
        self.assertIn("--sign", out.stderr)
        out = self.export("--format", "in-toto", "--subject", "nothing/*.bin", code=1)
        self.assertIn("matches no regular file", out.stderr)
        out = self.export("--format", "yaml", code=1)
        self.assertIn("--format", out.stderr)


if __name__ == "__main__":
    unittest.main()
