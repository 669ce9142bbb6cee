// Tier 77: faults. kill -9 during a flood of registrations loses no acknowledged binding; a
// full disk (here: a file-size limit) fails registrations with `unavailable` while the server
// keeps serving, and loses nothing it acknowledged.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { Client, closeAllClients, makeIdentity, signRegister } from './lib/client.mjs';
import { BIN, Server, childEnv, startServer, stopAll, tempDir } from './lib/server.mjs';
import { scaled, uid } from './lib/util.mjs';

const started = [];
after(async () => {
    closeAllClients();
    for (const s of started) await s.kill9();
    await stopAll();
});

/** Proves userId is bound (to some other key than `other`): key_mismatch with a fresh key. */
async function assertBound(port, userId) {
    const c = await Client.connect(port);
    const other = makeIdentity(userId);
    c.send({ type: 'register', id: 'chk', userId, publicKey: other.publicKey,
             signature: signRegister(other, c.hello.nonce) });
    const m = await c.recv();
    assert.equal(m.code, 'key_mismatch', `${userId} lost its binding: ${JSON.stringify(m)}`);
    c.terminate();
}

test('kill -9 during a registration flood loses no acknowledged binding', async () => {
    const srv = await startServer();
    const n = 300;
    const clients = await Promise.all(Array.from({ length: n }, () => Client.connect(srv.port)));
    const ids = clients.map(() => makeIdentity(uid('flood')));
    const acked = [];
    let killed = false;
    const waits = clients.map(async (c, i) => {
        c.send({ type: 'register', userId: ids[i].userId, publicKey: ids[i].publicKey,
                 signature: signRegister(ids[i], c.hello.nonce) });
        try {
            const m = await c.recv(() => true, scaled(5000));
            if (m.type === 'registered' && !killed) {
                acked.push(m.userId);
                if (acked.length === n / 3) {
                    killed = true;
                    srv.proc.kill('SIGKILL');
                }
            }
        } catch {
            // closed by the kill: not acknowledged
        }
    });
    await Promise.all(waits);
    await srv.exited;
    assert.ok(acked.length >= n / 3, `only ${acked.length} acknowledged before the kill`);
    const again = await startServer({ dataDir: srv.dataDir });
    for (const id of acked) await assertBound(again.port, id);
});

test('a full disk fails registrations with unavailable; nothing acknowledged is lost',
     async () => {
         const dir = tempDir();
         const first = await startServer({ dataDir: dir });
         await first.stop();
         // Room for a few commits only: the WAL grows by a page or two per commit.
         const limit = 96 * 1024;
         const args = ['--host', '127.0.0.1', '--port', '0', '--data-dir', dir,
                       '--log-format', 'json'];
         const proc = spawn('prlimit', [`--fsize=${limit}:${limit}`, '--', BIN, ...args],
                            { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
         const srv = new Server(proc, args);
         started.push(srv);
         const line = await srv.waitLog((l) => l.msg === 'listening', scaled(10000), 'listening');
         const port = line.port;
         const acked = [];
         let unavailable = 0;
         for (let i = 0; i < 400 && unavailable < 3; i++) {
             const c = await Client.connect(port);
             const me = makeIdentity(uid('full'));
             c.send({ type: 'register', userId: me.userId, publicKey: me.publicKey,
                      signature: signRegister(me, c.hello.nonce) });
             const m = await c.recv();
             if (m.type === 'registered') acked.push(m.userId);
             else {
                 assert.equal(m.code, 'unavailable', JSON.stringify(m));
                 unavailable += 1;
             }
             c.terminate();
         }
         assert.ok(unavailable >= 1, `the file-size limit never bit (${acked.length} bound)`);
         // Still serving: ping, and a known key re-registers without a write.
         const p = await Client.connect(port);
         assert.equal((await p.ping()).type, 'pong');
         p.terminate();
         assert.equal(srv.running, true);
         srv.proc.kill('SIGKILL');
         await srv.exited;
         const again = await startServer({ dataDir: dir });
         for (const id of acked) await assertBound(again.port, id);
     });
