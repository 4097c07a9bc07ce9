#!/usr/bin/env python3
"""Checks a tether access token with tools nobody here wrote: the JWS
signature (ES256) is verified by the openssl command line against the key the
fleet publishes in its JWKS.

    jwt_tool.py verify JWKS_FILE TOKEN   prints {"header": ..., "claims": ...};
                                         exit 0 when the signature verifies
                                         with the JWKS key named by kid, 1 if not
"""
import base64
import json
import os
import subprocess
import sys
import tempfile


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der_int(value):
    raw = value.lstrip(b"\0") or b"\0"
    if raw[0] & 0x80:
        raw = b"\0" + raw
    return b"\x02" + bytes([len(raw)]) + raw


def verify(jwks_path, token):
    head_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64url(head_b64))
    claims = json.loads(b64url(payload_b64))
    print(json.dumps({"header": header, "claims": claims}))
    keys = [k for k in json.load(open(jwks_path))["keys"] if k.get("kid") == header.get("kid")]
    if header.get("alg") != "ES256" or len(keys) != 1 or keys[0].get("crv") != "P-256":
        return 1
    point = b"\x04" + b64url(keys[0]["x"]) + b64url(keys[0]["y"])
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + point
    sig = b64url(sig_b64)
    body = der_int(sig[:32]) + der_int(sig[32:])
    der_sig = b"\x30" + bytes([len(body)]) + body
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name) for name in ("key.der", "sig.der", "data")}
        open(paths["key.der"], "wb").write(spki)
        open(paths["sig.der"], "wb").write(der_sig)
        open(paths["data"], "wb").write((head_b64 + "." + payload_b64).encode())
        result = subprocess.run(["openssl", "dgst", "-sha256", "-keyform", "DER", "-verify",
                                 paths["key.der"], "-signature", paths["sig.der"], paths["data"]],
                                capture_output=True)
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "verify":
        sys.exit(__doc__)
    sys.exit(verify(sys.argv[2], sys.argv[3]))
