// Tier 85: access tokens (JWT HS256, LiveKit style): ?access_token= and Authorization: Bearer,
// 401 reasons with a JSON body, registration via the token right after hello, --dev, the
// `token create` CLI, and relays between a token user and a key-registered user.
// Test tokens are signed here with node:crypto HMAC, independently of the server's libjwt.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, closeAllClients, connectAs } from './lib/client.mjs';
import { fetchMetrics, sampleValue } from './lib/http.mjs';
import { rawHttp, upgradeRequest } from './lib/raw.mjs';
import { runCli, startServer, stopAll, tempDir } from './lib/server.mjs';
import { makeToken as mint } from './lib/token.mjs';
import { scaled, uid } from './lib/util.mjs';

const KEYS = 'apikey1: secret-number-one,apikey2: secret-number-two';


/** A token signed by apikey1 unless opts say otherwise (see lib/token.mjs). */
const makeToken = (claims, opts = {}) =>
    mint(claims, { key: 'apikey1', secret: 'secret-number-one', ...opts });

/** Opens a WebSocket with a token; resolves with the client or rejects with {status, body}. */
function connectWith(port, token, { bearer = false } = {}) {
    const url = bearer ? `ws://127.0.0.1:${port}/rtc`
        : `ws://127.0.0.1:${port}/rtc?access_token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url, {
        perMessageDeflate: false,
        headers: bearer ? { Authorization: `Bearer ${token}` } : {},
    });
    const c = new Client(ws);
    return new Promise((resolve, reject) => {
        ws.once('open', async () => {
            try {
                c.hello = await c.recv((m) => m.type === 'hello', scaled(3000), 'hello');
                resolve(c);
            } catch (err) {
                reject(err);
            }
        });
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => {
                body += d;
            });
            res.on('end', () => {
                ws.terminate();
                reject(Object.assign(new Error(`HTTP ${res.statusCode}`),
                                     { status: res.statusCode, body, headers: res.headers }));
            });
        });
        ws.once('error', (err) => {
            if (!err.status) reject(err);
        });
    });
}

async function expect401(port, token, reason, opts) {
    await assert.rejects(connectWith(port, token, opts), (err) => {
        assert.equal(err.status, 401, `expected 401, got ${err.status}: ${err.message}`);
        assert.match(err.headers['content-type'], /application\/json/);
        assert.deepEqual(JSON.parse(err.body), { error: 'invalid_token', reason });
        return true;
    });
}

let srv;
before(async () => {
    srv = await startServer({ env: { LIVEKIT_KEYS: KEYS } });
});
after(async () => {
    closeAllClients();
    await stopAll();
});

describe('access tokens', () => {
    test('a token in the query registers the connection right after hello', async () => {
        const id = uid('tq');
        const c = await connectWith(srv.port, makeToken({ sub: id.toUpperCase() }));
        // The very next frame after hello is the registration.
        const first = await c.next(() => true);
        assert.deepEqual(first.msg, { type: 'registered', userId: id, via: 'token' });
        await c.ping();
        await c.close();
    });

    test('a Bearer token works the same, with the second key', async () => {
        const id = uid('tb');
        const token = makeToken({ sub: id }, { key: 'apikey2', secret: 'secret-number-two' });
        const c = await connectWith(srv.port, token, { bearer: true });
        assert.deepEqual(await c.recvType('registered'), { type: 'registered', userId: id,
                                                           via: 'token' });
        await c.close();
    });

    test('refused tokens get 401 with the reason and no upgrade', async () => {
        const now = Math.floor(Date.now() / 1000);
        const id = uid('tr');
        await expect401(srv.port, 'not-a-jwt', 'malformed');
        await expect401(srv.port, makeToken({ sub: id }, { secret: 'wrong' }), 'bad_signature');
        await expect401(srv.port, makeToken({ sub: id }, { secret: 'wrong' }), 'bad_signature',
                        { bearer: true });
        await expect401(srv.port, makeToken({ sub: id }, { alg: 'none', hmac: null }),
                        'bad_signature');
        await expect401(srv.port, makeToken({ sub: id }, { alg: 'HS512', hmac: 'sha512' }),
                        'bad_signature');
        await expect401(srv.port, makeToken({ sub: id }, { key: 'nokey' }), 'unknown_key');
        await expect401(srv.port, makeToken({ sub: id, exp: now - 120 }), 'expired');
        await expect401(srv.port, makeToken({ sub: id, nbf: now + 600, exp: now + 900 }),
                        'not_yet_valid');
        await expect401(srv.port, makeToken({ sub: undefined }), 'missing_claim');
        await expect401(srv.port, makeToken({ sub: id, exp: undefined }), 'missing_claim');
        await expect401(srv.port, makeToken({ sub: 'has space' }), 'invalid_identity');
        await expect401(srv.port, makeToken({ sub: id, pqPublicKey: 'not base64' }), 'malformed');
        // Within the 60 s leeway an expired token still passes.
        const c = await connectWith(srv.port, makeToken({ sub: id, exp: now - 30 }));
        await c.recvType('registered');
        await c.close();
    });

    test('the 401 is a complete HTTP response and the token never reaches the log', async () => {
        const token = makeToken({ sub: uid('tl') }, { secret: 'wrong' });
        const res = await rawHttp(srv.port,
                                  upgradeRequest(`/?access_token=${token}`,
                                                 crypto.randomBytes(16).toString('base64')));
        assert.equal(res.status, 401);
        assert.deepEqual(JSON.parse(res.body), { error: 'invalid_token', reason: 'bad_signature' });
        assert.ok(!srv.stderr.includes(token.split('.')[2]), 'signature logged');
        assert.ok(!srv.stderr.includes('secret-number'), 'a secret was logged');
        const m = await fetchMetrics(srv.port);
        assert.ok(sampleValue(m, 'volli_tokens_total', { result: 'bad_signature' }) >= 1);
        assert.ok(sampleValue(m, 'volli_tokens_total', { result: 'ok' }) >= 1);
    });

    test('a token user and a key user relay both ways; discover shows the token user online',
         async () => {
        const tid = uid('tt');
        const t = await connectWith(srv.port, makeToken({ sub: tid }));
        await t.recvType('registered');
        const k = await connectAs(srv.port, uid('tk'));
        k.send({ type: 'offer', to: tid, offer: { sdp: 'v=0' } });
        const got = await t.recvType('offer');
        assert.equal(got.from, k.userId);
        assert.deepEqual(got.offer, { sdp: 'v=0' });
        t.send({ type: 'answer', to: k.userId, answer: { sdp: 'v=1' } });
        const ans = await k.recvType('answer');
        assert.equal(ans.from, tid);
        k.send({ type: 'discover', userId: tid, id: 'd1' });
        assert.deepEqual(await k.recvType('discover'),
                         { type: 'discover', id: 'd1', userId: tid, online: true,
                           publicKey: null });
        t.send({ type: 'discover', userId: k.userId });
        const d = await t.recvType('discover');
        assert.equal(d.online, true);
        assert.equal(d.publicKey, k.identity.publicKey);
        await t.close();
        await k.close();
    });

    test('register on a token connection: same id answered, another id refused', async () => {
        const tid = uid('tg');
        const t = await connectWith(srv.port, makeToken({ sub: tid }));
        await t.recvType('registered');
        t.send({ type: 'register', id: 'r1', userId: tid, publicKey: 'x', signature: 'y' });
        assert.deepEqual(await t.recvType('registered'),
                         { type: 'registered', id: 'r1', userId: tid, via: 'token' });
        t.send({ type: 'register', id: 'r2', userId: uid('other'), publicKey: 'x',
                 signature: 'y' });
        await t.expectError('already_registered', { id: 'r2' });
        await t.close();
    });

    test('a newer token connection replaces the older one', async () => {
        const tid = uid('tn');
        const a = await connectWith(srv.port, makeToken({ sub: tid }));
        await a.recvType('registered');
        const b = await connectWith(srv.port, makeToken({ sub: tid }));
        await b.recvType('registered');
        await a.expectError('replaced');
        assert.equal((await a.waitClose()).code, 4000);
        await b.close();
    });

    test('without keys the server refuses tokens: no_keys_configured', async () => {
        const bare = await startServer();
        await expect401(bare.port, makeToken({ sub: uid('nk') }), 'no_keys_configured');
        // Key registration is unaffected.
        const k = await connectAs(bare.port, uid('nk'));
        await k.close();
        await bare.stop();
    });
});

describe('--dev and the token CLI', () => {
    test('--dev warns at start and accepts the development key pair', async () => {
        const dev = await startServer({ args: ['--dev'] });
        const warn = await dev.waitLog((l) => l.level === 'warn' && l.msg === 'dev_mode',
                                       scaled(3000), 'the dev_mode warning');
        assert.equal(warn.api_key, 'volly-dev-key');
        const id = uid('dv');
        const token = makeToken({ sub: id }, { key: 'volly-dev-key',
                                               secret: 'volly-dev-secret-key-2024' });
        const c = await connectWith(dev.port, token);
        assert.equal((await c.recvType('registered')).userId, id);
        await c.close();
        await dev.stop();
    });

    test('token create round trip: CLI token accepted by the server, room joined', async () => {
        const id = uid('cli');
        const r = await runCli(['token', 'create', '--identity', id, '--room', 'cli-room',
                                '--valid-for', '10m'], { env: { LIVEKIT_KEYS: KEYS } });
        assert.equal(r.code, 0, r.stderr);
        const token = r.stdout.trim();
        assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
        const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
        assert.equal(claims.iss, 'apikey1');
        assert.equal(claims.sub, id);
        assert.ok(Math.abs(claims.exp - claims.nbf - 600) <= 1);
        assert.deepEqual(claims.video, { roomJoin: true, room: 'cli-room' });
        const c = await connectWith(srv.port, token, { bearer: true });
        assert.deepEqual(await c.recvType('registered'), { type: 'registered', userId: id,
                                                           via: 'token' });
        assert.deepEqual(await c.recvType('joined'), { type: 'joined', room: 'cli-room',
                                                       participants: [] });
        await c.close();
    });

    test('token create: --dev, pq key files (base64 or raw), and the errors', async () => {
        const none = await runCli(['token', 'create', '--identity', 'x']);
        assert.equal(none.code, 2);
        assert.match(none.stderr, /no API key configured/);
        const bad = await runCli(['token', 'create', '--identity', 'x', '--valid-for', '5y'],
                                 { env: { LIVEKIT_KEYS: KEYS } });
        assert.equal(bad.code, 2);
        const dir = tempDir();
        const raw = crypto.randomBytes(1184);
        fs.writeFileSync(path.join(dir, 'pk.bin'), raw);
        fs.writeFileSync(path.join(dir, 'pk.b64'), `${raw.toString('base64')}\n`);
        fs.writeFileSync(path.join(dir, 'short.bin'), raw.subarray(0, 100));
        for (const f of ['pk.bin', 'pk.b64']) {
            const r = await runCli(['token', 'create', '--dev', '--identity', 'pq', '--valid-for',
                                    '1h', '--pq-public-key', path.join(dir, f)]);
            assert.equal(r.code, 0, r.stderr);
            const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1], 'base64url'));
            assert.equal(claims.iss, 'volly-dev-key');
            assert.equal(claims.pqPublicKey, raw.toString('base64'));
            assert.equal(claims.pqAlgorithm, 'ML-KEM-768');
        }
        const short = await runCli(['token', 'create', '--dev', '--identity', 'pq',
                                    '--pq-public-key', path.join(dir, 'short.bin')]);
        assert.equal(short.code, 2);
        // A token with a pq key is accepted by a --dev server.
        const dev = await startServer({ args: ['--dev'] });
        const r = await runCli(['token', 'create', '--dev', '--identity', 'pqu',
                                '--pq-public-key', path.join(dir, 'pk.b64')]);
        const c = await connectWith(dev.port, r.stdout.trim());
        assert.equal((await c.recvType('registered')).userId, 'pqu');
        await c.close();
        await dev.stop();
    });

    test('--help never shows key values', async () => {
        const r = await runCli(['--help'], { env: { LIVEKIT_KEYS: KEYS } });
        assert.equal(r.code, 0);
        assert.match(r.stdout, /--dev/);
        assert.match(r.stdout, /--max-room-participants/);
        assert.ok(!r.stdout.includes('secret-number'));
    });
});
