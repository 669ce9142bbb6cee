// Plain HTTP GETs against the server and a small Prometheus text-format parser.

import http from 'node:http';
import { scaled, withTimeout } from './util.mjs';

/** GET path; resolves with { status, headers, body }. */
export function httpGet(port, path, { headers = {}, ms = scaled(3000) } = {}) {
    return withTimeout(new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers,
                                   agent: false }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => {
                body += d;
            });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
    }), ms, `GET ${path}`);
}

function parseLabels(s) {
    const labels = {};
    const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
    let m;
    while (re.lastIndex < s.length && (m = re.exec(s)) !== null) {
        labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    if (re.lastIndex !== s.length && s.trim() !== '') {
        throw new Error(`unparsable label set: {${s}}`);
    }
    return labels;
}

/**
 * Parses Prometheus text exposition format 0.0.4. Returns { samples: [{name, labels, value}],
 * types: {family: type} }. Throws on a line that is not a comment, blank or a valid sample.
 */
export function parseMetrics(text) {
    const samples = [];
    const types = {};
    for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        if (line.startsWith('#')) {
            const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/.exec(line);
            if (t) types[t[1]] = t[2];
            continue;
        }
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/.exec(line);
        if (!m) throw new Error(`bad metrics line: ${JSON.stringify(line)}`);
        const v = m[3];
        const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
        if (Number.isNaN(value) && v !== 'NaN') {
            throw new Error(`bad sample value: ${JSON.stringify(line)}`);
        }
        samples.push({ name: m[1], labels: parseLabels(m[2] ?? ''), value });
    }
    return { samples, types };
}

/** Samples named `name` whose labels include every pair in `labels`. */
export function findSamples(parsed, name, labels = {}) {
    return parsed.samples.filter((s) => s.name === name &&
        Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample with exactly these labels, or undefined if absent. */
export function sampleValue(parsed, name, labels = {}) {
    const hits = parsed.samples.filter((s) => s.name === name &&
        Object.keys(s.labels).length === Object.keys(labels).length &&
        Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (hits.length > 1) throw new Error(`duplicate sample ${name} ${JSON.stringify(labels)}`);
    return hits.length ? hits[0].value : undefined;
}

export async function fetchMetrics(port) {
    const r = await httpGet(port, '/metrics');
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    return { ...parseMetrics(r.body), response: r };
}
