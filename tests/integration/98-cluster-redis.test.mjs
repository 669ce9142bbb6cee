// Tier 98: cluster mode when its services fail. Redis killed and restarted under load (50
// clients over 3 nodes relaying and registering): during the outage /healthz is 503 with a
// reason naming Redis, same-node relays still work and cross-node relays get `unavailable`;
// afterwards every acknowledged registration is discoverable with its key and online again from
// every node, relays and subscriptions work across nodes, and nothing arrived twice or out of
// order. A partition (CLIENT PAUSE longer than --redis-timeout): 503, then recovery; a pause
// shorter than it: no 503, no reconnect, the relay sent meanwhile delivered after it.
// PostgreSQL down: a register needing a new binding is `unavailable` and writes nothing; after
// it is back registering works and earlier bindings hold. Redis with a password.

import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client, connectAs, makeIdentity, nextId, signRegister } from './lib/client.mjs';
import {
    Cluster, cleanup, discover, metric, relayOk, spread, startRedis, target, waitHealth,
    waitMetric, waitPresence,
} from './lib/cluster.mjs';
import { httpGet } from './lib/http.mjs';
import { mapLimit, scaled, sleep, uid } from './lib/util.mjs';

const REDIS_TIMEOUT_MS = 2000; // the default --redis-timeout

let cl;
let load = null; // the running background load, stopped after each test whatever happened
before(async () => {
    cl = await Cluster.start({ nodes: 3 });
});
// A test that failed half-way must not leave Redis or PostgreSQL down for the next one.
beforeEach(async () => {
    if (!cl.redis.running) await cl.redis.restart();
    if (!cl.pg.running) await cl.pg.restart();
    await allHealth(cl.live, 200, scaled(15000));
});
afterEach(() => {
    load?.stop();
    load = null;
});
after(cleanup);

/** Every node answers /healthz `status` on both ports; returns the parsed bodies. */
async function allHealth(nodes, status, ms) {
    const out = [];
    for (const node of nodes) {
        for (const api of [false, true]) {
            const h = await waitHealth(node, status, { api, ms });
            assert.notEqual(h.json, undefined, `${node.nodeId} /healthz ${status} on the ` +
                            `${api ? 'API' : 'main'} port: the body is not JSON: ` +
                            JSON.stringify(h.body));
            assert.match(h.headers['content-type'] ?? '', /^application\/json/,
                         `${node.nodeId} /healthz content-type`);
            if (status === 200) {
                assert.deepEqual(h.json, { status: 'ok' }, `${node.nodeId}: ${h.body}`);
            } else {
                assert.equal(h.json?.status, 'unavailable', `${node.nodeId}: ${h.body}`);
                assert.equal(typeof h.json.reason, 'string', `${node.nodeId}: ${h.body}`);
                assert.match(h.json.reason, /redis/i, `reason does not mention Redis: ${h.body}`);
            }
            out.push(h.json);
        }
    }
    return out;
}

/** A cross-node relay with an id is refused with `unavailable` carrying that id. */
async function expectUnavailable(from, toId) {
    const id = uid('u');
    from.send({ type: 'offer', to: toId, offer: { sdp: 'during outage' }, id });
    const m = await from.recv((x) => x.type === 'error' && x.id === id, scaled(3000),
                              `an error for the cross-node relay ${id}`);
    assert.equal(m.code, 'unavailable',
                 `a cross-node relay while Redis is down answered ${JSON.stringify(m)}`);
}

/**
 * Background relay load: every `every` ms each client sends one ice-candidate with its own
 * sequence number to its peer. Receivers check, per sender, that sequence numbers only go up
 * (no duplicates, no reordering). Errors to load messages are counted by code.
 */
function startLoad(clients, peerOf, every = 40) {
    const state = { sent: 0, got: 0, errors: {}, violations: [], lastSeq: new Map(),
                    stopped: false };
    for (const c of clients) {
        c.ws.on('message', (data) => {
            let m;
            try {
                m = JSON.parse(data.toString());
            } catch {
                return;
            }
            if (m.type === 'ice-candidate' && m.candidate?.load) {
                const key = `${m.from}>${c.userId}`;
                const prev = state.lastSeq.get(key) ?? -1;
                if (m.candidate.seq <= prev) {
                    state.violations.push(`${key}: ${m.candidate.seq} after ${prev}`);
                }
                state.lastSeq.set(key, m.candidate.seq);
                state.got += 1;
            } else if (m.type === 'error' && typeof m.id === 'string' && m.id.startsWith('L')) {
                state.errors[m.code] = (state.errors[m.code] ?? 0) + 1;
            }
        });
    }
    let seq = 0;
    const timer = setInterval(() => {
        seq += 1;
        for (const c of clients) {
            if (!c.isOpen) continue;
            c.send({ type: 'ice-candidate', to: peerOf(c).userId, id: `L${seq}`,
                     candidate: { load: true, seq } });
            state.sent += 1;
        }
        // The test's own waits never look at load traffic: keep the queues short.
        for (const c of clients) {
            c.queue = c.queue.filter((e) => !(e.msg.candidate?.load ||
                                               (e.msg.type === 'error' && e.msg.id?.[0] === 'L')));
        }
    }, every);
    timer.unref();
    state.stop = () => {
        clearInterval(timer);
        state.stopped = true;
    };
    return state;
}

/** Batch-discovers idents from c (in chunks of 100) until all are online with their keys. */
async function waitAllOnline(c, idents, ms) {
    const deadline = Date.now() + ms;
    for (;;) {
        const bad = [];
        for (let i = 0; i < idents.length; i += 100) {
            const chunk = idents.slice(i, i + 100);
            const id = uid('b');
            c.send({ type: 'discover', id, userIds: chunk.map((x) => x.userId) });
            const m = await c.recv((x) => x.id === id, scaled(3000), 'batch discover');
            assert.equal(m.type, 'discover', JSON.stringify(m));
            for (const [j, u] of m.users.entries()) {
                assert.equal(u.publicKey, chunk[j].publicKey,
                             `acknowledged binding of ${u.userId} lost: ${JSON.stringify(u)}`);
                if (!u.online) bad.push(u.userId);
            }
        }
        if (!bad.length) return;
        if (Date.now() >= deadline) {
            assert.fail(`${bad.length} acknowledged users still offline for ${c.userId} ` +
                        `${ms} ms after recovery: ${bad.slice(0, 5).join(', ')}...`);
        }
        await sleep(100);
    }
}

describe('cluster: Redis failures', () => {
    test('Redis killed and restarted under load: 503 and `unavailable` across nodes during ' +
         'the outage, same-node relays work; afterwards nothing acknowledged is lost',
         async () => {
        const nodes = cl.live;
        const N = 50;
        const placement = spread(nodes, N);
        const idents = placement.map(() => makeIdentity(uid('load')));
        const clients = await mapLimit(placement, 10, async (node, i) => {
            const c = await Client.connect(node.port);
            await c.registerOk(idents[i]);
            c.node = node;
            return c;
        });
        const acked = [...idents];
        // Round-robin placement over 3 nodes: i and i+1 (mod 50) are on different nodes, i and
        // i+3 on the same one.
        const crossPeer = (c) => clients[(clients.indexOf(c) + 1) % N];
        // A cross-node subscription made before the outage must work after it.
        const [watcher, target1] = [clients[0], clients[1]];
        watcher.send({ type: 'subscribe', id: 'ws', userIds: [target1.userId] });
        assert.equal((await watcher.recv((m) => m.id === 'ws')).online, true);
        load = startLoad(clients, crossPeer);
        await sleep(500);

        const tKill = Date.now();
        await cl.redis.kill();
        const down = await allHealth(nodes, 503, scaled(REDIS_TIMEOUT_MS + 3000));
        console.log(`503 on every node ${Date.now() - tKill} ms after the kill; reason: ` +
                    `${down[0].reason}`);
        for (const node of nodes) {
            assert.equal(await metric(node, 'volli_redis_up'), 0, `${node.nodeId} redis_up`);
        }
        // Same node: still fine. Across nodes: `unavailable`, not silence.
        for (let i = 0; i < 3; i++) {
            const a = clients[i];
            const b = clients[i + 3];
            assert.equal(a.node, b.node);
            await relayOk(a, b, 'offer');
            await expectUnavailable(a, crossPeer(a).userId);
        }
        // Registrations go on during the outage; those acknowledged must not be lost.
        const during = [];
        for (const node of nodes) {
            for (let k = 0; k < 2; k++) {
                const ident = makeIdentity(uid('during'));
                const c = await Client.connect(node.port);
                const m = await c.register(ident, { ms: scaled(5000) });
                if (m.type === 'registered') {
                    acked.push(ident);
                    during.push(c);
                } else {
                    assert.equal(m.code, 'unavailable', JSON.stringify(m));
                    await c.close();
                }
            }
        }
        console.log(`${during.length} of 6 registers during the outage were acknowledged`);
        // Redis is down, PostgreSQL is up: a register is answered at once and republished later.
        assert.equal(during.length, 6, 'a register during the Redis outage was refused');
        await sleep(1000);

        const tBack = Date.now();
        await cl.redis.restart();
        await allHealth(nodes, 200, scaled(15000));
        console.log(`/healthz 200 everywhere ${Date.now() - tBack} ms after Redis came back`);
        for (const node of nodes) {
            assert.equal(await metric(node, 'volli_redis_up'), 1, `${node.nodeId} redis_up`);
            assert.ok(await metric(node, 'volli_redis_reconnects_total') >= 1,
                      `${node.nodeId}: volli_redis_reconnects_total did not count the reconnect`);
        }
        await cl.settle();
        // Everyone acknowledged is online again for every node, with the key bound.
        for (const node of nodes) {
            const asker = clients.find((c) => c.node === node);
            await waitAllOnline(asker, acked, scaled(5000));
        }
        // Relays cross nodes again, both ways round the ring, and the load flows again.
        const gotBefore = load.got;
        for (const c of clients) await relayOk(c, crossPeer(c), 'answer');
        await sleep(500);
        load.stop();
        assert.ok(load.got > gotBefore, 'no load relays delivered after the recovery');
        assert.deepEqual(load.violations, [], 'relays duplicated or reordered');
        console.log(`load: ${load.sent} sent, ${load.got} delivered, errors ` +
                    `${JSON.stringify(load.errors)}`);
        // The subscription from before the outage still delivers changes across nodes.
        await target1.close();
        const off = await watcher.recv((m) => m.type === 'presence' && m.userId === target1.userId,
                                       target(1000), 'offline from a pre-outage subscription');
        assert.equal(off.online, false);
        // Durable: the acknowledged bindings refuse other keys.
        for (const ident of [...acked.slice(0, 3), ...acked.slice(N)]) {
            const x = await Client.connect(nodes[0].port);
            const m = await x.register(makeIdentity(ident.userId));
            assert.equal(m.code, 'key_mismatch', `${ident.userId}: ${JSON.stringify(m)}`);
            await x.close();
        }
        await Promise.all([...clients, ...during].map((c) => c.close()));
    });

    test('a partition (CLIENT PAUSE longer than --redis-timeout): 503 with a reason, same-node ' +
         'relays work, cross-node ones are `unavailable`; recovery when the pause ends',
         async () => {
        const [A, B] = cl.live;
        const a1 = await connectAs(A.port, uid('pa'));
        const a2 = await connectAs(A.port, uid('pa'));
        const b = await connectAs(B.port, uid('pb'));
        await waitPresence(a1, b.userId, true, target(1000));
        await waitPresence(b, a1.userId, true, target(1000));
        await relayOk(a1, b, 'offer');
        const PAUSE = REDIS_TIMEOUT_MS * 3;
        const tPause = Date.now();
        await cl.redis.pause(PAUSE);
        await allHealth(cl.live, 503, scaled(REDIS_TIMEOUT_MS + 2000));
        const detected = Date.now() - tPause;
        console.log(`partition detected (503) after ${detected} ms`);
        assert.ok(detected < PAUSE, `503 only after the pause ended (${detected} ms)`);
        assert.equal(await metric(A, 'volli_redis_up'), 0);
        await relayOk(a1, a2, 'offer');
        await relayOk(a2, a1, 'answer');
        await expectUnavailable(a1, b.userId);
        await expectUnavailable(b, a1.userId);

        await allHealth(cl.live, 200, PAUSE + scaled(10000));
        console.log(`healthy again ${Date.now() - tPause - PAUSE} ms after the pause ended`);
        await waitPresence(b, a1.userId, true, scaled(5000));
        await relayOk(a1, b, 'offer');
        await relayOk(b, a2, 'ice-candidate');
        assert.equal(await metric(A, 'volli_redis_up'), 1);
        await Promise.all([a1.close(), a2.close(), b.close()]);
    });
});

/**
 * CLIENT PAUSE ms ALL over a connection of our own (no process to start, unlike the service
 * script); resolves once Redis answered, so the pause has begun and has nearly ms left.
 */
function pauseNow(port, ms) {
    const arg = String(ms);
    return new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
            s.write(`*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$${arg.length}\r\n${arg}\r\n` +
                    '$3\r\nALL\r\n');
        });
        let got = '';
        s.setEncoding('utf8');
        s.on('data', (d) => {
            got += d;
            if (!got.includes('\r\n')) return;
            s.end();
            if (got.startsWith('+OK')) resolve();
            else reject(new Error(`CLIENT PAUSE answered ${JSON.stringify(got)}`));
        });
        s.on('error', reject);
    });
}

describe('cluster: a slow Redis is not a failure', () => {
    test('a Redis pause shorter than --redis-timeout (CLIENT PAUSE 1.2 s of the 2 s): every node stays ' +
         'healthy, nothing reconnects, and a cross-node relay sent during it is delivered after ' +
         'it', async () => {
        const [A, B] = cl.live;
        const a = await connectAs(A.port, uid('sp'));
        const b = await connectAs(B.port, uid('sp'));
        await waitPresence(a, b.userId, true, target(1000));
        const before = [];
        for (const n of cl.live) before.push(await metric(n, 'volli_redis_reconnects_total'));
        const PAUSE = REDIS_TIMEOUT_MS * 0.6;
        await pauseNow(cl.redis.port, PAUSE);
        const tPause = Date.now();
        // Sent while Redis holds every command: it waits in Redis, it is not refused.
        const relay = relayOk(a, b, 'offer', { sdp: 'during a short pause' },
                              PAUSE + scaled(2000))
            .then((got) => ({ got, at: Date.now() }), (err) => ({ err }));
        // Watched until past --redis-timeout from the start of the pause: a detector that fired
        // early would show as a 503 or a reconnect by then.
        const until = tPause + Math.max(PAUSE + 1000, REDIS_TIMEOUT_MS + 500);
        let polls = 0;
        while (Date.now() < until) {
            for (const n of cl.live) {
                const h = await httpGet(n.port, '/healthz', { ms: scaled(2000) });
                assert.equal(h.status, 200, `${n.nodeId} /healthz ${h.status} ${h.body} ` +
                             `${Date.now() - tPause} ms into a ${PAUSE} ms pause`);
            }
            polls++;
            await sleep(50);
        }
        const { got, at, err } = await relay;
        if (err) throw err;
        assert.ok(at - tPause >= PAUSE - 100, `the relay arrived ${at - tPause} ms into the ` +
                  `${PAUSE} ms pause: the pause did not hold it`);
        assert.equal(got.msg.offer.sdp, 'during a short pause');
        await a.expectNone(scaled(200), (m) => m.type === 'error', 'no error for the relay');
        for (const [i, n] of cl.live.entries()) {
            assert.equal(await metric(n, 'volli_redis_reconnects_total'), before[i],
                         `${n.nodeId} reconnected to Redis for a ${PAUSE} ms pause`);
            assert.equal(await metric(n, 'volli_redis_up'), 1);
        }
        console.log(`short pause: ${polls} rounds of /healthz on ${cl.live.length} nodes, all 200`);
        await Promise.all([a.close(), b.close()]);
    });
});

describe('cluster: Redis forgets the scripts', () => {
    test('SCRIPT FLUSH (or a failover to a replica without them): the nodes reconnect, reload ' +
         'them and republish; relays and presence work again', async () => {
        const [A, B] = cl.live;
        const a = await connectAs(A.port, uid('sf'));
        const b = await connectAs(B.port, uid('sf'));
        await waitPresence(a, b.userId, true, target(1000));
        const total = async () => {
            let n = 0;
            for (const node of cl.live) n += await metric(node, 'volli_redis_reconnects_total');
            return n;
        };
        const r0 = await total();
        await cl.redis.cli('SCRIPT', 'FLUSH');
        // The next heartbeat (1 s) of some node meets NOSCRIPT and that node starts over,
        // loading the scripts again (they are shared: the other nodes may never miss them).
        let r1 = r0;
        for (const until = Date.now() + scaled(5000); r1 === r0 && Date.now() < until;) {
            await sleep(100);
            r1 = await total();
        }
        assert.ok(r1 > r0, `no node reconnected after SCRIPT FLUSH (reconnects ${r0} -> ${r1})`);
        await allHealth(cl.live, 200, scaled(5000));
        await waitPresence(b, a.userId, true, scaled(3000));
        await relayOk(a, b, 'offer');
        await relayOk(b, a, 'answer');
        // A user registering now is ordered (its registration ran a reloaded script).
        const c = await connectAs(B.port, uid('sf'));
        assert.equal((await discover(a, c.userId)).online, true);
        await Promise.all([a.close(), b.close(), c.close()]);
    });
});

describe('cluster: PostgreSQL failures', () => {
    test('PostgreSQL down: a new binding is `unavailable` and nothing is written; after it is ' +
         'back registering works and earlier bindings hold', async () => {
        const [A, B, C] = cl.live;
        const old = makeIdentity(uid('old'));
        await (await connectAs(A.port, old)).close();
        const fresh1 = makeIdentity(uid('fresh'));
        const fresh2 = makeIdentity(uid('fresh'));
        const watcher = await connectAs(B.port, uid('pw'));
        watcher.send({ type: 'subscribe', userIds: [fresh1.userId, fresh2.userId] });
        assert.equal((await watcher.recvType('presence')).online, false);
        assert.equal((await watcher.recvType('presence')).online, false);

        await cl.pg.stop();
        const c1 = await Client.connect(A.port);
        const r1 = await c1.register(fresh1, { id: 'p1', ms: scaled(10000) });
        assert.deepEqual([r1.type, r1.code, r1.id], ['error', 'unavailable', 'p1'],
                         `register with PostgreSQL down: ${JSON.stringify(r1)}`);
        const c2 = await Client.connect(C.port);
        const r2 = await c2.register(fresh2, { ms: scaled(10000) });
        assert.equal(r2.code, 'unavailable', JSON.stringify(r2));
        await c1.ping(); // still open,
        c1.send({ type: 'discover', userId: old.userId, id: 'nr' });
        await c1.expectError('not_registered', { id: 'nr' }); // and not registered
        await watcher.expectNone(scaled(1200), (m) => m.type === 'presence' && m.online,
                                 'no refused user shown online');

        await cl.pg.restart();
        // `unavailable` means "try again": the same connection registers once the store is back.
        const t0 = Date.now();
        let attempts = 0;
        for (;;) {
            attempts += 1;
            const m = await c1.register(fresh1, { ms: scaled(10000) });
            if (m.type === 'registered') break;
            assert.equal(m.code, 'unavailable', JSON.stringify(m));
            assert.ok(Date.now() - t0 < scaled(10000),
                      'registering still unavailable 10 s after PostgreSQL came back');
            await sleep(200);
        }
        console.log(`registered ${Date.now() - t0} ms after PostgreSQL came back (${attempts} ` +
                    'attempts)');
        await waitPresence(watcher, fresh1.userId, true, target(1000));
        assert.equal((await discover(watcher, fresh1.userId)).publicKey, fresh1.publicKey);
        // The key refused during the outage was never bound: another key takes the id.
        assert.equal((await discover(watcher, fresh2.userId)).publicKey, null);
        const other2 = makeIdentity(fresh2.userId);
        const c3 = await connectAs(B.port, other2);
        // Bindings made before the outage survived it.
        for (const ident of [old, fresh1]) {
            const x = await Client.connect(C.port);
            const m = await x.register(makeIdentity(ident.userId));
            assert.equal(m.code, 'key_mismatch', `${ident.userId}: ${JSON.stringify(m)}`);
            await x.close();
        }
        await Promise.all([c1.close(), c2.close(), c3.close(), watcher.close()]);
    });
});

/** SIGSTOPs (or SIGCONTs) every process of the PostgreSQL cluster in dir: a hung server. */
function signalPostgres(dir, sig) {
    const pid = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8')
        .split('\n')[0]);
    assert.ok(pid > 1, `postmaster pid in ${dir}`);
    const kids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
        .split('\n').filter(Boolean).map(Number);
    for (const p of [pid, ...kids]) process.kill(p, sig);
}

describe('cluster: PostgreSQL hangs', () => {
    test('a hung PostgreSQL never stalls the node: relays and pings go on while a discover and ' +
         'a register wait for it; they answer `unavailable`; all works after it resumes',
         async () => {
        const [A] = cl.live;
        const a1 = await connectAs(A.port, uid('hg'));
        const a2 = await connectAs(A.port, uid('hg'));
        const known = await connectAs(A.port, uid('hg'));
        const knownId = known.userId;
        await known.close();
        signalPostgres(cl.pg.dir, 'SIGSTOP');
        let resumed = false;
        try {
            // A discover of an offline user and a new binding need the store.
            const did = nextId('hd');
            a1.send({ type: 'discover', userId: knownId, id: did });
            const fresh = await Client.connect(A.port);
            const ident = makeIdentity(uid('hgnew'));
            fresh.send({ type: 'register', id: 'hr', userId: ident.userId,
                         publicKey: ident.publicKey,
                         signature: signRegister(ident, fresh.hello.nonce) });
            // Meanwhile the node answers everything else at once.
            const worst = [];
            for (let i = 0; i < 20; i++) {
                const t0 = Date.now();
                await relayOk(a2, a1, 'offer');
                worst.push(Date.now() - t0);
                await sleep(100);
            }
            const max = Math.max(...worst);
            console.log(`relays while PostgreSQL hangs: worst ${max} ms`);
            assert.ok(max < target(300), `a relay took ${max} ms while PostgreSQL hung`);
            // The store's read deadline (about 2.5 s) answers the discover.
            const d = await a1.recv((m) => m.id === did, scaled(8000));
            assert.equal(d.type, 'error', JSON.stringify(d));
            assert.equal(d.code, 'unavailable');
            // Nothing was bound while the store was frozen: the register is still waiting.
            await fresh.expectNone(scaled(300), (m) => m.id === 'hr',
                                   'no answer to the register while PostgreSQL is stopped');
            signalPostgres(cl.pg.dir, 'SIGCONT');
            resumed = true;
            // Within the store's write deadline the binding commits once PostgreSQL is back.
            const r = await fresh.recv((m) => m.id === 'hr', scaled(20000));
            assert.equal(r.type, 'registered', JSON.stringify(r));
            assert.equal((await discover(a1, ident.userId)).publicKey, ident.publicKey);
            fresh.terminate();
        } finally {
            if (!resumed) signalPostgres(cl.pg.dir, 'SIGCONT');
        }
        // Back to normal: the offline user's key is found again.
        let last;
        for (const until = Date.now() + scaled(10000); Date.now() < until;) {
            last = await discover(a1, knownId).catch((e) => e);
            if (last?.publicKey) break;
            await sleep(200);
        }
        assert.ok(last?.publicKey, `discover after PostgreSQL resumed: ${JSON.stringify(last)}`);
        await Promise.all([a1.close(), a2.close()]);
    });
});

describe('cluster: Redis password', () => {
    test('REDIS_PASSWORD or a password in the URL connects; a wrong one is 503 and never ' +
         'logged', async () => {
        const pw = `pw-${uid('r')}`;
        const r2 = await startRedis({ password: pw });
        const bare = `redis://127.0.0.1:${r2.port}`;
        const p1 = await cl.addNode({ redisUrl: bare, env: { REDIS_PASSWORD: pw } });
        const p2 = await cl.addNode({ redisUrl: r2.url });
        for (const p of [p1, p2]) {
            await waitMetric(p, 'volli_cluster_nodes', (v) => v === 2, scaled(10000),
                             'the two nodes on the password-protected Redis see each other');
        }
        const x = await connectAs(p1.port, uid('px'));
        const y = await connectAs(p2.port, uid('py'));
        await waitPresence(x, y.userId, true, target(1000));
        await relayOk(x, y, 'offer');
        const wrong = `wrong-${uid('w')}`;
        const p3 = await cl.addNode({ redisUrl: bare, env: { REDIS_PASSWORD: wrong },
                                      healthy: false });
        const h = await waitHealth(p3, 503, { ms: scaled(REDIS_TIMEOUT_MS + 5000) });
        assert.match(h.json?.reason ?? '', /redis/i, h.body);
        for (const p of [p1, p2, p3]) {
            for (const secret of [pw, wrong]) {
                assert.ok(!p.stderr.includes(secret), `${p.nodeId} logged a Redis password`);
            }
        }
        await Promise.all([x.close(), y.close()]);
        for (const p of [p1, p2, p3]) {
            assert.equal((await p.stop()).code, 0, p.tail());
        }
    });
});
