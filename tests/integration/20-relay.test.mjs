// Tier 20: relay of offer / answer / ice-candidate / bye (contract rule 4 and the lead's
// decisions: from insertion, unchanged payloads, ordering, peer_offline, self relay).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs, makeIdentity, waitOffline } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { scaled, uid } from './lib/util.mjs';

let srv;
before(async () => {
    srv = await startServer();
});
after(async () => {
    closeAllClients();
    await stopAll();
});

async function pair() {
    const a = await connectAs(srv.port, uid('ra'));
    const b = await connectAs(srv.port, uid('rb'));
    return { a, b };
}

/**
 * Waits for the relayed message of `type` at `to`; fails at once with the sender's error if
 * the sender gets one instead (so a refused relay is reported as what it is, not a timeout).
 */
async function relayed(from, to, type) {
    const stop = new AbortController();
    const failed = from.next((m) => m.type === 'error', scaled(3000), 'sender error', stop.signal)
        .then((e) => {
            throw new Error(`the sender got ${e.raw} instead of a relay`);
        }, () => new Promise(() => {}));
    try {
        return await Promise.race([to.next((m) => m.type === type, scaled(3000), type), failed]);
    } finally {
        stop.abort();
    }
}

async function closeAll(...cs) {
    for (const c of cs) await c.close();
}

const PAYLOAD_FIELD = { offer: 'offer', answer: 'answer', 'ice-candidate': 'candidate' };

describe('relay', () => {
    test('offer, answer, ice-candidate and bye reach the peer with from set', async () => {
        const { a, b } = await pair();
        const msgs = [
            { type: 'offer', to: b.userId, offer: { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN\r\n' } },
            { type: 'answer', to: b.userId, answer: { type: 'answer', sdp: 'v=0\r\n' } },
            { type: 'ice-candidate', to: b.userId,
              candidate: { candidate: 'candidate:1 1 UDP 2122 10.0.0.1 5000 typ host',
                           sdpMid: '0', sdpMLineIndex: 0 } },
            { type: 'bye', to: b.userId },
            { type: 'bye', to: b.userId, reason: 'hangup' },
        ];
        for (const m of msgs) {
            a.send(m);
            const got = await b.recvType(m.type);
            assert.deepEqual(got, { ...m, from: a.userId });
        }
        // A successful relay sends nothing back to the sender.
        await a.expectNone(scaled(300), () => true, 'nothing back to the sender');
        await closeAll(a, b);
    });

    test('a from written by the sender is replaced; id and extra fields are forwarded',
         async () => {
        const { a, b } = await pair();
        a.send({ type: 'offer', to: b.userId, from: 'mallory', offer: 'o', id: 'x-1',
                 extra: { deep: [1, 'two'] }, ttl: 5 });
        const got = await b.recvType('offer');
        assert.deepEqual(got, { type: 'offer', to: b.userId, from: a.userId, offer: 'o',
                                id: 'x-1', extra: { deep: [1, 'two'] }, ttl: 5 });
        await a.expectNone(scaled(300), () => true, 'nothing back to the sender');
        await closeAll(a, b);
    });

    test('payloads of any JSON kind are forwarded unchanged in value', async () => {
        const { a, b } = await pair();
        const payloads = [
            'plain string',
            42,
            -0.5,
            true,
            false,
            [],
            {},
            [[1, [2, [3, [4, [5]]]]], { a: { b: { c: { d: {} } } } }],
            { unicode: 'héllo ☃ 😀 日本語', esc: '"\\/\b\f\n\r\t', ctrl: '\u0001\u001f' },
            { nums: [0, -1, 1.5, 1e300, -1e-300, 9007199254740991, 123.456e-7] },
            { 'key with spaces': 1, '': 'empty key', 'ключ': 'значение' },
            { nested: { null: null, arr: [null, true, 'x'] } },
        ];
        for (const [type, field] of Object.entries(PAYLOAD_FIELD)) {
            for (const payload of payloads) {
                a.send({ type, to: b.userId, [field]: payload });
                const got = (await relayed(a, b, type)).msg;
                assert.deepEqual(got[field], payload, `${type} payload ${JSON.stringify(payload)}`);
                assert.equal(got.from, a.userId);
            }
        }
        await closeAll(a, b);
    });

    test('the payload text arrives exactly as sent (numbers, escapes, spacing)', async () => {
        const { a, b } = await pair();
        const texts = [
            '{"sdp":"v=0\\r\\n","n":1.0,"big":1e300,"neg":-0,"exp":2E-5,"frac":0.10}',
            '["\\u00e9\\u2603","\\ud83d\\ude00","\\/","tab\\there"]',
            '{ "spaced" : [ 1 , 2 , { "x" : null } ] }',
            '{"small":5e-324,"max":1.7976931348623157e308,"int":-9223372036854775808}',
            '"just a string with \\"quotes\\""',
        ];
        for (const t of texts) {
            a.sendText(`{"type":"offer","to":"${b.userId}","offer":${t}}`);
            const { raw } = await relayed(a, b, 'offer');
            assert.ok(raw.includes(t), `payload text changed:\n sent ${t}\n got  ${raw}`);
        }
        await closeAll(a, b);
    });

    test('integers beyond 64 bits are valid JSON and are forwarded as sent', async () => {
        const { a, b } = await pair();
        const t = '{"long":123456789012345678901234567890,"u64":18446744073709551616}';
        a.sendText(`{"type":"answer","to":"${b.userId}","answer":${t}}`);
        const { raw } = await relayed(a, b, 'answer');
        assert.ok(raw.includes(t), `payload text changed:\n sent ${t}\n got  ${raw}`);
        await closeAll(a, b);
    });

    test('strings with \\u0000 escapes are forwarded', async () => {
        const { a, b } = await pair();
        a.sendText(`{"type":"ice-candidate","to":"${b.userId}","candidate":"a\\u0000b"}`);
        const { msg } = await relayed(a, b, 'ice-candidate');
        assert.equal(msg.candidate, 'a\u0000b');
        await closeAll(a, b);
    });

    test('messages from one sender to one recipient arrive in order', async () => {
        const { a, b } = await pair();
        const c = await connectAs(srv.port, uid('rc'));
        const n = 300;
        const types = ['offer', 'answer', 'ice-candidate'];
        for (let i = 0; i < n; i++) {
            const type = types[i % 3];
            a.send({ type, to: b.userId, [PAYLOAD_FIELD[type]]: { seq: i } });
            c.send({ type: 'ice-candidate', to: b.userId, candidate: { seq: i } });
        }
        const fromA = [];
        const fromC = [];
        for (let i = 0; i < 2 * n; i++) {
            const m = await b.recv((x) => x.type !== 'presence', scaled(5000), `relay ${i}`);
            const seq = (m.offer ?? m.answer ?? m.candidate).seq;
            if (m.from === a.userId) {
                fromA.push(seq);
                assert.equal(m.type, types[seq % 3]);
            } else {
                assert.equal(m.from, c.userId);
                fromC.push(seq);
            }
        }
        const expected = [...Array(n).keys()];
        assert.deepEqual(fromA, expected);
        assert.deepEqual(fromC, expected);
        await closeAll(a, b, c);
    });

    test('relaying to yourself is allowed', async () => {
        const a = await connectAs(srv.port, uid('self'));
        a.send({ type: 'offer', to: a.userId, offer: 'me', id: 's1' });
        const got = await a.recvType('offer');
        assert.deepEqual(got, { type: 'offer', to: a.userId, offer: 'me', id: 's1',
                                from: a.userId });
        await a.close();
    });

    test('upper case in to is folded', async () => {
        const { a, b } = await pair();
        a.send({ type: 'answer', to: b.userId.toUpperCase(), answer: 'up' });
        const got = await b.recvType('answer');
        assert.equal(got.answer, 'up');
        assert.equal(got.from, a.userId);
        await closeAll(a, b);
    });

    test('a peer that is not online gets peer_offline with to and id', async () => {
        const a = await connectAs(srv.port, uid('lonely'));
        const never = uid('never');
        a.send({ type: 'offer', to: never, offer: 'x', id: 'po-1' });
        await a.expectError('peer_offline', { id: 'po-1', to: never });
        a.send({ type: 'bye', to: never.toUpperCase() });
        await a.expectError('peer_offline', { to: never });

        // A user who was online and left.
        const gone = await connectAs(srv.port, uid('gone'));
        await gone.close();
        await waitOffline(a, gone.userId);
        for (const type of ['offer', 'answer', 'ice-candidate', 'bye']) {
            const field = PAYLOAD_FIELD[type];
            const msg = { type, to: gone.userId, id: `po-${type}` };
            if (field) msg[field] = 'p';
            a.send(msg);
            await a.expectError('peer_offline', { id: `po-${type}`, to: gone.userId });
        }
        await a.ping();
        await a.close();
    });

    test('relay after the recipient reconnects reaches the new connection', async () => {
        const a = await connectAs(srv.port, uid('ra'));
        const ident = makeIdentity(uid('back'));
        const b1 = await Client.connect(srv.port);
        await b1.registerOk(ident);
        await b1.close();
        const b2 = await Client.connect(srv.port);
        await b2.registerOk(ident);
        a.send({ type: 'offer', to: ident.userId, offer: 'again' });
        assert.equal((await b2.recvType('offer')).offer, 'again');
        await closeAll(a, b2);
    });

    test('relay requests with missing or wrongly typed fields are bad_request', async () => {
        const { a, b } = await pair();
        const to = b.userId;
        const cases = [
            { type: 'offer', offer: 'x' },
            { type: 'bye' },
            { type: 'offer', to: 7, offer: 'x' },
            { type: 'offer', to: null, offer: 'x' },
            { type: 'offer', to: [to], offer: 'x' },
            { type: 'offer', to },
            { type: 'answer', to },
            { type: 'ice-candidate', to },
            { type: 'ice-candidate', to, offer: 'wrong field' },
            { type: 'answer', to, offer: 'wrong field' },
        ];
        for (const [i, c] of cases.entries()) {
            a.send({ ...c, id: `br${i}` });
            await a.expectError('bad_request', { id: `br${i}` });
        }
        await b.expectNone(scaled(200), () => true, 'nothing relayed');
        await closeAll(a, b);
    });

    test('an invalid to is invalid_user_id', async () => {
        const a = await connectAs(srv.port, uid('inv'));
        for (const [i, bad] of ['', 'has space', 'x'.repeat(129), 'a/b', 'é'].entries()) {
            a.send({ type: 'offer', to: bad, offer: 'x', id: `iu${i}` });
            await a.expectError('invalid_user_id', { id: `iu${i}` });
        }
        await a.ping();
        await a.close();
    });

    test('relay traffic between two pairs does not cross', async () => {
        const p1 = await pair();
        const p2 = await pair();
        for (let i = 0; i < 20; i++) {
            p1.a.send({ type: 'offer', to: p1.b.userId, offer: { p: 1, i } });
            p2.a.send({ type: 'offer', to: p2.b.userId, offer: { p: 2, i } });
        }
        for (let i = 0; i < 20; i++) {
            assert.deepEqual((await p1.b.recvType('offer')).offer, { p: 1, i });
            assert.deepEqual((await p2.b.recvType('offer')).offer, { p: 2, i });
        }
        await p1.b.expectNone(scaled(200));
        await p2.b.expectNone(scaled(200));
        await closeAll(p1.a, p1.b, p2.a, p2.b);
    });
});
