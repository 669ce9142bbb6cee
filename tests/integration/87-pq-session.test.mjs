// Tier 87: the post-quantum signaling session (docs/protocol.md, "Post-quantum session"), over
// real sockets. The client side (lib/pq.mjs) is written from the protocol text only: ML-KEM-768
// from @noble/post-quantum, X25519, HKDF-SHA-256, AES-256-GCM and Ed25519 from node:crypto. Covers
// both algorithms end to end (the signature over TH checked against the published serverKey,
// register / discover / relays / rooms inside enc frames, plaintext peers), tampered, replayed,
// reordered and plaintext frames (4400), pq_key_mismatch against a token's pqPublicKey,
// refusals, pq_required, rekey and the 4401 expiry close, the stats endpoint and the metrics.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, closeAllClients, makeIdentity, signRegister } from './lib/client.mjs';
import { fetchMetrics, httpGet, sampleValue } from './lib/http.mjs';
import { ALGS, clientKeys, connectPq, seal } from './lib/pq.mjs';
import { makeToken as mint } from './lib/token.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { scaled, sleep, uid, withTimeout } from './lib/util.mjs';

async function register(c, userId) {
    const me = makeIdentity(userId);
    c.send({ type: 'register', id: 'r', userId, publicKey: me.publicKey,
             signature: signRegister(me, c.hello.nonce) });
    const r = await c.recv((m) => m.type === 'registered' || m.type === 'error');
    assert.equal(r.type, 'registered', JSON.stringify(r));
    return me;
}

async function expectClose(c, code) {
    const info = await withTimeout(c.closed, scaled(5000), `close ${code} (${c.what ?? ''})`);
    assert.equal(info.code, code);
}

const makeToken = (claims) =>
    mint(claims, { key: 'volly-dev-key', secret: 'volly-dev-secret-key-2024' });

let srv;
let api;
before(async () => {
    srv = await startServer({ args: ['--api-port', '0', '--dev'] });
    api = await srv.waitApiPort();
});
after(async () => {
    closeAllClients();
    await stopAll();
});

describe('post-quantum session', () => {
    test('hello, the well-known key on both ports, and the key file', async () => {
        const c = await connectPq(srv.port);
        assert.deepEqual(c.hello.pq, ALGS);
        const key = Buffer.from(c.hello.serverKey, 'base64');
        assert.equal(key.length, 32);
        for (const port of [srv.port, api]) {
            const r = await httpGet(port, '/.well-known/volli/server.json');
            assert.equal(r.status, 200);
            assert.match(r.headers['content-type'], /application\/json/);
            assert.deepEqual(JSON.parse(r.body), { serverKey: c.hello.serverKey });
        }
        const st = fs.statSync(path.join(srv.dataDir, 'server.key'));
        assert.equal(st.mode & 0o777, 0o600);
        assert.match(fs.readFileSync(path.join(srv.dataDir, 'server.key'), 'utf8'),
                     /^-----BEGIN PRIVATE KEY-----\n/);
        // The API port serves no WebSocket and no files.
        assert.equal((await httpGet(api, '/')).status, 404);
        assert.equal((await httpGet(api, '/sdk/volli.js')).status, 404);
        assert.equal((await httpGet(srv.port, '/volly/sessions/stats')).status, 404);
        c.terminate();
    });

    for (const alg of ALGS) {
        test(`${alg}: register, discover, relays and rooms inside enc frames`, async () => {
            const a = await connectPq(srv.port);
            const b = await connectPq(srv.port);
            const plain = await Client.connect(srv.port);
            const r = await a.handshake(alg, { id: 'h1' });
            assert.equal(r.id, 'h1');
            const expectedExpiry = r.t0 + 86400 * 1000;
            assert.ok(Math.abs(r.expires_at - expectedExpiry) < 60000,
                      `expires_at ${r.expires_at}`);
            await b.handshake(alg);
            const [ida, idb, idp] = [uid('pqa'), uid('pqb'), uid('pqp')];
            const ka = await register(a, ida);
            await register(b, idb);
            const kp = makeIdentity(idp);
            plain.send({ type: 'register', userId: idp, publicKey: kp.publicKey,
                         signature: signRegister(kp, plain.hello.nonce) });
            await plain.recvType('registered');

            a.send({ type: 'discover', id: 'd1', userId: idb });
            const d = await a.recvType('discover');
            assert.equal(d.online, true);
            a.send({ type: 'discover', userId: ida });
            assert.equal((await a.recvType('discover')).publicKey, ka.publicKey);

            // PQ to PQ: the relay arrives sealed for b, with from spliced in.
            const offer = { type: 'offer', sdp: 'v=0\r\n' + 'x'.repeat(3000) };
            a.send({ type: 'offer', to: idb, offer, extra: [1.0, 'é'] });
            const got = await b.recvType('offer');
            assert.equal(got.from, ida);
            assert.deepEqual(got.offer, offer);
            // PQ to plaintext and back.
            b.send({ type: 'answer', to: idp, answer: { sdp: 'ans' } });
            const ans = await plain.recvType('answer');
            assert.equal(ans.from, idb);
            plain.send({ type: 'ice-candidate', to: ida, candidate: { c: 1 } });
            assert.equal((await a.recvType('ice-candidate')).from, idp);
            // Presence and rooms reach a PQ connection sealed too.
            a.send({ type: 'subscribe', userIds: [idp] });
            assert.equal((await a.recvType('presence')).online, true);
            const room = `pq-${crypto.randomBytes(4).toString('hex')}`;
            for (const c of [a, b, plain]) {
                c.send({ type: 'join', room });
                await c.recvType('joined');
            }
            plain.send({ type: 'room_message', room, data: { n: 1 } });
            assert.deepEqual((await a.recvType('room_message')).data, { n: 1 });
            assert.deepEqual((await b.recvType('room_message')).data, { n: 1 });
            a.send({ type: 'room_message', room, data: { n: 2 } });
            assert.equal((await b.recvType('room_message')).from, ida);
            assert.equal((await plain.recvType('room_message')).from, ida);
            plain.terminate();
            const off = await a.recv((m) => m.type === 'presence' && !m.online);
            assert.equal(off.userId, idp);
            // Errors come back sealed as well.
            a.send({ type: 'nonsense' });
            await a.expectError('unknown_type');
            a.send({ type: 'ping', id: 'p' });
            assert.deepEqual(await a.recvType('pong'), { type: 'pong', id: 'p' });
            assert.ok(a.encIn >= 8 && b.encIn >= 5, `${a.encIn} ${b.encIn}`);
            a.assertClean();
            b.assertClean();
            a.terminate();
            b.terminate();
        });
    }

    test('tampered, replayed, reordered and plaintext frames close with 4400', async () => {
        const cases = {
            tampered: (c) => {
                const ct = seal(c.tx.key, c.tx.seq, Buffer.from('{"type":"ping"}'));
                ct[3] ^= 1;
                c.sendText(JSON.stringify({ type: 'enc', seq: c.tx.seq,
                                            ct: ct.toString('base64') }));
            },
            replayed: (c) => {
                const f = c.sendEnc(Buffer.from('{"type":"ping","id":"once"}'));
                c.sendText(JSON.stringify(f));
            },
            reordered: (c) => {
                c.sendEnc(Buffer.from('{"type":"ping"}'),
                          { seq: c.tx.seq + 1, advance: false });
            },
            plaintext: (c) => c.sendText('{"type":"ping"}'),
            binary: (c) => c.sendBinary(Buffer.from([1, 2, 3])),
            wrongKey: (c) => {
                const ct = seal(c.rx.key, c.tx.seq, Buffer.from('{"type":"ping"}'));
                c.sendText(JSON.stringify({ type: 'enc', seq: c.tx.seq,
                                            ct: ct.toString('base64') }));
            },
        };
        for (const [name, act] of Object.entries(cases)) {
            for (const alg of ALGS) {
                const c = await connectPq(srv.port);
                await c.handshake(alg);
                c.send({ type: 'ping', id: 'before' });
                assert.equal((await c.recvType('pong')).id, 'before');
                act(c);
                c.what = `${name} ${alg}`;
                if (name === 'replayed') assert.equal((await c.recvType('pong')).id, 'once');
                await expectClose(c, 4400);
                // Nothing from the bad frame was handled.
                assert.ok(!c.queue.some((e) => e.msg.type === 'pong'), name);
                c.assertClean();
            }
        }
    });

    test('pq_key_mismatch against the token\'s pqPublicKey, and refusals', async () => {
        const keys = clientKeys('ML-KEM-768');
        const token = makeToken({ sub: uid('pqt'),
                                  pqPublicKey: Buffer.from(keys.kem.publicKey).toString('base64'),
                                  pqAlgorithm: 'ML-KEM-768' });
        const c = await connectPq(srv.port, { query: `?access_token=${token}` });
        await c.recvType('registered');
        let r = await c.handshake('ML-KEM-768', { id: 'x' });
        assert.equal(r.type, 'error');
        assert.equal(r.code, 'pq_key_mismatch');
        assert.equal(r.id, 'x');
        // The hybrid with the token's ML-KEM key and any X25519 key matches; another ML-KEM
        // key under the hybrid does not.
        r = await c.handshake('X25519MLKEM768');
        assert.equal(r.code, 'pq_key_mismatch');
        const hybrid = clientKeys('X25519MLKEM768', { ek: keys.kem.publicKey,
                                                       dk: keys.kem.secretKey });
        r = await c.handshake('X25519MLKEM768', { keys: hybrid });
        assert.equal(r.type, 'pq_handshake_response');
        c.send({ type: 'ping', id: 'after' });
        assert.equal((await c.recvType('pong')).id, 'after');
        c.assertClean();
        c.terminate();

        const d = await connectPq(srv.port);
        const good = clientKeys('ML-KEM-768');
        const bad = [
            { algorithm: 'ML-KEM-512', client_public_key: good.pk.toString('base64'),
              session_id: 'a'.repeat(16) },
            { algorithm: 'ML-KEM-768', client_public_key: good.pk.subarray(1).toString('base64'),
              session_id: 'a'.repeat(16) },
            { algorithm: 'X25519MLKEM768', client_public_key: good.pk.toString('base64'),
              session_id: 'a'.repeat(16) },
            { algorithm: 'ML-KEM-768', client_public_key: good.pk.toString('base64url'),
              session_id: 'a'.repeat(16) },
            { algorithm: 'ML-KEM-768', client_public_key: good.pk.toString('base64'),
              session_id: 'a'.repeat(15) },
            { algorithm: 'ML-KEM-768', client_public_key: good.pk.toString('base64'),
              session_id: 'a'.repeat(65) },
            { algorithm: 'ML-KEM-768', client_public_key: good.pk.toString('base64'),
              session_id: 'a'.repeat(20) + '.' },
            { algorithm: 'ML-KEM-768', session_id: 'a'.repeat(16) },
            // Fails the FIPS 203 modulus check.
            { algorithm: 'ML-KEM-768',
              client_public_key: Buffer.alloc(1184, 0xff).toString('base64'),
              session_id: 'a'.repeat(16) },
            // A small-order X25519 key.
            { algorithm: 'X25519MLKEM768',
              client_public_key: Buffer.concat([good.pk, Buffer.alloc(32)]).toString('base64'),
              session_id: 'a'.repeat(16) },
        ];
        for (const req of bad) {
            d.send({ type: 'pq_handshake', ...req });
            await d.expectError('bad_request');
        }
        // Still plaintext and usable: the session starts only with a good handshake.
        const ok = await d.handshake('ML-KEM-768',
                                     { keys: good, sid: 'A-z_0'.repeat(12) + 'abcd' });
        assert.equal(ok.type, 'pq_handshake_response');
        d.assertClean();
        d.terminate();
    });

    test('the stats endpoint and the metrics count sessions and failures', async () => {
        const before = JSON.parse((await httpGet(api, '/volly/sessions/stats')).body);
        const m0 = await fetchMetrics(srv.port);
        const c1 = await connectPq(srv.port);
        await c1.handshake('ML-KEM-768');
        const c2 = await connectPq(srv.port);
        await c2.handshake('X25519MLKEM768');
        const r = await httpGet(api, '/volly/sessions/stats');
        assert.equal(r.status, 200);
        assert.match(r.headers['content-type'], /application\/json/);
        const s = JSON.parse(r.body);
        assert.deepEqual(Object.keys(s).sort(),
                         ['active_sessions', 'algorithm', 'expired_sessions', 'total_sessions']);
        assert.equal(s.algorithm, 'ML-KEM-768');
        assert.equal(s.total_sessions, before.total_sessions + 2);
        assert.equal(s.active_sessions, before.active_sessions + 2);
        c1.sendText('{"type":"ping"}');
        await expectClose(c1, 4400);
        c2.terminate();
        await c2.closed;
        await sleep(100);
        const after2 = JSON.parse((await httpGet(api, '/volly/sessions/stats')).body);
        assert.equal(after2.active_sessions, before.active_sessions);
        assert.equal(after2.total_sessions, before.total_sessions + 2);
        const m1 = await fetchMetrics(api);
        for (const alg of ALGS) {
            assert.equal(sampleValue(m1, 'volli_pq_handshakes_total', { algorithm: alg }),
                         sampleValue(m0, 'volli_pq_handshakes_total', { algorithm: alg }) + 1);
        }
        assert.equal(sampleValue(m1, 'volli_pq_failures_total', { reason: 'plaintext' }),
                     sampleValue(m0, 'volli_pq_failures_total', { reason: 'plaintext' }) + 1);
        assert.equal(m1.types.volli_pq_failures_total, 'counter');
        assert.equal((await httpGet(api, '/healthz')).status, 200);
    });
});

describe('configuration', () => {
    test('VOLLY_PQ_REQUIRED refuses everything but ping and pq_handshake before it', async () => {
        const s = await startServer({ args: ['--api-port', '-1'],
                                      env: { VOLLY_PQ_REQUIRED: 'true' } });
        const c = await connectPq(s.port);
        const id = uid('pqr');
        const me = makeIdentity(id);
        c.send({ type: 'register', id: 'r0', userId: id, publicKey: me.publicKey,
                 signature: signRegister(me, c.hello.nonce) });
        await c.expectError('pq_required', { id: 'r0' });
        c.send({ type: 'discover', userId: id });
        await c.expectError('pq_required');
        c.send({ type: 'ping', id: 'p' });
        assert.equal((await c.recvType('pong')).id, 'p');
        await c.handshake('X25519MLKEM768');
        await register(c, id);
        c.assertClean();
        c.terminate();
        assert.ok(!s.lines.some((l) => l.includes('api_listening')));
    });

    test('VOLLY_PQ_ENABLED=false and VOLLY_PQ_ALGORITHM', async () => {
        const off = await startServer({ args: ['--api-port', '-1'],
                                        env: { VOLLY_PQ_ENABLED: 'false' } });
        const c = await connectPq(off.port);
        assert.equal(c.hello.pq, undefined);
        assert.equal(typeof c.hello.serverKey, 'string');
        c.send({ type: 'pq_handshake', algorithm: 'ML-KEM-768',
                 client_public_key: clientKeys('ML-KEM-768').pk.toString('base64'),
                 session_id: 'a'.repeat(16) });
        await c.expectError('unknown_type');
        c.terminate();

        const hy = await startServer({ args: ['--api-port', '0'],
                                       env: { VOLLY_PQ_ALGORITHM: 'X25519MLKEM768' } });
        const h = await connectPq(hy.port);
        assert.deepEqual(h.hello.pq, ['X25519MLKEM768', 'ML-KEM-768']);
        const stats = JSON.parse((await httpGet(await hy.waitApiPort(), '/volly/sessions/stats')).body);
        assert.deepEqual(stats, { active_sessions: 0, expired_sessions: 0, total_sessions: 0,
                                  algorithm: 'X25519MLKEM768' });
        h.terminate();
    });

    test('the identity key survives a restart', async () => {
        const s1 = await startServer({ args: ['--api-port', '-1'] });
        const c = await connectPq(s1.port);
        const key = c.hello.serverKey;
        c.terminate();
        const dir = s1.dataDir;
        assert.equal((await s1.stop()).code, 0);
        const s2 = await startServer({ dataDir: dir, args: ['--api-port', '-1'] });
        const d = await connectPq(s2.port);
        assert.equal(d.hello.serverKey, key);
        d.terminate();
    });
});

describe('rekey', () => {
    test('rekey_required at expiry, a rekey inside the session, then 4401 without one',
         async () => {
             const grace = 1.5 * (scaled(1000) / 1000);
             const s = await startServer({ args: ['--api-port', '0', '--pq-rekey-grace',
                                                  String(grace)],
                                           env: { VOLLY_PQ_SESSION_TIMEOUT: '1' } });
             const port = await s.waitApiPort();
             for (const alg of ALGS) {
                 const c = await connectPq(s.port);
                 const r = await c.handshake(alg);
                 assert.ok(Math.abs(r.expires_at - (r.t0 + 1000)) < scaled(2000));
                 const id = uid('pqk');
                 await register(c, id);
                 await c.recv((m) => m.type === 'rekey_required', scaled(4000), 'rekey_required');
                 const oldTx = c.tx.key;
                 const r2 = await c.handshake(alg, { id: 'rk' });
                 assert.equal(r2.id, 'rk');
                 assert.notDeepEqual(c.tx.key, oldTx);
                 assert.equal(c.tx.seq, 0);
                 assert.equal(c.rx.seq, 0);
                 // The new keys work both ways, with N from 0, past the old grace period.
                 await sleep(grace * 1000 * 0.8);
                 c.send({ type: 'discover', userId: id });
                 assert.equal((await c.recvType('discover')).online, true);
                 // The rekeyed session expires again in turn.
                 await c.recv((m) => m.type === 'rekey_required', scaled(4000), 'rekey_required');
                 await expectClose(c, 4401);
                 c.assertClean();
             }
             const stats = JSON.parse((await httpGet(port, '/volly/sessions/stats')).body);
             assert.equal(stats.total_sessions, 2);
             assert.equal(stats.expired_sessions, 4);
             assert.equal(stats.active_sessions, 0);
             const m = await fetchMetrics(port);
             assert.equal(sampleValue(m, 'volli_pq_failures_total', { reason: 'rekey_timeout' }),
                          2);
             for (const alg of ALGS) {
                 assert.equal(sampleValue(m, 'volli_pq_handshakes_total', { algorithm: alg }), 2);
             }
         });
});
