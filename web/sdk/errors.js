// Volli SDK errors. Every failure the SDK reports is a VolliError whose `code` is either the
// server's wire code ("peer_offline", "key_mismatch", ...) or one of the SDK's own codes
// listed in docs/sdk.md ("unreachable", "timeout", "not_connected", "closed", "canceled",
// "rejected", "media", "unsupported", "busy", and for the post-quantum session "pq_unavailable",
// "server_key_mismatch", "server_key_unavailable", "bad_server_signature", "bad_server_reply",
// "pq_violation"). Applications match on `code`, never on `message`.

export class VolliError extends Error {
    /**
     * @param {string} code  wire code or SDK code
     * @param {string} message  human-readable text
     * @param {object} [extra]  copied onto the error (e.g. `to`, `reason`, `cause`)
     */
    constructor(code, message, extra = {}) {
        super(message || code, extra.cause ? { cause: extra.cause } : undefined);
        this.name = 'VolliError';
        this.code = code;
        for (const [k, v] of Object.entries(extra)) {
            if (k !== 'cause') this[k] = v;
        }
    }
}

/** Marks a promise as handled so an unawaited rejection never reaches the console. */
export function quiet(promise) {
    promise.catch(() => {});
    return promise;
}
