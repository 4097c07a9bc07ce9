// A device's AI client for tether-gate's end-to-end test: each request
// carries "Authorization: DPoP <token>" and a fresh DPoP proof (RFC 9449)
// made by the npm "jose" package with the device's key, as the agent will.
//   gate_dpop_client.mjs KEYFILE TOKEN BASE MODE [MODEL]
// BASE is the gateway's URL (http://127.0.0.1:PORT); MODE: chat, stream,
// embeddings, models. Prints one JSON object: the status, the tether or
// OpenAI error code, Retry-After, and for answers the content, the usage,
// and for streams the chunks and when the first and the last arrived.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, importJWK } from 'jose';

const [keyFile, token, base, mode, model] = process.argv.slice(2);
const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
const key = await importJWK(jwk, 'ES256');
const { kty, crv, x, y } = jwk;

async function proof(method, url) {
    return new SignJWT({
        htm: method,
        htu: url,
        ath: createHash('sha256').update(token).digest('base64url'),
        jti: randomBytes(16).toString('base64url'),
    })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty, crv, x, y } })
        .setIssuedAt()
        .sign(key);
}

const messages = [{ role: 'user', content: 'Who holds the key?' }];
const requests = {
    chat: ['POST', '/v1/chat/completions', { model: model || 'gpt-4o-mini', messages }],
    stream: ['POST', '/v1/chat/completions', { model: model || 'gpt-4o-mini', messages, stream: true }],
    embeddings: ['POST', '/v1/embeddings', { model: model || 'text-embedding-3-small', input: 'tether' }],
    models: ['GET', '/v1/models', null],
};
const [method, path, body] = requests[mode];
const url = base + path;
const start = Date.now();
const response = await fetch(url, {
    method,
    headers: {
        Authorization: `DPoP ${token}`,
        DPoP: await proof(method, url),
        ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
});
const out = { status: response.status, retry_after: response.headers.get('retry-after') };
if (mode === 'stream' && response.status === 200) {
    // Server-sent events: read as they arrive, timing the first and last.
    const decoder = new TextDecoder();
    let text = '', content = '', chunks = 0, usage = null;
    for await (const piece of response.body) {
        if (chunks === 0) out.first_ms = Date.now() - start;
        text += decoder.decode(piece, { stream: true });
        let end;
        // Events end with a blank line (CRLF or LF); comments start with ':'.
        while ((end = /\r?\n\r?\n/.exec(text)) !== null) {
            const event = text.slice(0, end.index);
            text = text.slice(end.index + end[0].length);
            const line = event.split(/\r?\n/).find((l) => l.startsWith('data: '));
            if (line === undefined || line === 'data: [DONE]') continue;
            const data = line.slice(6);
            const chunk = JSON.parse(data);
            chunks++;
            if (chunk.usage) usage = chunk.usage;
            for (const c of chunk.choices || []) content += c.delta?.content || '';
        }
    }
    out.end_ms = Date.now() - start;
    Object.assign(out, { content, chunks, usage });
} else {
    const json = await response.json();
    if (response.status !== 200) {
        out.code = json.tether_error || json.error;
    } else if (mode === 'models') {
        out.models = json.data.map((m) => m.id).sort();
    } else {
        out.usage = json.usage;
        out.content = json.choices?.[0]?.message?.content;
    }
}
console.log(JSON.stringify(out));
