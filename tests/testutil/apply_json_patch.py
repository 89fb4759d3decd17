#!/usr/bin/python3
"""Applies an RFC 6902 JSON Patch with Debian's python3-jsonpatch, a reference implementation
that the webhook's patches are checked against.

stdin: {"document": <any JSON>, "patch": [<operation>, ...]}
stdout: the patched document; exit status 1 with the reason on stderr when the patch does not apply.
"""
import json
import sys

import jsonpatch
import jsonpointer


def main():
    request = json.load(sys.stdin)
    try:
        result = jsonpatch.apply_patch(request["document"], request["patch"])
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        print(f"the patch does not apply: {error}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
