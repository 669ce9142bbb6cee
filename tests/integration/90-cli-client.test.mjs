// Tier 90: the `volli` command-line client (build/volli, docs/cli.md) against the real server:
// keygen and key-file safety, register, discover, watch, send, listen, ping, --json lines,
// exit codes (0 ok, 1 wire or local error, 2 usage, 3 no server), signals and failover.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeAllClients, connectAs, nextId } from './lib/client.mjs';
import { closedPort, runVolli, startVolli, stopAllCli } from './lib/cli.mjs';
import { startServer, stopAll, tempDir } from './lib/server.mjs';
import { scaled, uid } from './lib/util.mjs';

let server;
let url;
let keyDir;

before(async () => {
    server = await startServer();
    url = `ws://127.0.0.1:${server.port}/`;
    keyDir = tempDir('volli-cli-keys-');
});

after(async () => {
    await stopAllCli();
    closeAllClients();
    await stopAll();
});

/** Runs `volli keygen --out FILE` for a fresh file; resolves with { file, publicKey }. */
async function newKey(name = uid('k')) {
    const file = path.join(keyDir, `${name}.key`);
    const r = await runVolli(['keygen', '--out', file]);
    assert.equal(r.code, 0, `keygen failed: ${r.stderr}`);
    return { file, publicKey: r.stdout.trim() };
}

/** A user id and a key file for it. */
async function newUser(prefix = 'cli') {
    const user = uid(prefix);
    return { user, ...(await newKey(user)) };
}

/** The server, user and key arguments for `u`. */
function as(u, srv = url) {
    return ['--server', srv, '--user', u.user, '--key', u.file];
}

/** Asks the server (over a registered ws client) what it knows about userId. */
async function discover(observer, userId) {
    const id = nextId('d');
    observer.send({ type: 'discover', userId, id });
    return observer.recv((m) => m.type === 'discover' && m.id === id);
}

function parseLines(lines) {
    return lines.map((l) => {
        const v = JSON.parse(l);
        assert.equal(typeof v, 'object', `not a JSON object: ${l}`);
        assert.ok(v !== null && !Array.isArray(v), `not a JSON object: ${l}`);
        return v;
    });
}

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

describe('volli keygen', () => {
    test('writes a 0600 key file and prints the public key', async () => {
        const file = path.join(keyDir, `${uid('kg')}.key`);
        const r = await runVolli(['keygen', '--out', file]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, BASE64_KEY);
        assert.equal(Buffer.from(r.stdout, 'base64').length, 32);
        assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    });

    test('refuses to overwrite an existing key file (exit 1, file unchanged)', async () => {
        const { file } = await newKey();
        const before = fs.readFileSync(file);
        const r = await runVolli(['keygen', '--out', file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^error: exists: /m);
        assert.ok(r.stderr.includes(file), r.stderr);
        assert.equal(r.stdout, '');
        assert.deepEqual(fs.readFileSync(file), before);
    });

    test('defaults to ./volli.key, or $VOLLI_KEY', async () => {
        const dir = tempDir('volli-cli-cwd-');
        const r1 = await runVolli(['keygen'], { cwd: dir });
        assert.equal(r1.code, 0, r1.stderr);
        assert.equal(fs.statSync(path.join(dir, 'volli.key')).mode & 0o777, 0o600);
        const envFile = path.join(dir, 'env.key');
        const r2 = await runVolli(['keygen'], { cwd: dir, env: { VOLLI_KEY: envFile } });
        assert.equal(r2.code, 0, r2.stderr);
        assert.ok(fs.existsSync(envFile));
        assert.notEqual(r1.stdout, r2.stdout, 'two key pairs with the same public key');
    });

    test('--json prints one object with the public key and the file', async () => {
        const file = path.join(keyDir, `${uid('kj')}.key`);
        const r = await runVolli(['--json', 'keygen', '--out', file]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.out.length, 1);
        const [o] = parseLines(r.out);
        assert.equal(o.type, 'key');
        assert.equal(o.file, file);
        assert.match(o.publicKey, BASE64_KEY);
    });

    test('a key file readable by others is refused with exit 1, and nothing is bound', async () => {
        const u = await newUser('perm');
        fs.chmodSync(u.file, 0o644);
        const r = await runVolli(['register', ...as(u)]);
        assert.equal(r.code, 1, `exit ${r.code}; ${r.stderr}`);
        assert.match(r.stderr, /^error: perm: /m);
        assert.match(r.stderr, /chmod 600/);
        assert.ok(r.stderr.includes(u.file), r.stderr);
        const observer = await connectAs(server.port, uid('obs'));
        assert.equal((await discover(observer, u.user)).publicKey, null);
        await observer.close();
    });

    test('a missing key file is exit 1 naming the file', async () => {
        const file = path.join(keyDir, 'does-not-exist.key');
        const r = await runVolli(['register', '--server', url, '--user', uid('nk'), '--key',
                                  file]);
        assert.equal(r.code, 1, r.stderr);
        assert.ok(r.stderr.includes(file), r.stderr);
        assert.match(r.stderr, /volli keygen/);
    });
});

describe('volli register', () => {
    test('registers, binds the key and exits 0', async () => {
        const u = await newUser('reg');
        const r = await runVolli(['register', ...as(u)]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.out, [`registered ${u.user} on ${url}`]);
        const observer = await connectAs(server.port, uid('obs'));
        const d = await discover(observer, u.user);
        assert.equal(d.publicKey, u.publicKey);
        await observer.close();
    });

    test('prints the folded id', async () => {
        const u = await newUser('fold');
        const r = await runVolli(['register', ...as(u), '--user', u.user.toUpperCase()]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.out, [`registered ${u.user} on ${url}`]);
    });

    test('another key for a bound id: exit 1, error key_mismatch', async () => {
        const u = await newUser('mism');
        assert.equal((await runVolli(['register', ...as(u)])).code, 0);
        const other = await newKey();
        const r = await runVolli(['register', ...as({ ...u, file: other.file })]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^error: key_mismatch: \S/m);
        const j = await runVolli(['--json', 'register', ...as({ ...u, file: other.file })]);
        assert.equal(j.code, 1, j.stderr);
        const [o] = parseLines(j.out);
        assert.equal(o.error, 'key_mismatch');
        assert.equal(typeof o.message, 'string');
    });

    test('--opt=value and -- before ids', async () => {
        const u = await newUser('eq');
        const r = await runVolli([`--server=${url}`, `--user=${u.user}`, `--key=${u.file}`,
                                  'discover', '--', '-dash']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.out, ['-dash offline -']);
    });

    test('a --user id the library refuses is a usage error (exit 2)', async () => {
        const u = await newUser('bad');
        const r = await runVolli(['register', ...as(u), '--user', 'not valid!']);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /--user/);
    });

    test('VOLLI_SERVER, VOLLI_USER and VOLLI_KEY stand in for the options', async () => {
        const u = await newUser('env');
        const dead = `ws://127.0.0.1:${await closedPort()}/`;
        const r = await runVolli(['--json', 'register'], {
            env: { VOLLI_SERVER: `${dead},${url}`, VOLLI_USER: u.user, VOLLI_KEY: u.file },
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(parseLines(r.out), [{ type: 'registered', userId: u.user, server: url }]);
    });
});

describe('volli discover', () => {
    test('prints online, offline and unknown users in order', async () => {
        const me = await newUser('disc');
        const onlineUser = await connectAs(server.port, uid('on'));
        const offline = await newUser('off');
        assert.equal((await runVolli(['register', ...as(offline)])).code, 0);
        const unknown = uid('unk');
        const ids = [onlineUser.userId, offline.user, unknown];
        const r = await runVolli(['discover', ...as(me), ...ids]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.out, [
            `${onlineUser.userId} online ${onlineUser.identity.publicKey}`,
            `${offline.user} offline ${offline.publicKey}`,
            `${unknown} offline -`,
        ]);

        const j = await runVolli(['discover', '--json', ...as(me), ...ids]);
        assert.equal(j.code, 0, j.stderr);
        assert.deepEqual(parseLines(j.out), [
            { type: 'discover', userId: onlineUser.userId, online: true,
              publicKey: onlineUser.identity.publicKey },
            { type: 'discover', userId: offline.user, online: false,
              publicKey: offline.publicKey },
            { type: 'discover', userId: unknown, online: false, publicKey: null },
        ]);
        await onlineUser.close();
    });

    test('more ids than one request may carry are all answered, in order', async () => {
        const me = await newUser('many');
        const ids = Array.from({ length: 150 }, (_, i) => `${uid('m')}-${i}`);
        const r = await runVolli(['discover', ...as(me), ...ids]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.out, ids.map((id) => `${id} offline -`));
    });

    test('an invalid id is exit 1 with invalid_user_id', async () => {
        const me = await newUser('inv');
        const r = await runVolli(['discover', ...as(me), 'not valid!']);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^error: invalid_user_id: /m);
        assert.equal(r.stdout, '');
    });
});

describe('volli watch', () => {
    test('prints presence changes live; SIGINT exits 0', async () => {
        const me = await newUser('w');
        const bobId = uid('bob');
        const w = startVolli(['watch', ...as(me), bobId]);
        await w.waitLine((l) => l === `${bobId} offline`);
        const bob = await connectAs(server.port, bobId);
        await w.waitLine((l) => l === `${bobId} online`, { from: 1 });
        await bob.close();
        await w.waitLine((l) => l === `${bobId} offline`, { from: 2 });
        const info = await w.stop('SIGINT');
        assert.equal(info.code, 0, w.describe());
        assert.deepEqual(w.out, [`${bobId} offline`, `${bobId} online`, `${bobId} offline`]);
        assert.ok(w.err.some((l) => l === `volli: registered ${me.user} on ${url}`), w.describe());
    });

    test('--json: registered, then presence objects; SIGTERM exits 0', async () => {
        const me = await newUser('wj');
        const bob = await connectAs(server.port, uid('bob'));
        const carolId = uid('carol');
        const w = startVolli(['watch', '--json', ...as(me), bob.userId, carolId]);
        await w.waitLine((l) => l.includes(carolId));
        await w.waitLine((l) => l.includes(bob.userId));
        await bob.close();
        await w.waitLine((l) => l.includes(bob.userId), { from: 3 });
        assert.equal((await w.stop('SIGTERM')).code, 0, w.describe());
        const lines = parseLines(w.out);
        assert.deepEqual(lines[0], { type: 'registered', userId: me.user, server: url });
        const presence = lines.slice(1);
        assert.equal(presence.length, 3, w.describe());
        assert.deepEqual(new Set(presence.slice(0, 2).map(JSON.stringify)), new Set([
            JSON.stringify({ type: 'presence', userId: bob.userId, online: true }),
            JSON.stringify({ type: 'presence', userId: carolId, online: false }),
        ]));
        assert.deepEqual(presence[2], { type: 'presence', userId: bob.userId, online: false });
    });

    test('fails over from a dead server to a live one', async () => {
        const me = await newUser('fo');
        const bobId = uid('bob');
        const dead = `ws://127.0.0.1:${await closedPort()}/`;
        const w = startVolli(['watch', '--server', dead, '--server', url, '--user', me.user,
                              '--key', me.file, bobId]);
        await w.waitLine((l) => l === `${bobId} offline`, { ms: scaled(8000) });
        const bob = await connectAs(server.port, bobId);
        await w.waitLine((l) => l === `${bobId} online`, { from: 1 });
        await bob.close();
        assert.equal((await w.stop('SIGINT')).code, 0, w.describe());
        assert.ok(w.err.some((l) => l === `volli: registered ${me.user} on ${url}`), w.describe());
    });

    test('keeps watching across a server restart (human and --json)', async () => {
        const own = await startServer();
        const ownUrl = `ws://127.0.0.1:${own.port}/`;
        const me = await newUser('rs');
        const me2 = await newUser('rsj');
        const bobId = uid('bob');
        const w = startVolli(['watch', ...as(me, ownUrl), bobId]);
        const j = startVolli(['--json', 'watch', ...as(me2, ownUrl), bobId]);
        await w.waitLine((l) => l === `${bobId} offline`);
        await j.waitLine((l) => l.includes('"presence"'));
        await own.stop('SIGTERM');
        await w.waitLine(/^volli: disconnected from /, { stream: 'err' });
        await j.waitLine((l) => l.includes('"disconnected"'));
        assert.equal(w.exitInfo, null, 'watch exited after losing its server');
        // The same data directory on the same port (the later --port wins): the client's
        // reconnect finds it, registers again and restores the subscription.
        const mark = w.err.length;
        const jmark = j.out.length;
        const again = await startServer({ dataDir: own.dataDir,
                                          args: ['--port', String(own.port)] });
        await w.waitLine(/^volli: registered /, { stream: 'err', from: mark, ms: scaled(15000) });
        await j.waitLine((l) => l.includes('"registered"'), { from: jmark, ms: scaled(15000) });
        const bob = await connectAs(again.port, bobId);
        await w.waitLine((l) => l === `${bobId} online`, { from: 1 });
        await j.waitLine((l) => l.includes('"online":true'));
        await bob.close();
        await w.waitLine((l) => l === `${bobId} offline`, { from: 2 });
        await j.waitLine((l) => l.includes('"online":false'), { from: jmark + 2 });
        assert.equal((await w.stop('SIGTERM')).code, 0, w.describe());
        assert.equal((await j.stop('SIGTERM')).code, 0, j.describe());
        // The restored subscription's answer (offline, as before) is no change: not printed.
        assert.deepEqual(w.out, [`${bobId} offline`, `${bobId} online`, `${bobId} offline`]);
        const lines = parseLines(j.out);
        // One report per lost session, not one per failed reconnect attempt.
        const discs = lines.filter((o) => o.type === 'disconnected');
        assert.equal(discs.length, 1, j.describe());
        const [disc] = discs;
        assert.equal(disc.server, ownUrl);
        assert.equal(w.err.filter((l) => l.startsWith('volli: disconnected')).length, 1,
                     w.describe());
        assert.ok(Number.isInteger(disc.reconnectInMs) && disc.reconnectInMs >= 0);
        assert.deepEqual(lines.filter((o) => o.type !== 'disconnected'), [
            { type: 'registered', userId: me2.user, server: ownUrl },
            { type: 'presence', userId: bobId, online: false },
            { type: 'registered', userId: me2.user, server: ownUrl },
            { type: 'presence', userId: bobId, online: true },
            { type: 'presence', userId: bobId, online: false },
        ]);
    });
});

describe('volli send', () => {
    test('relays an offer that arrives with from', async () => {
        const alice = await newUser('alice');
        const bob = await connectAs(server.port, uid('bob'));
        const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
        const r = await runVolli(['send', ...as(alice), bob.userId, '--type', 'offer', '--json',
                                  JSON.stringify(offer)]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.out, [`sent offer to ${bob.userId}`]);
        const m = await bob.recvType('offer');
        assert.equal(m.from, alice.user);
        assert.equal(m.to, bob.userId);
        assert.deepEqual(m.offer, offer);
        await bob.close();
    });

    test('answer, ice-candidate and bye (with and without a reason)', async () => {
        const alice = await newUser('alice');
        const bob = await connectAs(server.port, uid('bob'));
        const cases = [
            ['answer', '{"type":"answer","sdp":"v=0"}', 'answer', { type: 'answer', sdp: 'v=0' }],
            ['ice-candidate', '{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}',
             'candidate', { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host' }],
            ['bye', '"done"', 'reason', 'done'],
        ];
        for (const [type, payload, member, value] of cases) {
            const r = await runVolli(['--json', 'send', ...as(alice), bob.userId, '--type', type,
                                      '--json', payload]);
            assert.equal(r.code, 0, r.stderr);
            assert.deepEqual(parseLines(r.out), [{ type: 'sent', message: type, to: bob.userId }]);
            const m = await bob.recvType(type);
            assert.equal(m.from, alice.user);
            assert.deepEqual(m[member], value);
        }
        const r = await runVolli(['send', ...as(alice), bob.userId, '--type', 'bye']);
        assert.equal(r.code, 0, r.stderr);
        const m = await bob.recvType('bye');
        assert.equal(m.from, alice.user);
        assert.ok(!('reason' in m), JSON.stringify(m));
        await bob.close();
    });

    test('to an offline peer: exit 1 and peer_offline', async () => {
        const alice = await newUser('alice');
        const ghost = uid('ghost');
        const r = await runVolli(['send', ...as(alice), ghost, '--type', 'offer', '--json',
                                  '{"sdp":"v=0"}']);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^error: peer_offline: \S/m);
        assert.equal(r.stdout, '');

        const j = await runVolli(['--json', 'send', ...as(alice), ghost, '--type', 'offer',
                                  '--json', '{"sdp":"v=0"}']);
        assert.equal(j.code, 1, j.stderr);
        const lines = parseLines(j.out);
        assert.equal(lines.length, 1, j.stdout);
        assert.equal(lines[0].error, 'peer_offline');
        assert.equal(typeof lines[0].message, 'string');
    });
});

describe('volli listen', () => {
    test('prints relayed messages, whitespace removed; SIGTERM exits 0', async () => {
        const bob = await newUser('bob');
        const l = startVolli(['listen', ...as(bob)]);
        await l.waitLine((x) => x === `volli: registered ${bob.user} on ${url}`, { stream: 'err' });
        const alice = await connectAs(server.port, uid('alice'));
        alice.sendText(`{"type":"offer","to":"${bob.user}",\n  "offer": { "type": "offer",` +
                       ` "sdp": "v=0\\r\\n a b" , "n": 1.0 }}`);
        await l.waitLine((x) => x.startsWith('offer from'));
        alice.send({ type: 'ice-candidate', to: bob.user, candidate: { candidate: 'c 1' } });
        alice.send({ type: 'bye', to: bob.user });
        await l.waitLine((x) => x.startsWith('bye from'));
        assert.equal((await l.stop('SIGTERM')).code, 0, l.describe());
        assert.deepEqual(l.out, [
            `offer from ${alice.userId}: {"type":"offer","sdp":"v=0\\r\\n a b","n":1.0}`,
            `ice-candidate from ${alice.userId}: {"candidate":"c 1"}`,
            `bye from ${alice.userId}`,
        ]);
        await alice.close();
    });

    test('--json prints each message as received, one per line, with from', async () => {
        const bob = await newUser('bob');
        const l = startVolli(['--json', 'listen', ...as(bob)]);
        await l.waitLine((x) => x.includes('"registered"'));
        const alice = await connectAs(server.port, uid('alice'));
        const sent = { type: 'answer', to: bob.user, answer: { sdp: 'line1\nline2' }, extra: [1] };
        alice.sendText(JSON.stringify(sent, null, 2)); // pretty-printed: newlines on the wire
        await l.waitLine((x) => x.includes('"answer"'), { from: 1 });
        assert.equal((await l.stop('SIGINT')).code, 0, l.describe());
        const lines = parseLines(l.out);
        assert.equal(lines.length, 2, l.describe());
        assert.deepEqual(lines[1], { ...sent, from: alice.userId });
        await alice.close();
    });

    test('replaced by a newer session of the same user: exit 1, no fight back', async () => {
        const bob = await newUser('bob');
        const l = startVolli(['listen', ...as(bob)]);
        await l.waitLine(/^volli: registered /, { stream: 'err' });
        // The same identity, from the key file the CLI uses.
        const privateKey = crypto.createPrivateKey(fs.readFileSync(bob.file));
        const raw = crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
            .subarray(-32);
        assert.equal(raw.toString('base64'), bob.publicKey);
        const twin = await connectAs(server.port, { userId: bob.user, privateKey,
                                                    publicKeyRaw: raw, publicKey: bob.publicKey });
        const info = await l.wait();
        assert.equal(info.code, 1, l.describe());
        assert.ok(l.err.some((x) => /^error: replaced: /.test(x)), l.describe());
        // The CLI did not reconnect and take the id back.
        await twin.expectNone(scaled(500), (m) => m.type === 'error');
        assert.ok(twin.isOpen);
        await twin.close();
    });

    test('CLI to CLI: send reaches listen', async () => {
        const bob = await newUser('bob');
        const alice = await newUser('alice');
        const l = startVolli(['listen', ...as(bob)]);
        await l.waitLine(/^volli: registered /, { stream: 'err' });
        const r = await runVolli(['send', ...as(alice), bob.user, '--type', 'offer', '--json',
                                  '{"sdp":"x"}']);
        assert.equal(r.code, 0, r.stderr);
        await l.waitLine((x) => x === `offer from ${alice.user}: {"sdp":"x"}`);
        assert.equal((await l.stop('SIGINT')).code, 0, l.describe());
    });
});

describe('volli ping', () => {
    // libvolli's volli_client_new requires a user id and a key (include/volli/client.h), so a
    // session that connects without registering is not possible yet; the CLI asks for one
    // (user_id and key NULL) and this test passes once the library supports it.
    test('without --user: connects, pings, exits 0', async () => {
        const r = await runVolli(['ping', '--server', url]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.out.length, 1);
        assert.match(r.out[0], new RegExp(`^pong from ${url} in \\d+\\.\\d\\d ms$`));
    });

    test('with --user it registers first; --json', async () => {
        const u = await newUser('p');
        const observer = await connectAs(server.port, uid('obs'));
        const r = await runVolli(['ping', '--json', ...as(u)]);
        assert.equal(r.code, 0, r.stderr);
        const [o] = parseLines(r.out);
        assert.equal(o.type, 'pong');
        assert.equal(o.server, url);
        assert.equal(typeof o.ms, 'number');
        assert.equal((await discover(observer, u.user)).publicKey, u.publicKey);
        await observer.close();
    });
});

describe('usage and exit codes', () => {
    let deadUrl;
    before(async () => {
        deadUrl = `ws://127.0.0.1:${await closedPort()}/`;
    });

    // Each runs with a dead server and a long --timeout: a usage error must be found before
    // connecting, or the run would take 30 s (and exit 3) instead of exiting 2 at once.
    const cases = [
        ['no command', [], /missing command/],
        ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
        ['an unknown option', ['ping', '--bogus'], /unknown option '--bogus'/],
        ['an unknown short option', ['-x', 'ping'], /unknown option '-x'/],
        ['a missing option value', ['ping', '--server'], /--server needs a value/],
        ['a bad --timeout', ['ping', '--timeout', 'soon'], /--timeout/],
        ['a zero --timeout', ['ping', '--timeout', '0'], /--timeout/],
        ['discover without ids', ['discover', '--user', 'a'], /at least one user id/],
        ['register without --user', ['register'], /--user/],
        ['an extra argument', ['ping', 'extra'], /unexpected argument 'extra'/],
        ['send without --type', ['send', 'bob', '--user', 'a', '--json', '{}'], /--type/],
        ['a bad --type', ['send', 'bob', '--user', 'a', '--type', 'invite', '--json', '{}'],
         /bad --type 'invite'/],
        ['an offer without payload', ['send', 'bob', '--user', 'a', '--type', 'offer'],
         /--json/],
        ['invalid JSON', ['send', 'bob', '--user', 'a', '--type', 'offer', '--json', '{"a":'],
         /not valid JSON/],
        ['duplicate JSON names', ['send', 'bob', '--user', 'a', '--type', 'offer', '--json',
                                  '{"a":1,"a":2}'], /not valid JSON/],
        ['send with two ids', ['send', 'bob', 'carol', '--user', 'a', '--type', 'bye'],
         /unexpected argument 'carol'/],
        ['help for an unknown command', ['help', 'nope'], /no such command/],
    ];
    for (const [what, args, re] of cases) {
        test(`${what}: exit 2`, async () => {
            const r = await runVolli(['--server', deadUrl, '--timeout', '30000', ...args]);
            assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
            assert.match(r.stderr, re);
            assert.equal(r.stdout, '');
        });
    }

    test('help and --version exit 0 on stdout', async () => {
        const overview = await runVolli(['help']);
        assert.equal(overview.code, 0);
        for (const c of ['keygen', 'register', 'discover', 'watch', 'send', 'listen', 'ping']) {
            assert.ok(overview.stdout.includes(c), `help does not list ${c}`);
        }
        assert.equal((await runVolli(['--help'])).stdout, overview.stdout);
        const send = await runVolli(['send', '--help']);
        assert.equal(send.code, 0);
        assert.match(send.stdout, /^usage: volli \[OPTIONS\] send ID --type TYPE/);
        assert.match(send.stdout, /ice-candidate/);
        assert.equal((await runVolli(['help', 'send'])).stdout, send.stdout);
        const watch = await runVolli(['help', 'watch']);
        assert.match(watch.stdout, /SIGINT/);
        const v = await runVolli(['--version']);
        assert.equal(v.code, 0);
        assert.match(v.stdout, /^volli \d+\.\d+\.\d+$/);
    });

    test('no reachable server: exit 3 after --timeout', async () => {
        const u = await newUser('unr');
        const r = await runVolli(['ping', '--server', deadUrl, '--timeout', '600', '--user',
                                  u.user, '--key', u.file]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /^error: unreachable: /m);
        assert.ok(r.ms >= 550, `gave up after ${r.ms} ms, before the 600 ms timeout`);

        const j = await runVolli(['--json', 'watch', '--timeout', '500', '--server', deadUrl,
                                  '--user', u.user, '--key', u.file, 'bob']);
        assert.equal(j.code, 3, j.stderr);
        const lines = parseLines(j.out);
        assert.equal(lines.length, 1, j.stdout);
        assert.equal(lines[0].error, 'unreachable');
    });

    test('a server that accepts TCP but never answers: exit 3; signals while connecting',
         async () => {
        const sockets = [];
        const silent = net.createServer((s) => sockets.push(s));
        await new Promise((r) => silent.listen(0, '127.0.0.1', r));
        const silentUrl = `ws://127.0.0.1:${silent.address().port}/`;
        try {
            const u = await newUser('silent');
            const r = await runVolli(['register', '--timeout', '500', '--server', silentUrl,
                                      '--user', u.user, '--key', u.file]);
            assert.equal(r.code, 3, r.stderr);
            assert.match(r.stderr, /^error: unreachable: /m);

            // A one-shot command interrupted is an error; watch/listen stopped is success.
            const once = startVolli(['discover', '--timeout', '30000', '--server', silentUrl,
                                     '--user', u.user, '--key', u.file, 'bob']);
            const w = startVolli(['watch', '--timeout', '30000', '--server', silentUrl,
                                  '--user', u.user, '--key', u.file, 'bob']);
            await new Promise((res) => setTimeout(res, scaled(300)));
            const [a, b] = await Promise.all([once.stop('SIGINT'), w.stop('SIGTERM')]);
            assert.equal(a.code, 1, once.describe());
            assert.ok(once.err.some((x) => /^error: canceled: /.test(x)), once.describe());
            assert.equal(b.code, 0, w.describe());
        } finally {
            for (const s of sockets) s.destroy();
            await new Promise((r) => silent.close(r));
        }
    });
});
