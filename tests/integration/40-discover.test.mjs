// Tier 40: discover, single and batch (contract rule 3 and the lead's decisions).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs, makeIdentity, waitOffline } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { uid } from './lib/util.mjs';

let srv;
before(async () => {
    srv = await startServer();
});
after(async () => {
    closeAllClients();
    await stopAll();
});

describe('discover', () => {
    test('single discover: online, offline with its key, never registered', async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        const onIdent = makeIdentity(uid('on'));
        const on = await Client.connect(srv.port);
        await on.registerOk(onIdent);
        const offIdent = makeIdentity(uid('off'));
        const off = await Client.connect(srv.port);
        await off.registerOk(offIdent);
        await off.close();
        await waitOffline(asker, offIdent.userId);
        const never = uid('never');

        asker.send({ type: 'discover', userId: on.userId, id: 'd1' });
        assert.deepEqual(await asker.recvType('discover'),
                         { type: 'discover', userId: on.userId, online: true,
                           publicKey: onIdent.publicKey, id: 'd1' });
        asker.send({ type: 'discover', userId: offIdent.userId });
        assert.deepEqual(await asker.recvType('discover'),
                         { type: 'discover', userId: offIdent.userId, online: false,
                           publicKey: offIdent.publicKey });
        asker.send({ type: 'discover', userId: never });
        assert.deepEqual(await asker.recvType('discover'),
                         { type: 'discover', userId: never, online: false, publicKey: null });
        await asker.close();
        await on.close();
    });

    test('discover folds upper case and answers with the folded id', async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        const ident = makeIdentity(uid('fold'));
        const t = await Client.connect(srv.port);
        await t.registerOk(ident);
        asker.send({ type: 'discover', userId: ident.userId.toUpperCase() });
        assert.deepEqual(await asker.recvType('discover'),
                         { type: 'discover', userId: ident.userId, online: true,
                           publicKey: ident.publicKey });
        asker.send({ type: 'discover', userId: asker.userId });
        const self = await asker.recvType('discover');
        assert.equal(self.online, true, 'discovering yourself shows you online');
        await asker.close();
        await t.close();
    });

    test('batch discover answers users in request order', async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        const a = makeIdentity(uid('ba'));
        const ca = await Client.connect(srv.port);
        await ca.registerOk(a);
        const b = makeIdentity(uid('bb'));
        const cb = await Client.connect(srv.port);
        await cb.registerOk(b);
        await cb.close();
        await waitOffline(asker, b.userId);
        const never = uid('bn');
        const order = [never, a.userId, b.userId.toUpperCase(), asker.userId];
        asker.send({ type: 'discover', userIds: order, id: 'batch' });
        const m = await asker.recvType('discover');
        assert.deepEqual(m, {
            type: 'discover',
            id: 'batch',
            users: [
                { userId: never, online: false, publicKey: null },
                { userId: a.userId, online: true, publicKey: a.publicKey },
                { userId: b.userId, online: false, publicKey: b.publicKey },
                { userId: asker.userId, online: true, publicKey: asker.identity.publicKey },
            ],
        });
        await asker.close();
        await ca.close();
    });

    test('a batch of 100 is answered in order; 0 or 101 ids are bad_request', async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        const ids = Array.from({ length: 100 }, (_, i) => (i === 50 ? asker.userId : uid('h')));
        asker.send({ type: 'discover', userIds: ids });
        const m = await asker.recvType('discover');
        assert.equal(m.users.length, 100);
        assert.deepEqual(m.users.map((u) => u.userId), ids);
        assert.equal(m.users[50].online, true);
        assert.equal(m.users[0].publicKey, null);

        asker.send({ type: 'discover', userIds: [...ids, uid('x')], id: 'over' });
        await asker.expectError('bad_request', { id: 'over' });
        asker.send({ type: 'discover', userIds: [], id: 'empty' });
        await asker.expectError('bad_request', { id: 'empty' });
        await asker.close();
    });

    test('malformed discover requests are bad_request', async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        const x = uid('x');
        const cases = [
            { type: 'discover' },
            { type: 'discover', userId: x, userIds: [x] },
            { type: 'discover', userId: 5 },
            { type: 'discover', userId: null },
            { type: 'discover', userId: [x] },
            { type: 'discover', userIds: x },
            { type: 'discover', userIds: { 0: x } },
            { type: 'discover', userIds: null },
        ];
        for (const [i, c] of cases.entries()) {
            asker.send({ ...c, id: `m${i}` });
            await asker.expectError('bad_request', { id: `m${i}` });
        }
        await asker.ping();
        await asker.close();
    });

    test('an invalid id is invalid_user_id; in a batch the whole request is refused',
         async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        for (const [i, bad] of ['', 'white space', 'x'.repeat(129), 'ü'].entries()) {
            asker.send({ type: 'discover', userId: bad, id: `s${i}` });
            await asker.expectError('invalid_user_id', { id: `s${i}` });
        }
        asker.send({ type: 'discover', userIds: [asker.userId, 'bad id'], id: 'batch-inv' });
        await asker.expectError('invalid_user_id', { id: 'batch-inv' });
        await asker.expectNone(200, (m) => m.type === 'discover', 'no partial batch answer');
        await asker.close();
    });

    test('discover does not change presence or bindings', async () => {
        const asker = await connectAs(srv.port, uid('ask'));
        const never = uid('ghost');
        asker.send({ type: 'discover', userId: never });
        await asker.recvType('discover');
        // The id is still free: any key can claim it.
        const c = await Client.connect(srv.port);
        await c.registerOk(makeIdentity(never));
        await c.close();
        await asker.close();
    });
});
