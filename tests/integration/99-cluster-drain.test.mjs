// Tier 99: graceful drain and cluster metrics. SIGTERM on a node sends every connection
// {"type":"reconnect","reason":"draining"} first; the C client library (lib/clientlib.mjs) moves
// to its next server URL at once and is registered there within 1 s; a client that stays is
// closed with 1001 after --drain-timeout and shows offline everywhere; the node exits 0, earlier
// when every client has left. Metrics per node: volli_bus_messages_in_total / _out_total,
// the volli_bus_latency_seconds histogram, volli_redis_reconnects_total, volli_redis_up,
// volli_cluster_nodes (on the main port and the API port).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, connectAs, isPresenceOf } from './lib/client.mjs';
import { Driver } from './lib/clientlib.mjs';
import {
    Cluster, cleanup, discover, metric, relayOk, target, tempDir, waitMetric, waitPresence,
} from './lib/cluster.mjs';
import { fetchMetrics, findSamples, sampleValue } from './lib/http.mjs';
import { scaled, sleep, uid } from './lib/util.mjs';

let cl;
let keyDir;
before(async () => {
    cl = await Cluster.start({ nodes: 3 });
    keyDir = tempDir('volli-drain-keys-');
});
after(cleanup);

const RECONNECT = { type: 'reconnect', reason: 'draining' };

/** Sum of a metric over nodes (undefined samples count as missing: fail). */
async function sumOver(nodes, name) {
    let total = 0;
    for (const node of nodes) {
        const v = await metric(node, name);
        assert.equal(typeof v, 'number', `${node.nodeId} has no ${name}`);
        total += v;
    }
    return total;
}

describe('cluster: metrics', () => {
    test('bus counters and latency histogram follow cross-node relays; redis_up, ' +
         'redis_reconnects_total, cluster_nodes; same on the API port', async () => {
        const [A, B, C] = cl.live;
        for (const node of [A, B, C]) {
            const m = await fetchMetrics(node.port);
            const types = {
                volli_bus_messages_in_total: 'counter', volli_bus_messages_out_total: 'counter',
                volli_bus_latency_seconds: 'histogram', volli_redis_reconnects_total: 'counter',
                volli_redis_up: 'gauge', volli_cluster_nodes: 'gauge',
            };
            for (const [name, type] of Object.entries(types)) {
                const family = name.replace(/_total$/, '');
                assert.ok(m.types[name] === type || m.types[family] === type,
                          `${node.nodeId}: # TYPE of ${name} is not ${type}`);
            }
            assert.equal(sampleValue(m, 'volli_redis_up'), 1);
            assert.equal(sampleValue(m, 'volli_cluster_nodes'), 3);
            assert.equal(sampleValue(m, 'volli_redis_reconnects_total'), 0,
                         `${node.nodeId}: reconnects counted although Redis never went away`);
        }
        const outA0 = await metric(A, 'volli_bus_messages_out_total');
        const inB0 = await metric(B, 'volli_bus_messages_in_total');
        const count0 = await sumOver([A, B, C], 'volli_bus_latency_seconds_count');
        const a = await connectAs(A.port, uid('ma'));
        const b = await connectAs(B.port, uid('mb'));
        await waitPresence(a, b.userId, true, target(1000));
        const n = 30;
        for (let i = 0; i < n; i++) await relayOk(a, b, 'ice-candidate', { i });
        const outA = await metric(A, 'volli_bus_messages_out_total');
        const inB = await metric(B, 'volli_bus_messages_in_total');
        assert.ok(outA - outA0 >= n, `A's volli_bus_messages_out_total grew by ${outA - outA0}, ` +
                  `not by at least ${n}`);
        assert.ok(inB - inB0 >= n, `B's volli_bus_messages_in_total grew by ${inB - inB0}`);
        const count = await sumOver([A, B, C], 'volli_bus_latency_seconds_count');
        assert.ok(count - count0 >= n, `latency observations grew by ${count - count0}`);

        // The histogram is well formed on every node: cumulative buckets, +Inf == _count.
        for (const node of [A, B, C]) {
            const m = await fetchMetrics(node.port);
            const buckets = findSamples(m, 'volli_bus_latency_seconds_bucket')
                .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le),
                               v: s.value }))
                .sort((x, y) => x.le - y.le);
            assert.ok(buckets.length >= 2, `${node.nodeId}: no latency buckets`);
            assert.equal(buckets[buckets.length - 1].le, Infinity, 'no +Inf bucket');
            for (let i = 1; i < buckets.length; i++) {
                assert.ok(buckets[i].v >= buckets[i - 1].v, `${node.nodeId}: buckets not ` +
                          `cumulative at le=${buckets[i].le}`);
            }
            const cnt = sampleValue(m, 'volli_bus_latency_seconds_count');
            const sum = sampleValue(m, 'volli_bus_latency_seconds_sum');
            assert.equal(buckets[buckets.length - 1].v, cnt, `${node.nodeId}: +Inf != _count`);
            assert.ok(sum >= 0 && (cnt === 0 || sum / cnt < 1),
                      `${node.nodeId}: mean bus latency ${sum / cnt} s on loopback`);
        }
        // The API port serves the same families.
        const api = await fetchMetrics(B.apiPort);
        assert.equal(sampleValue(api, 'volli_cluster_nodes'), 3);
        assert.ok(sampleValue(api, 'volli_bus_messages_in_total') >= inB);
        await Promise.all([a.close(), b.close()]);
    });
});

describe('cluster: graceful drain (SIGTERM)', () => {
    test('reconnect notice first; the C client is registered on the next node within 1 s; a ' +
         'client that stays gets 1001 after --drain-timeout; exit 0', async () => {
        const DRAIN = 3000;
        const D = await cl.addNode({ args: ['--drain-timeout', String(DRAIN / 1000)] });
        await cl.settle();
        const [, B, C] = cl.live;
        const mover = uid('mover');
        const dr = new Driver([D.url, B.url], { user: mover,
                                                key: path.join(keyDir, `${mover}.pem`) });
        assert.equal((await dr.registered(scaled(5000))).url, D.url);
        const stay = await connectAs(D.port, uid('stay'));
        const anon = await Client.connect(D.port);
        const obs = await connectAs(C.port, uid('obs'));
        obs.send({ type: 'subscribe', userIds: [mover, stay.userId] });
        for (const id of [mover, stay.userId]) {
            assert.equal((await obs.recv(isPresenceOf(id))).online, true, `${id} online at first`);
        }
        const sub = await dr.request({ cmd: 'subscribe', ids: [obs.userId] });
        assert.equal(sub.status, 0, JSON.stringify(sub));
        assert.equal((await dr.event('presence', (m) => m.userId === obs.userId)).online, true);
        await stay.ping();
        await anon.ping();
        assert.equal(stay.queue.length + anon.queue.length, 0, 'unexpected queued messages');

        const t0 = Date.now();
        const exit = D.stop('SIGTERM', scaled(DRAIN + 10000));
        for (const c of [stay, anon]) {
            const first = await c.next(() => true, scaled(2000), 'the first message after SIGTERM');
            assert.deepEqual(first.msg, RECONNECT, `first message after SIGTERM: ${first.raw}`);
        }
        const reg = await dr.event('registered', () => true, scaled(5000));
        const moved = Date.now() - t0;
        assert.equal(reg.url, B.url, 'the client moved to its next URL');
        console.log(`drain: C client registered on the next node ${moved} ms after SIGTERM`);
        assert.ok(moved < target(1000), `the move took ${moved} ms (limit ${target(1000)})`);
        assert.equal((await dr.event('presence', (m) => m.userId === obs.userId)).online, true,
                     'subscription not restored after the move');

        const closed = await stay.waitClose(scaled(DRAIN + 5000));
        const tClose = Date.now() - t0;
        assert.equal(closed.code, 1001, `the staying client was closed with ${closed.code}`);
        assert.ok(tClose >= DRAIN - 250, `closed ${tClose} ms after SIGTERM: before the drain ` +
                  `timeout of ${DRAIN} ms`);
        assert.ok(tClose < DRAIN + scaled(1500), `closed only ${tClose} ms after SIGTERM`);
        assert.equal((await anon.waitClose(scaled(2000))).code, 1001);
        const info = await exit;
        assert.deepEqual(info, { code: 0, signal: null }, D.tail());

        // The one who left is offline everywhere; the one who moved stays online.
        const off = await obs.recv((m) => isPresenceOf(stay.userId)(m) && !m.online,
                                   target(1000), 'the staying user offline within 1 s of 1001');
        assert.equal(off.online, false);
        await sleep(500);
        const moverStates = obs.queue.filter((e) => isPresenceOf(mover)(e.msg));
        if (moverStates.length) {
            assert.equal(moverStates[moverStates.length - 1].msg.online, true,
                         `the moved user's last presence is offline: ${obs.describeQueue()}`);
        }
        assert.equal((await discover(obs, mover)).online, true);
        await waitMetric(C, 'volli_cluster_nodes', (v) => v === 3, scaled(5000),
                         'the drained node no longer counted');
        await dr.close();
        await obs.close();
    });

    test('the drain ends as soon as every client has left; no clients: exit 0 at once',
         async () => {
        const E = await cl.addNode({ args: ['--drain-timeout', '10'] });
        const [other] = cl.live;
        const obs = await connectAs(other.port, uid('obs'));
        const leavers = [await connectAs(E.port, uid('lv')), await connectAs(E.port, uid('lv'))];
        for (const c of leavers) await waitPresence(obs, c.userId, true, target(1000));
        for (const c of leavers) {
            c.ws.on('message', (data) => {
                if (JSON.parse(data.toString()).type === 'reconnect') c.ws.close(1000);
            });
        }
        const t0 = Date.now();
        const info = await E.stop('SIGTERM', scaled(8000));
        const took = Date.now() - t0;
        assert.deepEqual(info, { code: 0, signal: null }, E.tail());
        console.log(`drain with clients that leave: exit after ${took} ms`);
        assert.ok(took < scaled(2000), `exit took ${took} ms although every client had left`);
        for (const c of leavers) {
            assert.deepEqual(c.queue.find((e) => e.msg.type === 'reconnect')?.msg, RECONNECT);
            await waitPresence(obs, c.userId, false, target(1000));
        }

        const F = await cl.addNode({ args: ['--drain-timeout', '10'] });
        const t1 = Date.now();
        assert.deepEqual(await F.stop('SIGTERM', scaled(8000)), { code: 0, signal: null });
        assert.ok(Date.now() - t1 < scaled(2000), `idle node took ${Date.now() - t1} ms to exit`);
        await obs.close();
    });
});
