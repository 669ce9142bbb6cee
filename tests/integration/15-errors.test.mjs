// Tier 15: malformed requests, error codes, request ids, ping, size limits (rules 6 and 7 and
// the lead's decisions on bad_request / bad_json / unknown_type / ids).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { scaled, uid } from './lib/util.mjs';

let srv;
let small;
before(async () => {
    srv = await startServer();
    small = await startServer({ args: ['--max-frame', '1024'] });
});
after(async () => {
    closeAllClients();
    await stopAll();
});

/** A registered pair a -> b that must keep relaying whatever other connections do. */
async function pair(port) {
    const a = await connectAs(port, uid('pa'));
    const b = await connectAs(port, uid('pb'));
    return { a, b };
}

async function assertPairWorks({ a, b }, tag) {
    a.send({ type: 'offer', to: b.userId, offer: { tag } });
    const m = await b.recvType('offer');
    assert.deepEqual(m.offer, { tag });
    assert.equal(m.from, a.userId);
}

describe('ping', () => {
    test('ping before registration answers pong, with the id when given', async () => {
        const c = await Client.connect(srv.port);
        c.send({ type: 'ping' });
        const p = await c.recvType('pong');
        assert.deepEqual(p, { type: 'pong' });
        c.send({ type: 'ping', id: 'p-1' });
        assert.deepEqual(await c.recvType('pong'), { type: 'pong', id: 'p-1' });
        await c.close();
    });

    test('ping after registration answers pong too', async () => {
        const c = await connectAs(srv.port, uid('pinger'));
        c.send({ type: 'ping', id: 'p-2' });
        assert.deepEqual(await c.recvType('pong'), { type: 'pong', id: 'p-2' });
        await c.close();
    });
});

describe('bad input', () => {
    test('text that is not JSON is bad_json and the connection stays open', async () => {
        const c = await Client.connect(srv.port);
        const texts = ['not json', '{"type":"ping"', '{"type":"ping"}}', '', '   ',
                       "{'type':'ping'}", '{"type":"ping",}', '[1,2', 'nul', '{"a":1} {"b":2}',
                       '\u00ff\u00fe garbage \u2603'];
        for (const t of texts) {
            c.sendText(t);
            await c.expectError('bad_json');
        }
        await c.ping();
        await c.close();
    });

    test('JSON that is not an object is bad_request', async () => {
        const c = await Client.connect(srv.port);
        for (const t of ['[]', '[{"type":"ping"}]', '"ping"', '42', 'null', 'true', '1e3']) {
            c.sendText(t);
            const m = await c.expectError('bad_request');
            assert.ok(m, t);
        }
        await c.ping();
        await c.close();
    });

    test('a missing or non-string type is bad_request and carries a valid id', async () => {
        const c = await Client.connect(srv.port);
        c.send({});
        await c.expectError('bad_request');
        c.send({ id: 'no-type' });
        await c.expectError('bad_request', { id: 'no-type' });
        c.send({ type: 5, id: 'num-type' });
        await c.expectError('bad_request', { id: 'num-type' });
        c.send({ type: null, id: 'null-type' });
        await c.expectError('bad_request', { id: 'null-type' });
        c.send({ type: ['ping'], id: 'arr-type' });
        await c.expectError('bad_request', { id: 'arr-type' });
        await c.ping();
        await c.close();
    });

    test('an unknown type string is unknown_type with the id', async () => {
        const c = await Client.connect(srv.port);
        c.send({ type: 'dance', id: 'u-1' });
        await c.expectError('unknown_type', { id: 'u-1' });
        c.send({ type: 'Ping' });
        await c.expectError('unknown_type');
        await c.ping();
        await c.close();
    });

    test('ids: up to 64 characters are echoed; longer or non-string ids are bad_request ' +
         'without an id', async () => {
        const c = await Client.connect(srv.port);
        const id64 = 'i'.repeat(64);
        c.send({ type: 'ping', id: id64 });
        assert.deepEqual(await c.recvType('pong'), { type: 'pong', id: id64 });
        c.send({ type: 'ping', id: '' });
        assert.deepEqual(await c.recvType('pong'), { type: 'pong', id: '' });
        for (const bad of ['i'.repeat(65), 'x'.repeat(1000), 17, null, { a: 1 }, ['x'], true]) {
            c.send({ type: 'ping', id: bad });
            await c.expectError('bad_request');
        }
        await c.ping();
        await c.close();
    });

    test('a binary frame is bad_request and the connection stays open', async () => {
        const c = await Client.connect(srv.port);
        c.sendBinary(Buffer.from('{"type":"ping","id":"bin"}'));
        await c.expectError('bad_request');
        c.sendBinary(Buffer.from([0, 1, 2, 255]));
        await c.expectError('bad_request');
        await c.expectNone(scaled(100), (m) => m.type === 'pong');
        await c.ping();
        await c.close();
    });

    test('discover, subscribe and relays before register are not_registered', async () => {
        const c = await Client.connect(srv.port);
        const target = uid('t');
        const reqs = [
            { type: 'discover', userId: target },
            { type: 'discover', userIds: [target] },
            { type: 'subscribe', userIds: [target] },
            { type: 'offer', to: target, offer: { sdp: 'x' } },
            { type: 'answer', to: target, answer: { sdp: 'x' } },
            { type: 'ice-candidate', to: target, candidate: { candidate: 'x' } },
            { type: 'bye', to: target },
        ];
        for (const [i, r] of reqs.entries()) {
            c.send({ ...r, id: `nr${i}` });
            await c.expectError('not_registered', { id: `nr${i}` });
        }
        await c.ping();
        await c.close();
    });

    test('a storm of bad input on one connection disturbs no other', async () => {
        const p = await pair(srv.port);
        const c = await Client.connect(srv.port);
        const junk = [['x', 'bad_json'], ['[]', 'bad_request'], ['{}', 'bad_request'],
                      ['{"type":7}', 'bad_request'], ['{"type":"nope"}', 'unknown_type'],
                      ['{"type":"register"}', 'bad_request'], ['"str"', 'bad_request'],
                      ['{"type":"ping","id":5}', 'bad_request'],
                      ['{"type":"dance","id":"d"}', 'unknown_type']];
        const rounds = 20;
        const want = {};
        for (let i = 0; i < rounds; i++) {
            for (const [text, code] of junk) {
                c.sendText(text);
                want[code] = (want[code] ?? 0) + 1;
            }
        }
        const got = {};
        for (let i = 0; i < rounds * junk.length; i++) {
            const m = await c.recvType('error');
            got[m.code] = (got[m.code] ?? 0) + 1;
        }
        assert.deepEqual(got, want);
        await c.ping();
        await assertPairWorks(p, 'after-storm');
        for (const x of [c, p.a, p.b]) await x.close();
    });
});

describe('frame size limit', () => {
    test('a frame over the default 64 KiB limit is too_large; just under it is relayed',
         async () => {
        const p = await pair(srv.port);
        const big = 'a'.repeat(60000);
        p.a.send({ type: 'offer', to: p.b.userId, offer: big });
        const m = await p.b.recvType('offer');
        assert.equal(m.offer, big);

        const c = await connectAs(srv.port, uid('huge'));
        c.send({ type: 'offer', to: p.b.userId, offer: 'b'.repeat(70000) });
        await assertTooLarge(c);
        await p.b.expectNone(scaled(200), (x) => x.type === 'offer', 'no oversized relay');
        await assertPairWorks(p, 'after-too-large');
        for (const x of [c, p.a, p.b]) await x.close();
    });

    test('with --max-frame 1024 a 2000-byte frame is too_large, 1024 bytes pass, and other ' +
         'connections keep relaying', async () => {
        const p = await pair(small.port);
        // Exactly at the limit is not over it.
        const msg = { type: 'offer', to: p.b.userId, offer: '' };
        const pad = 1024 - JSON.stringify(msg).length;
        msg.offer = 'q'.repeat(pad);
        assert.equal(Buffer.byteLength(JSON.stringify(msg)), 1024);
        p.a.send(msg);
        assert.equal((await p.b.recvType('offer')).offer, msg.offer);

        const c = await connectAs(small.port, uid('big'));
        c.sendText(JSON.stringify({ type: 'offer', to: p.b.userId, offer: 'z'.repeat(1950) }));
        await assertTooLarge(c);
        await assertPairWorks(p, 'small-after');

        // Non-JSON text from an unregistered connection is measured before it is parsed.
        const u = await Client.connect(small.port);
        u.sendText('x'.repeat(2000));
        await assertTooLarge(u);
        await assertPairWorks(p, 'small-after-2');
        for (const x of [c, u, p.a, p.b]) await x.close();
    });
});

/** too_large, then either a close with 1009 or a connection that still works. */
async function assertTooLarge(c) {
    const m = await c.recv((x) => x.type === 'error', scaled(3000), 'too_large');
    assert.equal(m.code, 'too_large', JSON.stringify(m));
    assert.equal(typeof m.message, 'string');
    const closed = await Promise.race([
        c.closed,
        new Promise((r) => setTimeout(() => r(null), scaled(300))),
    ]);
    if (closed) {
        assert.equal(closed.code, 1009, `closed after too_large with ${closed.code}, not 1009`);
    } else {
        await c.ping();
    }
}
