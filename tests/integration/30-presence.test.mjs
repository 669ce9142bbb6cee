// Tier 30: presence subscriptions (contract rule 5 and the lead's decisions on ids, batches,
// duplicates, self subscription and unsubscribe).

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

const isPresence = (m) => m.type === 'presence';
/** Presence deadline from the contract: changes reach subscribers within 1 s. */
const WITHIN = scaled(1000);

/** Collects n immediate presence replies and returns them keyed by userId. */
async function initialPresence(c, n) {
    const byUser = new Map();
    for (let i = 0; i < n; i++) {
        const m = await c.recv(isPresence, scaled(3000), `presence ${i + 1}/${n}`);
        assert.ok(!byUser.has(m.userId), `two initial presence messages for ${m.userId}`);
        byUser.set(m.userId, m);
    }
    return byUser;
}

describe('presence', () => {
    test('subscribe answers at once with the state of each id, carrying the request id',
         async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const on = await connectAs(srv.port, uid('on'));
        const gone = await connectAs(srv.port, uid('gone'));
        await gone.close();
        await waitOffline(watcher, gone.userId);
        const never = uid('never');
        watcher.send({ type: 'subscribe', userIds: [on.userId, gone.userId, never], id: 's1' });
        const got = await initialPresence(watcher, 3);
        assert.deepEqual(got.get(on.userId),
                         { type: 'presence', userId: on.userId, online: true, id: 's1' });
        assert.deepEqual(got.get(gone.userId),
                         { type: 'presence', userId: gone.userId, online: false, id: 's1' });
        assert.deepEqual(got.get(never), { type: 'presence', userId: never, online: false,
                                           id: 's1' });
        await watcher.expectNone(scaled(200), () => true, 'nothing but the presence replies');
        // Without an id the replies carry none.
        watcher.send({ type: 'subscribe', userIds: [on.userId] });
        const m = await watcher.recv(isPresence);
        assert.deepEqual(m, { type: 'presence', userId: on.userId, online: true });
        await watcher.close();
        await on.close();
    });

    test('register and close reach subscribers within 1 s, without an id', async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const ident = makeIdentity(uid('target'));
        const target = ident.userId;
        watcher.send({ type: 'subscribe', userIds: [target], id: 'sub' });
        assert.equal((await watcher.recv(isPresence)).online, false);

        const t = await Client.connect(srv.port);
        const t0 = Date.now();
        await t.registerOk(ident);
        const online = await watcher.recv(isPresence, WITHIN, 'online within 1 s');
        assert.deepEqual(online, { type: 'presence', userId: target, online: true });
        const t1 = Date.now();
        t.close();
        const offline = await watcher.recv(isPresence, WITHIN, 'offline within 1 s');
        assert.deepEqual(offline, { type: 'presence', userId: target, online: false });
        console.log(`presence online after ${t1 - t0} ms, offline after ${Date.now() - t1} ms`);

        // An abrupt TCP drop counts as a close too.
        const t2 = await Client.connect(srv.port);
        await t2.registerOk(ident);
        assert.equal((await watcher.recv(isPresence, WITHIN)).online, true);
        t2.terminate();
        const dropped = await watcher.recv(isPresence, WITHIN, 'offline within 1 s of a drop');
        assert.deepEqual(dropped, { type: 'presence', userId: target, online: false });
        await watcher.close();
    });

    test('ids are folded: subscribing to an upper-case spelling reports the folded id',
         async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const target = uid('case');
        watcher.send({ type: 'subscribe', userIds: [target.toUpperCase()] });
        assert.deepEqual(await watcher.recv(isPresence),
                         { type: 'presence', userId: target, online: false });
        const t = await connectAs(srv.port, target);
        assert.deepEqual(await watcher.recv(isPresence, WITHIN),
                         { type: 'presence', userId: target, online: true });
        await t.close();
        await watcher.close();
    });

    test('unsubscribe sends no reply and stops notifications', async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const keep = uid('keep');
        const drop = uid('drop');
        watcher.send({ type: 'subscribe', userIds: [keep, drop] });
        await initialPresence(watcher, 2);
        watcher.send({ type: 'unsubscribe', userIds: [drop.toUpperCase()], id: 'u1' });
        await watcher.expectNone(scaled(300), () => true, 'no reply to unsubscribe');

        const d = await connectAs(srv.port, drop);
        const k = await connectAs(srv.port, keep);
        const m = await watcher.recv(isPresence, WITHIN);
        assert.deepEqual(m, { type: 'presence', userId: keep, online: true });
        await watcher.expectNone(scaled(500), isPresence, `no presence for ${drop}`);
        // Unsubscribing from something never subscribed is harmless and silent.
        watcher.send({ type: 'unsubscribe', userIds: [uid('other')] });
        await watcher.expectNone(scaled(200));
        await watcher.ping();
        for (const c of [watcher, d, k]) await c.close();
    });

    test('subscribing twice gives one notification per change', async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const target = makeIdentity(uid('twice'));
        watcher.send({ type: 'subscribe', userIds: [target.userId] });
        await watcher.recv(isPresence);
        watcher.send({ type: 'subscribe', userIds: [target.userId], id: 'again' });
        assert.deepEqual(await watcher.recv(isPresence),
                         { type: 'presence', userId: target.userId, online: false, id: 'again' });
        const t = await connectAs(srv.port, target);
        assert.equal((await watcher.recv(isPresence, WITHIN)).online, true);
        await watcher.expectNone(scaled(500), isPresence, 'a single online notification');
        await t.close();
        assert.equal((await watcher.recv(isPresence, WITHIN)).online, false);
        await watcher.expectNone(scaled(500), isPresence, 'a single offline notification');
        // A single unsubscribe ends it.
        watcher.send({ type: 'unsubscribe', userIds: [target.userId] });
        await watcher.ping();
        const t2 = await connectAs(srv.port, target);
        await watcher.expectNone(scaled(500), isPresence, 'nothing after unsubscribe');
        await t2.close();
        await watcher.close();
    });

    test('subscribing to yourself works', async () => {
        const me = await connectAs(srv.port, uid('me'));
        me.send({ type: 'subscribe', userIds: [me.userId], id: 'self' });
        assert.deepEqual(await me.recv(isPresence),
                         { type: 'presence', userId: me.userId, online: true, id: 'self' });
        await me.close();
    });

    test('many subscribers are all notified', async () => {
        const target = makeIdentity(uid('star'));
        const watchers = [];
        for (let i = 0; i < 10; i++) {
            const w = await connectAs(srv.port, uid('fan'));
            w.send({ type: 'subscribe', userIds: [target.userId] });
            await w.recv(isPresence);
            watchers.push(w);
        }
        const t = await connectAs(srv.port, target);
        for (const w of watchers) assert.equal((await w.recv(isPresence, WITHIN)).online, true);
        await t.close();
        for (const w of watchers) assert.equal((await w.recv(isPresence, WITHIN)).online, false);
        // A subscriber that disconnects does not disturb the others or the server.
        await watchers[0].close();
        const t2 = await connectAs(srv.port, target);
        for (const w of watchers.slice(1)) {
            assert.equal((await w.recv(isPresence, WITHIN)).online, true);
        }
        await t2.close();
        for (const w of watchers.slice(1)) await w.close();
    });

    test('100 ids per request are accepted; 0, 101 or a non-array are bad_request', async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const ids = Array.from({ length: 100 }, () => uid('h'));
        watcher.send({ type: 'subscribe', userIds: ids, id: 'hundred' });
        const got = await initialPresence(watcher, 100);
        assert.deepEqual([...got.keys()].sort(), [...ids].sort());
        for (const m of got.values()) assert.equal(m.id, 'hundred');

        const bad = [[], [...ids, uid('x')], 'abc', { a: 1 }, null, 5];
        for (const [i, userIds] of bad.entries()) {
            for (const type of ['subscribe', 'unsubscribe']) {
                watcher.send({ type, userIds, id: `b${type}${i}` });
                await watcher.expectError('bad_request', { id: `b${type}${i}` });
            }
        }
        watcher.send({ type: 'subscribe', id: 'missing' });
        await watcher.expectError('bad_request', { id: 'missing' });
        watcher.send({ type: 'unsubscribe', userIds: ids });
        await watcher.ping();
        await watcher.close();
    });

    test('an invalid id refuses the whole subscribe: nothing is applied', async () => {
        const watcher = await connectAs(srv.port, uid('w'));
        const valid = uid('valid');
        watcher.send({ type: 'subscribe', userIds: [valid, 'not valid!'], id: 'inv' });
        await watcher.expectError('invalid_user_id', { id: 'inv' });
        await watcher.expectNone(scaled(300), isPresence, 'no presence for a refused batch');
        const t = await connectAs(srv.port, valid);
        await watcher.expectNone(scaled(500), isPresence, 'no subscription was applied');

        // An invalid id in an unsubscribe refuses it too: the subscription survives.
        watcher.send({ type: 'subscribe', userIds: [valid] });
        assert.equal((await watcher.recv(isPresence)).online, true);
        watcher.send({ type: 'unsubscribe', userIds: [valid, ''], id: 'uinv' });
        await watcher.expectError('invalid_user_id', { id: 'uinv' });
        await t.close();
        assert.deepEqual(await watcher.recv(isPresence, WITHIN),
                         { type: 'presence', userId: valid, online: false });
        await watcher.close();
    });

    test('a subscriber going away needs no unsubscribe', async () => {
        const target = await connectAs(srv.port, uid('stay'));
        for (let i = 0; i < 20; i++) {
            const w = await connectAs(srv.port, uid('brief'));
            w.send({ type: 'subscribe', userIds: [target.userId] });
            await w.recv(isPresence);
            w.terminate();
        }
        await target.close();
        const probe = await connectAs(srv.port, uid('probe'));
        await probe.ping();
        await probe.close();
    });
});
