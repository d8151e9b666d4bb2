#!/usr/bin/env python3
"""Independent ota-tuf root/targets verifier, written from the format reference only.

It shares no code with the Rust crates and needs nothing but Python's standard library:
canonical JSON (fioctl's docker/go fork rules), key ids (SHA-256 of the SubjectPublicKeyInfo
DER), Ed25519 verification written from RFC 8032 (section 5.1.7, cofactorless, as Go's
crypto/ed25519 and ed25519-dalek verify) and RSASSA-PSS verification written from RFC 8017
(section 8.1.2 with EMSA-PSS-VERIFY, SHA-256, MGF1-SHA-256, salt 32 bytes).

Usage: verify_roots.py CHAIN.json
CHAIN.json = {"chain": [root v1, root v2, ...], "prod": [optional prod roots],
              "targets": [{"root_index": i, "doc": targets, "prod": true}]}
Exit 0 and print "OK <n> roots" when everything verifies; exit 1 with the reason otherwise.
"""
import base64
import binascii
import hashlib
import json
import sys

# --- Ed25519 (RFC 8032) -------------------------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def _point_add(a, b):
    # Extended homogeneous coordinates (X, Y, Z, T), RFC 8032 section 5.1.4.
    pa = (a[1] - a[0]) * (b[1] - b[0]) % P
    pb = (a[1] + a[0]) * (b[1] + b[0]) % P
    pc = 2 * a[3] * b[3] * D % P
    pd = 2 * a[2] * b[2] % P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _point_mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _point_add(q, pt)
        pt = _point_add(pt, pt)
        s >>= 1
    return q


def _point_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _decompress(raw):
    if len(raw) != 32:
        return None
    y = int.from_bytes(raw, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
BASE = (_recover_x(_GY, 0), _GY, 1, _recover_x(_GY, 0) * _GY % P)


def ed25519_verify(public, msg, sig):
    if len(public) != 32 or len(sig) != 64:
        return False
    a = _decompress(public)
    r = _decompress(sig[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % L
    return _point_equal(_point_mul(s, BASE), _point_add(r, _point_mul(k, a)))


# --- DER, just enough for SubjectPublicKeyInfo ------------------------------------------

def _der(buf, pos, tag):
    """Reads one DER element with tag `tag` at `pos`: returns (content, next position)."""
    if pos + 2 > len(buf) or buf[pos] != tag:
        raise ValueError("DER: expected tag 0x%02x at %d" % (tag, pos))
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        count = n & 0x7F
        if count == 0 or count > 4 or pos + count > len(buf):
            raise ValueError("DER: bad length")
        n = int.from_bytes(buf[pos:pos + count], "big")
        pos += count
    if pos + n > len(buf):
        raise ValueError("DER: element runs past the end")
    return buf[pos:pos + n], pos + n


RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # OID 1.2.840.113549.1.1.1
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # RFC 8410


def rsa_public_from_spki(der):
    spki, end = _der(der, 0, 0x30)
    if end != len(der):
        raise ValueError("trailing bytes after SubjectPublicKeyInfo")
    alg, pos = _der(spki, 0, 0x30)
    oid, _ = _der(alg, 0, 0x06)
    if oid != RSA_ENCRYPTION:
        raise ValueError("not an rsaEncryption key")
    bits, _ = _der(spki, pos, 0x03)
    if not bits or bits[0] != 0:
        raise ValueError("bad BIT STRING")
    seq, _ = _der(bits, 1, 0x30)
    n, pos = _der(seq, 0, 0x02)
    e, _ = _der(seq, pos, 0x02)
    return int.from_bytes(n, "big"), int.from_bytes(e, "big")


# --- RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (RFC 8017) ----------------------------

def _mgf1_sha256(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def rsa_pss_sha256_verify(n, e, msg, sig, salt_len=32):
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    m = pow(s, e, n)
    em_bits = n.bit_length() - 1
    em_len = (em_bits + 7) // 8
    if m >> (8 * em_len):
        return False
    em = m.to_bytes(em_len, "big")
    h_len = 32
    if em_len < h_len + salt_len + 2 or em[-1] != 0xBC:
        return False
    masked_db, h = em[:em_len - h_len - 1], em[em_len - h_len - 1:-1]
    zero_bits = 8 * em_len - em_bits
    if masked_db[0] >> (8 - zero_bits) if zero_bits else 0:
        return False
    db = bytearray(x ^ y for x, y in zip(masked_db, _mgf1_sha256(h, len(masked_db))))
    db[0] &= 0xFF >> zero_bits
    ps_len = em_len - h_len - salt_len - 2
    if any(db[:ps_len]) or db[ps_len] != 0x01:
        return False
    salt = bytes(db[len(db) - salt_len:])
    return hashlib.sha256(b"\0" * 8 + hashlib.sha256(msg).digest() + salt).digest() == h


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


def pem_body(pem, label):
    lines = pem.strip().splitlines()
    if lines[0] != "-----BEGIN %s-----" % label or lines[-1] != "-----END %s-----" % label:
        raise ValueError("not a %s PEM block" % label)
    return base64.b64decode("".join(lines[1:-1]), validate=True)


def load_key(k):
    """Returns ((kind, key material), keyid computed from the SPKI DER)."""
    kt = k["keytype"]
    pub = k["keyval"]["public"]
    if kt.upper() == "ED25519":
        raw = binascii.unhexlify(pub.strip())
        if len(raw) != 32:
            raise ValueError("Ed25519 public key is not 32 bytes")
        der = ED25519_SPKI_PREFIX + raw
        key = ("ed25519", raw)
    elif kt.upper() == "RSA":
        der = pem_body(pub, "PUBLIC KEY")
        key = ("rsa", rsa_public_from_spki(der))
    else:
        raise ValueError("unsupported keytype " + kt)
    return key, hashlib.sha256(der).hexdigest()


def check_sig(key, method, msg, sig):
    raw = base64.b64decode(sig, validate=True)
    kind, material = key
    if kind == "ed25519":
        return method == "ed25519" and ed25519_verify(material, msg, raw)
    if kind == "rsa":
        n, e = material
        return method == "rsassa-pss-sha256" and rsa_pss_sha256_verify(n, e, msg, raw)
    return False


def self_test():
    """RFC 8032 section 7.1, test 2: one known-good signature, and the same with a bit flipped."""
    public = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    sig = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
    if not ed25519_verify(public, b"\x72", sig):
        raise ValueError("self-test: RFC 8032 test vector 2 does not verify")
    if ed25519_verify(public, b"\x73", sig):
        raise ValueError("self-test: a changed message verifies")


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
    self_test()
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
