// Writes ML-KEM-768 test vectors from @noble/post-quantum (an independent implementation of
// FIPS 203) for tests/kat/mlkem_check.c, one record per seed:
//
//   seed <d||z>  ek <ek>  dk <dk>  msg <m>  ct <c>  ss <K>     keygen and encapsulation
//   ct_bad <c'>  ss_bad <noble decapsulate(c', dk)>  j_bad <SHAKE256(z||c', 32)>
//   ek_bad <ek with one coefficient >= q>   (noble refuses it: the section 7.2 modulus check)
//   dk_bad <dk with a flipped bit in ek or H(ek)>   (noble refuses it: the 7.3 hash check)
//   end
//
// one "name hex" pair per line. j_bad is computed here with @noble/hashes, apart from both
// ML-KEM implementations. Usage:
//   node tests/kat/mlkem_vectors.mjs --random N    N seeds from crypto.randomBytes
//   node tests/kat/mlkem_vectors.mjs --fixed N     N reproducible seeds (SHAKE256 of a label)
// A check that noble itself fails (e.g. it accepts a bad key) aborts with exit status 1.

import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { shake256 } from '@noble/hashes/sha3.js';

const Q = 3329;
const hex = (b) => Buffer.from(b).toString('hex');

/** Reproducible bytes for the fixed set: SHAKE256("volli-mlkem768-kat" || label || i). */
export function fixedBytes(label, i, len) {
    const input = Buffer.from(`volli-mlkem768-kat/${label}/${i}`);
    return shake256(input, { dkLen: len });
}

/** Sets the 12-bit coefficient `index` of the t-hat part of ek (ByteEncode_12 bit order). */
function setCoefficient(ek, index, value) {
    const bit = 12 * index;
    for (let b = 0; b < 12; b++) {
        const pos = bit + b;
        const byte = pos >> 3;
        const mask = 1 << (pos & 7);
        if ((value >> b) & 1) ek[byte] |= mask;
        else ek[byte] &= ~mask;
    }
}

function rejects(fn) {
    try {
        fn();
        return false;
    } catch {
        return true;
    }
}

/** One record; `rand(label, len)` supplies every random choice so fixed runs reproduce. */
export function makeRecord(rand) {
    const seed = rand('seed', 64);
    const msg = rand('msg', 32);
    const { publicKey: ek, secretKey: dk } = ml_kem768.keygen(seed);
    const { cipherText: ct, sharedSecret: ss } = ml_kem768.encapsulate(ek, msg);
    if (hex(ml_kem768.decapsulate(ct, dk)) !== hex(ss)) throw new Error('noble round trip failed');

    const pick = rand('pick', 8);
    const ctBad = Uint8Array.from(ct);
    const flipAt = ((pick[0] << 8) | pick[1]) % ct.length;
    ctBad[flipAt] ^= 1 << (pick[2] & 7);
    const ssBad = ml_kem768.decapsulate(ctBad, dk);
    const z = dk.subarray(dk.length - 32);
    const jBad = shake256(Buffer.concat([z, ctBad]), { dkLen: 32 });
    if (hex(ssBad) !== hex(jBad)) throw new Error('noble implicit rejection differs from J(z||c)');

    const ekBad = Uint8Array.from(ek);
    setCoefficient(ekBad, ((pick[3] << 8) | pick[4]) % 768, Q + (((pick[5] << 8) | pick[6]) % (4096 - Q)));
    if (!rejects(() => ml_kem768.encapsulate(ekBad, msg))) throw new Error('noble accepted ek_bad');

    // Flip one bit in the ek copy or the H(ek) inside dk (bytes 1152 .. 2368).
    const dkBad = Uint8Array.from(dk);
    dkBad[1152 + (((pick[7] << 8) | pick[0]) % (1184 + 32))] ^= 1 << (pick[1] & 7);
    if (!rejects(() => ml_kem768.decapsulate(ct, dkBad))) throw new Error('noble accepted dk_bad');

    return [
        ['seed', seed], ['ek', ek], ['dk', dk], ['msg', msg], ['ct', ct], ['ss', ss],
        ['ct_bad', ctBad], ['ss_bad', ssBad], ['j_bad', jBad], ['ek_bad', ekBad],
        ['dk_bad', dkBad],
    ].map(([k, v]) => `${k} ${hex(v)}\n`).join('') + 'end\n';
}

function main(argv) {
    const mode = argv[0];
    const count = Number.parseInt(argv[1], 10);
    if ((mode !== '--random' && mode !== '--fixed') || !(count > 0)) {
        process.stderr.write('usage: mlkem_vectors.mjs --random N | --fixed N\n');
        process.exit(2);
    }
    let out = '';
    for (let i = 0; i < count; i++) {
        const rand = mode === '--random' ? (_label, len) => randomBytes(len)
            : (label, len) => fixedBytes(label, i, len);
        out += makeRecord(rand);
    }
    process.stdout.write(out);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
    try {
        main(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`mlkem_vectors: ${e.message}\n`);
        process.exit(1);
    }
}
