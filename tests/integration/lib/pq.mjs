// The post-quantum session from the client side, for tests: a Client that does the handshake
// (ML-KEM-768 from @noble/post-quantum, X25519 and the rest from node:crypto), seals what it
// sends and opens what arrives, checking N. Shared by 87-pq-session and the cluster tests.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { Client } from './client.mjs';
import { scaled, withTimeout } from './util.mjs';

export const ALGS = ['ML-KEM-768', 'X25519MLKEM768'];
export const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
export const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

export function sha256(...parts) {
    const h = crypto.createHash('sha256');
    for (const p of parts) h.update(p);
    return h.digest();
}

export function iv(seq) {
    const b = Buffer.alloc(12);
    b.writeBigUInt64BE(BigInt(seq), 4);
    return b;
}

export function seal(key, seq, plaintext) {
    const c = crypto.createCipheriv('aes-256-gcm', key, iv(seq));
    c.setAAD(Buffer.from('volli-enc-v1'));
    return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

export function open(key, seq, data) {
    const d = crypto.createDecipheriv('aes-256-gcm', key, iv(seq));
    d.setAAD(Buffer.from('volli-enc-v1'));
    d.setAuthTag(data.subarray(data.length - 16));
    return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
}

export function hkdf(ikm, salt, info) {
    return Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.from(info), 32));
}

/** A client key pair for alg: { pk (Buffer), finish(ct) -> ikm }. */
export function clientKeys(alg, { ek, dk } = {}) {
    const kem = ek ? { publicKey: ek, secretKey: dk } : ml_kem768.keygen();
    let x = null;
    let pk = Buffer.from(kem.publicKey);
    if (alg === 'X25519MLKEM768') {
        x = crypto.generateKeyPairSync('x25519');
        pk = Buffer.concat([pk, x.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32)]);
    }
    return {
        pk,
        kem,
        finish(ct) {
            const ss = Buffer.from(ml_kem768.decapsulate(ct.subarray(0, 1088), kem.secretKey));
            if (!x) return ss;
            const peer = crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI,
                                                                      ct.subarray(1088)]),
                                                  format: 'der', type: 'spki' });
            return Buffer.concat([ss, crypto.diffieHellman({ privateKey: x.privateKey,
                                                             publicKey: peer })]);
        },
    };
}

/**
 * A Client that speaks the session: after a handshake it seals what it sends and opens what
 * arrives (checking N), queueing the inner messages as a plain Client would; a rekey response
 * switches both directions to the new keys with N back at 0 before the next frame is read.
 */
export class PqClient extends Client {
    constructor(ws) {
        super(ws);
        this.rx = null;
        this.tx = null;
        this.pending = null;
        this.encIn = 0;
        this.problems = [];
    }

    onFrame(data, isBinary) {
        if (!isBinary) {
            let m = null;
            try {
                m = JSON.parse(data.toString('utf8'));
            } catch {
                /* left to Client */
            }
            if (this.rx && m?.type === 'enc') {
                if (m.seq !== this.rx.seq) {
                    this.problems.push(`server N ${m.seq} != ${this.rx.seq}`);
                }
                let pt;
                try {
                    pt = open(this.rx.key, m.seq, Buffer.from(m.ct, 'base64'));
                } catch (err) {
                    this.problems.push(`server frame does not open: ${err.message}`);
                    return;
                }
                this.rx.seq += 1;
                this.encIn += 1;
                this.maybeFinish(JSON.parse(pt.toString('utf8')));
                super.onFrame(pt, false);
                return;
            }
            if (this.rx) this.problems.push(`plaintext from the server: ${data}`);
            else if (m?.type === 'pq_handshake_response') this.maybeFinish(m);
        }
        super.onFrame(data, isBinary);
    }

    maybeFinish(m) {
        if (m.type !== 'pq_handshake_response' || !this.pending) return;
        const p = this.pending;
        this.pending = null;
        const ct = Buffer.from(m.kem_ciphertext, 'base64');
        const th = sha256('volli-pq-v1', this.hello.nonce, p.sid, p.keys.pk, ct);
        const serverKey = crypto.createPublicKey({
            key: Buffer.concat([ED25519_SPKI, Buffer.from(this.hello.serverKey, 'base64')]),
            format: 'der', type: 'spki' });
        this.signatureValid = crypto.verify(null, th, serverKey,
                                            Buffer.from(m.signature, 'base64'));
        this.ct = ct;
        const ikm = p.keys.finish(ct);
        this.tx = { key: hkdf(ikm, th, 'volli c2s'), seq: 0 };
        this.rx = { key: hkdf(ikm, th, 'volli s2c'), seq: 0 };
    }

    /** Sends obj sealed once the session is up, as plain JSON before. */
    send(obj) {
        if (!this.tx) {
            super.send(obj);
            return;
        }
        this.sendEnc(Buffer.from(JSON.stringify(obj)));
    }

    sendEnc(plaintext, { seq = this.tx.seq, advance = true } = {}) {
        const ct = seal(this.tx.key, seq, plaintext).toString('base64');
        const frame = { type: 'enc', seq, ct };
        if (advance) this.tx.seq += 1;
        this.sendText(JSON.stringify(frame));
        return frame;
    }

    /** Sends pq_handshake (inside the session when there is one) and waits for the response. */
    async handshake(alg, { sid = crypto.randomBytes(18).toString('base64url'), keys,
                           id } = {}) {
        keys ??= clientKeys(alg);
        this.pending = { sid, keys };
        const t0 = Date.now();
        this.send({ type: 'pq_handshake', algorithm: alg,
                    client_public_key: keys.pk.toString('base64'), session_id: sid,
                    ...(id ? { id } : {}) });
        const r = await this.recv((m) => m.type === 'pq_handshake_response' || m.type === 'error',
                                  scaled(5000), 'pq_handshake_response');
        if (r.type === 'error') {
            this.pending = null;
            return r;
        }
        assert.equal(r.session_id, sid);
        assert.equal(r.algorithm, alg);
        assert.equal(Buffer.from(r.kem_ciphertext, 'base64').length,
                     alg === 'ML-KEM-768' ? 1088 : 1120);
        assert.ok(this.signatureValid, 'the signature over TH does not verify with serverKey');
        assert.equal(typeof r.expires_at, 'number');
        r.t0 = t0;
        return r;
    }

    assertClean() {
        assert.deepEqual(this.problems, []);
    }
}

export async function connectPq(port, { path: p = '/', query = '' } = {}) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${p}${query}`, { perMessageDeflate: false });
    const c = new PqClient(ws);
    await withTimeout(new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
    }), scaled(5000), 'WebSocket open');
    c.hello = await c.recv((m) => m.type === 'hello', scaled(3000), 'hello');
    return c;
}
