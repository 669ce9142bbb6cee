// Volli SDK identity keys: Ed25519 through WebCrypto, kept in IndexedDB per user id.
// Owns the "volli" IndexedDB database (object store "keys", keyed by the folded user id) and
// the register signature. The private key is generated non-extractable: it never leaves
// WebCrypto, and this module never logs or exports it.

import { VolliError, quiet } from './errors.js';

const DB_NAME = 'volli';
const DB_VERSION = 1;
const STORE = 'keys';
const USER_ID_RE = /^[a-z0-9._+@-]{1,128}$/;

/** The server's user id folding: ASCII A-Z to lower case, nothing else. */
export function foldUserId(id) {
    return String(id).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Whether id is a valid user id after folding (1 to 128 of [a-z0-9._+@-]). */
export function isValidUserId(id) {
    return typeof id === 'string' && USER_ID_RE.test(foldUserId(id));
}

/** Standard padded base64 of bytes (ArrayBuffer or Uint8Array). */
export function toBase64(bytes) {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) {
        s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    }
    return btoa(s);
}

function subtle() {
    if (!globalThis.crypto || !globalThis.crypto.subtle) {
        throw new VolliError('unsupported', 'WebCrypto is not available (the page must be ' +
                             'served over https or from localhost)');
    }
    return globalThis.crypto.subtle;
}

/** A fresh Ed25519 CryptoKeyPair whose private key cannot be exported. */
export async function generateKeys() {
    try {
        return await subtle().generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    } catch (err) {
        if (err instanceof VolliError) throw err;
        throw new VolliError('unsupported',
                             `this browser cannot create Ed25519 keys: ${err.message}`,
                             { cause: err });
    }
}

/** Standard base64 of the raw 32-byte public key of a CryptoKeyPair. */
export async function publicKeyBase64(keys) {
    const raw = await subtle().exportKey('raw', keys.publicKey);
    return toBase64(raw);
}

/** The register signature over "volli-register\n" + nonce + "\n" + folded user id. */
export async function signRegister(keys, nonce, foldedId) {
    const text = new TextEncoder().encode(`volli-register\n${nonce}\n${foldedId}`);
    const sig = await subtle().sign({ name: 'Ed25519' }, keys.privateKey, text);
    return toBase64(sig);
}

function request(req) {
    return new Promise((resolve, reject) => {
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
    });
}

function openDb() {
    if (!globalThis.indexedDB) {
        return Promise.reject(new VolliError('unsupported', 'IndexedDB is not available'));
    }
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    return request(req);
}

async function withStore(mode, fn) {
    const db = await openDb();
    try {
        const tx = db.transaction(STORE, mode);
        const done = quiet(new Promise((resolve, reject) => {
            tx.oncomplete = resolve;
            tx.onabort = () => reject(tx.error);
            tx.onerror = () => reject(tx.error);
        }));
        const result = await fn(tx.objectStore(STORE));
        await done;
        return result;
    } finally {
        db.close();
    }
}

/** The key pair stored for userId, or null. */
export async function loadKeys(userId) {
    const rec = await withStore('readonly', (s) => request(s.get(foldUserId(userId))));
    if (!rec || !rec.privateKey || !rec.publicKey) return null;
    return { privateKey: rec.privateKey, publicKey: rec.publicKey };
}

/** Stores keys (a CryptoKeyPair) for userId, replacing any pair stored before. */
export async function saveKeys(userId, keys) {
    const rec = { privateKey: keys.privateKey, publicKey: keys.publicKey, created: Date.now() };
    await withStore('readwrite', (s) => request(s.put(rec, foldUserId(userId))));
}

/** Forgets the key pair of userId (the server keeps the binding: the id is then lost). */
export async function deleteKeys(userId) {
    await withStore('readwrite', (s) => request(s.delete(foldUserId(userId))));
}

/** The stored key pair of userId, or a new one that is stored before it is returned. */
export async function loadOrCreateKeys(userId) {
    const found = await loadKeys(userId);
    if (found) return found;
    const keys = await generateKeys();
    const rec = { privateKey: keys.privateKey, publicKey: keys.publicKey, created: Date.now() };
    try {
        // add, not put: when two tabs create a pair at once, the first one stored wins and
        // both then use it, so they never register two different keys for one id.
        await withStore('readwrite', (s) => request(s.add(rec, foldUserId(userId))));
    } catch (err) {
        if (!err || err.name !== 'ConstraintError') throw err;
        const winner = await loadKeys(userId);
        if (winner) return winner;
        throw err;
    }
    return keys;
}
