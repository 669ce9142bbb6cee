// A minimal signaling relay on Node's `ws`, the baseline the benchmark compares Volli Signal
// with. It speaks the same wire format as Volli Signal for what the benchmark uses:
//   server -> {"type":"hello","version":1,"nonce":N}
//   {"type":"register","userId":U,"publicKey":K,"signature":S} -> {"type":"registered",...}
//     (the Ed25519 signature over "volli-register\n" + N + "\n" + U is verified, as ours does;
//      nothing is stored: there is no key binding)
//   {"type":"offer"|"answer"|"ice-candidate"|"bye","to":V,...} -> V gets the object plus "from"
//   {"type":"ping"} -> {"type":"pong"}
// It is deliberately what a small team would write first: JSON.parse, a Map, JSON.stringify.
//
//   node bench/peers/ws-relay.mjs [--host 127.0.0.1] [--port 0]
// prints {"msg":"listening","host":...,"port":...} on stderr once it accepts connections.

import crypto from 'node:crypto';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
function opt(name, def) {
    const i = args.indexOf(name);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const host = opt('--host', '127.0.0.1');
const port = Number(opt('--port', '0'));
if (!host.startsWith('127.') && host !== '::1') {
    console.error('ws-relay: listens on loopback only');
    process.exit(2);
}

const RELAYED = new Set(['offer', 'answer', 'ice-candidate', 'bye']);
const ID_RE = /^[a-z0-9._+@-]{1,128}$/;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const online = new Map(); // userId -> ws

function send(ws, obj) {
    ws.send(JSON.stringify(obj));
}

function error(ws, code, extra = {}) {
    send(ws, { type: 'error', code, message: code.replace(/_/g, ' '), ...extra });
}

function register(ws, msg) {
    const { userId, publicKey, signature } = msg;
    if (typeof userId !== 'string' || typeof publicKey !== 'string' || typeof signature !== 'string') {
        return error(ws, 'bad_request');
    }
    const uid = userId.replace(/[A-Z]/g, (c) => c.toLowerCase());
    if (!ID_RE.test(uid)) return error(ws, 'invalid_user_id');
    const raw = Buffer.from(publicKey, 'base64');
    const sig = Buffer.from(signature, 'base64');
    let ok = false;
    if (raw.length === 32 && sig.length === 64) {
        try {
            const key = crypto.createPublicKey({
                key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki',
            });
            ok = crypto.verify(null, Buffer.from(`volli-register\n${ws.nonce}\n${uid}`), key, sig);
        } catch {
            ok = false;
        }
    }
    if (!ok) return error(ws, 'bad_signature');
    if (ws.userId && ws.userId !== uid) return error(ws, 'already_registered');
    const old = online.get(uid);
    if (old && old !== ws) {
        error(old, 'replaced');
        old.userId = null;
        old.close(4000, 'replaced');
    }
    ws.userId = uid;
    online.set(uid, ws);
    send(ws, { type: 'registered', userId: uid, ...(msg.id !== undefined ? { id: msg.id } : {}) });
}

function onMessage(ws, data, isBinary) {
    if (isBinary) return error(ws, 'bad_request');
    let msg;
    try {
        msg = JSON.parse(data.toString('utf8'));
    } catch {
        return error(ws, 'bad_json');
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string') {
        return error(ws, 'bad_request');
    }
    if (msg.type === 'register') return register(ws, msg);
    if (msg.type === 'ping') return send(ws, { type: 'pong', ...(msg.id !== undefined ? { id: msg.id } : {}) });
    if (!RELAYED.has(msg.type)) return error(ws, 'unknown_type');
    if (!ws.userId) return error(ws, 'not_registered');
    if (typeof msg.to !== 'string') return error(ws, 'bad_request');
    const to = msg.to.replace(/[A-Z]/g, (c) => c.toLowerCase());
    const dst = online.get(to);
    if (!dst) return error(ws, 'peer_offline', { to });
    msg.from = ws.userId;
    dst.send(JSON.stringify(msg));
}

const wss = new WebSocketServer({ host, port, perMessageDeflate: false, maxPayload: 65536 });
wss.on('connection', (ws) => {
    ws.nonce = crypto.randomBytes(16).toString('base64url');
    ws.userId = null;
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => {
        if (ws.userId && online.get(ws.userId) === ws) online.delete(ws.userId);
    });
    send(ws, { type: 'hello', version: 1, nonce: ws.nonce });
});
wss.on('listening', () => {
    const a = wss.address();
    console.error(JSON.stringify({ msg: 'listening', host: a.address, port: a.port }));
});
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => process.exit(0));
        setTimeout(() => process.exit(0), 2000).unref();
    });
}
