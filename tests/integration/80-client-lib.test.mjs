// Tier 80: libvolli, the C client library, through its test programs (tests/client/):
// register, discover, subscribe and presence, relays both ways byte for byte and in order,
// request ids and timeouts (against a scripted fake server), wire error codes, permanent
// failures, key files, reconnection after a server restart, the doc's example, and
// out-of-memory. Programs come from $VOLLI_BUILD_DIR/tests/client.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { Client, closeAllClients, connectAs, makeIdentity, waitOffline } from './lib/client.mjs';
import { Driver, clientBin, killAllDrivers, runProgram } from './lib/clientlib.mjs';
import { startServer, stopAll, tempDir } from './lib/server.mjs';
import { scaled, sleep, uid, withTimeout } from './lib/util.mjs';

let srv;
let dir;
before(async () => {
    srv = await startServer();
    dir = tempDir('volli-lib-');
});
after(async () => {
    killAllDrivers();
    closeAllClients();
    await stopAll();
});

const url = (s = srv) => `ws://127.0.0.1:${s.port}/`;
const keyFile = (name) => path.join(dir, `${name}.pem`);

/** Raw base64 public key of a PEM file, as OpenSSL reads it. */
function opensslPublicKey(file) {
    const der = execFileSync('openssl', ['pkey', '-in', file, '-pubout', '-outform', 'DER']);
    return der.subarray(-32).toString('base64');
}

/** A registered library client for a fresh user id; resolves { d, user, key }. */
async function libClient(prefix, opts = {}, urls = [url()]) {
    const user = uid(prefix);
    const d = new Driver(urls, { user, key: keyFile(user), ...opts });
    const key = await d.event('key');
    await d.registered();
    return { d, user, key: key.publicKey };
}

describe('client library: session', () => {
    test('registers (folded id) with a key OpenSSL reads, and the server binds that key',
         async () => {
        const user = uid('alice');
        const d = new Driver([url()], { user: user.toUpperCase(), key: keyFile(user) });
        const key = await d.event('key');
        assert.equal(key.created, true);
        const conn = await d.event('connected');
        assert.equal(conn.url, url());
        const reg = await d.event('registered');
        assert.equal(reg.userId, user);
        assert.equal(opensslPublicKey(keyFile(user)), key.publicKey);

        const bob = await connectAs(srv.port, uid('bob'));
        bob.send({ type: 'discover', id: 'q1', userId: user });
        const m = await bob.recv((x) => x.id === 'q1');
        assert.equal(m.online, true);
        assert.equal(m.publicKey, key.publicKey);
        await d.close();
        await waitOffline(bob, user);
        await bob.close();
    });

    test('a connect-only client (no user id, no key) connects and pings, never registers',
         async () => {
        const d = new Driver([url()], {});
        assert.equal((await d.event('connected')).url, url());
        const p = await d.request({ cmd: 'ping' });
        assert.equal(p.status, 0, JSON.stringify(p));
        assert.equal(JSON.parse(p.reply).type, 'pong');
        const disc = await d.request({ cmd: 'discover', ids: ['bob'] });
        assert.deepEqual([disc.status, disc.immediate], [-2, true]);
        assert.equal((await d.request({ cmd: 'state' })).registered, false);
        await d.expectNone(scaled(300), (m) => m.event === 'registered', 'no registration');
        await d.close();
    });

    test('discover (one id and a batch) and ping return the server\'s replies', async () => {
        const { d, user } = await libClient('disc');
        const bob = await connectAs(srv.port, uid('bob'));
        const one = await d.request({ cmd: 'discover', ids: [bob.userId.toUpperCase()] });
        assert.equal(one.status, 0, JSON.stringify(one));
        const r1 = JSON.parse(one.reply);
        assert.equal(r1.type, 'discover');
        assert.equal(r1.userId, bob.userId);
        assert.equal(r1.online, true);
        assert.equal(r1.publicKey, bob.identity.publicKey);
        assert.match(r1.id, /^c\d+$/);

        const nobody = uid('nobody');
        const batch = await d.request({ cmd: 'discover', ids: [bob.userId, nobody, user] });
        assert.equal(batch.status, 0, JSON.stringify(batch));
        const users = JSON.parse(batch.reply).users;
        assert.deepEqual(users.map((u) => [u.userId, u.online]),
                         [[bob.userId, true], [nobody, false], [user, true]]);
        assert.equal(users[1].publicKey, null);

        const ping = await d.request({ cmd: 'ping' });
        assert.equal(ping.status, 0);
        assert.equal(JSON.parse(ping.reply).type, 'pong');
        /* Invalid arguments fail at once, without a callback. */
        const bad = await d.request({ cmd: 'discover', ids: [] });
        assert.deepEqual([bad.status, bad.immediate], [-2, true]);
        await d.close();
        await bob.close();
    });

    test('subscribe reports the current state, then every change; unsubscribe stops it',
         async () => {
        const { d, user } = await libClient('sub');
        const carolId = makeIdentity(uid('carol'));
        const r = await d.request({ cmd: 'subscribe', ids: [carolId.userId.toUpperCase(), user] });
        assert.equal(r.status, 0, JSON.stringify(r));
        assert.equal(r.reply, null);
        const first = d.take((m) => m.event === 'presence');
        assert.deepEqual(first.map((m) => [m.userId, m.online]),
                         [[carolId.userId, false], [user, true]]);

        const carol = await connectAs(srv.port, carolId);
        const on = await d.event('presence', (m) => m.userId === carolId.userId);
        assert.equal(on.online, true);
        assert.ok(!('id' in JSON.parse(on.json)), 'a change carries no id');
        await carol.close();
        const off = await d.event('presence', (m) => m.userId === carolId.userId);
        assert.equal(off.online, false);

        const u = await d.request({ cmd: 'unsubscribe', ids: [carolId.userId] });
        assert.equal(u.status, 0);
        const carol2 = await connectAs(srv.port, carolId);
        await d.expectNone(scaled(1200), (m) => m.event === 'presence',
                           'no presence after unsubscribe');
        await carol2.close();
        /* Ids are checked locally for subscriptions (they are remembered). */
        const bad = await d.request({ cmd: 'subscribe', ids: ['not valid'] });
        assert.deepEqual([bad.status, bad.immediate], [-2, true]);
        await d.close();
    });
});

describe('client library: relay', () => {
    const payloads = {
        offer: '{"type":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\\r\\n" , "n":1.0,' +
               '"big":123456789012345678901234567890,"u":"\\u00e9\\u0000\\/"}',
        answer: '{ "type" : "answer", "sdp" : "v=0\\r\\n", "x": [1e300, -0.0, true, null] }',
        'ice-candidate': '{"candidate":"candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host",' +
                         '"sdpMid":"0","sdpMLineIndex":0}',
        bye: '"done, \\"thanks\\""',
    };
    const member = { offer: 'offer', answer: 'answer', 'ice-candidate': 'candidate', bye: 'reason' };

    test('offer, answer, ice-candidate and bye go both ways with payloads byte for byte',
         async () => {
        const { d, user } = await libClient('rel');
        const bob = await connectAs(srv.port, uid('bob'));
        for (const [type, payload] of Object.entries(payloads)) {
            const r = await d.request({ cmd: 'send', to: bob.userId.toUpperCase(), type, payload });
            assert.equal(r.status, 0, JSON.stringify(r));
            const got = await bob.next((m) => m.type === type);
            assert.equal(got.msg.from, user);
            assert.ok(got.raw.includes(`"${member[type]}":${payload}`),
                      `${type}: payload not forwarded byte for byte: ${got.raw}`);

            bob.sendText(`{"type":"${type}","to":"${user}","${member[type]}":${payload}}`);
            const ev = await d.event(type);
            assert.equal(ev.from, bob.userId);
            assert.equal(ev.payload, payload);
            assert.equal(JSON.parse(ev.json).from, bob.userId);
            assert.ok(!ev.notTerminated, 'json and payload must be NUL-terminated');
        }
        /* bye without a reason, both ways. */
        const r = await d.request({ cmd: 'send', to: bob.userId, type: 'bye', payload: null });
        assert.equal(r.status, 0);
        const bye = await bob.recvType('bye');
        assert.ok(!('reason' in bye));
        bob.send({ type: 'bye', to: user });
        const ev = await d.event('bye');
        assert.equal(ev.payload, null);
        /* A payload that is not JSON is refused before anything is sent. */
        const bad = await d.request({ cmd: 'send', to: bob.userId, type: 'offer', payload: '{x' });
        assert.deepEqual([bad.status, bad.immediate], [-2, true]);
        await bob.expectNone(scaled(300), () => true, 'nothing for an invalid payload');
        await d.close();
        await bob.close();
    });

    test('messages arrive in the order sent, in both directions', async () => {
        const { d, user } = await libClient('ord');
        const bob = await connectAs(srv.port, uid('bob'));
        const n = 200;
        for (let i = 0; i < n; i++) bob.send({ type: 'ice-candidate', to: user, candidate: { i } });
        for (let i = 0; i < n; i++) {
            const ev = await d.event('ice-candidate');
            assert.equal(JSON.parse(ev.payload).i, i);
        }
        for (let i = 0; i < n; i++) {
            d.send({ cmd: 'send', to: bob.userId, type: 'ice-candidate', payload: `{"i":${i}}`,
                     tag: `o${i}` });
        }
        for (let i = 0; i < n; i++) {
            const m = await bob.recvType('ice-candidate');
            assert.equal(m.candidate.i, i);
        }
        for (let i = 0; i < n; i++) {
            const r = await d.next((m) => m.tag === `o${i}`);
            assert.equal(r.status, 0);
        }
        await d.close();
        await bob.close();
    });

    test('a relay to a user who is offline reports the wire code peer_offline', async () => {
        const { d } = await libClient('off');
        const ghost = uid('ghost');
        const r = await d.request({ cmd: 'send', to: ghost.toUpperCase(), type: 'offer',
                                    payload: '{"sdp":"x"}' });
        assert.equal(r.status, -5, JSON.stringify(r));
        assert.equal(r.error, 'the server answered with an error');
        assert.equal(r.code, 'peer_offline');
        const err = JSON.parse(r.reply);
        assert.equal(err.to, ghost);
        assert.match(err.id, /^c\d+$/);
        /* The session is unharmed. */
        assert.equal((await d.request({ cmd: 'ping' })).status, 0);
        await d.close();
    });
});

/**
 * A scripted WebSocket server speaking the v1 contract just enough: hello, register (the
 * signature is verified here, independently of volli-signal), and whatever `onRequest` does
 * with the rest. Records every message the client sent.
 */
async function fakeServer(onRequest, { path: wsPath = '/' } = {}) {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: wsPath });
    await new Promise((r) => wss.once('listening', r));
    const fake = { wss, port: wss.address().port, received: [], sockets: [], upgrades: [] };
    wss.on('connection', (ws, req) => {
        fake.sockets.push(ws);
        fake.upgrades.push(req);
        const nonce = crypto.randomBytes(16).toString('base64url');
        ws.send(JSON.stringify({ type: 'hello', version: 1, nonce }));
        ws.on('message', (data) => {
            const m = JSON.parse(data.toString());
            fake.received.push(m);
            if (m.type === 'register') {
                const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'),
                                            Buffer.from(m.publicKey, 'base64')]);
                const key = crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
                const ok = crypto.verify(null, Buffer.from(`volli-register\n${nonce}\n${m.userId}`),
                                         key, Buffer.from(m.signature, 'base64'));
                ws.send(JSON.stringify(ok ? { type: 'registered', id: m.id, userId: m.userId }
                                          : { type: 'error', id: m.id, code: 'bad_signature',
                                              message: 'fake: bad signature' }));
                return;
            }
            onRequest(ws, m, fake);
        });
    });
    fake.close = () => new Promise((r) => {
        for (const s of fake.sockets) s.terminate();
        wss.close(r);
    });
    return fake;
}

describe('client library: requests', () => {
    test('ids are unique, replies match by id in any order, and requests time out', async () => {
        const held = [];
        const fake = await fakeServer((ws, m) => {
            if (m.type === 'discover') held.push(m); /* answered later, in reverse */
            /* pings are never answered */
        }, { path: '/rtc' });
        const user = uid('fake');
        const d = new Driver([`ws://127.0.0.1:${fake.port}/rtc`],
                             { user, key: keyFile(user), requestTimeout: 600 });
        const reg = await d.registered();
        assert.equal(reg.userId, user);
        assert.equal(fake.upgrades[0].headers['sec-websocket-version'], '13');
        assert.equal(fake.upgrades[0].headers.host, `127.0.0.1:${fake.port}`);

        d.send({ cmd: 'discover', ids: ['x1'], tag: 'd1' });
        d.send({ cmd: 'discover', ids: ['x2'], tag: 'd2' });
        const t0 = Date.now();
        d.send({ cmd: 'ping', tag: 'p' });
        await withTimeout((async () => {
            while (held.length < 2) await sleep(10);
        })(), scaled(3000), 'the two discovers');
        for (const m of [...held].reverse()) {
            fake.sockets[0].send(JSON.stringify({ type: 'discover', id: m.id, userId: m.userId,
                                                  online: false, publicKey: null }));
        }
        const d2 = await d.next((m) => m.tag === 'd2');
        const d1 = await d.next((m) => m.tag === 'd1');
        assert.equal(JSON.parse(d1.reply).userId, 'x1');
        assert.equal(JSON.parse(d2.reply).userId, 'x2');
        const p = await d.next((m) => m.tag === 'p', scaled(3000));
        const waited = Date.now() - t0;
        assert.equal(p.status, -4, JSON.stringify(p));
        assert.ok(waited >= 500 && waited < scaled(3000), `timed out after ${waited} ms`);

        /* A late reply to the timed-out request is ignored; an error with an id is a result. */
        const pingId = fake.received.find((m) => m.type === 'ping').id;
        fake.sockets[0].send(JSON.stringify({ type: 'pong', id: pingId }));
        const ids = fake.received.filter((m) => m.id).map((m) => m.id);
        assert.equal(new Set(ids).size, ids.length, `ids repeat: ${ids}`);
        const nums = ids.map((id) => Number(/^c(\d+)$/.exec(id)[1]));
        assert.deepEqual(nums, [...nums].sort((a, b) => a - b), `ids not increasing: ${ids}`);

        /* Pending requests fail with ENOTCONN when the connection drops; then it reconnects. */
        d.send({ cmd: 'ping', tag: 'lost' });
        await withTimeout((async () => {
            while (fake.received.filter((m) => m.type === 'ping').length < 2) await sleep(10);
        })(), scaled(3000), 'the second ping');
        fake.sockets[0].terminate();
        const lost = await d.next((m) => m.tag === 'lost');
        assert.equal(lost.status, -3, JSON.stringify(lost));
        const disc = await d.event('disconnected');
        assert.ok(disc.reconnectInMs >= 1);
        await d.registered();
        assert.equal(d.take((m) => m.result !== undefined).length, 0, 'no stray results');

        /* Requests while disconnected fail at once: nothing is queued silently. */
        await fake.close();
        await d.event('disconnected');
        const now = await d.request({ cmd: 'ping' });
        assert.deepEqual([now.status, now.immediate], [-3, true]);
        const send = await d.request({ cmd: 'send', to: 'bob', type: 'offer', payload: '{}' });
        assert.deepEqual([send.status, send.immediate], [-3, true]);
        await d.close();
    });

    test('a server that answers the upgrade wrongly is refused', async () => {
        /* volli-signal answers 404 on other paths. */
        const user = uid('path');
        const d = new Driver([`ws://127.0.0.1:${srv.port}/nope`],
                             { user, key: keyFile(user), backoffInitial: 50, backoffMax: 100 });
        const ev = await d.event('disconnected');
        assert.match(ev.reason, /HTTP status 404/);
        await d.expectNone(scaled(300), (m) => m.event === 'connected', 'no connection');
        await d.close();
    });
});

describe('client library: permanent failures', () => {
    test('key_mismatch stops reconnecting; connect tries again', async () => {
        const { d, user } = await libClient('km');
        await d.close();
        const d2 = new Driver([url()], { user, key: keyFile(`${user}-other`), backoffInitial: 50 });
        await d2.event('connected');
        const err = await d2.event('error');
        assert.equal(err.code, 'key_mismatch');
        const disc = await d2.event('disconnected');
        assert.equal(disc.reconnectInMs, 0);
        await d2.expectNone(scaled(1500), (m) => m.event === 'connected', 'no reconnect');
        const p = await d2.request({ cmd: 'ping' });
        assert.deepEqual([p.status, p.immediate], [-3, true]);
        const again = await d2.request({ cmd: 'connect' });
        assert.equal(again.status, 0);
        await d2.event('connected');
        assert.equal((await d2.event('error')).code, 'key_mismatch');
        assert.equal((await d2.event('disconnected')).reconnectInMs, 0);
        await d2.close();
    });

    test('replaced by another connection: reports "replaced" and does not fight back',
         async () => {
        const { d, user } = await libClient('rep');
        const pem = fs.readFileSync(keyFile(user));
        const privateKey = crypto.createPrivateKey(pem);
        const raw = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
            .subarray(-32);
        const identity = { userId: user, privateKey, publicKeyRaw: raw,
                           publicKey: raw.toString('base64') };
        const other = await connectAs(srv.port, identity);
        const err = await d.event('error');
        assert.equal(err.code, 'replaced');
        const disc = await d.event('disconnected');
        assert.equal(disc.reconnectInMs, 0);
        await d.expectNone(scaled(1500), (m) => m.event === 'connected', 'no reconnect');
        await other.ping(); /* the newer connection keeps the id */
        await d.close();
        await other.close();
    });
});

describe('client library: key files', () => {
    const keys = () => clientBin('client_keys');

    test('created 0600 whatever the umask, exclusively, and readable by OpenSSL', async () => {
        const f = path.join(dir, 'k1.pem');
        const r = await runProgram('/bin/sh', ['-c', `umask 000; exec "${keys()}" gen "${f}"`]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const out = JSON.parse(r.stdout);
        assert.equal(fs.statSync(f).mode & 0o7777, 0o600);
        assert.equal(opensslPublicKey(f), out.publicKey);
        const before = fs.readFileSync(f);
        const again = await runProgram(keys(), ['gen', f]);
        assert.equal(again.code, 1);
        assert.equal(JSON.parse(again.stdout).status, -11, 'VOLLI_EEXISTS');
        assert.deepEqual(fs.readFileSync(f), before, 'the existing file was touched');
        const load = await runProgram(keys(), ['load', f]);
        assert.equal(JSON.parse(load.stdout).publicKey, out.publicKey);
    });

    test('a key file group or others can read is refused, and so is a non-regular file',
         async () => {
        const f = path.join(dir, 'k2.pem');
        execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', f]);
        for (const [mode, status] of [[0o644, -7], [0o640, -7], [0o604, -7], [0o600, 0]]) {
            fs.chmodSync(f, mode);
            const r = await runProgram(keys(), ['load', f]);
            const out = JSON.parse(r.stdout);
            if (status) {
                assert.equal(out.status, status, `mode ${mode.toString(8)}: ${r.stdout}`);
            } else {
                assert.equal(out.publicKey, opensslPublicKey(f), 'an OpenSSL key loads');
            }
        }
        assert.equal(JSON.parse((await runProgram(keys(), ['load', dir])).stdout).status, -7);
        const fifo = path.join(dir, 'fifo');
        execFileSync('mkfifo', ['-m', '600', fifo]);
        const r = await runProgram(keys(), ['load', fifo], { ms: scaled(3000) });
        assert.equal(JSON.parse(r.stdout).status, -7);
        /* The driver refuses to start with an unsafe key. */
        fs.chmodSync(f, 0o644);
        const d = new Driver([url()], { user: uid('perm'), key: f });
        const fatal = await d.event('fatal');
        assert.equal(fatal.status, -7);
        await withTimeout(d.exited, scaled(3000), 'exit');
    });
});

describe('client library: reconnection', () => {
    test('after a server restart: registered again, subscriptions restored, nothing lost',
         async () => {
        const dataDir = tempDir('volli-lib-restart-');
        const args = (port) => ['--host', '127.0.0.1', '--port', String(port), '--data-dir',
                                dataDir, '--log-format', 'json'];
        let s = await startServer({ dataDir });
        const port = s.port;
        const { d, user } = await libClient('rc', { backoffInitial: 100, backoffMax: 1000 },
                                            [`ws://127.0.0.1:${port}/`]);
        const carolId = makeIdentity(uid('carol'));
        assert.equal((await d.request({ cmd: 'subscribe', ids: [carolId.userId] })).status, 0);
        await d.event('presence', (m) => m.userId === carolId.userId && !m.online);

        for (const how of ['SIGTERM', 'SIGKILL']) {
            let bob = await connectAs(port, uid('bob'));
            for (let i = 0; i < 100; i++) bob.send({ type: 'offer', to: user, offer: { i } });
            for (let i = 0; i < 100; i++) {
                assert.equal(JSON.parse((await d.event('offer')).payload).i, i);
            }
            if (how === 'SIGTERM') await s.stop('SIGTERM');
            else await s.kill9();
            const disc = await d.event('disconnected');
            // SIGTERM drains: the server asks clients to move before it closes with 1001.
            if (how === 'SIGTERM') assert.match(disc.reason, /reconnect elsewhere/);
            s = await startServer({ raw: true, args: args(port) });
            await d.registered(scaled(8000));
            /* The restored subscription reports carol's state, then her changes. */
            await d.event('presence', (m) => m.userId === carolId.userId && !m.online);
            const carol = await connectAs(port, carolId);
            await d.event('presence', (m) => m.userId === carolId.userId && m.online);
            await carol.close();
            await d.event('presence', (m) => m.userId === carolId.userId && !m.online);
            /* Relays flow again, in order, both ways. */
            bob = await connectAs(port, uid('bob'));
            for (let i = 0; i < 100; i++) bob.send({ type: 'answer', to: user, answer: { i } });
            for (let i = 0; i < 100; i++) {
                assert.equal(JSON.parse((await d.event('answer')).payload).i, i);
            }
            for (let i = 0; i < 50; i++) {
                d.send({ cmd: 'send', to: bob.userId, type: 'offer', payload: `{"i":${i}}` });
            }
            for (let i = 0; i < 50; i++) assert.equal((await bob.recvType('offer')).offer.i, i);
            await bob.close();
        }
        await d.close();
    });
});

describe('client library: programs', () => {
    test('the example of docs/client.md answers an offer and exits 0', async () => {
        const user = uid('example');
        const bob = await connectAs(srv.port, uid('bob'));
        let ready;
        const registered = new Promise((r) => {
            ready = r;
        });
        const run = runProgram(clientBin('client_example'), [url(), user, keyFile(user)], {
            ms: scaled(15000),
            onStdout: (s) => {
                if (s.includes(`registered as ${user}`)) ready();
            },
        });
        await withTimeout(registered, scaled(5000), 'the example to register');
        bob.send({ type: 'offer', to: user, offer: { type: 'offer', sdp: 'v=0\r\n' } });
        const answer = await bob.recvType('answer');
        assert.equal(answer.from, user);
        assert.deepEqual(answer.answer, { type: 'answer', sdp: 'v=0\r\n' });
        const r = await run;
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`offer from ${bob.userId}: \\{"type":"offer"`));
        assert.match(r.stdout, new RegExp(`answered ${bob.userId}`));
        assert.equal(fs.statSync(keyFile(user)).mode & 0o777, 0o600);
        await bob.close();
    });

    test('no allocation failure makes the library abort, hang or leak', async () => {
        const r = await runProgram(clientBin('client_oom'), [url(), uid('oom')],
                                   { ms: scaled(180000) });
        assert.equal(r.code, 0, r.stdout + r.stderr.slice(-3000));
        const sum = JSON.parse(r.stdout);
        assert.equal(sum.ok, true);
        assert.ok(sum.allocationsFailed >= 100, `only ${sum.allocationsFailed} failures`);
        assert.ok(sum.enomemResults > 0 && sum.reconnects > 0, r.stdout);
    });
});
