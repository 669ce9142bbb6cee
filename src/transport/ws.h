/* ws.h: RFC 6455 framing, pure and I/O-free; used by the server and, compiled into it, by the
 * client library (lib/), which is why it allocates with plain malloc and reports VS_ENOMEM
 * instead of aborting (the server aborts on that error itself, see conn.c).
 *
 * Owns: the per-connection frame parser (header decoding, unmasking, reassembly of fragmented
 * messages, UTF-8 validation of text, close-frame validation) in server mode (frames from a
 * client, masked) or client mode (frames from a server, unmasked), the unmasked and masked
 * frame header and close payload encoders, the handshake's Sec-WebSocket-Accept computation
 * and the UTF-8 validator.
 *
 * Must never: do I/O, log anything (payloads least of all), abort, keep a pointer into a
 * caller's chunk after vs_ws_parse() returns, or hold heap memory while the connection is
 * idle. Frames
 * that arrive whole in one chunk are delivered straight from that chunk (unmasked in place);
 * only an unfinished tail is copied to the heap, and that copy is freed as soon as the frame or
 * message it belongs to is delivered or the parser fails. No extensions are supported
 * (permessage-deflate is never negotiated), so RSV bits are always a protocol error.
 */
#ifndef VS_TRANSPORT_WS_H
#define VS_TRANSPORT_WS_H

#include <stddef.h>
#include <stdint.h>

enum {
    VS_WS_OP_CONT = 0x0,
    VS_WS_OP_TEXT = 0x1,
    VS_WS_OP_BINARY = 0x2,
    VS_WS_OP_CLOSE = 0x8,
    VS_WS_OP_PING = 0x9,
    VS_WS_OP_PONG = 0xA
};

/* Close codes the parser reports through vs_ws_parser_close_code(); the others a server sends
 * (1000 normal, 1001 going away, 1008 policy, 1011 internal) are listed for the caller. */
enum {
    VS_WS_CLOSE_NORMAL = 1000,
    VS_WS_CLOSE_GOING_AWAY = 1001,
    VS_WS_CLOSE_PROTOCOL = 1002,
    VS_WS_CLOSE_NO_STATUS = 1005, /* received only: never sent on the wire */
    VS_WS_CLOSE_INVALID_DATA = 1007,
    VS_WS_CLOSE_POLICY = 1008,
    VS_WS_CLOSE_TOO_BIG = 1009,
    VS_WS_CLOSE_INTERNAL = 1011 /* also what the parser reports after running out of memory */
};

#define VS_WS_MAX_HEADER 10        /* longest server (unmasked) frame header */
#define VS_WS_MAX_HEADER_MASKED 14 /* longest client (masked) frame header */
#define VS_WS_MAX_CONTROL 125      /* longest control frame payload */
#define VS_WS_MAX_CLOSE_REASON 123
#define VS_WS_ACCEPT_LEN 28 /* Sec-WebSocket-Accept value, without the NUL */

/* Per-connection parser state. Embedded in the connection struct (64 bytes, no heap while
 * idle); the fields are private to ws.c. */
typedef struct vs_ws_parser {
    uint8_t *msg;       /* heap: data message being reassembled, or a data frame split
                           across chunks; NULL when none */
    uint8_t *ctl;       /* heap (VS_WS_MAX_CONTROL bytes): a control frame split across
                           chunks; NULL when none */
    uint32_t msg_len;   /* payload bytes in msg */
    uint32_t msg_cap;   /* bytes allocated at msg */
    uint32_t remaining; /* payload bytes of the current frame still to come */
    uint32_t max_message;
    uint8_t mask[4]; /* masking key, rotated so mask[0] applies to the next byte */
    uint8_t hdr[14]; /* a frame header split across chunks */
    uint8_t hdr_len;
    uint8_t state;
    uint8_t frame_op; /* opcode and FIN of the frame whose payload is being read */
    uint8_t frame_fin;
    uint8_t msg_op; /* TEXT or BINARY while a fragmented message is open, else 0 */
    uint8_t ctl_len;
    uint8_t utf8;        /* incremental UTF-8 validator state of a text message */
    uint8_t client;      /* 1: we are the client, frames arrive unmasked */
    uint16_t close_code; /* set when the parser failed */
} vs_ws_parser_t;

/* Callbacks; any of them may be NULL (the frame is then dropped). Every pointer they receive
 * is borrowed and valid only during the call. Returning non-zero stops parsing at once. */
typedef struct vs_ws_callbacks {
    /* A complete (possibly reassembled) data message; opcode is VS_WS_OP_TEXT or
       VS_WS_OP_BINARY. Text messages are already verified to be valid UTF-8. data is
       borrowed (never NULL, even when len is 0) and may be modified in place. */
    int (*on_message)(void *ud, int opcode, uint8_t *data, size_t len);
    int (*on_ping)(void *ud, const uint8_t *data, size_t len);
    int (*on_pong)(void *ud, const uint8_t *data, size_t len);
    /* code is 1005 when the close frame had no payload; reason borrowed, valid UTF-8, not
       NUL-terminated. Any message still being reassembled is discarded. */
    int (*on_close)(void *ud, uint16_t code, const uint8_t *reason, size_t len);
} vs_ws_callbacks_t;

/* Initializes p for a new connection on the server side (every frame must be masked); data
 * messages longer than max_message bytes (counted over all fragments) are refused with 1009.
 * max_message is capped at UINT32_MAX. p is borrowed. Never allocates. */
void vs_ws_parser_init(vs_ws_parser_t *p, size_t max_message);
/* The same for the client side of a connection: frames from the server arrive unmasked, and a
 * masked one is a protocol error (1002, RFC 6455 5.1). */
void vs_ws_parser_init_client(vs_ws_parser_t *p, size_t max_message);
/* Frees any heap p holds. p then refuses input (vs_ws_parse returns VS_ECLOSED) until it is
 * initialized again. Idempotent. */
void vs_ws_parser_deinit(vs_ws_parser_t *p);

/* Parses one chunk read from the socket and calls the callbacks (cb and ud borrowed) for every
 * complete control frame and data message in it, in order. data is borrowed and must be
 * writable for the duration of the call: payloads are unmasked in place and delivered from it.
 *
 * Returns 0 when all bytes were consumed (an unfinished tail is kept), or:
 * - the non-zero value a callback returned: parsing stopped at once, the rest of the chunk
 *   is dropped and later calls return VS_ECLOSED without calling anything;
 * - VS_EPROTO, VS_EUTF8 or VS_ETOOBIG on a protocol violation: no callback is called for the
 *   offending frame, vs_ws_parser_close_code() tells the close code to send (1002, 1007 or
 *   1009), the heap is released, and later calls return the same error;
 * - VS_ENOMEM when buffering a split frame or message needed memory that malloc refused: the
 *   parser is failed as above with close code 1011 (the caller decides whether to drop the
 *   connection or, like the server, abort).
 * After a close frame was delivered, later bytes (in this chunk or later ones) are ignored and
 * 0 is returned. */
int vs_ws_parse(vs_ws_parser_t *p, uint8_t *data, size_t len, const vs_ws_callbacks_t *cb,
                void *ud);
/* The close code to send after vs_ws_parse() failed with a protocol violation: 1002 protocol
 * error, 1007 invalid UTF-8 in a text message or close reason, 1009 message too big; 0 when
 * the parser has not failed. */
uint16_t vs_ws_parser_close_code(const vs_ws_parser_t *p);
/* Bytes of heap p holds right now (0 for an idle connection), for memory accounting. */
size_t vs_ws_parser_buffered(const vs_ws_parser_t *p);

/* Writes an unmasked, FIN-set server frame header for a payload of len bytes into out (at
 * least VS_WS_MAX_HEADER bytes, borrowed); returns the header length (2, 4 or 10). */
size_t vs_ws_frame_header(uint8_t *out, int opcode, size_t len);
/* Writes a masked, FIN-set client frame header with masking key mask (borrowed, 4 bytes) for
 * a payload of len bytes into out (at least VS_WS_MAX_HEADER_MASKED bytes, borrowed); returns
 * the header length (6, 8 or 14). The payload must then be masked with vs_ws_mask(). */
size_t vs_ws_frame_header_masked(uint8_t *out, int opcode, size_t len, const uint8_t mask[4]);
/* XORs the masking key mask (borrowed) over data[0..len) (borrowed) in place, mask[0] applying
 * to data[0]; masking twice with the same key restores the data. */
void vs_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4]);
/* Builds a close frame payload into out[VS_WS_MAX_CONTROL] (borrowed): code in network order
 * and reason (borrowed NUL-terminated UTF-8, may be NULL) truncated to fit 123 bytes, never
 * splitting a UTF-8 sequence. Returns its length. Code 0 builds the empty payload of a close
 * frame without status code (and ignores reason). */
size_t vs_ws_close_payload(uint8_t *out, uint16_t code, const char *reason);
/* Computes Sec-WebSocket-Accept for a Sec-WebSocket-Key (key borrowed, key_len bytes, no NUL
 * needed) into out (28 chars + NUL). Returns 0, VS_EINVAL if the key is not the canonical
 * base64 of 16 bytes (24 chars), or VS_ECRYPTO if the digest failed. */
int vs_ws_accept_key(const char *key, size_t key_len, char out[29]);
/* Validates UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF); s borrowed.
 * Returns 1 if valid, 0 if not. */
int vs_utf8_valid(const uint8_t *s, size_t len);

#endif
