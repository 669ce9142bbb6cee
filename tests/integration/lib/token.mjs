// Access tokens for tests: HS256 JWTs made here from the claims (LiveKit style), and a
// WebSocket connection registered by one.

import crypto from 'node:crypto';
import WebSocket from 'ws';
import { Client } from './client.mjs';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

/**
 * header.payload.signature for claims, issued by key and signed with secret; nbf is now and exp
 * ten minutes on unless claims say otherwise (a claim given as undefined is left out). alg,
 * hmac (null: no signature) and header forge bad tokens.
 */
export function makeToken(claims, { key, secret, alg = 'HS256', hmac = 'sha256', header } = {}) {
    const now = Math.floor(Date.now() / 1000);
    const body = { iss: key, nbf: now, exp: now + 600, ...claims };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    const head = b64u(JSON.stringify(header ?? { alg, typ: 'JWT' }));
    const signed = `${head}.${b64u(JSON.stringify(body))}`;
    const sig = hmac ? crypto.createHmac(hmac, secret).update(signed).digest('base64url') : '';
    return `${signed}.${sig}`;
}

/**
 * A connection registered by a token for claims (auth: { key, secret }, as for makeToken);
 * resolves once `registered` arrived, with userId set.
 */
export async function connectToken(port, claims, auth) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?access_token=${makeToken(claims, auth)}`,
                             { perMessageDeflate: false });
    const c = new Client(ws);
    await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
    });
    c.hello = await c.recvType('hello');
    c.userId = (await c.recvType('registered')).userId;
    return c;
}
