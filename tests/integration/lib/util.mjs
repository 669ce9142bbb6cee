// Shared timing and naming helpers for the integration suite.
// Every wait in the suite goes through these so that the sanitized build (about 3x slower)
// gets proportionally longer deadlines and no wait is ever unbounded.

import crypto from 'node:crypto';

const sanitizedFlag = String(process.env.VOLLI_SANITIZED || '0').toLowerCase();
export const SANITIZED = ['1', 'on', 'true', 'yes'].includes(sanitizedFlag);
export const SLOW = SANITIZED ? 3 : 1;

/** Scales a deadline in milliseconds for the sanitized build. */
export function scaled(ms) {
    return Math.round(ms * SLOW);
}

export function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` in the message if `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what) {
    let timer;
    const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

let counter = 0;
/**
 * A user id that is unique across test files and runs: a lower-case prefix, the pid, a
 * per-process counter and random hex. Only characters from [a-z0-9-] so it is always valid.
 */
export function uid(prefix = 'u') {
    counter += 1;
    const rnd = crypto.randomBytes(4).toString('hex');
    return `${prefix}-${process.pid.toString(36)}-${counter}-${rnd}`;
}

/** The server's user id folding: ASCII upper case to lower case, nothing else. */
export function foldAscii(s) {
    return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Runs fn over items with at most `limit` calls in flight; returns results in input order. */
export async function mapLimit(items, limit, fn) {
    const results = new Array(items.length);
    let next = 0;
    async function worker() {
        while (next < items.length) {
            const i = next++;
            results[i] = await fn(items[i], i);
        }
    }
    const workers = [];
    for (let w = 0; w < Math.min(limit, items.length); w++) workers.push(worker());
    await Promise.all(workers);
    return results;
}

/** Percentile (0..100) of an array of numbers by the nearest-rank method. */
export function percentile(values, p) {
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[rank - 1];
}
