// Tier 82: libvolli failover between servers. Two servers with separate data directories (a
// key bound on the first is unknown to the second, which binds it anew); the client is given
// both URLs. Killing (-9) or freezing (SIGSTOP: only the idle timeout can tell) the first
// server moves the client to the second within seconds, where it registers and restores its
// subscriptions. With every server down, attempts alternate between the URLs with
// exponentially growing, jittered delays.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeAllClients, connectAs, makeIdentity } from './lib/client.mjs';
import { Driver, killAllDrivers } from './lib/clientlib.mjs';
import { startServer, stopAll, tempDir } from './lib/server.mjs';
import { scaled, uid } from './lib/util.mjs';

let dir;
const frozen = new Set();
before(() => {
    dir = tempDir('volli-failover-');
});
after(async () => {
    killAllDrivers();
    closeAllClients();
    for (const s of frozen) s.proc.kill('SIGCONT'); /* so that stopAll can stop it */
    await stopAll();
});

const url = (s) => `ws://127.0.0.1:${s.port}/`;

async function subscribed(d, id) {
    const r = await d.request({ cmd: 'subscribe', ids: [id] });
    assert.equal(r.status, 0, JSON.stringify(r));
    const p = await d.event('presence', (m) => m.userId === id);
    assert.equal(p.online, false);
}

describe('client library: failover', () => {
    test('kill -9 of the first server: registered on the second, subscriptions restored',
         async () => {
        const a = await startServer();
        const b = await startServer();
        const user = uid('fo');
        const d = new Driver([url(a), url(b)], { user, key: path.join(dir, `${user}.pem`),
                                                 backoffInitial: 100, backoffMax: 1000 });
        assert.equal((await d.registered()).url, url(a));
        const daveId = makeIdentity(uid('dave'));
        await subscribed(d, daveId.userId);

        const t0 = Date.now();
        await a.kill9();
        const disc = await d.event('disconnected');
        assert.equal(disc.url, url(a));
        assert.ok(disc.reconnectInMs >= 1 && disc.reconnectInMs <= 100, JSON.stringify(disc));
        assert.equal((await d.event('connected', () => true, scaled(5000))).url, url(b));
        const reg = await d.event('registered', () => true, scaled(5000));
        assert.equal(reg.url, url(b));
        const took = Date.now() - t0;
        assert.ok(took < scaled(3000), `failover took ${took} ms`);

        /* The subscription was restored on B: its current state, then a change on B. */
        await d.event('presence', (m) => m.userId === daveId.userId && !m.online);
        const dave = await connectAs(b.port, daveId);
        await d.event('presence', (m) => m.userId === daveId.userId && m.online);
        /* B bound our key anew: relays work there. */
        dave.send({ type: 'offer', to: user, offer: { sdp: 'on b' } });
        assert.equal(JSON.parse((await d.event('offer')).payload).sdp, 'on b');
        dave.send({ type: 'discover', id: 'q', userId: user });
        assert.equal((await dave.recv((m) => m.id === 'q')).online, true);
        await dave.close();
        await d.close();
    });

    test('a frozen server (SIGSTOP) is detected by the idle timeout', async () => {
        const a = await startServer(); /* pings every 30 s: it will not save us */
        const b = await startServer();
        const user = uid('idle');
        const d = new Driver([url(a), url(b)], { user, key: path.join(dir, `${user}.pem`),
                                                 idleTimeout: 1500, backoffInitial: 50 });
        await d.registered();
        const erinId = makeIdentity(uid('erin'));
        await subscribed(d, erinId.userId);
        /* While the server is alive, the client's own pings keep the session up. */
        await d.expectNone(scaled(2000), (m) => m.event === 'disconnected', 'no drop while alive');

        frozen.add(a);
        a.proc.kill('SIGSTOP');
        const t0 = Date.now();
        const disc = await d.event('disconnected', () => true, scaled(6000));
        const took = Date.now() - t0;
        assert.match(disc.reason, /nothing received from the server/);
        assert.ok(took >= 700 && took < scaled(4000), `detected after ${took} ms`);
        assert.equal((await d.registered(scaled(5000))).url, url(b));
        await d.event('presence', (m) => m.userId === erinId.userId && !m.online);
        const erin = await connectAs(b.port, erinId);
        await d.event('presence', (m) => m.userId === erinId.userId && m.online);
        await erin.close();
        a.proc.kill('SIGCONT');
        frozen.delete(a);
        await d.close();
    });

    test('with every server down, URLs alternate and delays grow with jitter', async () => {
        /* Two ports that nothing listens on any more. */
        const a = await startServer();
        const b = await startServer();
        const urls = [url(a), url(b)];
        const ports = [a.port, b.port];
        await a.stop();
        await b.stop();
        const user = uid('down');
        const d = new Driver(urls, { user, key: path.join(dir, `${user}.pem`),
                                     backoffInitial: 40, backoffMax: 320 });
        const delays = [];
        for (let i = 0; i < 10; i++) {
            const ev = await d.event('disconnected', () => true, scaled(3000));
            assert.equal(ev.url, urls[i % 2], `attempt ${i} went to ${ev.url}`);
            assert.match(ev.reason, /cannot connect/);
            const ceiling = Math.min(320, 40 * 2 ** i);
            assert.ok(ev.reconnectInMs >= 1 && ev.reconnectInMs <= ceiling,
                      `delay ${i} = ${ev.reconnectInMs}, ceiling ${ceiling}`);
            delays.push(ev.reconnectInMs);
        }
        assert.ok(new Set(delays.slice(4)).size > 1, `no jitter: ${delays}`);

        /* A server coming back on the second URL is found. */
        const dataDir = tempDir('volli-failover-back-');
        await startServer({ raw: true, args: ['--host', '127.0.0.1', '--port', String(ports[1]),
                                               '--data-dir', dataDir, '--log-format', 'json'] });
        const reg = await d.event('registered', () => true, scaled(5000));
        assert.equal(reg.url, urls[1]);
        await d.close();
    });
});
