// Tier 96: cluster mode, the whole v1 contract across nodes. Three nodes share one Redis and one
// PostgreSQL (each node its own data directory); every rule of docs/protocol.md that involves
// more than one user is exercised with the users on different nodes: register (the binding is
// cluster-wide; the newest connection wins across nodes with `replaced` / 4000 and no presence
// flicker), discover, relays (payload byte for byte, order, peer_offline), presence within 1 s,
// and rooms (participants from every node, announcements and room_message across nodes, the
// room limit counted cluster-wide, hidden participants). Also: --redis without --database.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, connectAs, makeIdentity } from './lib/client.mjs';
import {
    Cluster, cleanup, discover, metric, relayOk, target, waitHealth, waitMetric, waitPresence,
} from './lib/cluster.mjs';
import { runCli, tempDir } from './lib/server.mjs';
import { connectToken } from './lib/token.mjs';
import { scaled, sleep, uid } from './lib/util.mjs';

const KEY = 'clusterkey';
const SECRET = 'cluster-secret-0123456789';
const ROOM_LIMIT = 3;

let cl;
let A;
let B;
let C;
before(async () => {
    cl = await Cluster.start({
        nodes: 3,
        args: ['--max-room-participants', String(ROOM_LIMIT)],
        env: { LIVEKIT_KEYS: `${KEY}: ${SECRET}` },
    });
    [A, B, C] = cl.nodes;
});
after(cleanup);

const isPresence = (m) => m.type === 'presence';

const AUTH = { key: KEY, secret: SECRET };

async function join(c, room, id = undefined) {
    c.send(id === undefined ? { type: 'join', room } : { type: 'join', room, id });
    return c.recv((m) => m.type === 'joined' || m.type === 'error', scaled(3000),
                  `reply to join ${room} by ${c.userId}`);
}

describe('cluster: configuration and health', () => {
    test('--redis without --database is a usage error (exit 2) naming --database', async () => {
        const r = await runCli(['--redis', cl.redis.url, '--port', '0', '--data-dir',
                                tempDir(), '--api-port', '-1']);
        assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
        assert.match(r.stderr, /--database/, `the message does not name --database: ${r.stderr}`);
    });

    test('a node timeout of at most two heartbeats is a usage error (exit 2)', async () => {
        const r = await runCli(['--redis', cl.redis.url, '--database', cl.pg.url, '--port', '0',
                                '--data-dir', tempDir(), '--api-port', '-1',
                                '--cluster-heartbeat', '1', '--cluster-node-timeout', '2']);
        assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
        assert.match(r.stderr, /--cluster-node-timeout.*--cluster-heartbeat/, r.stderr);
        // (Every other node here runs the defaults, 1 s and 3 s, which are accepted.)
    });

    test('every node: /healthz 200 {"status":"ok"} on both ports, Redis up, 3 live nodes, ' +
         'its own server.key', async () => {
        for (const node of cl.nodes) {
            for (const api of [false, true]) {
                const h = await waitHealth(node, 200, { api });
                assert.deepEqual(h.json, { status: 'ok' }, `${node.nodeId}: ${h.body}`);
                assert.match(h.headers['content-type'], /^application\/json/);
            }
            assert.equal(await metric(node, 'volli_redis_up'), 1, node.nodeId);
            assert.equal(await metric(node, 'volli_cluster_nodes'), 3, node.nodeId);
            assert.ok(fs.existsSync(path.join(node.dataDir, 'server.key')),
                      `${node.nodeId} has no server.key in its data dir`);
        }
    });
});

describe('cluster: server identity keys', () => {
    test('a node counts and reports live nodes whose server.key differs from its own ' +
         '(clients pinning the key could not fail over to them)', async () => {
        // The three nodes made their own keys: each sees the two others differ.
        for (const node of cl.live) {
            await waitMetric(node, 'volli_cluster_server_key_mismatch', (v) => v === 2,
                             scaled(5000), `${node.nodeId}: 2 nodes with another key`);
            await node.waitLog((l) => l.msg === 'server_key_differs', scaled(5000),
                               `${node.nodeId} warns about the other keys`);
        }
        // A fourth node given A's key: it differs from B and C only, and B and C now count 3.
        const dir = tempDir('volli-it-samekey-');
        fs.copyFileSync(path.join(A.dataDir, 'server.key'), path.join(dir, 'server.key'));
        fs.chmodSync(path.join(dir, 'server.key'), 0o600);
        const D = await cl.addNode({ dataDir: dir });
        try {
            await waitMetric(D, 'volli_cluster_server_key_mismatch', (v) => v === 2, scaled(5000),
                             'D (A\'s key): B and C differ');
            await waitMetric(A, 'volli_cluster_server_key_mismatch', (v) => v === 2, scaled(5000),
                             'A: B and C differ, D does not');
            await waitMetric(B, 'volli_cluster_server_key_mismatch', (v) => v === 3, scaled(5000),
                             'B: A, C and D differ');
        } finally {
            await D.stop('SIGTERM');
        }
        // D left (its heartbeat key is gone at once): back to 2.
        await waitMetric(B, 'volli_cluster_server_key_mismatch', (v) => v === 2, scaled(5000),
                         'B after D left');
    });
});

describe('cluster: register and discover', () => {
    test('right after "registered" on A, users on B and C see it online with its key and can ' +
         'relay to it', async () => {
        const ident = makeIdentity(uid('ryw'));
        const a = await Client.connect(A.port);
        const b = await connectAs(B.port, uid('rb'));
        const c = await connectAs(C.port, uid('rc'));
        await a.registerOk(ident);
        const d = await discover(b, ident.userId);
        delete d.id;
        assert.deepEqual(d, { type: 'discover', userId: ident.userId, online: true,
                              publicKey: ident.publicKey },
                         'a user registered on A is not online with its key for B at once');
        const never = uid('never');
        c.send({ type: 'discover', id: 'batch', userIds: [ident.userId.toUpperCase(), never] });
        assert.deepEqual(await c.recv((m) => m.id === 'batch'), {
            type: 'discover', id: 'batch', users: [
                { userId: ident.userId, online: true, publicKey: ident.publicKey },
                { userId: never, online: false, publicKey: null }],
        });
        await relayOk(b, a, 'offer');
        await relayOk(c, a, 'ice-candidate', { candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ' });
        await Promise.all([a.close(), b.close(), c.close()]);
    });

    test('a key bound on one node is bound on all: key_mismatch elsewhere, the key accepted, ' +
         'discover shows it offline', async () => {
        const ident = makeIdentity(uid('bind'));
        const first = await connectAs(A.port, ident);
        await first.close();
        const intruder = await Client.connect(B.port);
        const m = await intruder.register(makeIdentity(ident.userId), { id: 'km' });
        assert.deepEqual([m.type, m.code, m.id], ['error', 'key_mismatch', 'km'],
                         `another key for ${ident.userId} on B: ${JSON.stringify(m)}`);
        const again = await Client.connect(C.port);
        await again.registerOk(ident);
        await again.close();
        const asker = await connectAs(B.port, uid('ask'));
        const { reply } = await waitPresence(asker, ident.userId, false, target(1000));
        assert.equal(reply.publicKey, ident.publicKey);
        await Promise.all([intruder.close(), asker.close()]);
    });

    test('the newest connection wins across nodes: replaced + 4000 on the old node, no ' +
         'presence flicker, relays reach the new one', async () => {
        const ident = makeIdentity(uid('repl'));
        const old = await connectAs(A.port, ident);
        const watcher = await connectAs(C.port, uid('watch'));
        watcher.send({ type: 'subscribe', id: 's1', userIds: [ident.userId] });
        assert.deepEqual(await watcher.recv(isPresence),
                         { type: 'presence', id: 's1', userId: ident.userId, online: true });

        const newer = await connectAs(B.port, ident);
        const err = await old.expectError('replaced', { ms: scaled(3000) });
        assert.equal(err.type, 'error');
        const closed = await old.waitClose(scaled(3000));
        assert.equal(closed.code, 4000, `old connection closed with ${closed.code}`);
        await watcher.expectNone(scaled(1500), (m) => isPresence(m) && m.userId === ident.userId,
                                 'no offline/online flicker for a replaced user');

        await relayOk(watcher, newer, 'offer');
        assert.equal((await discover(watcher, ident.userId)).online, true);
        // The replacement is only an ownership change: a later close is a real offline.
        await newer.close();
        const t0 = Date.now();
        const off = await watcher.recv(isPresence, target(1000), 'offline within 1 s');
        assert.deepEqual(off, { type: 'presence', userId: ident.userId, online: false });
        console.log(`offline across nodes after ${Date.now() - t0} ms`);
        await watcher.close();
    });

    test('the same user registering on two nodes at the same moment: both are answered ' +
         '"registered", exactly one connection survives and gets the relays', async () => {
        // Many races at once, so that a node often hears the other node's registration before
        // Redis has answered its own: the request must still be answered (with its id), and
        // only then may "replaced" follow.
        const RACES = 24;
        const sender = await connectAs(C.port, uid('snd'));
        for (let round = 0; round < 3; round++) {
            const races = await Promise.all(Array.from({ length: RACES }, async (_, i) => {
                const ident = makeIdentity(uid(`race${round}x${i}`));
                const [x, y] = await Promise.all([Client.connect(A.port), Client.connect(B.port)]);
                return { ident, x, y };
            }));
            await Promise.all(races.map(async ({ ident, x, y }) => {
                const replies = await Promise.all([x.register(ident, { id: 'rx' }),
                                                   y.register(ident, { id: 'ry' })]);
                for (const [r, id] of [[replies[0], 'rx'], [replies[1], 'ry']]) {
                    assert.equal(r.type, 'registered', `round ${round}: ${JSON.stringify(r)}`);
                    assert.equal(r.id, id, `round ${round}: the reply carries the request id`);
                }
            }));
            await Promise.all(races.map(async ({ ident, x, y }) => {
                // One of them must be told it was replaced and be closed with 4000; not both.
                const outcome = await Promise.race([
                    x.closed.then((ci) => ({ loser: x, winner: y, ci })),
                    y.closed.then((ci) => ({ loser: y, winner: x, ci })),
                    sleep(scaled(3000)).then(() => null),
                ]);
                assert.ok(outcome, `round ${round}: both registers of ${ident.userId} (on A ` +
                          'and B) stayed open: the cluster has two live connections for one user');
                assert.equal(outcome.ci.code, 4000,
                             `round ${round}: closed with ${outcome.ci.code}`);
                assert.ok(outcome.loser.queue.some((e) => e.msg.code === 'replaced'),
                          `round ${round}: no "replaced" before the close: ` +
                          outcome.loser.describeQueue());
                await outcome.winner.expectNone(scaled(1000), (m) => m.type === 'error',
                                                'no error for the surviving connection');
                assert.ok(outcome.winner.isOpen, `round ${round}: both connections were closed`);
                outcome.winner.userId = ident.userId;
                await relayOk(sender, outcome.winner, 'offer');
                await outcome.winner.close();
            }));
        }
        await sender.close();
    });
});

describe('cluster: relays', () => {
    test('offer / answer / ice-candidate / bye cross nodes with from set and the rest byte for ' +
         'byte', async () => {
        const a = await connectAs(A.port, uid('ra'));
        const b = await connectAs(B.port, uid('rb'));
        // How soon a registration is visible elsewhere is the first test's business.
        await waitPresence(a, b.userId, true, target(1000));
        await waitPresence(b, a.userId, true, target(1000));
        const payloads = {
            offer: ['offer', '{"type":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\\r\\n"}'],
            answer: ['answer', '{"n":1.0,"big":1e300,"esc":"\\u00e9\\"","arr":[ 1 , 2 ]}'],
            'ice-candidate': ['candidate', '{"candidate":"candidate:0 1 UDP 1 10.0.0.1 9 typ ' +
                                           'host","sdpMid":"0","sdpMLineIndex":0}'],
        };
        for (const [type, [member, text]] of Object.entries(payloads)) {
            const to = b.userId.toUpperCase();
            const raw = `{"type":"${type}","to":"${to}","${member}":${text},` +
                `"from":"forged","id":"x-${type}","extra":{"k":[true,null]}}`;
            a.sendText(raw);
            const got = await b.next((m) => m.type === type, scaled(3000), `${type} on B`);
            assert.equal(got.msg.from, a.userId, got.raw);
            assert.ok(got.raw.includes(`"${member}":${text}`), `payload changed: ${got.raw}`);
            assert.ok(got.raw.includes(`"to":"${to}"`), `to changed: ${got.raw}`);
            assert.ok(got.raw.includes('"extra":{"k":[true,null]}'), got.raw);
            assert.equal(got.msg.id, `x-${type}`);
            assert.ok(!got.raw.includes('forged'), got.raw);
        }
        b.send({ type: 'bye', to: a.userId });
        assert.deepEqual(await a.recvType('bye'), { type: 'bye', to: a.userId, from: b.userId });
        b.send({ type: 'bye', to: a.userId, reason: 'hangup' });
        assert.equal((await a.recvType('bye')).reason, 'hangup');
        // A successful relay sends nothing back to the sender.
        await a.expectNone(scaled(300), (m) => m.type === 'error', 'no reply to a relay');
        await Promise.all([a.close(), b.close()]);
    });

    test('messages from one sender to one recipient on another node arrive in order',
         async () => {
        const a = await connectAs(A.port, uid('oa'));
        const c = await connectAs(C.port, uid('oc'));
        await waitPresence(a, c.userId, true, target(1000));
        const n = 400;
        for (let i = 0; i < n; i++) {
            const type = i % 3 === 0 ? 'offer' : 'ice-candidate';
            const member = type === 'offer' ? 'offer' : 'candidate';
            a.send({ type, to: c.userId, [member]: { seq: i } });
        }
        for (let i = 0; i < n; i++) {
            const m = await c.recv((x) => x.type === 'offer' || x.type === 'ice-candidate',
                                   scaled(5000), `relay ${i}`);
            const seq = (m.offer ?? m.candidate).seq;
            assert.equal(seq, i, `message ${i} arrived as ${seq}: out of order or lost`);
        }
        await Promise.all([a.close(), c.close()]);
    });

    test('peer_offline when the recipient is online nowhere (never seen, or gone from another ' +
         'node)', async () => {
        const a = await connectAs(A.port, uid('po'));
        const ghost = uid('Ghost').toUpperCase();
        a.send({ type: 'offer', to: ghost, offer: { sdp: 'x' }, id: 'p1' });
        await a.expectError('peer_offline', { id: 'p1', to: ghost.toLowerCase() });
        const b = await connectAs(B.port, uid('gone'));
        await waitPresence(a, b.userId, true, target(1000));
        await relayOk(a, b, 'answer');
        await b.close();
        await waitPresence(a, b.userId, false, target(1000));
        a.send({ type: 'answer', to: b.userId, answer: { sdp: 'y' }, id: 'p2' });
        await a.expectError('peer_offline', { id: 'p2', to: b.userId });
        a.send({ type: 'bye', to: b.userId });
        await a.expectError('peer_offline', { to: b.userId });
        await a.close();
    });
});

describe('cluster: presence', () => {
    test('subscribe answers at once with the state of users on other nodes', async () => {
        const onB = await connectAs(B.port, uid('onb'));
        const goneC = await connectAs(C.port, uid('gonec'));
        const watcher = await connectAs(A.port, uid('w'));
        await goneC.close();
        await waitPresence(watcher, goneC.userId, false, target(1000));
        const never = uid('never');
        watcher.send({ type: 'subscribe', id: 's', userIds: [onB.userId, goneC.userId, never] });
        const got = new Map();
        for (let i = 0; i < 3; i++) {
            const m = await watcher.recv(isPresence, scaled(3000), `presence ${i + 1}/3`);
            got.set(m.userId, m);
        }
        assert.deepEqual(got.get(onB.userId),
                         { type: 'presence', id: 's', userId: onB.userId, online: true });
        assert.deepEqual(got.get(goneC.userId),
                         { type: 'presence', id: 's', userId: goneC.userId, online: false });
        assert.deepEqual(got.get(never), { type: 'presence', id: 's', userId: never,
                                           online: false });
        await watcher.expectNone(scaled(300), isPresence, 'nothing but the three replies');
        await Promise.all([watcher.close(), onB.close()]);
    });

    test('register, close and an abrupt drop on other nodes reach subscribers on two nodes ' +
         'within 1 s', async () => {
        const ident = makeIdentity(uid('tgt'));
        const wA = await connectAs(A.port, uid('wa'));
        const wC = await connectAs(C.port, uid('wc'));
        for (const w of [wA, wC]) {
            w.send({ type: 'subscribe', userIds: [ident.userId] });
            assert.equal((await w.recv(isPresence)).online, false);
        }
        const expect = async (online, what) => {
            const t0 = Date.now();
            for (const w of [wA, wC]) {
                const m = await w.recv((x) => isPresence(x) && x.userId === ident.userId,
                                       target(1000), `${what} at ${w.userId} within 1 s`);
                assert.deepEqual(m, { type: 'presence', userId: ident.userId, online });
            }
            return Date.now() - t0;
        };
        const t = await Client.connect(B.port);
        await t.registerOk(ident);
        const tOn = await expect(true, 'online (register on B)');
        await t.close();
        const tOff = await expect(false, 'offline (close on B)');
        const t2 = await Client.connect(C.port);
        await t2.registerOk(ident);
        await expect(true, 'online (register on C)');
        t2.terminate();
        const tDrop = await expect(false, 'offline (TCP drop on C)');
        console.log(`cross-node presence: online ${tOn} ms, offline ${tOff} ms, drop ${tDrop} ms`);
        // The subscriber's own node's user is no different: wA's node also hosts users.
        await Promise.all([wA.close(), wC.close()]);
    });

    test('unsubscribe stops changes from other nodes', async () => {
        const ident = makeIdentity(uid('uns'));
        const w = await connectAs(A.port, uid('w'));
        w.send({ type: 'subscribe', userIds: [ident.userId] });
        await w.recv(isPresence);
        w.send({ type: 'unsubscribe', userIds: [ident.userId] });
        await w.ping(); // the unsubscribe was handled
        const t = await connectAs(B.port, ident);
        await w.expectNone(scaled(1200), isPresence, 'no presence after unsubscribe');
        await Promise.all([w.close(), t.close()]);
    });
});

describe('cluster: rooms', () => {
    test('participants from every node in join order; announcements and room_message cross ' +
         'nodes; leave and drop announced', async () => {
        const room = uid('room');
        const a = await connectAs(A.port, uid('ja'));
        const b = await connectAs(B.port, uid('jb'));
        const c = await connectAs(C.port, uid('jc'));
        assert.deepEqual(await join(a, room, 'j1'),
                         { type: 'joined', id: 'j1', room, participants: [] });
        assert.deepEqual(await join(b, room), { type: 'joined', room, participants: [a.userId] });
        assert.deepEqual(await a.recvType('participant_joined'),
                         { type: 'participant_joined', room, userId: b.userId });
        assert.deepEqual(await join(c, room),
                         { type: 'joined', room, participants: [a.userId, b.userId] });
        for (const x of [a, b]) {
            assert.deepEqual(await x.recvType('participant_joined'),
                             { type: 'participant_joined', room, userId: c.userId });
        }
        // Joining again answers and announces nothing anywhere.
        assert.deepEqual(await join(c, room),
                         { type: 'joined', room, participants: [a.userId, b.userId] },
                         'a repeated join must list the other members again');

        const raw = `{"type":"room_message","room":"${room}","data":{"n":1.0,"s":"\\u00e9",` +
            `"deep":[1e300,null,true]},"from":"forged"}`;
        b.sendText(raw);
        for (const x of [a, c]) {
            const got = await x.next((m) => m.type === 'room_message', scaled(3000),
                                     `room_message at ${x.userId}`);
            assert.equal(got.msg.from, b.userId);
            assert.ok(got.raw.includes('"data":{"n":1.0,"s":"\\u00e9","deep":[1e300,null,true]}'),
                      got.raw);
            assert.ok(!got.raw.includes('forged'), got.raw);
        }
        await b.expectNone(scaled(200), (m) => m.type === 'room_message' || m.type === 'error',
                           'nothing back to the sender');
        for (const x of [a, b, c]) {
            await x.expectNone(0, (m) => m.type === 'participant_joined',
                               'no announcement for a repeated join');
        }

        b.send({ type: 'leave', room, id: 'l1' });
        assert.deepEqual(await b.recvType('left'), { type: 'left', id: 'l1', room });
        for (const x of [a, c]) {
            assert.deepEqual(await x.recvType('participant_left'),
                             { type: 'participant_left', room, userId: b.userId });
        }
        c.terminate();
        assert.deepEqual(await a.recvType('participant_left'),
                         { type: 'participant_left', room, userId: c.userId });
        a.send({ type: 'room_message', room, data: 1, id: 'm1' });
        await a.expectNone(scaled(200), (m) => m.type === 'error', 'no error when alone');
        b.send({ type: 'room_message', room, data: 1, id: 'm2' });
        await b.expectError('not_in_room', { id: 'm2' });
        await Promise.all([a.close(), b.close()]);
    });

    test(`the room limit (${ROOM_LIMIT}) is cluster-wide`, async () => {
        const room = uid('full');
        const members = [await connectAs(A.port, uid('fa')), await connectAs(B.port, uid('fb')),
                         await connectAs(C.port, uid('fc'))];
        for (const m of members) assert.equal((await join(m, room)).type, 'joined');
        for (const node of [A, B, C]) {
            const late = await connectAs(node.port, uid('late'));
            const e = await join(late, room, 'f1');
            assert.deepEqual([e.type, e.code, e.id], ['error', 'room_full', 'f1'],
                             `a 4th member on ${node.nodeId}: ${JSON.stringify(e)}`);
            await late.close();
        }
        members[1].send({ type: 'leave', room });
        await members[1].recvType('left');
        await members[0].recvType('participant_left');
        const late = await connectAs(A.port, uid('late'));
        assert.equal((await join(late, room)).type, 'joined', 'a place freed on B is free on A');
        await Promise.all([...members, late].map((m) => m.close()));
    });

    test('a connection that registers again keeps its room memberships leavable: its leave ' +
         'frees the place cluster-wide', async () => {
        const room = uid('rereg');
        const t = await connectToken(A.port, { sub: uid('rt') }, AUTH);
        assert.equal((await join(t, room)).type, 'joined');
        // The token user names itself again in a register (answered, nothing rebound).
        t.send({ type: 'register', id: 'again', userId: t.userId, publicKey: 'AAAA',
                 signature: 'AAAA' });
        assert.equal((await t.recv((m) => m.id === 'again')).type, 'registered');
        t.send({ type: 'leave', room });
        await t.recvType('left');
        // All three places are free again, on any node.
        const others = [await connectAs(A.port, uid('rr')), await connectAs(B.port, uid('rr')),
                        await connectAs(C.port, uid('rr'))];
        for (const o of others) {
            const r = await join(o, room);
            assert.equal(r.type, 'joined', `the left membership still counts: ${JSON.stringify(r)}`);
        }
        await Promise.all([t, ...others].map((c) => c.close()));
    });

    test('hidden participants on another node: not announced, not listed, counted, sent room ' +
         'messages; a token user is online everywhere', async () => {
        const room = uid('hid');
        const v = await connectAs(A.port, uid('hv'));
        await join(v, room);
        const h = await connectToken(B.port, { sub: uid('hh'),
                                               video: { roomJoin: true, room, hidden: true } },
                                     AUTH);
        assert.deepEqual(await h.recvType('joined'), { type: 'joined', room,
                                                       participants: [v.userId] });
        await v.expectNone(scaled(500), (m) => m.type === 'participant_joined',
                           'no announcement of a hidden participant');
        const w = await connectAs(C.port, uid('hw'));
        assert.deepEqual(await join(w, room), { type: 'joined', room, participants: [v.userId] },
                         'hidden participant listed');
        assert.equal((await v.recvType('participant_joined')).userId, w.userId);
        // v, h (hidden) and w: the room is full cluster-wide.
        const x = await connectAs(A.port, uid('hx'));
        assert.equal((await join(x, room, 'hf')).code, 'room_full', 'hidden one not counted');
        v.send({ type: 'room_message', room, data: { hi: 1 } });
        assert.equal((await h.recvType('room_message')).from, v.userId);
        assert.equal((await w.recvType('room_message')).from, v.userId);
        // The token user is online for everyone, with no key bound.
        assert.deepEqual(await discover(x, h.userId).then((m) => [m.online, m.publicKey]),
                         [true, null]);
        h.send({ type: 'leave', room });
        await h.recvType('left');
        await v.expectNone(scaled(500), (m) => m.type === 'participant_left',
                           'no participant_left for a hidden participant');
        await w.expectNone(0, (m) => m.type === 'participant_left', 'nor on C');
        await Promise.all([v, h, w, x].map((c) => c.close()));
    });

    test('a replacement on another node ends the old connection\'s memberships', async () => {
        const room = uid('rr');
        const ident = makeIdentity(uid('mover'));
        const m = await connectAs(C.port, uid('stay'));
        const old = await connectAs(A.port, ident);
        await join(m, room);
        await join(old, room);
        await m.recvType('participant_joined');
        const newer = await connectAs(B.port, ident);
        assert.deepEqual(await m.recvType('participant_left'),
                         { type: 'participant_left', room, userId: ident.userId });
        assert.equal((await old.waitClose(scaled(3000))).code, 4000);
        assert.deepEqual(await join(newer, room), { type: 'joined', room,
                                                    participants: [m.userId] });
        assert.deepEqual(await m.recvType('participant_joined'),
                         { type: 'participant_joined', room, userId: ident.userId });
        await Promise.all([m.close(), newer.close()]);
    });
});
