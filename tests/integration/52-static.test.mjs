// Tier 52: the browser SDK and demo files: built into the binary (served at /sdk/ and /),
// or served from --web-dir; MIME types, ETag/304, HEAD, --demo false, and no way out of web/.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { httpGet } from './lib/http.mjs';
import { startServer, stopAll, tempDir } from './lib/server.mjs';
import { scaled, withTimeout } from './lib/util.mjs';

after(async () => {
    await stopAll();
});

function head(port, p) {
    return withTimeout(new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: p, method: 'HEAD', agent: false },
                                 (res) => {
                                     res.resume();
                                     res.on('end', () => resolve({ status: res.statusCode,
                                                                   headers: res.headers }));
                                 });
        req.on('error', reject);
        req.end();
    }), scaled(3000), `HEAD ${p}`);
}

function makeWebDir() {
    const dir = tempDir('volli-web-');
    fs.mkdirSync(path.join(dir, 'sdk'));
    fs.mkdirSync(path.join(dir, 'demo', 'img'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'sdk', 'volli.js'), 'export const marker = "sdk-7f3a";\n');
    fs.writeFileSync(path.join(dir, 'demo', 'index.html'), '<!doctype html><p>demo-91c2</p>\n');
    fs.writeFileSync(path.join(dir, 'demo', 'style.css'), 'p { color: red }\n');
    fs.writeFileSync(path.join(dir, 'demo', 'img', 'logo.svg'), '<svg/>');
    fs.writeFileSync(path.join(dir, 'demo', '.secret'), 'hidden');
    fs.writeFileSync(path.join(dir, 'outside.txt'), 'outside');
    fs.symlinkSync('/etc/hostname', path.join(dir, 'demo', 'escape.txt'));
    fs.symlinkSync(path.join(dir, 'outside.txt'), path.join(dir, 'demo', 'out.txt'));
    return dir;
}

describe('served from --web-dir', () => {
    test('files, MIME types, ETag and 304, HEAD', async () => {
        const dir = makeWebDir();
        const srv = await startServer({ args: ['--web-dir', dir] });
        const sdk = await httpGet(srv.port, '/sdk/volli.js');
        assert.equal(sdk.status, 200);
        assert.equal(sdk.headers['content-type'], 'text/javascript; charset=utf-8');
        assert.equal(sdk.body, 'export const marker = "sdk-7f3a";\n');
        assert.equal(sdk.headers['x-content-type-options'], 'nosniff');
        const etag = sdk.headers.etag;
        assert.match(etag, /^"[0-9a-f]{16}"$/);
        const again = await httpGet(srv.port, '/sdk/volli.js', { headers: { 'If-None-Match': etag } });
        assert.equal(again.status, 304);
        assert.equal(again.body, '');
        const other = await httpGet(srv.port, '/sdk/volli.js', { headers: { 'If-None-Match': '"0"' } });
        assert.equal(other.status, 200);

        const index = await httpGet(srv.port, '/');
        assert.equal(index.status, 200);
        assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
        assert.match(index.body, /demo-91c2/);
        assert.equal((await httpGet(srv.port, '/index.html?x=1')).body, index.body);
        assert.equal((await httpGet(srv.port, '/style.css')).headers['content-type'],
                     'text/css; charset=utf-8');
        assert.equal((await httpGet(srv.port, '/img/logo.svg')).headers['content-type'],
                     'image/svg+xml');

        const h = await head(srv.port, '/sdk/volli.js');
        assert.equal(h.status, 200);
        assert.equal(Number(h.headers['content-length']), sdk.body.length);
    });

    test('nothing outside web/sdk and web/demo, no hidden files, no directory listing',
         async () => {
             const dir = makeWebDir();
             const srv = await startServer({ args: ['--web-dir', dir] });
             for (const p of ['/.secret', '/escape.txt', '/out.txt', '/img', '/img/', '/sdk/',
                              '/sdk', '/%2e%2e/outside.txt', '/sdk/..%2fdemo/index.html',
                              '/nope.js', '/sdk/nope.js', '/rtc']) {
                 const r = await httpGet(srv.port, p);
                 assert.ok(r.status === 404 || (p === '/rtc' && r.status === 426),
                           `${p} answered ${r.status}: ${r.body}`);
                 assert.ok(!r.body.includes('outside') && !r.body.includes('hidden'), p);
             }
             // The raw ../ form, which an HTTP client would normalise, sent as is.
             const net = await import('node:net');
             const raw = await new Promise((resolve, reject) => {
                 const s = net.connect(srv.port, '127.0.0.1', () => {
                     s.write('GET /../outside.txt HTTP/1.1\r\nHost: x\r\n\r\n');
                 });
                 let data = '';
                 s.on('data', (d) => { data += d; });
                 s.on('end', () => resolve(data));
                 s.on('error', reject);
             });
             assert.match(raw, /^HTTP\/1\.1 404 /);
         });

    test('--demo false keeps the SDK and turns the demo off', async () => {
        const dir = makeWebDir();
        const srv = await startServer({ args: ['--web-dir', dir, '--demo', 'false'] });
        assert.equal((await httpGet(srv.port, '/sdk/volli.js')).status, 200);
        assert.equal((await httpGet(srv.port, '/')).status, 426);
        assert.equal((await httpGet(srv.port, '/style.css')).status, 404);
        assert.equal((await httpGet(srv.port, '/healthz')).status, 200);
    });
});

describe('built into the binary', () => {
    test('every file under web/sdk and web/demo is served byte for byte', async () => {
        const srv = await startServer();
        const root = path.resolve('web');
        const files = [];
        for (const sub of ['sdk', 'demo']) {
            const walk = (d) => {
                for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                    const p = path.join(d, e.name);
                    if (e.isDirectory()) walk(p);
                    else if (!e.name.startsWith('.')) files.push(path.relative(root, p));
                }
            };
            if (fs.existsSync(path.join(root, sub))) walk(path.join(root, sub));
        }
        assert.ok(files.some((f) => f.startsWith('sdk/')), 'web/sdk has files');
        for (const f of files) {
            const url = f.startsWith('sdk/') ? `/${f}` : `/${f.slice('demo/'.length)}`;
            const r = await httpGet(srv.port, url);
            assert.equal(r.status, 200, `${url}: ${r.status}`);
            if (/\.(js|html|css|json|svg|txt)$/.test(f)) {
                assert.equal(r.body, fs.readFileSync(path.join(root, f), 'utf8'), url);
            }
        }
    });
});
