// Tier 66: logs. JSON lines on stderr; never payloads, signatures or public keys, even at
// debug level.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs, makeIdentity, signRegister } from './lib/client.mjs';
import { startServer, stopAll } from './lib/server.mjs';
import { uid } from './lib/util.mjs';

after(async () => {
    closeAllClients();
    await stopAll();
});

const LEVELS = ['error', 'warn', 'info', 'debug'];

function assertJsonLines(server) {
    const lines = server.stderr.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0, 'no log lines at all');
    for (const line of lines) {
        let obj;
        assert.doesNotThrow(() => {
            obj = JSON.parse(line);
        }, `log line is not JSON: ${line}`);
        assert.equal(typeof obj, 'object');
        assert.equal(typeof obj.ts, 'string', `no ts: ${line}`);
        assert.ok(LEVELS.includes(obj.level), `bad level: ${line}`);
        assert.equal(typeof obj.msg, 'string', `no msg: ${line}`);
    }
    return lines;
}

describe('logging', () => {
    test('no payloads, signatures or keys in the log, even at debug level', async () => {
        const s = await startServer({ logLevel: 'debug' });
        const mark = (what) => `MARK${what}${crypto.randomBytes(6).toString('hex')}`;
        const markers = {
            offer: mark('offer'),
            answer: mark('answer'),
            candidate: mark('cand'),
            bye: mark('bye'),
            extra: mark('extra'),
            garbage: mark('garbage'),
            offline: mark('offline'),
        };
        const aIdent = makeIdentity(uid('loga'));
        const a = await Client.connect(s.port);
        const aSig = signRegister(aIdent, a.hello.nonce);
        await a.registerOk(aIdent, { signature: aSig });
        const bIdent = makeIdentity(uid('logb'));
        const b = await Client.connect(s.port);
        const bSig = signRegister(bIdent, b.hello.nonce);
        await b.registerOk(bIdent, { signature: bSig });
        // Failed registers carry signatures and keys too.
        const bad = await Client.connect(s.port);
        const badIdent = makeIdentity(uid('logbad'));
        const badSig = signRegister(makeIdentity(badIdent.userId), bad.hello.nonce);
        assert.equal((await bad.register(badIdent, { signature: badSig })).code,
                     'bad_signature');
        const mm = await bad.register(makeIdentity(aIdent.userId));
        assert.equal(mm.code, 'key_mismatch');

        a.send({ type: 'offer', to: b.userId,
                 offer: { type: 'offer', sdp: `v=0\r\ns=${markers.offer}\r\n` },
                 note: markers.extra });
        await b.recvType('offer');
        b.send({ type: 'answer', to: a.userId, answer: { sdp: markers.answer } });
        await a.recvType('answer');
        const cand = `candidate:${markers.candidate} 1 udp 2122260223 10.0.0.1 9 typ host`;
        a.send({ type: 'ice-candidate', to: b.userId, candidate: { candidate: cand } });
        await b.recvType('ice-candidate');
        a.send({ type: 'bye', to: b.userId, reason: markers.bye });
        await b.recvType('bye');
        a.send({ type: 'offer', to: uid('nobody'), offer: markers.offline });
        await a.expectError('peer_offline');
        a.sendText(`{"type":"offer", ${markers.garbage}`);
        await a.expectError('bad_json');
        for (const c of [a, b, bad]) await c.close();
        assert.equal((await s.stop()).code, 0);

        const lines = assertJsonLines(s);
        const log = s.stderr;
        for (const [what, m] of Object.entries(markers)) {
            assert.ok(!log.includes(m), `the ${what} payload leaked into the log`);
        }
        const secrets = {
            'a signature': aSig,
            'b signature': bSig,
            'a failed signature': badSig,
            'a public key': aIdent.publicKey,
            'b public key': bIdent.publicKey,
            'a rejected public key': badIdent.publicKey,
        };
        for (const [what, secret] of Object.entries(secrets)) {
            // Also catch a logged prefix or the base64url spelling of the same bytes.
            const url = Buffer.from(secret, 'base64').toString('base64url');
            const hex = Buffer.from(secret, 'base64').toString('hex');
            for (const form of [secret.slice(0, 24), url.slice(0, 24), hex.slice(0, 32)]) {
                assert.ok(!log.includes(form), `${what} leaked into the log`);
            }
        }
        console.log(`${lines.length} debug log lines checked`);
    });

    test('at info level there are no debug lines, and lines are JSON', async () => {
        const s = await startServer({ logLevel: 'info' });
        const c = await connectAs(s.port, uid('info'));
        c.sendText('garbage');
        await c.expectError('bad_json');
        await c.close();
        assert.equal((await s.stop()).code, 0);
        const lines = assertJsonLines(s);
        for (const line of lines) assert.notEqual(JSON.parse(line).level, 'debug', line);
    });
});
