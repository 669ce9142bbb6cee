// Tier 75: every abuse limit has a default, a knob, a metric and this test: connections
// (global, per address, per X-Forwarded-For client of a trusted proxy), message and byte
// rates with rate_limited and a disconnect, register and lookup rates, subscriptions per
// connection, JSON depth and members, slow handshakes, idle unregistered sockets, slow
// consumers; and legitimate pairs keep relaying while 50 connections flood.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, closeAllClients, connectAs, makeIdentity, signRegister } from './lib/client.mjs';
import { fetchMetrics, sampleValue } from './lib/http.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { SANITIZED, scaled, sleep, uid, withTimeout } from './lib/util.mjs';

after(async () => {
    closeAllClients();
    await stopAll();
});

async function metric(srv, name, labels = {}) {
    return sampleValue(await fetchMetrics(srv.port), name, labels);
}

/** Opens a ws with extra headers; resolves 'open' or the HTTP status it was refused with. */
function tryOpen(port, headers = {}) {
    return withTimeout(new Promise((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers });
        ws.once('open', () => resolve({ ws, status: 101 }));
        ws.once('unexpected-response', (req, res) => {
            resolve({ status: res.statusCode });
            req.destroy();
        });
        ws.once('error', () => resolve({ status: 0 }));
        ws.once('close', () => resolve({ status: 0 }));
    }), scaled(3000), 'a WebSocket open attempt');
}

describe('connections', () => {
    test('max-connections refuses the next connection and counts it', async () => {
        const srv = await startServer({ args: ['--max-connections', '3'] });
        const open = [];
        for (let i = 0; i < 3; i++) open.push(await Client.connect(srv.port));
        const refused = await tryOpen(srv.port);
        assert.equal(refused.status, 0, 'the 4th connection must not open');
        // /metrics is a connection too: free one slot first, and wait until the server saw it.
        await open.pop().close();
        await sleep(scaled(200));
        assert.ok((await metric(srv, 'volli_connections_refused_total')) >= 1);
        for (const c of open) await c.close();
    });

    test('max-connections-per-ip counts addresses when no proxy is trusted', async () => {
        const srv = await startServer({ args: ['--trusted-proxies', 'none',
                                                '--max-connections-per-ip', '2'] });
        const a = await Client.connect(srv.port);
        const b = await Client.connect(srv.port);
        assert.equal((await tryOpen(srv.port)).status, 0);
        await a.close();
        // A slot comes free once the server has seen the close (bounded wait under load).
        let c = null;
        const until = Date.now() + scaled(3000);
        while (!c && Date.now() < until) {
            const r = await tryOpen(srv.port);
            if (r.status === 101) c = r.ws;
            else await sleep(50);
        }
        assert.ok(c, 'a slot came free after a close');
        await b.close();
        c.terminate();
        // /metrics is a connection from the same address too: retry until the closes are seen.
        let refused = null;
        for (const until2 = Date.now() + scaled(3000); refused === null && Date.now() < until2;) {
            refused = await metric(srv, 'volli_per_ip_refused_total').catch(() => null);
            if (refused === null) await sleep(50);
        }
        assert.ok(refused >= 1, `volli_per_ip_refused_total ${refused}`);
    });

    test('behind a trusted proxy, X-Forwarded-For names the client', async () => {
        const srv = await startServer({ args: ['--max-connections-per-ip', '1'] });
        const first = await tryOpen(srv.port, { 'X-Forwarded-For': '198.51.100.7' });
        assert.equal(first.status, 101);
        const second = await tryOpen(srv.port, { 'X-Forwarded-For': '203.0.113.1, 198.51.100.7' });
        assert.equal(second.status, 503, 'the same client address over its limit');
        const other = await tryOpen(srv.port, { 'X-Forwarded-For': '198.51.100.8' });
        assert.equal(other.status, 101);
        const bad = await tryOpen(srv.port, { 'X-Forwarded-For': 'not-an-address' });
        assert.equal(bad.status, 400);
        // The proxy's own (local) connections are not limited.
        const locals = await Promise.all([0, 1, 2].map(() => Client.connect(srv.port)));
        assert.equal(locals.length, 3);
        first.ws.terminate();
        other.ws.terminate();
        for (const c of locals) c.terminate();
    });
});

describe('rates', () => {
    test('message rate: rate_limited past the burst, then close 1008 after rate-strikes',
         async () => {
             const srv = await startServer({ args: ['--rate-messages', '5', '--rate-strikes', '10'] });
             const c = await Client.connect(srv.port);
             // Burst is ten seconds' worth: 50 messages pass at once.
             for (let i = 0; i < 70; i++) c.send({ type: 'ping', id: `p${i}` });
             let pongs = 0;
             let limited = 0;
             for (;;) {
                 let m;
                 try {
                     m = await c.recv(() => true, scaled(2000));
                 } catch {
                     break;
                 }
                 if (m.type === 'pong') pongs += 1;
                 else if (m.type === 'error' && m.code === 'rate_limited') limited += 1;
             }
             assert.ok(pongs >= 50 && pongs <= 52, `pongs ${pongs}`);
             assert.equal(limited, 9, 'nine rate_limited errors, the tenth strike closes');
             const info = await c.waitClose();
             assert.equal(info.code, 1008);
             assert.equal(await metric(srv, 'volli_rate_limited_total', { kind: 'messages' }), 10);
             assert.equal(await metric(srv, 'volli_rate_disconnects_total'), 1);
         });

    test('byte rate: rate_limited once the byte burst is spent', async () => {
        const srv = await startServer({ args: ['--rate-bytes', '1k'] }); // burst 10 KiB
        const c = await Client.connect(srv.port);
        const pad = 'x'.repeat(3000);
        for (let i = 0; i < 4; i++) c.send({ type: 'ping', id: `b${i}`, pad });
        const replies = [];
        for (let i = 0; i < 4; i++) replies.push(await c.recv());
        assert.deepEqual(replies.map((m) => m.type), ['pong', 'pong', 'pong', 'error']);
        assert.equal(replies[3].code, 'rate_limited');
        assert.match(replies[3].message, /bytes/);
        assert.equal(await metric(srv, 'volli_rate_limited_total', { kind: 'bytes' }), 1);
        await c.close();
    });

    test('register rate per address charges failures and new ids, not known keys', async () => {
        const srv = await startServer({ args: ['--trusted-proxies', 'none',
                                                '--register-rate', '3'] });
        const me = makeIdentity(uid('known'));
        const c = await Client.connect(srv.port);
        await c.registerOk(me); // a new binding: 1 of 3
        for (let i = 0; i < 8; i++) await c.registerOk(me); // known key: free
        const other = makeIdentity(uid('guess'));
        const g = await Client.connect(srv.port);
        for (let i = 0; i < 2; i++) {
            g.send({ type: 'register', id: `g${i}`, userId: me.userId, publicKey: other.publicKey,
                     signature: signRegister(other, g.hello.nonce, me.userId.toLowerCase()) });
            await g.expectError('key_mismatch', { id: `g${i}` });
        }
        g.send({ type: 'register', id: 'g9', userId: other.userId, publicKey: other.publicKey,
                 signature: signRegister(other, g.hello.nonce) });
        await g.expectError('rate_limited', { id: 'g9' });
        assert.equal(await metric(srv, 'volli_rate_limited_total', { kind: 'register' }), 1);
        await c.close();
        await g.close();
    });

    test('lookup rate: discover and subscribe ids per minute', async () => {
        const srv = await startServer({ args: ['--lookup-rate', '10'] });
        const c = await connectAs(srv.port, uid('look'));
        const ids = Array.from({ length: 8 }, (_, i) => `nobody${i}`);
        c.send({ type: 'discover', userIds: ids, id: 'd1' });
        assert.equal((await c.recvType('discover')).users.length, 8);
        c.send({ type: 'subscribe', userIds: ['x1', 'x2'], id: 's1' });
        await c.recvType('presence');
        await c.recvType('presence');
        c.send({ type: 'discover', userId: 'one-more', id: 'd2' });
        await c.expectError('rate_limited', { id: 'd2' });
        assert.equal(await metric(srv, 'volli_rate_limited_total', { kind: 'lookup' }), 1);
        await c.close();
    });
});

describe('sizes and counts', () => {
    test('max-subscriptions per connection refuses the batch that would pass it', async () => {
        const srv = await startServer({ args: ['--max-subscriptions', '3'] });
        const c = await connectAs(srv.port, uid('subs'));
        c.send({ type: 'subscribe', userIds: ['a1', 'a2'], id: 's1' });
        await c.recvType('presence');
        await c.recvType('presence');
        c.send({ type: 'subscribe', userIds: ['a3', 'a4'], id: 's2' });
        await c.expectError('limit_exceeded', { id: 's2' });
        c.send({ type: 'subscribe', userIds: ['a2', 'a3'], id: 's3' }); // one new: fits
        assert.equal((await c.recvType('presence')).userId, 'a2');
        assert.equal((await c.recvType('presence')).userId, 'a3');
        c.send({ type: 'unsubscribe', userIds: ['a1'] });
        c.send({ type: 'subscribe', userIds: ['a4'], id: 's4' });
        assert.equal((await c.recvType('presence')).userId, 'a4');
        await c.close();
    });

    test('max-json-depth and max-json-members', async () => {
        const srv = await startServer({ args: ['--max-json-depth', '4',
                                                '--max-json-members', '3'] });
        const c = await Client.connect(srv.port);
        c.sendText('{"type":"ping","id":"ok","a":{"b":[1]}}'); // depth 4
        assert.equal((await c.recv()).type, 'pong');
        c.sendText('{"type":"ping","id":"deep","a":{"b":[[1]]}}'); // depth 5
        await c.expectError('bad_request'); // not scanned whole: no id to echo
        c.sendText('{"type":"ping","id":"wide","a":1,"b":2}'); // 4 members
        await c.expectError('bad_request', { id: 'wide' });
        assert.ok(c.isOpen);
        await c.close();
    });
});

describe('slow and idle clients', () => {
    test('an unfinished handshake is dropped after handshake-timeout', async () => {
        const srv = await startServer({ args: ['--handshake-timeout', '0.3'] });
        const t0 = Date.now();
        await withTimeout(new Promise((resolve) => {
            const s = net.connect(srv.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n'));
            s.on('close', resolve);
            s.on('error', resolve);
            s.resume();
        }), scaled(3000), 'the server to drop a slow handshake');
        assert.ok(Date.now() - t0 >= 250, 'not before the timeout');
        assert.equal(await metric(srv, 'volli_handshake_timeouts_total'), 1);
    });

    test('an unregistered WebSocket is closed after register-timeout', async () => {
        const srv = await startServer({ args: ['--register-timeout', '0.3'] });
        const idle = await Client.connect(srv.port);
        const busy = await connectAs(srv.port, uid('busy'));
        await idle.expectError('not_registered', { ms: scaled(2000) });
        assert.equal((await idle.waitClose()).code, 1008);
        await sleep(400);
        assert.ok(busy.isOpen, 'a registered connection stays');
        assert.equal(await metric(srv, 'volli_register_timeouts_total'), 1);
        await busy.close();
    });

    test('a consumer that stops reading is dropped at max-queue; the sender is fine',
         async () => {
             const srv = await startServer({ args: ['--max-queue', '64k', '--rate-bytes', '100m',
                                                     '--rate-messages', '100000'] });
             const rx = await connectAs(srv.port, uid('rx'));
             const tx = await connectAs(srv.port, uid('tx'));
             rx.ws._socket.pause(); // stop reading; the kernel buffers fill, then our queue
             const offer = { sdp: 'v'.repeat(60000) };
             for (let i = 0; i < 600; i++) tx.send({ type: 'offer', to: rx.userId, offer });
             await withTimeout((async () => {
                 while (!(await metric(srv, 'volli_slow_consumers_total'))) await sleep(50);
             })(), scaled(10000), 'the slow consumer to be dropped');
             tx.send({ type: 'ping', id: 'alive' });
             assert.equal((await tx.recv((m) => m.type === 'pong')).id, 'alive');
             rx.terminate();
             await tx.close();
         });
});

test('50 pairs keep relaying while 50 connections flood', async () => {
    const srv = await startServer({ args: ['--rate-messages', '50', '--rate-strikes', '1000000'] });
    const pairs = [];
    for (let i = 0; i < 50; i++) {
        const a = await connectAs(srv.port, uid(`pa${i}-`));
        const b = await connectAs(srv.port, uid(`pb${i}-`));
        pairs.push([a, b]);
    }
    const flooders = await Promise.all(Array.from({ length: 50 }, () => Client.connect(srv.port)));
    let stop = false;
    const junk = JSON.stringify({ type: 'discover', userId: 'x', pad: 'y'.repeat(1000) });
    const floods = flooders.map(async (f) => {
        const deadline = Date.now() + 3000;
        while (!stop && Date.now() < deadline && f.isOpen) {
            for (let k = 0; k < 50; k++) f.ws.send(junk);
            await new Promise((r) => setImmediate(r));
        }
    });
    const perPair = 20;
    const relays = pairs.map(async ([a, b], i) => {
        for (let k = 0; k < perPair; k++) {
            a.send({ type: 'offer', to: b.userId, offer: { n: k, pair: i } });
            const got = await b.recv((m) => m.type === 'offer', scaled(5000));
            assert.equal(got.offer.n, k);
            assert.equal(got.offer.pair, i);
            await sleep(20);
        }
    });
    await Promise.all(relays);
    stop = true;
    await Promise.all(floods);
    assert.ok((await metric(srv, 'volli_rate_limited_total', { kind: 'messages' })) > 0,
              'the flood was limited');
    for (const f of flooders) f.terminate();
    for (const [a, b] of pairs) {
        a.terminate();
        b.terminate();
    }
});

describe('knobs without a rate', () => {
    test('max-batch caps the ids of one discover or subscribe', async () => {
        const srv = await startServer({ args: ['--max-batch', '3'] });
        const c = await connectAs(srv.port, uid('batch'));
        c.send({ type: 'discover', userIds: ['a', 'b', 'c'], id: 'ok' });
        assert.equal((await c.recvType('discover')).users.length, 3);
        c.send({ type: 'discover', userIds: ['a', 'b', 'c', 'd'], id: 'big' });
        await c.expectError('bad_request', { id: 'big' });
        c.send({ type: 'subscribe', userIds: ['a', 'b', 'c', 'd'], id: 'sbig' });
        await c.expectError('bad_request', { id: 'sbig' });
        await c.close();
    });

    test('shutdown-timeout bounds how long SIGTERM waits for a silent peer', async () => {
        const srv = await startServer({ args: ['--shutdown-timeout', '0.3', '--drain-timeout', '0'] });
        // A raw client that upgrades and then never answers the close frame nor closes its side.
        const raw = await withTimeout(new Promise((resolve, reject) => {
            const sock = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true },
                                     () => sock.write('GET / HTTP/1.1\r\nHost: x\r\n' +
                                                      'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
                                                      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
                                                      'Sec-WebSocket-Version: 13\r\n\r\n'));
            sock.once('data', (d) => (String(d).startsWith('HTTP/1.1 101') ? resolve(sock)
                                                                           : reject(new Error(String(d)))));
            sock.on('error', () => {});
        }), scaled(3000), 'a raw upgrade');
        const t0 = Date.now();
        const info = await srv.stop('SIGTERM');
        const took = Date.now() - t0;
        assert.equal(info.code, 0);
        // Without the knob the 2 s close-handshake sweep would be what ends it.
        if (!SANITIZED) assert.ok(took < 1500, `exit took ${took} ms`);
        raw.destroy();
    });
});
