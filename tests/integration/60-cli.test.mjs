// Tier 60: command line, environment and config file: --help, --version, exit codes for bad
// values, port in use, unwritable data dir, precedence flags > env > config > defaults.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Client, closeAllClients, connectAs, makeIdentity } from './lib/client.mjs';
import { runCli, startServer, stopAll, tempDir } from './lib/server.mjs';
import { scaled, uid, withTimeout } from './lib/util.mjs';

after(async () => {
    closeAllClients();
    await stopAll();
});

/** The flags every run needs so that only the value under test can be wrong. */
function base(dir = tempDir()) {
    return ['--host', '127.0.0.1', '--port', '0', '--data-dir', dir, '--log-format', 'json'];
}

function writeConfig(obj) {
    const file = path.join(tempDir(), 'config.json');
    fs.writeFileSync(file, typeof obj === 'string' ? obj : JSON.stringify(obj));
    return file;
}

/** Holds a listening TCP port on 127.0.0.1 until close() is called. */
async function holdPort() {
    const s = net.createServer();
    await withTimeout(new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
    }), 3000, 'listen');
    return { port: s.address().port, close: () => new Promise((r) => s.close(r)) };
}

/** Sends a text message of exactly `bytes` bytes; resolves with 'ok' or 'too_large'. */
async function probeSize(port, bytes) {
    const c = await connectAs(port, uid('size'));
    const msg = { type: 'offer', to: c.userId, offer: '' };
    msg.offer = 'p'.repeat(bytes - JSON.stringify(msg).length);
    c.send(msg);
    const m = await c.recv((x) => x.type === 'offer' || x.type === 'error', scaled(3000));
    c.terminate();
    if (m.type === 'offer') return 'ok';
    assert.equal(m.code, 'too_large', JSON.stringify(m));
    return 'too_large';
}

describe('cli', () => {
    test('--help prints usage on stdout and exits 0', async () => {
        const r = await runCli(['--help']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /usage/i);
        for (const flag of ['--port', '--host', '--data-dir', '--config', '--log-level',
                            '--ping-interval', '--max-frame']) {
            assert.ok(r.stdout.includes(flag), `--help does not mention ${flag}`);
        }
    });

    test('--version prints "volli-signal <version>" and exits 0', async () => {
        const r = await runCli(['--version']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout.trim(), /^volli-signal \S+$/);
    });

    const badFlags = [
        [['--bogus'], /bogus/],
        [['--port', '70000'], /port/],
        [['--port', 'abc'], /port/],
        [['--port', '-1'], /port/],
        [['--port', '80x'], /port/],
        [['--log-level', 'loud'], /log[-_]level/],
        [['--log-format', 'xml'], /log[-_]format/],
        [['--ping-interval', 'soon'], /ping[-_]interval/],
        [['--ping-interval', '-1'], /ping[-_]interval/],
        [['--max-frame', 'big'], /max[-_]frame/],
        [['--port'], /port/],
    ];
    for (const [flags, names] of badFlags) {
        test(`${flags.join(' ')} exits 2 naming the flag`, async () => {
            // The bad flag goes last so it overrides the valid one from base().
            const r = await runCli([...base(), ...flags]);
            assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
            assert.match(r.stderr, names);
        });
    }

    // Each file also sets host and port (unless they are the key under test), so that a
    // server that wrongly accepts the file listens on 127.0.0.1 only, not on 0.0.0.0:7880.
    const local = { host: '127.0.0.1', port: 0 };
    const badConfigs = [
        ['not JSON', '{"port": 0,', /config|json/i],
        ['not an object', '[1, 2]', /config|object/i],
        ['an unknown key', { ...local, bogus_key: 1 }, /bogus_key/],
        ['a string port', { host: '127.0.0.1', port: 'abc' }, /port/],
        ['a numeric-string port', { host: '127.0.0.1', port: '0' }, /port/],
        ['a port out of range', { host: '127.0.0.1', port: 70000 }, /port/],
        ['a numeric log level', { ...local, log_level: 3 }, /log[-_]level/],
        ['an unknown log level', { ...local, log_level: 'loud' }, /log[-_]level/],
        // Sizes may be written as strings with a suffix ("64k"), so only a value that is
        // no size in any spelling counts as wrongly typed here.
        ['a boolean max_frame', { ...local, max_frame: true }, /max[-_]frame/],
        ['a non-size max_frame', { ...local, max_frame: 'big' }, /max[-_]frame/],
        ['a string ping_interval', { ...local, ping_interval: '30' }, /ping[-_]interval/],
        ['a numeric data_dir', { ...local, data_dir: 5 }, /data[-_]dir/],
        ['a boolean host', { host: true, port: 0 }, /host/],
    ];
    for (const [what, content, names] of badConfigs) {
        test(`a config file with ${what} exits 2 naming it`, async () => {
            const file = writeConfig(content);
            const args = ['--config', file, '--log-format', 'json'];
            if (!(typeof content === 'object' && 'data_dir' in content)) {
                args.push('--data-dir', tempDir());
            }
            const r = await runCli(args);
            assert.equal(r.code, 2, `exit ${r.code}; stderr: ${r.stderr}`);
            assert.match(r.stderr, names);
        });
    }

    test('a port in use exits 1 with "in use"', async () => {
        const held = await holdPort();
        try {
            const dir = tempDir();
            const r = await runCli(['--host', '127.0.0.1', '--port', String(held.port),
                                    '--data-dir', dir, '--log-format', 'json']);
            assert.equal(r.code, 1, `exit ${r.code}; stderr: ${r.stderr}`);
            assert.match(r.stderr, /in use/);
        } finally {
            await held.close();
        }
    });

    test('a second server on the same data dir exits 1 naming it', async () => {
        const first = await startServer();
        const r = await runCli(['--host', '127.0.0.1', '--port', '0', '--data-dir',
                                first.dataDir, '--log-format', 'json']);
        assert.equal(r.code, 1, `exit ${r.code}; stderr: ${r.stderr}`);
        assert.ok(r.stderr.includes(first.dataDir), r.stderr);
        assert.match(r.stderr, /in use by another volli-signal process/);
    });

    test('an unwritable data dir exits 1 naming the directory', async () => {
        const file = path.join(tempDir(), 'plain-file');
        fs.writeFileSync(file, 'not a directory');
        const dir = path.join(file, 'sub');
        const r = await runCli(['--host', '127.0.0.1', '--port', '0', '--data-dir', dir,
                                '--log-format', 'json']);
        assert.equal(r.code, 1, `exit ${r.code}; stderr: ${r.stderr}`);
        assert.ok(r.stderr.includes(dir), `stderr does not name ${dir}: ${r.stderr}`);
    });

    test('a config file alone configures the server', async () => {
        const dir = tempDir();
        const file = writeConfig({ host: '127.0.0.1', port: 0, data_dir: dir, log_level: 'info',
                                   log_format: 'json', ping_interval: 30, max_frame: 65536 });
        const s = await startServer({ raw: true, args: ['--config', file] });
        const line = s.logs.find((l) => l.msg === 'listening');
        assert.equal(line.host, '127.0.0.1');
        assert.equal(line.level, 'info');
        assert.equal(typeof line.ts, 'string');
        const c = await connectAs(s.port, uid('cfg'));
        await c.close();
        assert.ok(fs.readdirSync(dir).length > 0, 'nothing written to the configured data_dir');
        assert.equal((await s.stop()).code, 0);
    });

    test('the environment alone configures the server', async () => {
        const dir = tempDir();
        const s = await startServer({
            raw: true,
            args: [],
            env: { VOLLI_HOST: '127.0.0.1', VOLLI_PORT: '0', VOLLI_DATA_DIR: dir,
                   VOLLI_LOG_FORMAT: 'json', LOG_LEVEL: 'info', VOLLI_PING_INTERVAL: '30',
                   VOLLI_MAX_FRAME: '65536' },
        });
        assert.equal(s.logs.find((l) => l.msg === 'listening').host, '127.0.0.1');
        const c = await connectAs(s.port, uid('env'));
        await c.close();
        assert.ok(fs.readdirSync(dir).length > 0, 'nothing written to VOLLI_DATA_DIR');
        assert.equal((await s.stop()).code, 0);
    });

    test('max frame precedence: flags > environment > config file', async () => {
        const file = writeConfig({ max_frame: 1024 });
        const common = ['--config', file, ...base()];

        const s1 = await startServer({ raw: true, args: common });
        assert.equal(await probeSize(s1.port, 1000), 'ok');
        assert.equal(await probeSize(s1.port, 1500), 'too_large', 'config max_frame ignored');
        await s1.stop();

        const env = { VOLLI_MAX_FRAME: '2048' };
        const s2 = await startServer({ raw: true, args: common, env });
        assert.equal(await probeSize(s2.port, 1500), 'ok', 'env should beat the config file');
        assert.equal(await probeSize(s2.port, 3000), 'too_large', 'VOLLI_MAX_FRAME ignored');
        await s2.stop();

        const s3 = await startServer({ raw: true, args: [...common, '--max-frame', '4096'], env });
        assert.equal(await probeSize(s3.port, 3000), 'ok', 'the flag should beat env');
        assert.equal(await probeSize(s3.port, 5000), 'too_large', '--max-frame ignored');
        await s3.stop();
    });

    test('log level precedence: flags > LOG_LEVEL > config file', async () => {
        // "listening" is an info line, so it only shows when the winning level allows info.
        const file = writeConfig({ log_level: 'error' });
        const s1 = await startServer({ raw: true, args: ['--config', file, ...base()],
                                       env: { LOG_LEVEL: 'info' } });
        await s1.stop();
        const s2 = await startServer({ raw: true, args: [...base(), '--log-level', 'info'],
                                       env: { LOG_LEVEL: 'error' } });
        await s2.stop();
        // And a level that hides info really hides it: no info line at all.
        const held = await holdPort();
        const port = held.port;
        await held.close();
        const s3 = await startServer({ raw: true, wait: false,
                                       args: ['--host', '127.0.0.1', '--port', String(port),
                                              '--data-dir', tempDir(), '--log-format', 'json',
                                              '--log-level', 'warn'] });
        const deadline = Date.now() + scaled(5000);
        let c;
        while (!c) {
            try {
                c = await Client.connect(port, { timeout: scaled(1000) });
            } catch (err) {
                assert.ok(s3.running, `server exited: ${s3.tail()}`);
                assert.ok(Date.now() < deadline, `no server on port ${port}: ${err.message}`);
                await new Promise((r) => setTimeout(r, 50));
            }
        }
        await c.registerOk(makeIdentity(uid('quiet')));
        await c.close();
        assert.equal((await s3.stop()).code, 0);
        const chatty = s3.logs.filter((l) => l.level === 'info' || l.level === 'debug');
        assert.deepEqual(chatty, [], 'info or debug lines at --log-level warn');
    });

    test('port precedence: the flag beats VOLLI_PORT, which beats the config file', async () => {
        const held = await holdPort();
        try {
            // The held (busy) port in env must lose to --port 0.
            const s1 = await startServer({ raw: true, args: base(),
                                           env: { VOLLI_PORT: String(held.port) } });
            assert.notEqual(s1.port, held.port);
            await s1.stop();
            // The busy port in the config file must lose to VOLLI_PORT=0.
            const file = writeConfig({ port: held.port });
            const s2 = await startServer({
                raw: true,
                args: ['--config', file, '--host', '127.0.0.1', '--data-dir', tempDir(),
                       '--log-format', 'json'],
                env: { VOLLI_PORT: '0' },
            });
            await s2.stop();
        } finally {
            await held.close();
        }
    });

    test('defaults: port 7880 and data dir ./data', async (t) => {
        const probe = net.createServer();
        const free = await new Promise((resolve) => {
            probe.once('error', () => resolve(false));
            probe.listen(7880, '127.0.0.1', () => probe.close(() => resolve(true)));
        });
        if (!free) {
            t.skip('port 7880 is busy on this machine');
            return;
        }
        const cwd = tempDir();
        const s = await startServer({ raw: true, cwd,
                                      args: ['--host', '127.0.0.1', '--log-format', 'json'] });
        assert.equal(s.port, 7880);
        const c = await connectAs(s.port, uid('def'));
        await c.close();
        assert.equal((await s.stop()).code, 0);
        const data = path.join(cwd, 'data');
        assert.ok(fs.statSync(data).isDirectory(), './data was not created');
        assert.ok(fs.readdirSync(data).length > 0, './data is empty after a register');
    });

    test('--ping-interval accepts decimals', async () => {
        const s = await startServer({ args: ['--ping-interval', '0.25'] });
        const c = await Client.connect(s.port);
        await c.close();
        await s.stop();
    });
});
