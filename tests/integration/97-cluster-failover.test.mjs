// Tier 97: cluster failover. A node killed with SIGKILL in the middle of a "call" (two users
// exchanging offer / answer / ice-candidate across nodes): the user on the killed node runs the
// C client library (lib/clientlib.mjs) with two server URLs and must be registered on the next
// node in under 1 s from the moment it sees the socket close, with its subscription back and the
// call going on; the killed node's other users must show offline to subscribers on every other
// node within 5 s (default --cluster-heartbeat 1 / --cluster-node-timeout 3), while the user who
// moved stays online. Also: a node restarted at once under the same --node-id must not bring its
// dead users back, and a node stopped (SIGSTOP) for less than the node timeout is not reaped.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectAs, isPresenceOf } from './lib/client.mjs';
import { Driver } from './lib/clientlib.mjs';
import {
    Cluster, cleanup, discover, metric, target, tempDir, waitMetric, waitPresence,
} from './lib/cluster.mjs';
import { scaled, sleep, uid } from './lib/util.mjs';

let cl;
let keyDir;
before(async () => {
    cl = await Cluster.start({ nodes: 3 });
    keyDir = tempDir('volli-cluster-keys-');
});
after(cleanup);


/** Subscribes ws client w to ids and checks the immediate states. */
async function subscribe(w, ids, online) {
    w.send({ type: 'subscribe', userIds: ids });
    for (const id of ids) {
        const m = await w.recv(isPresenceOf(id), scaled(3000), `initial presence of ${id}`);
        assert.equal(m.online, online, `initial presence of ${id} at ${w.userId}`);
    }
}

/** The presence states for id left in w's queue, oldest first (removing them all). */
function queuedPresence(w, id) {
    const mine = w.queue.filter((e) => isPresenceOf(id)(e.msg));
    w.queue = w.queue.filter((e) => !mine.includes(e));
    return mine.map((e) => e.msg.online);
}

describe('cluster: a node killed with SIGKILL', () => {
    test('during a call: the C client is on the next node in < 1 s with its subscription, the ' +
         'call goes on, the node\'s other users are offline everywhere within 5 s', async () => {
        const [A, B, C] = cl.nodes;
        const alice = uid('alice');
        const d = new Driver([A.url, B.url], { user: alice,
                                               key: path.join(keyDir, `${alice}.pem`) });
        assert.equal((await d.registered(scaled(5000))).url, A.url, 'alice starts on A');
        const bob = await connectAs(C.port, uid('bob'));
        const carol = await connectAs(A.port, uid('carol')); // one URL: stays gone
        const observers = [await connectAs(B.port, uid('obsb')),
                           await connectAs(C.port, uid('obsc'))];
        for (const o of observers) await subscribe(o, [alice, carol.userId], true);
        const sub = await d.request({ cmd: 'subscribe', ids: [bob.userId] });
        assert.equal(sub.status, 0, JSON.stringify(sub));
        assert.equal((await d.event('presence', (m) => m.userId === bob.userId)).online, true);

        // The call: bob (on C) calls alice (on A); answer and candidates both ways.
        bob.send({ type: 'offer', to: alice, offer: { type: 'offer', sdp: 'v=0 call' } });
        const offer = await d.event('offer');
        assert.equal(offer.from, bob.userId);
        assert.equal(JSON.parse(offer.payload).sdp, 'v=0 call');
        let r = await d.request({ cmd: 'send', to: bob.userId, type: 'answer',
                                  payload: '{"type":"answer","sdp":"v=0 ok"}' });
        assert.equal(r.status, 0, JSON.stringify(r));
        assert.equal((await bob.recvType('answer')).answer.sdp, 'v=0 ok');
        for (let i = 0; i < 3; i++) {
            r = await d.request({ cmd: 'send', to: bob.userId, type: 'ice-candidate',
                                  payload: `{"candidate":"a${i}"}` });
            assert.equal(r.status, 0, JSON.stringify(r));
            assert.equal((await bob.recvType('ice-candidate')).candidate.candidate, `a${i}`);
            bob.send({ type: 'ice-candidate', to: alice, candidate: { candidate: `b${i}` } });
            assert.equal(JSON.parse((await d.event('ice-candidate')).payload).candidate, `b${i}`);
        }

        const t0 = Date.now();
        await A.kill9();
        const disc = await d.event('disconnected', () => true, scaled(3000));
        const tNotice = Date.now();
        assert.equal(disc.url, A.url);
        const conn = await d.event('connected', () => true, scaled(5000));
        assert.equal(conn.url, B.url, 'alice moved to the second URL');
        const reg = await d.event('registered', () => true, scaled(5000));
        const tReg = Date.now();
        assert.equal(reg.url, B.url);
        const failover = tReg - tNotice;
        console.log(`kill -9: alice noticed after ${tNotice - t0} ms, registered on B ` +
                    `${failover} ms later`);
        assert.ok(failover < target(1000),
                  `failover took ${failover} ms from the close to "registered" (limit ` +
                  `${target(1000)} ms)`);

        // Her subscription is back (the current state first), and the call goes on.
        assert.equal((await d.event('presence', (m) => m.userId === bob.userId)).online, true,
                     'bob shown offline after the failover');
        bob.send({ type: 'ice-candidate', to: alice, candidate: { candidate: 'b-after' } });
        const ice = await d.event('ice-candidate', () => true, scaled(3000));
        assert.equal(ice.from, bob.userId);
        assert.equal(JSON.parse(ice.payload).candidate, 'b-after');
        r = await d.request({ cmd: 'send', to: bob.userId, type: 'bye', payload: null });
        assert.equal(r.status, 0, JSON.stringify(r));
        assert.equal((await bob.recvType('bye')).from, alice);

        // carol was only on A: offline for subscribers on B and C within 5 s of the kill.
        for (const o of observers) {
            const left = Math.max(0, t0 + target(5000) - Date.now());
            await o.recv(isPresenceOf(carol.userId, false), left,
                         `carol offline at ${o.userId} within 5 s of the kill`);
        }
        const tCarol = Date.now() - t0;
        console.log(`carol offline everywhere ${tCarol} ms after the kill`);

        // Once A is surely declared dead, alice (who moved) must still be online everywhere.
        await sleep(Math.max(0, t0 + target(5000) - Date.now()) + 500);
        for (const o of observers) {
            const states = queuedPresence(o, alice);
            const last = states.length ? states[states.length - 1] : undefined;
            assert.notEqual(last, false, `alice's last presence at ${o.userId} is offline ` +
                            '(reaping the dead node took the moved user with it)');
            assert.ok(!states.includes(false), `alice flickered offline at ${o.userId}: ` +
                      JSON.stringify(states));
            assert.equal((await discover(o, alice)).online, true, `alice offline for ${o.userId}`);
        }
        bob.send({ type: 'offer', to: carol.userId, offer: { sdp: 'x' }, id: 'pc' });
        await bob.expectError('peer_offline', { id: 'pc', to: carol.userId });
        for (const node of [B, C]) {
            assert.equal(await waitMetric(node, 'volli_cluster_nodes', (v) => v === 2,
                                          scaled(3000), 'volli_cluster_nodes == 2'), 2);
        }
        await d.close();
        await Promise.all([bob.close(), ...observers.map((o) => o.close())]);
    });

    test('many users on a killed node: all offline for subscribers on two nodes within 5 s; ' +
         'relays to them peer_offline', async () => {
        const [B, C] = cl.live;
        const D = await cl.addNode();
        await cl.settle();
        const users = [];
        for (let i = 0; i < 10; i++) users.push(await connectAs(D.port, uid(`dv${i}`)));
        const ids = users.map((u) => u.userId);
        const observers = [await connectAs(B.port, uid('ob')), await connectAs(C.port, uid('oc'))];
        for (const o of observers) await subscribe(o, ids, true);
        const t0 = Date.now();
        await D.kill9();
        for (const o of observers) {
            for (const id of ids) {
                const left = Math.max(0, t0 + target(5000) - Date.now());
                await o.recv(isPresenceOf(id, false), left,
                             `${id} offline at ${o.userId} within 5 s of the kill`);
            }
        }
        console.log(`10 users of a killed node offline on 2 nodes after ${Date.now() - t0} ms`);
        // The reap also drops the dead node's server key entry (the hash holds live nodes).
        assert.equal(await cl.redis.cli('HEXISTS', 'vs:serverkey', D.nodeId), '0',
                     'the dead node\'s server key entry outlived the reap');
        observers[0].send({ type: 'offer', to: ids[0], offer: {}, id: 'k1' });
        await observers[0].expectError('peer_offline', { id: 'k1', to: ids[0] });
        await Promise.all(observers.map((o) => o.close()));
    });

    test('a node stopped for less than --cluster-node-timeout (SIGSTOP 1 s, one heartbeat ' +
         'missed) is not reaped: its user never shows offline elsewhere and is reached after',
         async () => {
        const [B, C] = cl.live;
        const F = await cl.addNode();
        await cl.settle();
        const f = await connectAs(F.port, uid('stp'));
        const w = await connectAs(B.port, uid('ow'));
        await subscribe(w, [f.userId], true);
        const reaped = (m) => isPresenceOf(f.userId, false)(m);
        process.kill(F.pid, 'SIGSTOP');
        const t0 = Date.now();
        try {
            await sleep(1000);
        } finally {
            process.kill(F.pid, 'SIGCONT');
        }
        // Watched until past the time its heartbeat key would have expired (node timeout 3 s
        // after its last heartbeat, which was at most 1 s before the stop), plus a heartbeat.
        const watch = Math.max(0, t0 + 3000 + 1000 + 500 - Date.now());
        await w.expectNone(watch, reaped, 'no offline for a user of a node stopped for 1 s');
        assert.equal(await metric(C, 'volli_cluster_nodes'), cl.live.length,
                     'a node stopped for 1 s is no longer counted');
        assert.equal((await discover(w, f.userId)).online, true);
        w.send({ type: 'offer', to: f.userId, offer: { sdp: 'after the stop' }, id: 'st1' });
        const got = await f.recv((m) => m.type === 'offer', scaled(3000),
                                 'the offer after the stop');
        assert.equal(got.from, w.userId);
        console.log(`stopped 1 s: not reaped (watched ${Date.now() - t0} ms from the stop)`);
        await Promise.all([f.close(), w.close()]);
        await F.stop('SIGTERM', scaled(10000));
        await cl.settle();
    });

    test('a node restarted at once under the same --node-id does not bring its dead users ' +
         'back', async () => {
        const [B] = cl.live;
        const E = await cl.addNode({ nodeId: `revive-${process.pid}` });
        await cl.settle();
        const ghost = await connectAs(E.port, uid('ghost'));
        const o = await connectAs(B.port, uid('ob'));
        await subscribe(o, [ghost.userId], true);
        const t0 = Date.now();
        await E.kill9();
        const E2 = await cl.addNode({ nodeId: E.nodeId, dataDir: E.dataDir });
        const m = await o.recv(isPresenceOf(ghost.userId, false),
                               Math.max(0, t0 + target(5000) - Date.now()),
                               'the dead connection\'s user offline within 5 s although its ' +
                               'node is back under the same id');
        assert.equal(m.online, false);
        console.log(`offline ${Date.now() - t0} ms after the kill (node back after restart)`);
        await waitPresence(o, ghost.userId, false, scaled(1000));
        // The restarted node works: its users are online for the others again.
        const back = await connectAs(E2.port, uid('back'));
        await waitPresence(o, back.userId, true, target(1000));
        assert.equal(await metric(E2, 'volli_redis_up'), 1);
        await Promise.all([o.close(), back.close()]);
    });
});
