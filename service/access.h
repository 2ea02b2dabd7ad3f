/* Access control of the translation daemon: optional API keys and a
 * token-bucket rate limit.
 *
 * Without a keys file every client is served, and each client address has
 * its own bucket at the default rate. With a keys file every request must
 * carry one of its keys, and each key has its own bucket at the rate its
 * line gives, or the default rate. A bucket holds up to one minute's worth
 * of requests (at least 1) and refills continuously, so a client may send
 * a full minute's quota in a burst and then one request every 60/rate
 * seconds. A rate of 0 means no limit.
 *
 * Keys file format, one key per line:
 *
 *     # comment
 *     KEY                 the default rate applies
 *     KEY 60              60 requests per minute
 *     KEY unlimited       no limit for this key
 *
 * A key is 16 to 256 characters from A-Z a-z 0-9 - _ . ~ + / = (such as
 * the output of `head -c 24 /dev/urandom | base64`). Text from a '#' to
 * the end of the line is a comment, and blank lines are skipped. A UTF-8
 * byte-order mark at the start of the file is skipped.
 *
 * Keys are compared in constant time: a lookup compares the candidate with
 * every key over ACCESS_KEY_MAX bytes without an early exit, so its time
 * depends on the number of keys only. Error messages never contain a key.
 *
 * Memory: the per-address table is bounded by ACCESS_MAX_CLIENTS. When it
 * is full, the entries whose buckets have refilled are dropped first (a
 * refilled bucket is the same as a new one), and then the least recently
 * seen entry.
 * NOTE: a client that controls many addresses, such as an IPv6 /64, gets a
 * bucket for each. Limit such clients with keys or in front of the daemon.
 *
 * Thread safety: access_check may be called from any thread at once. One
 * mutex guards the buckets.
 */
#ifndef SEQMT_ACCESS_H
#define SEQMT_ACCESS_H

#include <stddef.h>

#define ACCESS_KEY_MIN 16          /* characters in the shortest accepted key */
#define ACCESS_KEY_MAX 256         /* characters in the longest accepted key */
#define ACCESS_RATE_MAX 1000000    /* requests per minute, the highest rate a key line may set */
#define ACCESS_MAX_CLIENTS 65536   /* client addresses tracked at once without keys */

typedef enum {
    ACCESS_OK = 0,        /* serve the request */
    ACCESS_FORBIDDEN = 1, /* reply 403: keys are required and the key is missing or unknown */
    ACCESS_LIMITED = 2,   /* reply 429 with Retry-After: the bucket is empty */
} access_result;

typedef struct access_control access_control;

/* Creates the access control. path names a keys file (format above), or is
 * NULL to serve without keys and limit each client address instead.
 * default_rate_per_minute is the rate of addresses and of keys whose line
 * gives none, in requests per minute. 0 means no limit, and fractions such
 * as 0.5 are allowed.
 *
 * Returns NULL with a message in err (at most err_size bytes) on failure.
 * It fails when the file cannot be read, has an invalid line, has no key or
 * repeats a key, and the message then names the path and line number but
 * never the key. It also fails when the default rate is negative or not
 * finite, and when out of memory. Free the result with access_free. */
access_control *access_load(const char *path, double default_rate_per_minute, char *err,
                            size_t err_size);

/* Frees a. access_free(NULL) does nothing. No other thread may use a
 * during or after the call. */
void access_free(access_control *a);

/* Returns 1 when a keys file was loaded (every request needs a key), 0
 * otherwise. */
int access_keys_required(const access_control *a);

/* Returns the number of keys loaded, 0 without a keys file. */
size_t access_key_count(const access_control *a);

/* Returns the number of client addresses with a bucket now, at most
 * ACCESS_MAX_CLIENTS; always 0 with a keys file or without a limit. */
size_t access_client_count(access_control *a);

/* Decides whether to serve one request and takes one token from its
 * bucket when it is served.
 *
 * key is the request's API key, or NULL or "" when it has none. It is
 * ignored when no keys file was loaded. LibreTranslate clients send it as
 * the api_key field of the JSON or form body. client_address is the peer's
 * address as text (inet_ntop's output), used for the bucket when no keys
 * file was loaded. NULL shares one bucket among all callers that pass
 * NULL. now is the current time in seconds on a clock that never goes
 * back, such as CLOCK_MONOTONIC. A now earlier than a bucket's last use
 * counts as no time passed.
 *
 * Returns ACCESS_OK, ACCESS_FORBIDDEN or ACCESS_LIMITED. On
 * ACCESS_LIMITED, *retry_after_seconds (when not NULL) is set to the
 * whole seconds, rounded up and at least 1, until the bucket has a token
 * again, the value of the Retry-After header. It is set to 0 otherwise. */
access_result access_check(access_control *a, const char *key, const char *client_address,
                           double now, unsigned *retry_after_seconds);

#endif
