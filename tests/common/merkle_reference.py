#!/usr/bin/env python3
"""An independent RFC 6962 Merkle tree, straight from the RFC's recursive definitions (2.1,
2.1.1, 2.1.2), for tests/common/merkle_test.cc to compare against.

Usage: merkle_reference.py N   (leaves are b"leaf-0" .. b"leaf-{N-1}")
Prints, for every tree size n in 1..N:   root n HEX
       every leaf m < n:                 incl m n HEX,HEX,...
       every old size 0 < m < n:         cons m n HEX,HEX,...
"""
import hashlib
import sys


def mth(d):
    if len(d) == 0:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m, d):
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def main():
    n_leaves = int(sys.argv[1])
    leaves = [b"leaf-%d" % i for i in range(n_leaves)]
    out = []
    for n in range(1, n_leaves + 1):
        d = leaves[:n]
        out.append("root %d %s" % (n, mth(d).hex()))
        for m in range(n):
            out.append("incl %d %d %s" % (m, n, ",".join(h.hex() for h in path(m, d))))
        for m in range(1, n):
            out.append("cons %d %d %s" % (m, n, ",".join(h.hex() for h in subproof(m, d, True))))
    print("\n".join(out))


if __name__ == "__main__":
    main()
