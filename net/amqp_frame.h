/*
 * AMQP 0-9-1 framing: the protocol header, frame parsing over byte spans,
 * reassembly of frames that straddle receive buffers, and frame writers for
 * the output path.
 *
 * Frame layout: type(1) channel(2) payload-size(4) payload frame-end(0xCE).
 * frame_max counts the whole frame (7-byte header + payload + end octet), as
 * negotiated by connection.tune; it is enforced from the header alone,
 * before any payload is read.
 */
#ifndef RINGMQ_NET_AMQP_FRAME_H
#define RINGMQ_NET_AMQP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/amqp_method.h"
#include "net/amqp_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AMQP_PROTOCOL_HEADER "AMQP\0\0\x09\x01"
enum { AMQP_PROTOCOL_HEADER_BYTES = 8 };

/*
 * Checks the client's protocol header at p[0..len). Returns 8 when it is
 * AMQP 0-9-1, 0 when the bytes so far are a prefix of it (need more), -1 on
 * a mismatch as soon as one byte differs (*err: 501 FRAME_ERROR; the server
 * then sends its own header and closes the socket, no close method).
 */
ssize_t amqp_protocol_header_parse(const uint8_t *p, size_t len, amqp_error *err);

typedef struct amqp_frame {
    uint8_t type; /* AMQP_FRAME_METHOD, _HEADER, _BODY, _HEARTBEAT */
    uint16_t channel;
    uint32_t payload_len;
    const uint8_t *payload; /* points into the parsed span; NULL until complete */
} amqp_frame;

/*
 * Parses one frame at p[0..len). Returns:
 *   > 0  bytes consumed; *out is the frame, out->payload points into p;
 *   0    need more bytes; if the 7-byte header was there (len >= 7) it has
 *        been checked and out->type/channel/payload_len are set;
 *   -1   error in *err: 501 FRAME_ERROR for an unknown frame type, a frame
 *        larger than frame_max, or a bad frame-end octet.
 * frame_max >= LIMIT_FRAME_BYTES_MIN.
 */
ssize_t amqp_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, amqp_frame *out,
                         amqp_error *err);

/*
 * Reassembly for the one frame that straddles receive buffers. Whole frames
 * inside a buffer are parsed in place (zero-copy); the caller hands the
 * unparsed tail of a buffer to amqp_frame_assembler_feed(), then the start
 * of each next buffer until the frame completes. The buffer is the caller's
 * and must hold frame_max bytes.
 *
 *     off = 0;
 *     if (amqp_frame_assembler_busy(a)) {
 *         n = amqp_frame_assembler_feed(a, buf, len, frame_max, &f, &done, &err);
 *         if (n < 0) fail; off = n; if (done) handle(&f);   // f.payload in a->buf
 *     }
 *     while (off < len && (n = amqp_frame_parse(buf + off, len - off, ...)) > 0) {
 *         handle(&f); off += n;
 *     }
 *     if (n == 0 && off < len) amqp_frame_assembler_feed(a, buf + off, len - off, ...);
 */
typedef struct amqp_frame_assembler {
    uint8_t *buf;
    uint32_t cap;
    uint32_t used;       /* bytes of the partial frame held */
    uint32_t frame_size; /* whole frame size once the header is in, else 0 */
} amqp_frame_assembler;

void amqp_frame_assembler_init(amqp_frame_assembler *a, uint8_t *buf, size_t cap);
/* A partial frame is held. */
bool amqp_frame_assembler_busy(const amqp_frame_assembler *a);
/*
 * Takes bytes from p[0..len) into the partial frame, never past its end.
 * Returns the bytes taken (>= 0) or -1 with *err (as amqp_frame_parse). When
 * the frame completes, *complete is true and *out describes it with
 * out->payload in a->buf, valid until the next feed.
 */
ssize_t amqp_frame_assembler_feed(amqp_frame_assembler *a, const uint8_t *p, size_t len,
                                  uint32_t frame_max, amqp_frame *out, bool *complete,
                                  amqp_error *err);
/* Drops any partial frame. */
void amqp_frame_assembler_reset(amqp_frame_assembler *a);

/* Writers. Each returns bytes written, or -1 with *err (541 "no space" when
 * cap is too small, else as the method/props encoders). */

/* The 7-byte frame header; the caller writes payload and frame-end. */
void amqp_frame_put_header(uint8_t *out, uint8_t type, uint16_t channel, uint32_t payload_len);
/* A whole method frame: header, encoded method, frame-end. */
ssize_t amqp_frame_write_method(uint8_t *out, size_t cap, uint16_t channel, const amqp_method *m,
                                amqp_error *err);
/* A heartbeat frame (channel 0, empty payload): 8 bytes. */
ssize_t amqp_frame_write_heartbeat(uint8_t *out, size_t cap, amqp_error *err);
/* Bytes of a content header frame plus the body frames for body_len bytes. */
size_t amqp_frame_content_size(uint32_t frame_max, size_t props_raw_len, uint64_t body_len);
/*
 * A content header frame (class_id, weight 0, body size, props_raw as
 * flags + property list) followed by body frames of at most frame_max
 * bytes each; a zero-length body sends no body frame. A header frame over
 * frame_max is refused with 501 FRAME_ERROR.
 */
ssize_t amqp_frame_write_content(uint8_t *out, size_t cap, uint16_t channel, uint32_t frame_max,
                                 uint16_t class_id, amqp_bytes props_raw, const uint8_t *body,
                                 uint64_t body_len, amqp_error *err);

#ifdef __cplusplus
}
#endif

#endif
