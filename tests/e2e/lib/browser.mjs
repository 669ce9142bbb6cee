// Browser helpers for the e2e tests: Debian's Chromium through playwright-core, pages that
// load the SDK from a running volli-signal, console-error collection and artifacts.
// Owns the browsers it launches (closeAll() in after()); it never touches other processes.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { scaled } from '../../integration/lib/util.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const HARNESS_JS = fs.readFileSync(path.join(here, 'harness.js'), 'utf8');

export const CHROMIUM = process.env.VOLLI_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
    '--disable-gpu', '--disable-quic', '--allow-loopback-in-peer-connection',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run',
];

/** Where screenshots and other artifacts go: $VOLLI_BUILD_DIR/e2e-artifacts (or build/). */
export const ARTIFACTS = path.resolve(process.env.VOLLI_BUILD_DIR || 'build', 'e2e-artifacts');

const browsers = new Set();

export async function launch() {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS,
                                            timeout: scaled(30000) });
    browsers.add(browser);
    return browser;
}

export async function closeAll() {
    for (const b of [...browsers]) {
        browsers.delete(b);
        await b.close().catch(() => {});
    }
}

/**
 * A new context and page with camera/microphone granted for origin, collecting console
 * errors and uncaught page errors into page.problems. localNetwork: also grant Local Network
 * Access (only for pages Playwright itself serves; real pages from the server need none).
 */
export async function newPage(browser, origin, { viewport = { width: 1280, height: 800 },
                                                 localNetwork = false } = {}) {
    const context = await browser.newContext({ viewport });
    const perms = ['camera', 'microphone'];
    if (localNetwork) perms.push('local-network-access');
    await context.grantPermissions(perms, { origin });
    const page = await context.newPage();
    page.problems = [];
    page.on('console', (msg) => {
        if (msg.type() === 'error') page.problems.push(`console.error: ${msg.text()}`);
    });
    page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
    page.setDefaultTimeout(scaled(15000));
    return page;
}

/**
 * Opens a blank page on the server's origin (served by Playwright, so nothing test-only
 * ships in the binary) that imports the SDK from the server and exposes window.t.
 */
export async function openHarness(browser, port) {
    const origin = `http://127.0.0.1:${port}`;
    // A page fulfilled by Playwright has no network address of its own, so Chromium's Local
    // Network Access checks would block its WebSocket to 127.0.0.1 unless granted.
    const page = await newPage(browser, origin, { localNetwork: true });
    await page.context().route(`${origin}/__e2e/harness.html`, (route) => route.fulfill({
        contentType: 'text/html; charset=utf-8',
        body: '<!doctype html><meta charset="utf-8"><title>e2e</title>' +
              '<script type="module" src="/__e2e/harness.js"></script>',
    }));
    await page.context().route(`${origin}/__e2e/harness.js`, (route) => route.fulfill({
        contentType: 'text/javascript', body: HARNESS_JS,
    }));
    await page.goto(`${origin}/__e2e/harness.html`);
    await page.waitForFunction(() => window.harnessReady === true);
    return page;
}

/** Chromium's own console error for a refused WebSocket (not the page's doing). */
export const REFUSED_WEBSOCKET =
    /^console\.error: WebSocket connection to '[^']*' failed: .*ERR_CONNECTION_REFUSED/;

/** Fails with the page's collected console errors, if any, except those matching allow. */
export function assertNoProblems(page, what, { allow = [] } = {}) {
    const left = page.problems.filter((p) => !allow.some((re) => re.test(p)));
    if (left.length) {
        throw new Error(`${what}: console errors or page errors:\n${left.join('\n')}`);
    }
}

/** A TCP port that was free a moment ago (for a server that must restart on the same port). */
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

/** Saves a full-page screenshot under ARTIFACTS; returns its path. */
export async function screenshot(page, name) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}
