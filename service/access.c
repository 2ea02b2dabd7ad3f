/* API keys and token-bucket rate limits (see access.h).
 *
 * Keys live in one array, each zero-padded to ACCESS_KEY_MAX + 1 bytes so
 * that the constant-time comparison reads the same number of bytes for
 * every key. Client addresses live in a chained hash table whose entry
 * count is capped at ACCESS_MAX_CLIENTS.
 */
#include "access.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SLOTS 4096 /* slots of the address table, a power of two */
#define FULL_EPSILON 1e-9 /* tokens short of 1 that still count as a whole token */

typedef struct {
    double tokens;   /* tokens in the bucket at time last */
    double last;     /* time of the last refill, in the caller's seconds */
    double capacity; /* maximum tokens in the bucket */
    double per_second; /* refill rate; 0 means no limit */
} bucket;

typedef struct {
    char text[ACCESS_KEY_MAX + 1]; /* the key, zero-padded */
    size_t len;
    bucket limit;
} api_key;

typedef struct client {
    struct client *next; /* next entry in the same hash slot */
    bucket limit;
    double last_seen;
    char address[]; /* NUL-terminated */
} client;

struct access_control {
    pthread_mutex_t mutex;
    double default_per_minute;
    api_key *keys; /* NULL when no keys file was loaded */
    size_t key_count;
    int keys_required;
    client *slots[HASH_SLOTS];
    size_t client_count;
};

/* ---- token bucket ---- */

static void bucket_init(bucket *b, double per_minute, double now)
{
    b->per_second = per_minute / 60.0;
    b->capacity = per_minute > 1.0 ? per_minute : 1.0;
    b->tokens = b->capacity;
    b->last = now;
}

static void bucket_refill(bucket *b, double now)
{
    if (now <= b->last)
        return;
    b->tokens += (now - b->last) * b->per_second;
    if (b->tokens > b->capacity)
        b->tokens = b->capacity;
    b->last = now;
}

/* Takes one token. Returns 0, or the whole seconds until a token is there
 * (at least 1) when the bucket is empty. */
static unsigned bucket_take(bucket *b, double now)
{
    double wait;

    if (b->per_second == 0)
        return 0;
    bucket_refill(b, now);
    if (b->tokens >= 1.0 - FULL_EPSILON) {
        b->tokens -= 1.0;
        return 0;
    }
    wait = ceil((1.0 - b->tokens) / b->per_second - FULL_EPSILON);
    if (wait < 1)
        return 1;
    return wait > (double)UINT32_MAX ? UINT32_MAX : (unsigned)wait;
}

/* Returns nonzero when the bucket would be full at time now, so that
 * forgetting it changes nothing. */
static int bucket_refilled(const bucket *b, double now)
{
    double elapsed = now > b->last ? now - b->last : 0;

    return b->per_second == 0 || b->tokens + elapsed * b->per_second >= b->capacity;
}

/* ---- keys file ---- */

static int is_key_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("-_.~+/=", c) != NULL;
}

/* Parses the rate field of a key line into *per_minute: a whole number
 * from 1 to ACCESS_RATE_MAX, or "unlimited" for 0. Returns 0 or -1. */
static int parse_rate(const char *text, double *per_minute)
{
    char *end;
    long value;

    if (strcmp(text, "unlimited") == 0) {
        *per_minute = 0;
        return 0;
    }
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 1 || value > ACCESS_RATE_MAX)
        return -1;
    *per_minute = (double)value;
    return 0;
}

/* Splits line into whitespace-separated fields, after cutting it at the
 * first '#', and stores the first two in fields. Returns the number of
 * fields. */
static int split_fields(char *line, char **fields)
{
    char *save = NULL, *field;
    int n = 0;
    char *hash = strchr(line, '#');

    if (hash)
        *hash = '\0';
    for (field = strtok_r(line, " \t\r\n\v\f", &save); field;
         field = strtok_r(NULL, " \t\r\n\v\f", &save)) {
        if (n < 2)
            fields[n] = field;
        n++;
    }
    return n;
}

/* Checks the key field of a line. Returns 0, or -1 with a message in err
 * that names the line but not the key. */
static int check_key(const char *path, size_t line_number, const char *key, char *err,
                     size_t err_size)
{
    size_t len = strlen(key);

    for (size_t i = 0; i < len; i++)
        if (!is_key_char((unsigned char)key[i])) {
            snprintf(err, err_size,
                     "%s line %zu: invalid character at position %zu of the key; keys use only "
                     "A-Z a-z 0-9 - _ . ~ + / =",
                     path, line_number, i + 1);
            return -1;
        }
    if (len < ACCESS_KEY_MIN || len > ACCESS_KEY_MAX) {
        snprintf(err, err_size,
                 "%s line %zu: the key has %zu characters; keys need %d to %d (generate one "
                 "with: head -c 24 /dev/urandom | base64)",
                 path, line_number, len, ACCESS_KEY_MIN, ACCESS_KEY_MAX);
        return -1;
    }
    return 0;
}

/* Parses one line of the keys file and appends its key to a->keys, or
 * does nothing for a blank or comment line. line_numbers[i] is the line
 * of key i, for the duplicate message. Returns 0, or -1 with a message in
 * err. */
static int parse_key_line(access_control *a, size_t *capacity, size_t **line_numbers,
                          const char *path, size_t line_number, char *line, size_t len,
                          char *err, size_t err_size)
{
    char *fields[2];
    double per_minute = a->default_per_minute;
    int n;

    if (strlen(line) != len) {
        snprintf(err, err_size, "%s line %zu: contains a NUL byte; the keys file must be text",
                 path, line_number);
        return -1;
    }
    n = split_fields(line, fields);
    if (n == 0)
        return 0;
    if (n > 2) {
        snprintf(err, err_size,
                 "%s line %zu: expected KEY or KEY REQUESTS_PER_MINUTE, found %d fields "
                 "separated by spaces. A key cannot contain spaces, and text after the rate "
                 "must start with '#' to be a comment",
                 path, line_number, n);
        return -1;
    }
    if (check_key(path, line_number, fields[0], err, err_size) != 0)
        return -1;
    if (n == 2 && parse_rate(fields[1], &per_minute) != 0) {
        /* The field is not echoed when it may be the rest of a key. */
        int digits = fields[1][0] == '-' || (fields[1][0] >= '0' && fields[1][0] <= '9');

        if (digits)
            snprintf(err, err_size,
                     "%s line %zu: invalid rate \"%.32s\"; write a whole number of requests "
                     "per minute from 1 to %d, or \"unlimited\"",
                     path, line_number, fields[1], ACCESS_RATE_MAX);
        else
            snprintf(err, err_size,
                     "%s line %zu: the text after the key is not a rate; write a whole number "
                     "of requests per minute from 1 to %d, or \"unlimited\". A key cannot "
                     "contain spaces",
                     path, line_number, ACCESS_RATE_MAX);
        return -1;
    }

    /* Reject duplicates: the same key twice is almost always a paste error. */
    for (size_t i = 0; i < a->key_count; i++)
        if (strcmp(a->keys[i].text, fields[0]) == 0) {
            snprintf(err, err_size, "%s line %zu: the key repeats the key on line %zu", path,
                     line_number, (*line_numbers)[i]);
            return -1;
        }

    if (a->key_count == *capacity) {
        size_t grown_capacity = *capacity ? 2 * *capacity : 16;
        api_key *keys = realloc(a->keys, grown_capacity * sizeof(*keys));
        size_t *lines;

        if (keys)
            a->keys = keys;
        lines = keys ? realloc(*line_numbers, grown_capacity * sizeof(*lines)) : NULL;
        if (!lines) {
            snprintf(err, err_size, "out of memory reading %s", path);
            return -1;
        }
        *line_numbers = lines;
        *capacity = grown_capacity;
    }
    memset(&a->keys[a->key_count], 0, sizeof(a->keys[0]));
    a->keys[a->key_count].len = strlen(fields[0]);
    memcpy(a->keys[a->key_count].text, fields[0], a->keys[a->key_count].len);
    bucket_init(&a->keys[a->key_count].limit, per_minute, 0);
    (*line_numbers)[a->key_count] = line_number;
    a->key_count++;
    return 0;
}

/* Reads every key of the file at path into a. Returns 0, or -1 with a
 * message in err. */
static int read_keys_file(access_control *a, const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t line_size = 0, line_number = 0, capacity = 0;
    size_t *line_numbers = NULL;
    ssize_t len;
    int rc = 0;

    if (!f) {
        snprintf(err, err_size, "cannot open keys file %s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (len = getline(&line, &line_size, f)) != -1) {
        char *text = line;

        /* Editors on Windows start UTF-8 files with a byte-order mark. */
        if (line_number == 0 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            text += 3;
            len -= 3;
        }
        rc = parse_key_line(a, &capacity, &line_numbers, path, ++line_number, text, (size_t)len,
                            err, err_size);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, err_size, "cannot read keys file %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && a->key_count == 0) {
        snprintf(err, err_size,
                 "keys file %s has no keys; add one key per line, or start without a keys "
                 "file to serve every client",
                 path);
        rc = -1;
    }
    free(line);
    free(line_numbers);
    fclose(f);
    return rc;
}

/* ---- public API ---- */

access_control *access_load(const char *path, double default_rate_per_minute, char *err,
                            size_t err_size)
{
    access_control *a;

    if (!isfinite(default_rate_per_minute) || default_rate_per_minute < 0) {
        snprintf(err, err_size,
                 "invalid default rate %g requests per minute; use 0 for no limit or a "
                 "positive number",
                 default_rate_per_minute);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, err_size, "out of memory creating the access control");
        return NULL;
    }
    if (pthread_mutex_init(&a->mutex, NULL) != 0) {
        free(a);
        snprintf(err, err_size, "cannot create the access control's lock");
        return NULL;
    }
    a->default_per_minute = default_rate_per_minute;
    if (path) {
        a->keys_required = 1;
        if (read_keys_file(a, path, err, err_size) != 0) {
            access_free(a);
            return NULL;
        }
    }
    return a;
}

void access_free(access_control *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < HASH_SLOTS; i++)
        while (a->slots[i]) {
            client *next = a->slots[i]->next;

            free(a->slots[i]);
            a->slots[i] = next;
        }
    if (a->keys)
        memset(a->keys, 0, a->key_count * sizeof(*a->keys)); /* no keys left in freed memory */
    free(a->keys);
    pthread_mutex_destroy(&a->mutex);
    free(a);
}

int access_keys_required(const access_control *a)
{
    return a->keys_required;
}

size_t access_key_count(const access_control *a)
{
    return a->key_count;
}

size_t access_client_count(access_control *a)
{
    size_t count;

    pthread_mutex_lock(&a->mutex);
    count = a->client_count;
    pthread_mutex_unlock(&a->mutex);
    return count;
}

/* Returns the index of the key equal to candidate, or -1. Compares with
 * every key over all ACCESS_KEY_MAX + 1 bytes and folds the results
 * without branches, so the time does not depend on which bytes match. */
static long find_key(const access_control *a, const char *candidate)
{
    unsigned char padded[ACCESS_KEY_MAX + 1] = {0};
    size_t len = strnlen(candidate, ACCESS_KEY_MAX + 1);
    uint32_t found = 0, index = 0;

    if (len > ACCESS_KEY_MAX)
        return -1; /* longer than any key, so the length reveals nothing */
    memcpy(padded, candidate, len);
    for (size_t k = 0; k < a->key_count; k++) {
        const unsigned char *key = (const unsigned char *)a->keys[k].text;
        uint32_t diff = (uint32_t)(len ^ a->keys[k].len);
        uint32_t match;

        for (size_t i = 0; i <= ACCESS_KEY_MAX; i++)
            diff |= (uint32_t)(padded[i] ^ key[i]);
        /* diff < 2^31, so the top bit of diff | -diff is 1 unless diff is 0. */
        match = 1u ^ ((diff | (0u - diff)) >> 31);
        found |= match;
        index |= (0u - match) & (uint32_t)k;
    }
    return found ? (long)index : -1;
}

static size_t hash_address(const char *address)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *address; address++)
        h = (h ^ (unsigned char)*address) * 16777619u;
    return h & (HASH_SLOTS - 1);
}

/* Drops every client whose bucket has refilled, and the least recently
 * seen one when none has. */
static void evict_clients(access_control *a, double now)
{
    client **oldest = NULL;

    for (size_t i = 0; i < HASH_SLOTS; i++) {
        client **link = &a->slots[i];

        while (*link) {
            client *c = *link;

            if (bucket_refilled(&c->limit, now)) {
                *link = c->next;
                free(c);
                a->client_count--;
                continue;
            }
            if (!oldest || c->last_seen < (*oldest)->last_seen)
                oldest = link;
            link = &c->next;
        }
    }
    if (a->client_count >= ACCESS_MAX_CLIENTS && oldest) {
        client *c = *oldest;

        *oldest = c->next;
        free(c);
        a->client_count--;
    }
}

/* Returns the bucket of address, creating it when it is new, or NULL when
 * out of memory. */
static bucket *client_bucket(access_control *a, const char *address, double now)
{
    size_t slot = hash_address(address), len = strlen(address);
    client *c;

    for (c = a->slots[slot]; c; c = c->next)
        if (strcmp(c->address, address) == 0) {
            c->last_seen = now;
            return &c->limit;
        }
    if (a->client_count >= ACCESS_MAX_CLIENTS)
        evict_clients(a, now);
    c = malloc(sizeof(*c) + len + 1);
    if (!c)
        return NULL;
    memcpy(c->address, address, len + 1);
    bucket_init(&c->limit, a->default_per_minute, now);
    c->last_seen = now;
    c->next = a->slots[slot];
    a->slots[slot] = c;
    a->client_count++;
    return &c->limit;
}

access_result access_check(access_control *a, const char *key, const char *client_address,
                           double now, unsigned *retry_after_seconds)
{
    access_result result = ACCESS_OK;
    unsigned wait = 0;
    bucket *b = NULL;

    pthread_mutex_lock(&a->mutex);
    if (a->keys_required) {
        long k = key ? find_key(a, key) : -1;

        if (k < 0)
            result = ACCESS_FORBIDDEN;
        else
            b = &a->keys[k].limit;
    } else if (a->default_per_minute > 0) {
        b = client_bucket(a, client_address ? client_address : "", now);
        /* NOTE: without memory for a new entry the request is served
         * unlimited, because rejecting it would punish the client for the
         * server's state. */
    }
    if (b) {
        wait = bucket_take(b, now);
        if (wait > 0)
            result = ACCESS_LIMITED;
    }
    pthread_mutex_unlock(&a->mutex);
    if (retry_after_seconds)
        *retry_after_seconds = wait;
    return result;
}
