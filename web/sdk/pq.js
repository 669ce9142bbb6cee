// The client side of the post-quantum signaling session (docs/protocol.md, "Post-quantum
// session"): a fresh ML-KEM-768 (optionally X25519MLKEM768) key pair per handshake, the
// server's Ed25519 signature over the transcript hash checked against its identity key,
// HKDF-SHA-256 keys per direction and AES-256-GCM `enc` frames with sequence numbers.
// ML-KEM-768 comes from WebCrypto where the browser has it, else from @noble/post-quantum,
// which the page maps to /sdk/npm/ with an import map (see docs/sdk.md). X25519, Ed25519,
// HKDF and AES-GCM are WebCrypto's. This module never logs keys, secrets or plaintexts.

import { VolliError } from './errors.js';

export const PQ_ALGORITHMS = ['ML-KEM-768', 'X25519MLKEM768'];

const EK_LEN = 1184;
const CT_LEN = 1088;
const X_LEN = 32;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const AAD = enc.encode('volli-enc-v1');

export function toBase64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
        s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
}

export function fromBase64(text) {
    if (typeof text !== 'string') throw new VolliError('bad_server_reply', 'not base64');
    let bin;
    try {
        bin = atob(text);
    } catch {
        throw new VolliError('bad_server_reply', 'not base64');
    }
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
}

function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
        out.set(p, off);
        off += p.length;
    }
    return out;
}

function randomSessionId() {
    const b = crypto.getRandomValues(new Uint8Array(18));
    return toBase64(b).replace(/\+/g, '-').replace(/\//g, '_');
}

// --- ML-KEM-768 backends -------------------------------------------------------------------

// WebCrypto's ML-KEM (the WICG "modern algorithms" API). Adopted only after a full round trip
// with the expected sizes, so a partial or differently shaped implementation is never used.
async function webCryptoKem() {
    const alg = { name: 'ML-KEM-768' };
    const subtle = globalThis.crypto?.subtle;
    if (!subtle) return null;
    try {
        const kp = await subtle.generateKey(alg, true, ['encapsulateBits', 'decapsulateBits']);
        const ek = new Uint8Array(await subtle.exportKey('raw-public', kp.publicKey));
        const e = await subtle.encapsulateBits(alg, kp.publicKey);
        const ss = new Uint8Array(await subtle.decapsulateBits(alg, kp.privateKey, e.ciphertext));
        const ss2 = new Uint8Array(e.sharedKey ?? e.sharedSecret ?? new ArrayBuffer(0));
        if (ek.length !== EK_LEN || e.ciphertext.byteLength !== CT_LEN || ss.length !== 32 ||
            (ss2.length && ss2.some((v, i) => v !== ss[i]))) {
            return null;
        }
    } catch {
        return null;
    }
    return {
        name: 'webcrypto',
        async keygen() {
            const kp = await subtle.generateKey(alg, false, ['decapsulateBits']);
            const ek = new Uint8Array(await subtle.exportKey('raw-public', kp.publicKey));
            return { ek, decaps: async (ct) =>
                new Uint8Array(await subtle.decapsulateBits(alg, kp.privateKey, ct)) };
        },
    };
}

async function nobleKem() {
    let mod;
    try {
        // A bare specifier on purpose: the page's import map decides which copy (and, through
        // its scopes, which pinned @noble/hashes) is loaded.
        mod = await import('@noble/post-quantum/ml-kem.js');
    } catch (err) {
        throw new VolliError('unsupported', 'ML-KEM-768 needs WebCrypto support or an import map ' +
                             `for @noble/post-quantum (see docs/sdk.md): ${err.message}`,
                             { cause: err });
    }
    const kem = mod.ml_kem768;
    return {
        name: 'noble',
        async keygen() {
            const { publicKey, secretKey } = kem.keygen();
            return { ek: publicKey, decaps: async (ct) => kem.decapsulate(ct, secretKey) };
        },
    };
}

let kemPromise = null;

/** The ML-KEM-768 implementation in use: { name: 'webcrypto' | 'noble', keygen() }. */
export function mlKem768() {
    kemPromise ??= webCryptoKem().then((k) => k ?? nobleKem());
    kemPromise.catch(() => {
        kemPromise = null; // a failed module load may succeed later (e.g. offline for a moment)
    });
    return kemPromise;
}

// --- handshake and key schedule ------------------------------------------------------------

/**
 * A handshake in progress: make it with PqHandshake.create(algorithm), send message(), and
 * hand the pq_handshake_response to finish(), which checks it and resolves with the keys.
 */
export class PqHandshake {
    static async create(algorithm) {
        if (!PQ_ALGORITHMS.includes(algorithm)) {
            throw new VolliError('bad_request', `unknown post-quantum algorithm: ${algorithm}`);
        }
        const h = new PqHandshake();
        h.algorithm = algorithm;
        h.sessionId = randomSessionId();
        const kem = await mlKem768();
        h.kemName = kem.name;
        h.kem = await kem.keygen();
        h.pk = h.kem.ek;
        if (algorithm === 'X25519MLKEM768') {
            h.x = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
            const xpub = new Uint8Array(await crypto.subtle.exportKey('raw', h.x.publicKey));
            h.pk = concat(h.kem.ek, xpub);
        }
        return h;
    }

    message() {
        return { type: 'pq_handshake', algorithm: this.algorithm, session_id: this.sessionId,
                 client_public_key: toBase64(this.pk) };
    }

    /**
     * Checks the response r for this connection's hello nonce and the server key (raw 32-byte
     * Ed25519, base64) and derives the session keys. Rejects with "bad_server_signature" if the
     * signature over TH does not verify, "bad_server_reply" for a malformed response.
     */
    async finish(r, nonce, serverKey) {
        if (r.session_id !== this.sessionId || r.algorithm !== this.algorithm) {
            throw new VolliError('bad_server_reply', 'the handshake response is for another ' +
                                 'session or algorithm');
        }
        const ct = fromBase64(r.kem_ciphertext);
        const want = CT_LEN + (this.x ? X_LEN : 0);
        if (ct.length !== want) {
            throw new VolliError('bad_server_reply', `kem_ciphertext is ${ct.length} bytes, ` +
                                 `not ${want}`);
        }
        const th = new Uint8Array(await crypto.subtle.digest('SHA-256', concat(
            enc.encode('volli-pq-v1'), enc.encode(nonce), enc.encode(this.sessionId),
            this.pk, ct)));
        const sig = fromBase64(r.signature);
        const key = await crypto.subtle.importKey('raw', fromBase64(serverKey),
                                                  { name: 'Ed25519' }, false, ['verify']);
        if (!await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, th)) {
            throw new VolliError('bad_server_signature', 'the server\'s handshake signature ' +
                                 'does not verify with its key');
        }
        let ikm = await this.kem.decaps(ct.subarray(0, CT_LEN));
        if (this.x) {
            const peer = await crypto.subtle.importKey('raw', ct.subarray(CT_LEN),
                                                       { name: 'X25519' }, false, []);
            const ssx = new Uint8Array(await crypto.subtle.deriveBits(
                { name: 'X25519', public: peer }, this.x.privateKey, 256));
            ikm = concat(ikm, ssx);
        }
        const base = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveKey']);
        const derive = (label, usage) => crypto.subtle.deriveKey(
            { name: 'HKDF', hash: 'SHA-256', salt: th, info: enc.encode(label) }, base,
            { name: 'AES-GCM', length: 256 }, false, [usage]);
        const [tx, rx] = await Promise.all([derive('volli c2s', 'encrypt'),
                                            derive('volli s2c', 'decrypt')]);
        return new PqChannel(tx, rx, this.algorithm, this.kemName,
                             typeof r.expires_at === 'number' ? r.expires_at : null);
    }
}

function iv(seq) {
    const b = new Uint8Array(12);
    new DataView(b.buffer).setBigUint64(4, BigInt(seq));
    return b;
}

/** Keys and sequence numbers of one direction pair; seal/open keep N in step. */
export class PqChannel {
    constructor(tx, rx, algorithm, kemName, expiresAt) {
        this.tx = { key: tx, seq: 0 };
        this.rx = { key: rx, seq: 0 };
        this.algorithm = algorithm;
        this.kem = kemName;
        this.expiresAt = expiresAt;
    }

    /**
     * Seals the JSON text of a message. N is taken synchronously, so callers that send
     * the results in call order send them in N order.
     */
    seal(text) {
        const seq = this.tx.seq++;
        return crypto.subtle.encrypt({ name: 'AES-GCM', iv: iv(seq), additionalData: AAD },
                                     this.tx.key, enc.encode(text))
            .then((ct) => JSON.stringify({ type: 'enc', seq, ct: toBase64(new Uint8Array(ct)) }));
    }

    /**
     * Opens a parsed enc frame; resolves with the inner JSON text. Rejects with "pq_violation"
     * for a wrong N or a frame that does not decrypt (the caller drops the connection).
     */
    async open(frame) {
        if (frame?.type !== 'enc' || frame.seq !== this.rx.seq || typeof frame.ct !== 'string') {
            throw new VolliError('pq_violation', `unexpected frame from the server (expected ` +
                                 `enc N=${this.rx.seq})`);
        }
        this.rx.seq += 1;
        let pt;
        try {
            pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: iv(frame.seq),
                                               additionalData: AAD },
                                             this.rx.key, fromBase64(frame.ct));
            return dec.decode(pt);
        } catch {
            throw new VolliError('pq_violation', 'a frame from the server does not decrypt');
        }
    }
}

// --- the server's identity key -------------------------------------------------------------

const SERVER_KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

/** The http(s) origin that serves the well-known key of ws(s) URL url. */
export function wellKnownUrl(url) {
    const u = new URL(url);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.pathname = '/.well-known/volli/server.json';
    u.search = '';
    u.hash = '';
    return u.href;
}

/** Fetches the server key published at url's well-known address. */
export async function fetchServerKey(url) {
    let body;
    try {
        const res = await fetch(wellKnownUrl(url), { cache: 'no-store' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        body = await res.json();
    } catch (err) {
        throw new VolliError('server_key_unavailable', `cannot fetch the server key: ` +
                             `${err.message}`, { cause: err });
    }
    if (!SERVER_KEY_RE.test(body?.serverKey ?? '')) {
        throw new VolliError('server_key_unavailable', 'the well-known server key is malformed');
    }
    return body.serverKey;
}

const TOFU_PREFIX = 'volli.serverKey.';

/** A key remembered for url on first use (trust on first use), or null. */
export function rememberedServerKey(url) {
    try {
        return globalThis.localStorage?.getItem(TOFU_PREFIX + new URL(url).host) ?? null;
    } catch {
        return null; // storage disabled: trust lasts for the client's lifetime only
    }
}

export function rememberServerKey(url, key) {
    try {
        globalThis.localStorage?.setItem(TOFU_PREFIX + new URL(url).host, key);
    } catch {
        /* storage disabled */
    }
}

export function isServerKey(key) {
    return typeof key === 'string' && SERVER_KEY_RE.test(key);
}
