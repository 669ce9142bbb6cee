// Volli SDK entry module: one VolliClient keeps one WebSocket session to one of its servers.
// It registers with the user's Ed25519 key, answers requests by id with timeouts, and when the
// connection drops it reconnects (exponential backoff with full jitter, moving through the
// server list), registers again and restores every presence subscription by itself. Calls
// (WebRTC signaling) live in calls.js. This module never logs keys, signatures or payloads.
//
// Plain ES modules, no build step: import { Volli } from '/sdk/volli.js'.

import { CallManager } from './calls.js';
import { VolliError } from './errors.js';
import {
    fetchServerKey, isServerKey, PQ_ALGORITHMS, PqHandshake, rememberedServerKey,
    rememberServerKey,
} from './pq.js';
import {
    deleteKeys, foldUserId, generateKeys, isValidUserId, loadKeys, loadOrCreateKeys,
    publicKeyBase64, saveKeys, signRegister,
} from './keys.js';

export { VolliError } from './errors.js';
export {
    deleteKeys, foldUserId, generateKeys, isValidUserId, loadKeys, loadOrCreateKeys,
    publicKeyBase64, saveKeys,
} from './keys.js';

export const VERSION = '1.0.0';

const DEFAULTS = {
    requestTimeout: 10000, // ms for any request, hello and register (as the C library)
    backoffInitial: 200, // ms: first reconnect delay cap
    backoffMax: 10000, // ms: largest reconnect delay cap
    connectTimeout: 15000, // ms: connect() gives up with "unreachable" after this
    keepAlive: 25000, // ms between liveness pings while registered (0: off)
    ringTimeout: 30000, // ms an outgoing call waits for an answer / an incoming one rings
    iceServers: [],
    persistKeys: true,
    pq: false, // 'ML-KEM-768' | 'X25519MLKEM768' | true (= 'ML-KEM-768') | false
    serverKey: 'tofu', // a pinned base64 Ed25519 key | 'well-known' | 'tofu'
};

const MAX_BATCH = 100;
// Register errors that no retry can fix: the session stops instead of reconnecting.
const FATAL_REGISTER = new Set(['key_mismatch', 'bad_signature', 'invalid_user_id',
                                'already_registered', 'bad_request', 'pq_unavailable',
                                'bad_server_signature', 'server_key_mismatch',
                                'pq_key_mismatch']);
const RELAY_TYPES = new Set(['offer', 'answer', 'ice-candidate', 'bye']);
const PAYLOAD_MEMBER = { offer: 'offer', answer: 'answer', 'ice-candidate': 'candidate',
                         bye: 'reason' };

/** The page's own origin as a WebSocket URL (ws://host/ or wss://host/), or null. */
export function defaultServer() {
    const loc = globalThis.location;
    if (!loc || !/^https?:$/.test(loc.protocol)) return null;
    return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/`;
}

function toIdList(ids) {
    const list = Array.isArray(ids) ? ids : [ids];
    const out = [];
    for (const id of list) {
        if (typeof id !== 'string') {
            throw new VolliError('bad_request', 'user ids must be strings');
        }
        const f = foldUserId(id);
        if (!out.includes(f)) out.push(f);
    }
    return out;
}

function chunks(list, n) {
    const out = [];
    for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
    return out;
}

export class VolliClient extends EventTarget {
    /**
     * options: servers (array of ws:// URLs; default the page's origin), userId (required),
     * keys (a CryptoKeyPair; default: loaded from or created in IndexedDB), iceServers,
     * requestTimeout, backoffInitial, backoffMax, connectTimeout, keepAlive, ringTimeout,
     * persistKeys (false: never touch IndexedDB; a fresh key pair per client unless `keys`),
     * pq (the post-quantum session: 'ML-KEM-768', 'X25519MLKEM768', true for 'ML-KEM-768',
     * or false), serverKey (with pq: the server's pinned base64 Ed25519 key, 'well-known' to
     * fetch it from the server's origin, or 'tofu': trust the key of the first handshake).
     */
    constructor(options = {}) {
        super();
        const opts = { ...DEFAULTS, ...options };
        if (!isValidUserId(opts.userId)) {
            throw new VolliError('invalid_user_id', 'userId must be 1 to 128 characters of ' +
                                 'a-z 0-9 . _ + @ -');
        }
        if (opts.pq === true) opts.pq = PQ_ALGORITHMS[0];
        if (opts.pq !== false && opts.pq != null && !PQ_ALGORITHMS.includes(opts.pq)) {
            throw new VolliError('bad_request', `pq must be false or one of ` +
                                 `${PQ_ALGORITHMS.join(', ')}`);
        }
        if (opts.pq && !['tofu', 'well-known'].includes(opts.serverKey) &&
            !isServerKey(opts.serverKey)) {
            throw new VolliError('bad_request', 'serverKey must be a base64 Ed25519 key, ' +
                                 '"well-known" or "tofu"');
        }
        let servers = opts.servers ?? [];
        if (typeof servers === 'string') servers = [servers];
        if (!servers.length) {
            const d = defaultServer();
            if (!d) throw new VolliError('bad_request', 'no server URL given');
            servers = [d];
        }
        this.options = opts;
        this.servers = servers.map(String);
        this.userId = foldUserId(opts.userId);
        this.keys = opts.keys ?? null;
        this.publicKey = null;
        this.onIncomingCall = null;
        this.incomingListeners = new Set();
        this.state = 'idle'; // idle | connecting | open | registered | closed
        this.server = null; // the URL of the current (or last) connection
        this.ws = null;
        this.serverIndex = 0;
        this.attempt = 0;
        this.everRegistered = false;
        this.reconnectTimer = null;
        this.keepAliveTimer = null;
        this.attemptTimer = null;
        this.pending = new Map();
        this.waiters = new Set(); // resolvers waiting for "registered"
        this.subs = new Map(); // folded id -> { online, entries: Set<entry> }
        this.seq = 0;
        this.idPrefix = Math.random().toString(36).slice(2, 8);
        this.calls = new CallManager(this);
        this.pq = null; // the PqChannel of the current connection
        this.pqPending = null; // { handshake, nonce, serverKey } while a handshake is out
        this.pqHeld = null; // texts sent during a rekey, sealed once the new keys are in
        this.pqTrusted = new Map(); // server URL -> key trusted for this client's lifetime
        this.pqRekeys = 0;
        this.inbox = Promise.resolve();
        this.onOnline = () => {
            if (this.reconnectTimer) this.reconnectNow();
        };
    }

    addEventListener(type, fn, opts) {
        super.addEventListener(type, fn, opts);
        // Whether anyone takes calls decides between ringing and declining "unavailable".
        if (type === 'incomingcall' && fn) this.incomingListeners.add(fn);
    }

    removeEventListener(type, fn, opts) {
        super.removeEventListener(type, fn, opts);
        if (type === 'incomingcall') this.incomingListeners.delete(fn);
    }

    /** Adds a listener that receives the event's detail; returns a function removing it. */
    on(type, fn) {
        const wrapped = (ev) => fn(ev.detail);
        this.addEventListener(type, wrapped);
        return () => this.removeEventListener(type, wrapped);
    }

    emit(type, detail = {}) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    get registered() {
        return this.state === 'registered';
    }

    /**
     * Opens the session. Resolves once registered; rejects with a VolliError whose code is
     * the server's register error ("key_mismatch", ...), or "unreachable" when no server could
     * be reached (each tried once, or connectTimeout passed). After a rejection the client is
     * closed. Later connection losses are repaired by reconnecting, not reported here.
     */
    connect() {
        if (this.connectPromise) return this.connectPromise;
        this.connectPromise = new Promise((resolve, reject) => {
            this.connectResult = { resolve, reject };
        });
        this.connectTimer = setTimeout(() => {
            this.fail(new VolliError('unreachable', `no Volli server answered within ` +
                                     `${this.options.connectTimeout} ms`));
        }, this.options.connectTimeout);
        globalThis.addEventListener?.('online', this.onOnline);
        this.prepareKeys().then(() => {
            if (this.state === 'idle') this.open();
        }, (err) => this.fail(err instanceof VolliError ? err
            : new VolliError('unsupported', `cannot prepare keys: ${err.message}`,
                             { cause: err })));
        return this.connectPromise;
    }

    async prepareKeys() {
        if (!this.keys) {
            this.keys = this.options.persistKeys ? await loadOrCreateKeys(this.userId)
                : await generateKeys();
        }
        this.publicKey = await publicKeyBase64(this.keys);
    }

    /** Stops for good: ends every call, closes the socket, rejects pending requests. */
    close() {
        if (this.state === 'closed') return;
        this.state = 'closed';
        globalThis.removeEventListener?.('online', this.onOnline);
        clearTimeout(this.reconnectTimer);
        clearTimeout(this.connectTimer);
        clearTimeout(this.attemptTimer);
        clearInterval(this.keepAliveTimer);
        this.reconnectTimer = null;
        this.calls.closeAll('closed');
        this.rejectPending(new VolliError('closed', 'the client was closed'));
        for (const w of this.waiters) w.reject(new VolliError('closed', 'the client was closed'));
        this.waiters.clear();
        if (this.ws) {
            const ws = this.ws;
            this.ws = null;
            ws.onclose = ws.onerror = ws.onmessage = ws.onopen = null;
            try {
                ws.close(1000);
            } catch {
                /* already closing */
            }
        }
        this.emit('closed', {});
    }

    // A fatal failure: rejects connect() if it is still pending, reports, and closes.
    fail(err) {
        if (this.state === 'closed') return;
        if (this.connectResult) {
            this.connectResult.reject(err);
            this.connectResult = null;
        }
        this.emit('error', { code: err.code, message: err.message, error: err });
        this.close();
    }

    open() {
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        const url = this.servers[this.serverIndex % this.servers.length];
        this.server = url;
        this.state = 'connecting';
        let ws;
        try {
            ws = new WebSocket(url);
        } catch (err) {
            // A malformed URL: count it as a failed attempt so the next server is tried.
            this.onAttemptFailed(url, 0, err.message);
            return;
        }
        this.ws = ws;
        this.pq = null;
        this.pqPending = null;
        this.pqHeld = null;
        this.inbox = Promise.resolve();
        // Neither the socket nor hello nor register may hang: bound the whole handshake.
        this.attemptTimer = setTimeout(() => {
            if (this.ws === ws) ws.close();
            this.onSocketClosed(ws, 0, 'handshake timed out');
        }, this.options.requestTimeout);
        ws.onmessage = (ev) => this.onMessage(ws, ev.data);
        ws.onclose = (ev) => this.onSocketClosed(ws, ev.code, ev.reason);
        ws.onerror = () => {
            /* onclose follows with the details */
        };
    }

    onSocketClosed(ws, code, reason) {
        if (this.ws !== ws) return;
        this.ws = null;
        ws.onclose = ws.onerror = ws.onmessage = null;
        clearTimeout(this.attemptTimer);
        clearInterval(this.keepAliveTimer);
        const wasRegistered = this.state === 'registered';
        this.rejectPending(new VolliError('not_connected',
                                          'the connection to the server was lost'));
        if (this.state === 'closed') return;
        if (code === 4000) {
            // Replaced by a newer session of this user elsewhere: reconnecting would evict it.
            this.fail(new VolliError('replaced', 'this user connected from somewhere else'));
            return;
        }
        if (wasRegistered) {
            this.attempt = 0; // a drop of a working session: retry this server first, soon
            this.scheduleReconnect(this.server, code, reason);
        } else {
            this.onAttemptFailed(this.server, code, reason);
        }
    }

    onAttemptFailed(url, code, reason) {
        this.serverIndex += 1;
        if (!this.everRegistered && this.serverIndex >= this.servers.length) {
            this.state = 'idle';
            const where = this.servers.length === 1 ? this.servers[0]
                : `any of ${this.servers.join(', ')}`;
            this.fail(new VolliError('unreachable', `cannot reach the Volli server at ${where}`));
            return;
        }
        this.scheduleReconnect(url, code, reason);
    }

    scheduleReconnect(url, code, reason) {
        const { backoffInitial, backoffMax } = this.options;
        const cap = Math.min(backoffMax, backoffInitial * 2 ** Math.min(this.attempt, 30));
        const delay = Math.floor(Math.random() * cap); // full jitter
        this.attempt += 1;
        this.state = 'idle';
        this.emit('disconnected', { server: url, code, reason: reason || '', reconnectIn: delay });
        this.reconnectTimer = setTimeout(() => this.open(), delay);
    }

    // The server is draining: leave it now, before it closes us, for the next server (no
    // backoff); registration and subscriptions are restored there as after any reconnect.
    moveToNextServer(reason) {
        const ws = this.ws;
        if (!ws || this.state === 'closed') return;
        this.ws = null;
        ws.onclose = ws.onerror = ws.onmessage = null;
        clearTimeout(this.attemptTimer);
        clearInterval(this.keepAliveTimer);
        this.rejectPending(new VolliError('not_connected', 'the server asked to reconnect elsewhere'));
        try {
            ws.close(1000);
        } catch {
            /* already closing */
        }
        this.serverIndex += 1;
        this.attempt = 0;
        this.state = 'idle';
        this.emit('disconnected', { server: this.server, code: 1000,
                                    reason: `server asked to reconnect (${reason || 'draining'})`,
                                    reconnectIn: 0 });
        this.open();
    }

    reconnectNow() {
        clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        if (this.state === 'idle') this.open();
    }

    rejectPending(err) {
        for (const entry of this.pending.values()) {
            clearTimeout(entry.timer);
            entry.reject(err);
        }
        this.pending.clear();
    }

    rawSend(obj) {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
            throw new VolliError('not_connected', 'not connected to a server');
        }
        const text = JSON.stringify(obj);
        if (this.pqHeld) this.pqHeld.push(text);
        else if (this.pq) this.sendSealed(this.ws, text);
        else this.ws.send(text);
    }

    // Sealing is asynchronous but takes N at once: chaining the sends keeps them in N order.
    sendSealed(ws, text) {
        const sealed = this.pq.seal(text);
        this.outbox = (this.outbox ?? Promise.resolve()).then(() => sealed).then((frame) => {
            if (this.ws === ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
        }, () => this.dropConnection(ws, 'sealing a frame failed'));
    }

    dropConnection(ws, why) {
        if (this.ws !== ws) return;
        try {
            ws.close(1000);
        } catch {
            /* already closing */
        }
        this.onSocketClosed(ws, 0, why);
    }

    onMessage(ws, data) {
        if (this.ws !== ws) return;
        if (!this.options.pq) {
            this.onText(ws, data);
            return;
        }
        // Opening frames is asynchronous; the chain keeps them in order, and lets a handshake
        // response install its keys before the next frame (sealed under them) is read.
        this.inbox = this.inbox.then(() => this.onPqFrame(ws, data)).catch((err) => {
            this.emit('error', { code: err.code ?? 'pq_violation', message: err.message,
                                 error: err });
            this.dropConnection(ws, err.message);
        });
    }

    async onPqFrame(ws, data) {
        if (this.ws !== ws) return;
        if (typeof data !== 'string') {
            throw new VolliError('pq_violation', 'a binary frame from the server');
        }
        if (!this.pq) {
            // Before the session only hello and the handshake's answer are plaintext.
            let m = null;
            try {
                m = JSON.parse(data);
            } catch {
                /* refused below */
            }
            if (m?.type === 'hello') {
                this.onText(ws, data);
                return;
            }
            if (!this.pqPending || !['pq_handshake_response', 'error'].includes(m?.type)) {
                throw new VolliError('pq_violation', `a plaintext ${m?.type ?? 'frame'} from ` +
                                     'the server before the post-quantum session');
            }
            if (m.type === 'pq_handshake_response' && !await this.finishPq(m)) return;
            this.onText(ws, data);
            return;
        }
        let m;
        try {
            m = JSON.parse(data);
        } catch {
            throw new VolliError('pq_violation', 'a plaintext frame inside the session');
        }
        const text = await this.pq.open(m);
        if (this.ws !== ws) return;
        let inner = null;
        try {
            inner = JSON.parse(text);
        } catch {
            /* handled as before: ignored */
        }
        if (inner?.type === 'pq_handshake_response' && this.pqPending &&
            !await this.finishPq(inner)) {
            return;
        }
        if (inner?.type === 'rekey_required') {
            this.rekey().catch((err) => {
                if (err.code !== 'not_connected' && err.code !== 'closed') {
                    this.emit('error', { code: err.code, message: `rekey failed: ${err.message}`,
                                         error: err });
                }
            });
            return;
        }
        this.onText(ws, text);
    }

    // Checks a handshake response and switches to its keys (N back at 0 both ways); texts
    // held during a rekey then go out sealed under the new keys. A response that fails the
    // checks rejects the handshake request instead (false) and ends the connection.
    async finishPq(r) {
        const p = this.pqPending;
        this.pqPending = null;
        let channel;
        try {
            channel = await p.handshake.finish(r, p.nonce, p.serverKey);
        } catch (err) {
            const entry = this.pending.get(p.id);
            if (entry) {
                this.pending.delete(p.id);
                clearTimeout(entry.timer);
                entry.reject(err);
            }
            return false;
        }
        this.pq = channel;
        if (!this.pqTrusted.has(this.server)) {
            this.pqTrusted.set(this.server, p.serverKey);
            if (this.options.serverKey === 'tofu' && this.options.persistKeys) {
                rememberServerKey(this.server, p.serverKey);
            }
        }
        const held = this.pqHeld ?? [];
        this.pqHeld = null;
        for (const text of held) this.sendSealed(this.ws, text);
        return true;
    }

    // The key the handshake signature must verify with (see the serverKey option).
    async serverKeyFor(hello) {
        const mode = this.options.serverKey;
        let key;
        if (isServerKey(mode)) key = mode;
        else if (mode === 'well-known') key = await fetchServerKey(this.server);
        else {
            key = this.pqTrusted.get(this.server) ?? rememberedServerKey(this.server) ??
                hello.serverKey;
        }
        if (!isServerKey(key)) {
            throw new VolliError('pq_unavailable', 'the server announced no identity key');
        }
        if (hello.serverKey !== key) {
            throw new VolliError('server_key_mismatch', 'the server\'s identity key is not the ' +
                                 'trusted one');
        }
        return key;
    }

    /** Runs a post-quantum handshake: the first in plaintext, a rekey inside the session. */
    async pqHandshake(nonce, serverKey, algorithm = this.options.pq) {
        const handshake = await PqHandshake.create(algorithm);
        const ws = this.ws;
        if (!ws) throw new VolliError('not_connected', 'the connection to the server was lost');
        const rekey = !!this.pq;
        const reply = this.request(handshake.message(), (r, done) =>
            r.type === 'pq_handshake_response' && done(r));
        this.pqPending = { handshake, nonce, serverKey, id: `${this.idPrefix}${this.seq}` };
        // The server takes the new keys right after answering: nothing else may go out under
        // the old ones once the rekey request is on its way.
        if (rekey) this.pqHeld = [];
        try {
            await reply;
        } catch (err) {
            this.pqPending = null;
            if (rekey && this.ws === ws && err.code !== 'bad_server_signature' &&
                err.code !== 'bad_server_reply' && err.code !== 'not_connected') {
                // Refused: the server kept the old keys, so the held texts go out under them.
                const held = this.pqHeld ?? [];
                this.pqHeld = null;
                for (const text of held) this.sendSealed(ws, text);
            } else if (this.ws === ws && rekey) {
                this.dropConnection(ws, `rekey failed: ${err.code}`);
            }
            if (err.code === 'unknown_type') {
                throw new VolliError('pq_unavailable', 'the server does not speak the ' +
                                     'post-quantum session', { cause: err });
            }
            throw err;
        }
    }

    /**
     * Replaces the session keys with those of a new handshake (the server asks for this with
     * rekey_required when they expire; the client may do it at any time).
     */
    async rekey() {
        if (!this.pq) throw new VolliError('not_connected', 'no post-quantum session');
        if (this.pqPending) return;
        await this.pqHandshake(this.pqNonce, this.pqTrusted.get(this.server), this.pq.algorithm);
        this.pqRekeys += 1;
    }

    /** The post-quantum session of the current connection, or null. */
    get pqSession() {
        if (!this.pq) return null;
        return { algorithm: this.pq.algorithm, kem: this.pq.kem, expiresAt: this.pq.expiresAt,
                 serverKey: this.pqTrusted.get(this.server) ?? null, rekeys: this.pqRekeys };
    }

    onText(ws, data) {
        if (this.ws !== ws || typeof data !== 'string') return;
        let m;
        try {
            m = JSON.parse(data);
        } catch {
            return;
        }
        if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
        // Relayed messages keep the sender's own `id`: never mistake them for our replies.
        if (RELAY_TYPES.has(m.type)) {
            if (this.state === 'registered' && typeof m.from === 'string') this.calls.handle(m);
            return;
        }
        if (m.type === 'hello') {
            this.onHello(m);
            return;
        }
        if (m.type === 'reconnect') {
            this.moveToNextServer(m.reason);
            return;
        }
        if (m.type === 'presence' && typeof m.userId === 'string') {
            this.onPresence(m.userId, m.online === true);
        }
        if (typeof m.id === 'string' && this.pending.has(m.id)) {
            this.onReply(m);
            return;
        }
        if (m.type === 'error' && m.code === 'replaced') {
            // The same user registered elsewhere; the 4000 close that follows changes nothing.
            this.fail(new VolliError('replaced', 'this user connected from somewhere else'));
            return;
        }
        if (m.type === 'error') {
            this.emit('error', { code: m.code, message: m.message,
                                 error: new VolliError(m.code, m.message, { to: m.to }) });
        }
    }

    onReply(m) {
        const entry = this.pending.get(m.id);
        const finish = (err, value) => {
            this.pending.delete(m.id);
            clearTimeout(entry.timer);
            if (err) entry.reject(err);
            else entry.resolve(value);
        };
        if (m.type === 'error') {
            finish(new VolliError(m.code, m.message || m.code, m.to ? { to: m.to } : {}));
        } else {
            entry.onReply(m, (value) => finish(null, value));
        }
    }

    /** Sends msg with a fresh id; onReply(reply, done) calls done(value) when complete. */
    request(msg, onReply, timeout = this.options.requestTimeout) {
        this.seq += 1;
        const id = `${this.idPrefix}${this.seq}`;
        return new Promise((resolve, reject) => {
            const entry = { resolve, reject, onReply };
            entry.timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new VolliError('timeout', `no reply to ${msg.type} within ${timeout} ms`));
            }, timeout);
            this.pending.set(id, entry);
            try {
                this.rawSend({ ...msg, id });
            } catch (err) {
                clearTimeout(entry.timer);
                this.pending.delete(id);
                reject(err);
            }
        });
    }

    async onHello(m) {
        if (this.state !== 'connecting' || typeof m.nonce !== 'string') return;
        this.state = 'open';
        this.emit('connected', { server: this.server });
        const ws = this.ws;
        let reply;
        try {
            if (this.options.pq) {
                if (!Array.isArray(m.pq) || !m.pq.includes(this.options.pq)) {
                    throw new VolliError('pq_unavailable', `the server does not offer ` +
                                         `${this.options.pq}`);
                }
                const serverKey = await this.serverKeyFor(m);
                if (this.ws !== ws) return;
                this.pqNonce = m.nonce;
                await this.pqHandshake(m.nonce, serverKey);
                if (this.ws !== ws) return;
            }
            const signature = await signRegister(this.keys, m.nonce, this.userId);
            if (this.ws !== ws) return;
            reply = await this.request({ type: 'register', userId: this.userId,
                                         publicKey: this.publicKey, signature },
                                       (r, done) => r.type === 'registered' && done(r));
        } catch (err) {
            if (this.ws !== ws) return;
            if (err.code === 'not_connected' || err.code === 'timeout') {
                ws.close();
                this.onSocketClosed(ws, 0, `register failed: ${err.code}`);
                return;
            }
            // Before the first registration every refusal goes back to connect() with its
            // code (e.g. rate_limited); later only those no retry can fix stop the client.
            if (FATAL_REGISTER.has(err.code) || err.code === 'unsupported' ||
                !this.everRegistered) {
                this.fail(err);
            } else {
                ws.close();
                this.onSocketClosed(ws, 0, `register failed: ${err.code}`);
            }
            return;
        }
        if (this.ws !== ws) return;
        clearTimeout(this.attemptTimer);
        clearTimeout(this.connectTimer);
        this.state = 'registered';
        this.everRegistered = true;
        this.attempt = 0;
        this.startKeepAlive(ws);
        this.emit('registered', { userId: reply.userId, server: this.server });
        for (const w of this.waiters) w.resolve();
        this.waiters.clear();
        if (this.connectResult) {
            this.connectResult.resolve(this);
            this.connectResult = null;
        }
        this.restoreSubscriptions();
    }

    startKeepAlive(ws) {
        if (!this.options.keepAlive) return;
        // A browser cannot see WebSocket pings; our own pings find half-open connections.
        this.keepAliveTimer = setInterval(() => {
            this.ping().catch((err) => {
                if (this.ws === ws && err.code === 'timeout') {
                    ws.close();
                    this.onSocketClosed(ws, 0, 'keep-alive timed out');
                }
            });
        }, this.options.keepAlive);
    }

    /** Resolves once registered (at once if it is), or rejects after the request timeout. */
    waitRegistered(timeout = this.options.requestTimeout) {
        if (this.state === 'registered') return Promise.resolve();
        if (this.state === 'closed' || !this.connectPromise) {
            const code = this.state === 'closed' ? 'closed' : 'not_connected';
            return Promise.reject(new VolliError(code, 'the client is not connected'));
        }
        return new Promise((resolve, reject) => {
            const w = {
                resolve: () => {
                    clearTimeout(timer);
                    resolve();
                },
                reject: (err) => {
                    clearTimeout(timer);
                    reject(err);
                },
            };
            const timer = setTimeout(() => {
                this.waiters.delete(w);
                reject(new VolliError('not_connected', 'not registered with a server'));
            }, timeout);
            this.waiters.add(w);
        });
    }

    /** Round trip to the server; resolves with the time taken in ms. */
    async ping() {
        const t0 = performance.now();
        await this.request({ type: 'ping' }, (r, done) => r.type === 'pong' && done());
        return performance.now() - t0;
    }

    /**
     * discover('bob') resolves with {userId, online, publicKey}; discover([ids]) with an
     * array of those in request order (batches over 100 ids are split).
     */
    async discover(ids) {
        const single = !Array.isArray(ids);
        const list = toIdList(ids);
        if (!list.length) throw new VolliError('bad_request', 'no user ids given');
        await this.waitRegistered();
        const pick = (u) => ({ userId: u.userId, online: u.online === true,
                               publicKey: u.publicKey ?? null });
        if (single) {
            return this.request({ type: 'discover', userId: list[0] },
                                (r, done) => r.type === 'discover' && done(pick(r)));
        }
        const parts = await Promise.all(chunks(list, MAX_BATCH).map((ch) => this.request(
            { type: 'discover', userIds: ch },
            (r, done) => r.type === 'discover' && Array.isArray(r.users) &&
                done(r.users.map(pick)))));
        return parts.flat();
    }

    /**
     * Subscribes to the presence of ids; onPresence({userId, online}) is called with the
     * current state of each id and then on every change. Resolves with a function that
     * unsubscribes. The subscription survives reconnects. If the client is not registered
     * at the moment, it resolves at once and subscribes when registered.
     */
    async subscribe(ids, onPresence = () => {}) {
        const list = toIdList(ids);
        if (!list.length) throw new VolliError('bad_request', 'no user ids given');
        for (const id of list) {
            if (!isValidUserId(id)) {
                throw new VolliError('invalid_user_id', `invalid user id: ${id}`);
            }
        }
        const entry = { fn: onPresence, last: new Map(), ids: list };
        for (const id of list) {
            let s = this.subs.get(id);
            if (!s) {
                s = { online: undefined, entries: new Set() };
                this.subs.set(id, s);
            }
            s.entries.add(entry);
        }
        const unsubscribe = () => this.unsubscribeEntry(entry);
        if (this.state === 'registered') {
            try {
                await this.subscribeWire(list);
            } catch (err) {
                if (err.code !== 'not_connected') {
                    unsubscribe();
                    throw err;
                }
                // Lost the connection meanwhile: the restore after reconnecting covers it.
            }
        }
        return unsubscribe;
    }

    subscribeWire(list) {
        return Promise.all(chunks(list, MAX_BATCH).map((ch) => {
            let left = ch.length;
            return this.request({ type: 'subscribe', userIds: ch },
                                (r, done) => r.type === 'presence' && --left === 0 && done());
        }));
    }

    unsubscribeEntry(entry) {
        const gone = [];
        for (const id of entry.ids) {
            const s = this.subs.get(id);
            if (!s || !s.entries.delete(entry)) continue;
            if (s.entries.size === 0) {
                this.subs.delete(id);
                gone.push(id);
            }
        }
        if (gone.length && this.state === 'registered') {
            for (const ch of chunks(gone, MAX_BATCH)) {
                try {
                    this.rawSend({ type: 'unsubscribe', userIds: ch });
                } catch {
                    /* disconnected: the subscription ended with the connection */
                }
            }
        }
    }

    restoreSubscriptions() {
        const ids = [...this.subs.keys()];
        if (!ids.length) return;
        this.subscribeWire(ids).catch((err) => {
            if (err.code !== 'not_connected' && err.code !== 'closed') {
                this.emit('error', { code: err.code, message: `restoring presence ` +
                                     `subscriptions failed: ${err.message}`, error: err });
            }
        });
    }

    onPresence(userId, online) {
        const s = this.subs.get(userId);
        if (!s) return;
        const changed = s.online !== online;
        s.online = online;
        if (changed) this.emit('presence', { userId, online });
        for (const entry of s.entries) {
            if (entry.last.get(userId) === online) continue;
            entry.last.set(userId, online);
            try {
                entry.fn({ userId, online });
            } catch (err) {
                queueMicrotask(() => {
                    throw err;
                });
            }
        }
    }

    /** Last known presence of a subscribed id: true, false, or undefined (not known). */
    presenceOf(userId) {
        return this.subs.get(foldUserId(userId))?.online;
    }

    /**
     * Relays a signaling message: type is offer | answer | ice-candidate | bye; payload is the
     * offer / answer / candidate (for bye: the reason, or undefined); extra members are sent
     * along unchanged. Resolves when the server accepted it (a ping round trip without an
     * error), rejects with "peer_offline" (err.to set) and other wire codes.
     */
    async send(to, type, payload, extra = {}) {
        if (!RELAY_TYPES.has(type)) {
            throw new VolliError('bad_request', `not a relay type: ${type}`);
        }
        await this.waitRegistered();
        const msg = { ...extra, type, to: foldUserId(to) };
        if (payload !== undefined) msg[PAYLOAD_MEMBER[type]] = payload;
        else if (type !== 'bye') throw new VolliError('bad_request', `${type} needs a payload`);
        // A successful relay has no reply; an error would arrive before the pong of a ping
        // sent right after it, because the server answers one connection in order.
        this.seq += 1;
        const id = `${this.idPrefix}${this.seq}`;
        let failed = null;
        this.pending.set(id, { onReply: () => {}, resolve: () => {}, reject: (err) => {
            failed = err;
        } });
        try {
            this.rawSend({ ...msg, id });
        } catch (err) {
            this.pending.delete(id);
            throw err;
        }
        let pingError = null;
        try {
            await this.ping();
        } catch (err) {
            pingError = err;
        }
        this.pending.delete(id);
        if (failed) throw failed;
        if (pingError) throw pingError;
    }

    /**
     * Calls userId. options: audio, video (booleans or MediaTrackConstraints), data (a data
     * channel "volli"), stream (a MediaStream to send instead of getUserMedia's).
     * Resolves with the RTCPeerConnection once the callee answered. See docs/sdk.md.
     */
    call(userId, options = {}) {
        return this.calls.call(userId, options);
    }

    /** Ends the call with userId (sends bye, closes the peer connection). */
    hangup(userId, reason = 'hangup') {
        return this.calls.hangup(userId, reason);
    }

    /** The current calls: [{peer, state, role, pc}]. */
    get activeCalls() {
        return this.calls.list();
    }
}

/** The SDK's namespace object. */
export const Volli = {
    VERSION,
    /** Creates a client and connects it; resolves with the client once registered. */
    async connect(options) {
        const client = new VolliClient(options);
        await client.connect();
        return client;
    },
    Client: VolliClient,
    Error: VolliError,
    defaultServer,
    generateKeys,
    loadKeys,
    saveKeys,
    deleteKeys,
    loadOrCreateKeys,
    publicKeyBase64,
    foldUserId,
    isValidUserId,
};

export default Volli;
