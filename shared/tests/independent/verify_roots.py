#!/usr/bin/env python3
"""Independent ota-tuf root/targets verifier, written from the format reference only.

It shares no code with the Rust crate: canonical JSON (fioctl's docker/go fork rules), key ids
(SHA-256 of the SubjectPublicKeyInfo DER), and signature checks (Ed25519, RSASSA-PSS/SHA-256
with salt 32) are implemented here with Python's `cryptography` package.

Usage: verify_roots.py CHAIN.json
CHAIN.json = {"chain": [root v1, root v2, ...], "prod": [optional prod roots],
              "targets": [{"root_index": i, "doc": targets, "prod": true}]}
Exit 0 and print "OK <n> roots" when everything verifies; exit 1 with the reason otherwise.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa


def canon(v):
    if v is None:
        return b"null"
    if v is True:
        return b"true"
    if v is False:
        return b"false"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        if v != int(v):
            raise ValueError("non-integer number")
        return str(int(v)).encode()
    if isinstance(v, str):
        out = bytearray(b'"')
        for ch in v.encode("utf-8"):
            esc = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}.get(ch)
            if esc:
                out += esc
            else:
                out.append(ch)
        out += b'"'
        return bytes(out)
    if isinstance(v, list):
        return b"[" + b",".join(canon(x) for x in v) + b"]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-8"))
        return b"{" + b",".join(canon(k) + b":" + canon(x) for k, x in items) + b"}"
    raise TypeError(type(v))


def load_key(k):
    kt = k["keytype"]
    pub = k["keyval"]["public"]
    if kt.upper() == "ED25519":
        key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub.strip()))
    elif kt.upper() == "RSA":
        key = serialization.load_pem_public_key(pub.strip().encode())
    else:
        raise ValueError("unsupported keytype " + kt)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, hashlib.sha256(der).hexdigest()


def check_sig(key, method, msg, sig):
    raw = base64.b64decode(sig, validate=True)
    if isinstance(key, ed25519.Ed25519PublicKey):
        if method != "ed25519":
            return False
        key.verify(raw, msg)
        return True
    if isinstance(key, rsa.RSAPublicKey):
        if method != "rsassa-pss-sha256":
            return False
        key.verify(raw, msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        return True
    return False


def count_valid(signer_root, role, doc):
    msg = canon(doc["signed"])
    keys = signer_root["signed"]["keys"]
    listed = signer_root["signed"]["roles"][role]["keyids"]
    valid = set()
    for s in doc.get("signatures") or []:
        kid = s["keyid"]
        if kid not in listed or kid in valid or kid not in keys:
            continue
        key, computed = load_key(keys[kid])
        if computed != kid:
            raise ValueError("keyid %s does not match its key (%s)" % (kid, computed))
        try:
            if check_sig(key, s["method"], msg, s["sig"]):
                valid.add(kid)
        except Exception:
            pass
    return len(valid), signer_root["signed"]["roles"][role]["threshold"]


def need(signer_root, role, doc, what):
    n, t = count_valid(signer_root, role, doc)
    if t < 1 or n < t:
        raise ValueError("%s: %d valid %s signatures, threshold %d" % (what, n, role, t))


def main():
    data = json.load(open(sys.argv[1], "rb"))
    chain = data["chain"]
    for r in chain:
        for kid, k in r["signed"]["keys"].items():
            if load_key(k)[1] != kid:
                raise ValueError("root v%d: keyid %s mismatch" % (r["signed"]["version"], kid))
    need(chain[0], "root", chain[0], "root v1")
    for prev, nxt in zip(chain, chain[1:]):
        v = nxt["signed"]["version"]
        if v != prev["signed"]["version"] + 1:
            raise ValueError("version %d does not follow %d" % (v, prev["signed"]["version"]))
        need(prev, "root", nxt, "root v%d by previous keys" % v)
        need(nxt, "root", nxt, "root v%d by its own keys" % v)
    for i, p in enumerate(data.get("prod", [])):
        need(chain[-2] if len(chain) > 1 else chain[-1], "root", p, "prod root by previous keys")
        need(p, "root", p, "prod root by its own keys")
        a = json.loads(json.dumps(p["signed"]))
        b = json.loads(json.dumps(chain[-1]["signed"]))
        a["roles"]["targets"]["threshold"] = b["roles"]["targets"]["threshold"]
        if canon(a) != canon(b):
            raise ValueError("prod root differs from CI root beyond the targets threshold")
    for t in data.get("targets", []):
        signer = data["prod"][-1] if t.get("prod") else chain[t.get("root_index", -1)]
        need(signer, "targets", t["doc"], "targets")
    print("OK %d roots" % len(chain))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure as a verification failure
        print("FAIL: %s" % e)
        sys.exit(1)
