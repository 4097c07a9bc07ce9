// The device side of the tether-gate test, made with a stock JOSE library
// (the npm "jose" package), so the gateway is checked against code nobody
// here wrote.
//   keygen FILE                 a new ES256 key pair (private JWK) in FILE;
//                               prints its RFC 7638 thumbprint (cnf.jkt)
//   token PEM KID CLAIMS_JSON   an at+jwt access token signed with the PEM key
//   proof KEYFILE METHOD URL TOKEN [IAT_OFFSET [NONCE [JTI]]]
//                               a DPoP proof (RFC 9449) for METHOD URL and
//                               TOKEN (ath), iat = now + IAT_OFFSET seconds
import { createPrivateKey, createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK } from 'jose';

const [command, ...args] = process.argv.slice(2);
const b64url = (buf) => buf.toString('base64url');

if (command === 'keygen') {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    writeFileSync(args[0], JSON.stringify(jwk), { mode: 0o600 });
    const { kty, crv, x, y } = jwk;
    console.log(await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256'));
} else if (command === 'token') {
    const key = createPrivateKey(readFileSync(args[0]));
    const claims = JSON.parse(args[2]);
    console.log(await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: args[1] })
        .sign(key));
} else if (command === 'proof') {
    const [keyFile, method, url, token, offset = '0', nonce = '', jti = ''] = args;
    const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
    const key = await importJWK(jwk, 'ES256');
    const { kty, crv, x, y } = jwk;
    const claims = {
        htm: method,
        htu: url,
        ath: b64url(createHash('sha256').update(token).digest()),
        jti: jti || b64url(randomBytes(16)),
    };
    if (nonce) claims.nonce = nonce;
    console.log(await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty, crv, x, y } })
        .setIssuedAt(Math.floor(Date.now() / 1000) + Number(offset))
        .sign(key));
} else {
    console.error('usage: gate_client.mjs keygen|token|proof ...');
    process.exit(2);
}
