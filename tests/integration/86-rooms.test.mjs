// Tier 86: rooms: join / joined / participant_joined, participant_left on leave and on
// disconnect, room_message fan-out with from, not_in_room, a token's room grant (forbidden
// elsewhere, joined on connect), room_full under --max-room-participants 2, hidden participants,
// and the per-connection room cap.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs } from './lib/client.mjs';
import { fetchMetrics, sampleValue } from './lib/http.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { connectToken } from './lib/token.mjs';
import { scaled, uid } from './lib/util.mjs';

const KEY = 'roomkey';
const SECRET = 'room-secret-0123456789';

const AUTH = { key: KEY, secret: SECRET };

async function join(c, room, id = undefined) {
    c.send(id === undefined ? { type: 'join', room } : { type: 'join', room, id });
    return c.recv((m) => m.type === 'joined' || m.type === 'error', scaled(3000),
                  `reply to join ${room}`);
}

let srv;
before(async () => {
    srv = await startServer({ args: ['--max-room-participants', '2',
                                     '--max-rooms-per-connection', '3'],
                              env: { LIVEKIT_KEYS: `${KEY}: ${SECRET}` } });
});
after(async () => {
    closeAllClients();
    await stopAll();
});

describe('rooms', () => {
    test('join, joined, participant_joined, leave, left, participant_left', async () => {
        const room = uid('room');
        const a = await connectAs(srv.port, uid('ra'));
        const b = await connectAs(srv.port, uid('rb'));
        assert.deepEqual(await join(a, room, 'j1'),
                         { type: 'joined', id: 'j1', room, participants: [] });
        assert.deepEqual(await join(b, room), { type: 'joined', room, participants: [a.userId] });
        assert.deepEqual(await a.recvType('participant_joined'),
                         { type: 'participant_joined', room, userId: b.userId });
        // Joining again is answered and announces nothing.
        assert.deepEqual(await join(b, room), { type: 'joined', room, participants: [a.userId] });
        b.send({ type: 'leave', room, id: 'l1' });
        assert.deepEqual(await b.recvType('left'), { type: 'left', id: 'l1', room });
        assert.deepEqual(await a.recvType('participant_left'),
                         { type: 'participant_left', room, userId: b.userId });
        await a.expectNone(scaled(100), (m) => m.type.startsWith('participant'));
        b.send({ type: 'leave', room, id: 'l2' });
        await b.expectError('not_in_room', { id: 'l2' });
        await a.close();
        await b.close();
    });

    test('a disconnect ends the memberships: participant_left', async () => {
        const room = uid('rd');
        const a = await connectAs(srv.port, uid('da'));
        const b = await connectAs(srv.port, uid('db'));
        await join(a, room);
        await join(b, room);
        await a.recvType('participant_joined');
        b.terminate();
        assert.deepEqual(await a.recvType('participant_left'),
                         { type: 'participant_left', room, userId: b.userId });
        await a.close();
    });

    test('room_message reaches the others with from; data unchanged; not_in_room', async () => {
        const room = uid('rm');
        const a = await connectAs(srv.port, uid('ma'));
        const b = await connectAs(srv.port, uid('mb'));
        const outsider = await connectAs(srv.port, uid('mo'));
        await join(a, room);
        await join(b, room);
        const raw = `{"type":"room_message","room":"${room}","data":{"n":1.0,"s":"\\u00e9",` +
            `"deep":[1e300,null,true]},"from":"forged"}`;
        a.sendText(raw);
        const got = await b.next((m) => m.type === 'room_message');
        assert.equal(got.msg.from, a.userId);
        assert.ok(got.raw.includes('"data":{"n":1.0,"s":"\\u00e9","deep":[1e300,null,true]}'),
                  got.raw);
        assert.ok(!got.raw.includes('forged'));
        // The sender gets nothing back, and any JSON value is fine as data.
        await a.expectNone(scaled(100), (m) => m.type === 'room_message' || m.type === 'error');
        b.send({ type: 'room_message', room, data: 'text' });
        assert.deepEqual(await a.recvType('room_message'),
                         { type: 'room_message', room, data: 'text', from: b.userId });
        outsider.send({ type: 'room_message', room, data: 1, id: 'x1' });
        await outsider.expectError('not_in_room', { id: 'x1' });
        a.send({ type: 'room_message', room, id: 'x2' });
        await a.expectError('bad_request', { id: 'x2' });
        // Targeted relays keep working between room members.
        a.send({ type: 'offer', to: b.userId, offer: { sdp: 'v=0' } });
        assert.equal((await b.recvType('offer')).from, a.userId);
        const m = await fetchMetrics(srv.port);
        assert.ok(sampleValue(m, 'volli_room_messages_total') >= 2);
        assert.ok(sampleValue(m, 'volli_rooms') >= 1);
        assert.ok(sampleValue(m, 'volli_room_participants') >= 2);
        await Promise.all([a.close(), b.close(), outsider.close()]);
    });

    test('join needs registration and a valid name', async () => {
        const c = await Client.connect(srv.port);
        c.send({ type: 'join', room: 'x', id: 'n1' });
        await c.expectError('not_registered', { id: 'n1' });
        const r = await connectAs(srv.port, uid('nv'));
        for (const room of ['', 'a b', 'x'.repeat(129), 7, 'caf\u00e9']) {
            r.send({ type: 'join', room, id: 'n2' });
            await r.expectError('bad_request', { id: 'n2' });
        }
        assert.equal((await join(r, 'x'.repeat(128))).type, 'joined');
        await c.close();
        await r.close();
    });

    test('room_full at --max-room-participants 2; limit_exceeded past 3 rooms', async () => {
        const room = uid('full');
        const a = await connectAs(srv.port, uid('fa'));
        const b = await connectAs(srv.port, uid('fb'));
        const c = await connectAs(srv.port, uid('fc'));
        await join(a, room);
        await join(b, room);
        const e = await join(c, room, 'f1');
        assert.equal(e.code, 'room_full');
        assert.equal(e.id, 'f1');
        for (let i = 0; i < 3; i++) assert.equal((await join(c, `${room}-${i}`)).type, 'joined');
        const l = await join(c, `${room}-3`, 'f2');
        assert.equal(l.code, 'limit_exceeded');
        await Promise.all([a.close(), b.close(), c.close()]);
    });

    test('a room grant: joined on connect, forbidden elsewhere', async () => {
        const room = uid('grant');
        const k = await connectAs(srv.port, uid('gk'));
        await join(k, room);
        const t = await connectToken(srv.port, { sub: uid('gt'), video: { roomJoin: true, room } },
                                     AUTH);
        assert.deepEqual(await t.recvType('joined'), { type: 'joined', room,
                                                       participants: [k.userId] });
        assert.deepEqual(await k.recvType('participant_joined'),
                         { type: 'participant_joined', room, userId: t.userId });
        const e = await join(t, `${room}-other`, 'g1');
        assert.equal(e.code, 'forbidden');
        assert.equal((await join(t, room)).type, 'joined');
        await t.close();
        assert.equal((await k.recvType('participant_left')).userId, t.userId);
        await k.close();
    });

    test('hidden participants are neither announced nor listed, but receive messages',
         async () => {
        const room = uid('hid');
        const v = await connectAs(srv.port, uid('hv'));
        await join(v, room);
        const h = await connectToken(srv.port, { sub: uid('hh'),
                                                 video: { roomJoin: true, room, hidden: true } },
                                     AUTH);
        assert.deepEqual(await h.recvType('joined'), { type: 'joined', room,
                                                       participants: [v.userId] });
        await v.expectNone(scaled(150), (m) => m.type === 'participant_joined');
        v.send({ type: 'room_message', room, data: { hi: 1 } });
        assert.equal((await h.recvType('room_message')).from, v.userId);
        h.send({ type: 'leave', room });
        await h.recvType('left');
        await v.expectNone(scaled(150), (m) => m.type === 'participant_left');
        await h.close();
        await v.close();
    });
});
