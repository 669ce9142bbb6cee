// Tier 10: hello and register (contract rules 1 and 2, key binding, replacement).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs, makeIdentity, signRegister } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { foldAscii, scaled, uid } from './lib/util.mjs';

let srv;
before(async () => {
    srv = await startServer();
});
after(async () => {
    closeAllClients();
    await stopAll();
});

/** Proves c is open and not registered: discover before register is not_registered. */
async function assertUnregistered(c) {
    c.send({ type: 'discover', userId: 'nobody', id: 'probe-unreg' });
    await c.expectError('not_registered', { id: 'probe-unreg' });
    assert.ok(c.isOpen);
}

/** Proves nothing is bound to userId yet: a fresh key registers it on a new connection. */
async function assertUnbound(userId) {
    const c = await Client.connect(srv.port);
    await c.registerOk(makeIdentity(userId));
    await c.close();
}

describe('hello', () => {
    test('hello is sent at once with version 1 and a base64url nonce of >= 128 bits', async () => {
        const c = await Client.connect(srv.port);
        const h = c.hello;
        assert.equal(h.type, 'hello');
        assert.equal(h.version, 1);
        assert.equal(typeof h.nonce, 'string');
        assert.match(h.nonce, /^[A-Za-z0-9_-]+$/, 'nonce must be base64url without padding');
        const bytes = Buffer.from(h.nonce, 'base64url');
        assert.ok(bytes.length >= 16, `nonce decodes to ${bytes.length} bytes, need >= 16`);
        assert.equal(bytes.toString('base64url'), h.nonce, 'nonce is not canonical base64url');
        await c.close();
    });

    test('nonces are fresh for each connection', async () => {
        const seen = new Set();
        const conns = [];
        for (let i = 0; i < 40; i++) conns.push(await Client.connect(srv.port));
        for (const c of conns) seen.add(c.hello.nonce);
        assert.equal(seen.size, conns.length, 'two connections got the same nonce');
        for (const c of conns) await c.close();
    });

    test('hello is also sent on /rtc and register works there', async () => {
        const c = await Client.connect(srv.port, { path: '/rtc' });
        assert.equal(c.hello.type, 'hello');
        assert.equal(c.hello.version, 1);
        await c.registerOk(makeIdentity(uid('rtc')));
        await c.close();
    });
});

describe('register', () => {
    test('register answers registered with the user id and echoes the request id', async () => {
        const c = await Client.connect(srv.port);
        const ident = makeIdentity(uid('reg'));
        const m = await c.register(ident, { id: 'req-1' });
        assert.deepEqual(m, { type: 'registered', userId: ident.userId, id: 'req-1' });
        // Without an id, the reply has none.
        const c2 = await Client.connect(srv.port);
        const m2 = await c2.register(makeIdentity(uid('reg')));
        assert.equal(m2.type, 'registered');
        assert.ok(!('id' in m2), `unexpected id: ${JSON.stringify(m2)}`);
        await c.close();
        await c2.close();
    });

    test('register again with the same id and key on the same connection is idempotent',
         async () => {
        const c = await Client.connect(srv.port);
        const ident = makeIdentity(uid('idem'));
        await c.registerOk(ident);
        const again = await c.register(ident, { id: 'again' });
        assert.deepEqual(again, { type: 'registered', userId: ident.userId, id: 'again' });
        await c.ping();
        await c.close();
    });

    test('upper case is folded and the signature must cover the folded id', async () => {
        const mixed = `Alice-${uid('X')}`;
        const folded = foldAscii(mixed);
        assert.notEqual(mixed, folded);

        const bad = await Client.connect(srv.port);
        const ident = makeIdentity(mixed);
        const wrong = await bad.register(ident, { signedId: mixed, id: 'unfolded' });
        assert.equal(wrong.type, 'error');
        assert.equal(wrong.code, 'bad_signature');
        assert.equal(wrong.id, 'unfolded');
        await assertUnregistered(bad);

        const good = await Client.connect(srv.port);
        const m = await good.register(ident, { signedId: folded });
        assert.deepEqual(m, { type: 'registered', userId: folded });

        // The folded id names the same user: discover by either spelling shows the key.
        const other = await connectAs(srv.port, uid('obs'));
        other.send({ type: 'discover', userId: mixed.toUpperCase() });
        const d = await other.recvType('discover');
        assert.deepEqual(d, { type: 'discover', userId: folded, online: true,
                              publicKey: ident.publicKey });
        for (const c of [bad, good, other]) await c.close();
    });

    test('a 128-character id using every allowed character class is accepted', async () => {
        const base = `a.b_c+d@e-f0123456789-${uid('len')}`;
        const id128 = (base + 'z'.repeat(128)).slice(0, 128);
        assert.equal(id128.length, 128);
        const c = await Client.connect(srv.port);
        await c.registerOk(makeIdentity(id128));
        await c.close();
    });

    test('invalid user ids get invalid_user_id and leave the connection open, unregistered',
         async () => {
        const c = await Client.connect(srv.port);
        const invalid = ['', 'x'.repeat(129), 'has space', 'slash/x', 'colon:x', 'hash#x',
                         'star*', 'tab\tx', 'new\nline', 'ümlaut', 'emoji-😀', 'quote"x',
                         'comma,x', 'percent%41', 'semi;x', 'tilde~x', 'back\\slash'];
        for (const [i, bad] of invalid.entries()) {
            const m = await c.register(makeIdentity(bad), { id: `inv${i}` });
            assert.equal(m.type, 'error', `${JSON.stringify(bad)} was accepted`);
            assert.equal(m.code, 'invalid_user_id', `for ${JSON.stringify(bad)}: ` +
                         `${JSON.stringify(m)}`);
            assert.equal(m.id, `inv${i}`);
            assert.equal(typeof m.message, 'string');
        }
        await assertUnregistered(c);
        await c.registerOk(makeIdentity(uid('after-invalid')));
        await c.close();
    });

    test('missing or wrongly typed register fields are bad_request', async () => {
        const c = await Client.connect(srv.port);
        const ident = makeIdentity(uid('fields'));
        const sig = signRegister(ident, c.hello.nonce);
        const cases = [
            { type: 'register', signature: sig, publicKey: ident.publicKey },
            { type: 'register', userId: ident.userId, signature: sig },
            { type: 'register', userId: ident.userId, publicKey: ident.publicKey },
            { type: 'register', userId: 12345, publicKey: ident.publicKey, signature: sig },
            { type: 'register', userId: null, publicKey: ident.publicKey, signature: sig },
            { type: 'register', userId: [ident.userId], publicKey: ident.publicKey,
              signature: sig },
            { type: 'register', userId: ident.userId, publicKey: 7, signature: sig },
            { type: 'register', userId: ident.userId, publicKey: ident.publicKey,
              signature: { s: sig } },
        ];
        for (const [i, msg] of cases.entries()) {
            c.send({ ...msg, id: `f${i}` });
            await c.expectError('bad_request', { id: `f${i}` });
        }
        await assertUnregistered(c);
        // None of these bound anything: the id is still free for a different key.
        await assertUnbound(ident.userId);
        await c.close();
    });

    test('a signature by another key is bad_signature and binds nothing', async () => {
        const c = await Client.connect(srv.port);
        const userId = uid('forge');
        const victim = makeIdentity(userId);
        const forger = makeIdentity(userId);
        const m = await c.register(victim, { signature: signRegister(forger, c.hello.nonce),
                                             id: 'forged' });
        assert.equal(m.code, 'bad_signature', JSON.stringify(m));
        assert.equal(m.id, 'forged');
        await assertUnregistered(c);
        // Wrong message: right key, but without the "volli-register" prefix.
        const plain = crypto.sign(null, Buffer.from(`${c.hello.nonce}\n${userId}`),
                                  victim.privateKey).toString('base64');
        const m2 = await c.register(victim, { signature: plain });
        assert.equal(m2.code, 'bad_signature', JSON.stringify(m2));
        await assertUnregistered(c);
        await assertUnbound(userId);
        await c.close();
    });

    test('a signature over another connection\'s nonce is bad_signature', async () => {
        const a = await Client.connect(srv.port);
        const b = await Client.connect(srv.port);
        const ident = makeIdentity(uid('replay'));
        const m = await b.register(ident, { nonce: a.hello.nonce, id: 'replayed' });
        assert.equal(m.code, 'bad_signature', JSON.stringify(m));
        assert.equal(m.id, 'replayed');
        await assertUnregistered(b);
        // The nonce is per connection, so the same signature is fine where it belongs.
        await a.registerOk(ident);
        await a.close();
        await b.close();
    });

    test('malformed public keys are bad_signature', async () => {
        const c = await Client.connect(srv.port);
        const userId = uid('badkey');
        const ident = makeIdentity(userId);
        let urlIdent = ident;
        while (!/[+/]/.test(urlIdent.publicKey)) urlIdent = makeIdentity(userId);
        const keys = {
            short31: ident.publicKeyRaw.subarray(0, 31).toString('base64'),
            long33: Buffer.concat([ident.publicKeyRaw, Buffer.from([1])]).toString('base64'),
            long64: Buffer.concat([ident.publicKeyRaw, ident.publicKeyRaw]).toString('base64'),
            unpadded: ident.publicKey.replace(/=+$/, ''),
            base64url: urlIdent.publicKeyRaw.toString('base64url') + '=',
            notBase64: '!'.repeat(44),
            empty: '',
            hex: ident.publicKeyRaw.toString('hex'),
        };
        for (const [name, key] of Object.entries(keys)) {
            const signer = name === 'base64url' ? urlIdent : ident;
            const m = await c.register(signer, { publicKey: key, id: name });
            assert.equal(m.type, 'error', `key ${name} was accepted`);
            assert.equal(m.code, 'bad_signature', `key ${name}: ${JSON.stringify(m)}`);
            assert.equal(m.id, name);
        }
        await assertUnregistered(c);
        await assertUnbound(userId);
        await c.close();
    });

    test('malformed signatures are bad_signature', async () => {
        const c = await Client.connect(srv.port);
        const userId = uid('badsig');
        const ident = makeIdentity(userId);
        const good = Buffer.from(signRegister(ident, c.hello.nonce), 'base64');
        const sigs = {
            notBase64: '***not base64***',
            empty: '',
            short63: good.subarray(0, 63).toString('base64'),
            long65: Buffer.concat([good, Buffer.from([0])]).toString('base64'),
            zeros: Buffer.alloc(64).toString('base64'),
            flipped: Buffer.from(good.map((b, i) => (i === 10 ? b ^ 1 : b))).toString('base64'),
        };
        for (const [name, sig] of Object.entries(sigs)) {
            const m = await c.register(ident, { signature: sig, id: name });
            assert.equal(m.type, 'error', `signature ${name} was accepted`);
            assert.equal(m.code, 'bad_signature', `signature ${name}: ${JSON.stringify(m)}`);
            assert.equal(m.id, name);
        }
        await assertUnregistered(c);
        await assertUnbound(userId);
        await c.close();
    });

    test('the first key is bound for good: another key gets key_mismatch', async () => {
        const userId = uid('bind');
        const first = makeIdentity(userId);
        const second = makeIdentity(userId);
        const a = await Client.connect(srv.port);
        await a.registerOk(first);
        await a.close();

        const b = await Client.connect(srv.port);
        const m = await b.register(second, { id: 'mm' });
        assert.equal(m.type, 'error');
        assert.equal(m.code, 'key_mismatch', JSON.stringify(m));
        assert.equal(m.id, 'mm');
        await assertUnregistered(b);
        // The right key still works on the same connection after the failure.
        await b.registerOk(first);

        // Upper-case spelling of the id is the same user, so the same binding applies.
        const c = await Client.connect(srv.port);
        const upper = { ...second, userId: userId.toUpperCase() };
        const m2 = await c.register(upper, { signedId: userId });
        assert.equal(m2.code, 'key_mismatch', JSON.stringify(m2));
        await a.close();
        await b.close();
        await c.close();
    });

    test('key_mismatch while the owner is online leaves the owner connected', async () => {
        const userId = uid('owner');
        const owner = await connectAs(srv.port, userId);
        const intruder = await Client.connect(srv.port);
        const m = await intruder.register(makeIdentity(userId));
        assert.equal(m.code, 'key_mismatch', JSON.stringify(m));
        const peer = await connectAs(srv.port, uid('peer'));
        peer.send({ type: 'offer', to: userId, offer: { sdp: 'still-here' } });
        const got = await owner.recvType('offer');
        assert.equal(got.from, peer.userId);
        await owner.expectNone(scaled(200), (x) => x.type === 'error');
        for (const c of [owner, intruder, peer]) await c.close();
    });

    test('registering a different id on a registered connection is already_registered',
         async () => {
        const first = uid('first');
        const second = uid('second');
        const c = await connectAs(srv.port, first);
        const m = await c.register(makeIdentity(second), { id: 'twice' });
        assert.equal(m.type, 'error');
        assert.equal(m.code, 'already_registered', JSON.stringify(m));
        assert.equal(m.id, 'twice');
        // Still registered as the first id: relays carry it and the second id is offline.
        const peer = await connectAs(srv.port, uid('peer'));
        c.send({ type: 'offer', to: peer.userId, offer: 'x' });
        const got = await peer.recvType('offer');
        assert.equal(got.from, first);
        peer.send({ type: 'discover', userIds: [first, second] });
        const d = await peer.recvType('discover');
        assert.equal(d.users[0].online, true);
        assert.equal(d.users[1].online, false);
        await c.close();
        await peer.close();
    });

    test('a newer connection replaces the older one without a presence flicker', async () => {
        const userId = uid('roam');
        const ident = makeIdentity(userId);
        const old = await Client.connect(srv.port);
        await old.registerOk(ident);

        const watcher = await connectAs(srv.port, uid('watch'));
        watcher.send({ type: 'subscribe', userIds: [userId], id: 'w' });
        const p0 = await watcher.recvType('presence');
        assert.deepEqual(p0, { type: 'presence', userId, online: true, id: 'w' });

        const fresh = await Client.connect(srv.port);
        const reg = await fresh.register(ident, { id: 'new' });
        assert.deepEqual(reg, { type: 'registered', userId, id: 'new' });

        const err = await old.expectError('replaced');
        assert.equal(err.type, 'error');
        const closed = await old.waitClose();
        assert.equal(closed.code, 4000, `old connection closed with ${closed.code}`);

        // Relays now reach the new connection.
        const sender = await connectAs(srv.port, uid('send'));
        sender.send({ type: 'offer', to: userId, offer: { n: 1 } });
        const got = await fresh.recvType('offer');
        assert.deepEqual(got, { type: 'offer', to: userId, offer: { n: 1 }, from: sender.userId });

        // The user never looked offline.
        await watcher.expectNone(scaled(700), (x) => x.type === 'presence',
                                 'no presence flicker on replacement');

        // And when the new connection goes, the user does go offline.
        await fresh.close();
        const off = await watcher.recv((x) => x.type === 'presence', scaled(1000));
        assert.deepEqual(off, { type: 'presence', userId, online: false });
        await watcher.close();
        await sender.close();
    });

    test('discover shows the key bound at register', async () => {
        const userId = uid('shown');
        const ident = makeIdentity(userId);
        const c = await Client.connect(srv.port);
        await c.registerOk(ident);
        const o = await connectAs(srv.port, uid('look'));
        o.send({ type: 'discover', userId, id: 'd' });
        const d = await o.recvType('discover');
        assert.deepEqual(d, { type: 'discover', userId, online: true, publicKey: ident.publicKey,
                              id: 'd' });
        await c.close();
        await o.close();
    });
});
