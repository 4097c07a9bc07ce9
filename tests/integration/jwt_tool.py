#!/usr/bin/env python3
"""Checks and makes tether access tokens with tools nobody here wrote: the
JWS signature (ES256) is verified, or made, by the openssl command line.

    jwt_tool.py verify JWKS_FILE TOKEN   prints {"header": ..., "claims": ...};
                                         exit 0 when the signature verifies
                                         with the JWKS key named by kid, 1 if not
    jwt_tool.py sign KEY.pem KID CLAIMS  prints an ES256 at+jwt of the JSON
                                         CLAIMS signed with the PEM key
    jwt_tool.py claims ISS SUB JTI EXP   prints the claims fleetd issues, for
                                         device SUB, as JSON

sign and claims stand in for the attested exchange (which needs a TPM) in
the tests of relying parties: a token of the fleet is one its issuer key
signed, with its issued_tokens row written beside.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time


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


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_ints(der):
    # SEQUENCE { INTEGER r, INTEGER s }
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = []
    for _ in range(2):
        assert der[i] == 2
        n = der[i + 1]
        out.append(int.from_bytes(der[i + 2:i + 2 + n], "big"))
        i += 2 + n
    return out


def sign(key, kid, claims):
    header = {"alg": "ES256", "typ": "at+jwt", "kid": kid}
    signing_input = (b64url_encode(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url_encode(json.dumps(json.loads(claims), separators=(",", ":")).encode()))
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                         input=signing_input.encode(), capture_output=True, check=True).stdout
    r, s = der_ints(der)
    print(signing_input + "." + b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return 0


def claims(iss, sub, jti, exp):
    exp = int(exp)
    now = int(time.time())
    print(json.dumps({"iss": iss, "sub": sub, "aud": "tether", "client_id": sub,
                      "scope": "models", "iat": min(now, exp - 60), "nbf": min(now, exp - 60),
                      "exp": exp, "jti": jti,
                      "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
                      "tether": {"counter": 1}}))
    return 0


if __name__ == "__main__":
    commands = {"verify": (verify, 2), "sign": (sign, 3), "claims": (claims, 4)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or \
            len(sys.argv) != 2 + commands[sys.argv[1]][1]:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]][0](*sys.argv[2:]))
