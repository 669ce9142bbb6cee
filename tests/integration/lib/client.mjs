// A WebSocket test client for the v1 wire protocol, built on `ws`.
// Keeps every received frame (raw text and parsed JSON) in a queue so tests can wait for the
// next message matching a predicate, assert that nothing (else) arrived, and see the exact
// bytes the server sent. Every wait is bounded. Also: Ed25519 identities and the register
// signature construction ("volli-register\n" + nonce + "\n" + folded userId).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { foldAscii, scaled, sleep, withTimeout } from './util.mjs';

const clients = new Set();

/** Terminates every client still open (for after() hooks). */
export function closeAllClients() {
    for (const c of clients) c.terminate();
    clients.clear();
}

/** A fresh Ed25519 identity for userId: { userId, privateKey, publicKeyRaw, publicKey }. */
export function makeIdentity(userId) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    const publicKeyRaw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
    return { userId, privateKey, publicKeyRaw, publicKey: publicKeyRaw.toString('base64') };
}

/** Standard base64 Ed25519 signature of the register message for (nonce, signedId). */
export function signRegister(identity, nonce, signedId = foldAscii(identity.userId)) {
    const msg = Buffer.from(`volli-register\n${nonce}\n${signedId}`, 'utf8');
    return crypto.sign(null, msg, identity.privateKey).toString('base64');
}

let idCounter = 0;
/** A predicate for presence messages about id (going `online`, when given). */
export const isPresenceOf = (id, online) => (m) => m.type === 'presence' && m.userId === id &&
    (online === undefined || m.online === online);

export function nextId(prefix = 'r') {
    idCounter += 1;
    return `${prefix}${idCounter}`;
}

export class Client {
    constructor(ws) {
        this.ws = ws;
        this.queue = [];
        this.waiters = [];
        this.closeInfo = null;
        this.pings = 0;
        this.hello = null;
        clients.add(this);
        ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
        ws.on('ping', () => {
            this.pings += 1;
        });
        ws.on('error', (err) => {
            this.lastError = err;
        });
        this.closed = new Promise((resolve) => {
            ws.on('close', (code, reason) => {
                this.closeInfo = { code, reason: reason.toString('utf8') };
                clients.delete(this);
                for (const w of this.waiters.splice(0)) {
                    w.reject(new Error(`connection closed (code ${code}) while waiting for ` +
                                       `${w.what}; queued: ${this.describeQueue()}`));
                }
                resolve(this.closeInfo);
            });
        });
    }

    /**
     * Opens ws://127.0.0.1:port/path and waits for the server's hello.
     * Options: path ('/'), autoPong (true), timeout.
     */
    static async connect(port, { path = '/', autoPong = true, timeout = scaled(5000) } = {}) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, {
            autoPong,
            perMessageDeflate: false,
            handshakeTimeout: timeout,
            maxPayload: 16 * 1024 * 1024,
        });
        const c = new Client(ws);
        await withTimeout(new Promise((resolve, reject) => {
            ws.once('open', resolve);
            ws.once('error', reject);
        }), timeout, `WebSocket open on port ${port}${path}`);
        c.hello = await c.recv((m) => m.type === 'hello', timeout, 'hello');
        return c;
    }

    onFrame(data, isBinary) {
        const raw = isBinary ? data : data.toString('utf8');
        let msg;
        if (!isBinary) {
            try {
                msg = JSON.parse(raw);
            } catch {
                msg = undefined;
            }
        }
        const entry = { raw, msg, binary: isBinary };
        if (!this.isJsonObject(entry)) {
            // Every server frame must be one JSON object; fail whoever is waiting, loudly.
            this.badFrame = entry;
            for (const w of this.waiters.splice(0)) w.reject(this.badFrameError());
            return;
        }
        this.queue.push(entry);
        this.waiters = this.waiters.filter((w) => {
            if (!w.pred(entry.msg, entry)) return true;
            this.queue.splice(this.queue.indexOf(entry), 1);
            w.resolve(entry);
            return false;
        });
    }

    isJsonObject(entry) {
        return !entry.binary && entry.msg !== null && typeof entry.msg === 'object' &&
            !Array.isArray(entry.msg) && typeof entry.msg.type === 'string';
    }

    badFrameError() {
        const b = this.badFrame;
        return new Error(`server sent a ${b.binary ? 'binary frame' : 'text frame'} that is not ` +
                         `a JSON object with a string type: ${String(b.raw).slice(0, 300)}`);
    }

    matches(pred, entry) {
        return pred(entry.msg, entry);
    }

    describeQueue() {
        return JSON.stringify(this.queue.map((e) => String(e.raw).slice(0, 200)));
    }

    get isOpen() {
        return this.ws.readyState === WebSocket.OPEN;
    }

    send(obj) {
        this.ws.send(JSON.stringify(obj));
    }

    sendText(text) {
        this.ws.send(text, { binary: false });
    }

    sendBinary(buf) {
        this.ws.send(buf, { binary: true });
    }

    /**
     * Next queued or future frame {raw, msg} whose message matches pred; removed from queue.
     * An aborted `signal` withdraws the wait (so it cannot swallow a later message).
     */
    next(pred = () => true, ms = scaled(3000), what = 'a matching message', signal = null) {
        if (this.badFrame) return Promise.reject(this.badFrameError());
        for (const entry of this.queue) {
            if (this.matches(pred, entry)) {
                this.queue.splice(this.queue.indexOf(entry), 1);
                return Promise.resolve(entry);
            }
        }
        if (this.closeInfo) {
            return Promise.reject(new Error(`connection already closed (code ` +
                                            `${this.closeInfo.code}) before ${what}; queued: ` +
                                            `${this.describeQueue()}`));
        }
        let waiter;
        const p = new Promise((resolve, reject) => {
            waiter = { pred, resolve, reject, what };
            this.waiters.push(waiter);
            signal?.addEventListener('abort', () => reject(new Error(`gave up on ${what}`)));
        });
        return withTimeout(p, ms, `${what}; queued: ${this.describeQueue()}`).finally(() => {
            this.waiters = this.waiters.filter((w) => w !== waiter);
        });
    }

    /** Like next() but resolves with the parsed message only. */
    async recv(pred = () => true, ms = scaled(3000), what = 'a matching message') {
        return (await this.next(pred, ms, what)).msg;
    }

    /** The next message of the given type. */
    recvType(type, ms = scaled(3000)) {
        return this.recv((m) => m.type === type, ms, `a "${type}" message`);
    }

    /**
     * Waits for the next error and checks its shape: code, a string message, `id` equal to
     * the given one (or absent when id is undefined), and `to` when given.
     */
    async expectError(code, { id, to, ms = scaled(3000) } = {}) {
        const m = await this.recv((x) => x.type === 'error', ms, `error "${code}"`);
        assert.equal(m.code, code, `expected error ${code}, got ${JSON.stringify(m)}`);
        assert.equal(typeof m.message, 'string', `error without a string message: ` +
                     `${JSON.stringify(m)}`);
        if (id === undefined) {
            assert.ok(!('id' in m), `error should carry no id: ${JSON.stringify(m)}`);
        } else {
            assert.equal(m.id, id, `error should carry id ${id}: ${JSON.stringify(m)}`);
        }
        if (to !== undefined) assert.equal(m.to, to, `error should carry to: ${JSON.stringify(m)}`);
        return m;
    }

    /** Waits ms and fails if any queued message matches pred (default: any message at all). */
    async expectNone(ms, pred = () => true, what = 'no message') {
        await sleep(ms);
        if (this.badFrame) throw this.badFrameError();
        const hit = this.queue.find((e) => this.matches(pred, e));
        assert.equal(hit, undefined, `expected ${what}, but got ${hit && hit.raw}`);
    }

    /** Sends {type:"ping", id} and waits for the matching pong: proves the connection works. */
    async ping(ms = scaled(3000)) {
        const id = nextId('ping');
        this.send({ type: 'ping', id });
        const m = await this.recv((x) => x.type === 'pong' && x.id === id, ms, `pong ${id}`);
        return m;
    }

    /**
     * Sends a register for identity over this connection's nonce and returns the reply
     * (registered or error). Options override fields: userId, publicKey, signature, nonce,
     * signedId, id.
     */
    async register(identity, opts = {}) {
        const nonce = opts.nonce ?? this.hello.nonce;
        const msg = {
            type: 'register',
            userId: opts.userId ?? identity.userId,
            publicKey: opts.publicKey ?? identity.publicKey,
            signature: opts.signature ?? signRegister(identity, nonce, opts.signedId),
        };
        if (opts.id !== undefined) msg.id = opts.id;
        this.send(msg);
        return this.recv((m) => m.type === 'registered' || m.type === 'error',
                         opts.ms ?? scaled(3000), `reply to register ${msg.userId}`);
    }

    /** Registers and asserts success; returns the registered message. */
    async registerOk(identity, opts = {}) {
        const m = await this.register(identity, opts);
        assert.equal(m.type, 'registered', `register failed: ${JSON.stringify(m)}`);
        assert.equal(m.userId, foldAscii(identity.userId));
        this.userId = m.userId;
        this.identity = identity;
        return m;
    }

    /** Waits for the server to close the connection; resolves with {code, reason}. */
    waitClose(ms = scaled(3000)) {
        return withTimeout(this.closed, ms, 'the connection to close');
    }

    /** Closes with a normal close frame and waits until the close completes. */
    async close(ms = scaled(3000)) {
        if (this.closeInfo) return this.closeInfo;
        this.ws.close(1000);
        try {
            return await withTimeout(this.closed, ms, 'close handshake');
        } catch {
            this.ws.terminate();
            return this.closed;
        }
    }

    terminate() {
        this.ws.terminate();
    }
}

/**
 * Connects and registers; `who` is a user id (a fresh identity is made for it) or an
 * identity from makeIdentity() (to register the same user again). Resolves with the client.
 */
export async function connectAs(port, who, opts = {}) {
    const c = await Client.connect(port, opts);
    await c.registerOk(typeof who === 'string' ? makeIdentity(who) : who);
    return c;
}

/**
 * Polls discover from the registered client `observer` until userId shows offline. A close
 * is only guaranteed to be reflected within 1 s (contract rule 5), so tests that need a
 * user to be offline right after closing it wait here first.
 */
export async function waitOffline(observer, userId, ms = scaled(1000)) {
    const deadline = Date.now() + ms;
    for (;;) {
        const id = nextId('off');
        observer.send({ type: 'discover', userId, id });
        const m = await observer.recv((x) => x.type === 'discover' && x.id === id);
        if (m.online === false) return;
        assert.ok(Date.now() < deadline, `${userId} still online ${ms} ms after closing`);
        await sleep(20);
    }
}
