// Tier 95: ML-KEM-768 (src/crypto/mlkem.c) against @noble/post-quantum, an independent FIPS 203
// implementation. tests/kat/mlkem_vectors.mjs writes noble's keys, ciphertexts, shared secrets,
// implicit-rejection secrets and malformed keys; the C checker ($VOLLI_BUILD_DIR/tests/
// mlkem_check, built from tests/kat/mlkem_check.c) must reproduce or refuse every one of them.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { sha3_256, sha3_512 } from '@noble/hashes/sha3.js';
import { fixedBytes, makeRecord } from '../kat/mlkem_vectors.mjs';

const BUILD = process.env.VOLLI_BUILD_DIR || 'build';
const CHECKER = path.resolve(BUILD, 'tests', 'mlkem_check');
const GENERATOR = path.resolve('tests', 'kat', 'mlkem_vectors.mjs');
const SANITIZED = process.env.VOLLI_SANITIZED === '1' || process.env.VOLLI_SANITIZED === 'true';
const RANDOM_SEEDS = 200;
const FIXED_SEEDS = 32;

/** Runs the checker with `input` on stdin; resolves with { code, stdout, stderr }. */
function runChecker(input) {
    return new Promise((resolve, reject) => {
        const child = spawn(CHECKER, [], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => { stdout += d; });
        child.stderr.on('data', (d) => { stderr += d; });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin.on('error', () => {}); // the checker may stop reading at the first failure
        child.stdin.end(input);
    });
}

/** Runs the vector generator as CI does (a separate process); resolves with its stdout. */
function generate(...args) {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [GENERATOR, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => { stdout += d; });
        child.stderr.on('data', (d) => { stderr += d; });
        child.on('error', reject);
        child.on('close', (code) => {
            if (code === 0) resolve(stdout);
            else reject(new Error(`generator exited ${code}: ${stderr}`));
        });
    });
}

describe('ML-KEM-768 against @noble/post-quantum', { timeout: SANITIZED ? 600_000 : 200_000 }, () => {
    test('the checker binary is built', () => {
        assert.ok(fs.existsSync(CHECKER),
            `${CHECKER} missing: build the mlkem_check target (tests/kat/mlkem_check.c)`);
    });

    test('noble implements final FIPS 203 (G(d || k) in keygen), not round-3 Kyber', () => {
        const seed = fixedBytes('fips203', 0, 64);
        const d = seed.subarray(0, 32);
        const { publicKey: ek, secretKey: dk } = ml_kem768.keygen(seed);
        const rhoFinal = sha3_512(Uint8Array.from([...d, 3])).subarray(0, 32);
        const rhoRound3 = sha3_512(d).subarray(0, 32);
        assert.deepEqual(ek.subarray(1152), rhoFinal);
        assert.notDeepEqual(ek.subarray(1152), rhoRound3);
        assert.deepEqual(dk.subarray(1152, 2336), ek);
        assert.deepEqual(dk.subarray(2336, 2368), sha3_256(ek));
        assert.deepEqual(dk.subarray(2368), seed.subarray(32));
    });

    test(`${RANDOM_SEEDS} random seeds give byte-identical results`, async () => {
        const { code, stdout, stderr } = await runChecker(await generate('--random', String(RANDOM_SEEDS)));
        assert.equal(code, 0, stderr);
        assert.equal(stdout.trim(), `ok ${RANDOM_SEEDS}`);
    });

    test(`${FIXED_SEEDS} fixed seeds give byte-identical results`, async () => {
        const { code, stdout, stderr } = await runChecker(await generate('--fixed', String(FIXED_SEEDS)));
        assert.equal(code, 0, stderr);
        assert.equal(stdout.trim(), `ok ${FIXED_SEEDS}`);
    });

    test('the checker notices a wrong vector', async () => {
        const record = makeRecord((label, len) => fixedBytes(`tamper-${label}`, 0, len));
        for (const field of ['ek', 'dk', 'ct', 'ss', 'ss_bad', 'j_bad']) {
            const lines = record.split('\n').map((line) => {
                if (!line.startsWith(`${field} `)) return line;
                const last = line.at(-1) === '0' ? '1' : '0';
                return line.slice(0, -1) + last;
            });
            const { code, stderr } = await runChecker(lines.join('\n'));
            assert.equal(code, 1, `tampered ${field} not detected`);
            assert.match(stderr, /record 1:/);
        }
        // A "bad" key that is actually fine must be reported as accepted.
        const good = record.replace(/^ek_bad .*$/m, record.match(/^ek .*$/m)[0].replace('ek ', 'ek_bad '));
        const res = await runChecker(good);
        assert.equal(res.code, 1);
        assert.match(res.stderr, /ek_bad/);
        assert.equal((await runChecker('seed 00\nend\n')).code, 2);
        assert.equal((await runChecker('')).code, 2);
    });
});
