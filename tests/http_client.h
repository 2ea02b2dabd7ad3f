/* A minimal HTTP/1.1 client for the tests of the daemon: just enough for
 * one request per connection ("Connection: close") read to EOF, or several
 * requests on one keep-alive connection with Content-Length replies. Socket
 * timeouts are SOCKET_TIMEOUT_SECONDS and responses at most
 * MAX_RESPONSE_BYTES. */
#ifndef SEQMT_TEST_HTTP_CLIENT_H
#define SEQMT_TEST_HTTP_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define SOCKET_TIMEOUT_SECONDS 5
#define MAX_RESPONSE_BYTES (1024 * 1024)

typedef struct {
    int status;       /* -1 when no valid status line arrived */
    char *body;       /* NUL-terminated */
    size_t body_len;
    char content_type[128];
    char retry_after[16];
    char request_id[80];     /* X-Request-Id */
    char allow_origin[16];   /* Access-Control-Allow-Origin */
    char allow_methods[64];  /* Access-Control-Allow-Methods */
    char *headers;    /* the header lines after the status line, NUL-terminated */
} http_response;

/* Frees the body and headers of r and zeroes it. */
void response_free(http_response *r);

/* Copies the value of the first header called name (any case) into value
 * (at most size bytes, NUL-terminated) without the spaces around it.
 * Returns value, or NULL when r has no such header. */
const char *response_header(const http_response *r, const char *name, char *value,
                            size_t size);

/* Returns the number of headers called name (any case) in r. */
size_t response_header_count(const http_response *r, const char *name);

/* Connects to address:to_port (IPv4 or IPv6 literal) with the socket
 * timeouts set. Returns the socket, or -1. */
int connect_to(const char *address, unsigned short to_port);

/* Sends all len bytes. Returns 0, or -1 on a socket error. */
int send_all(int fd, const char *data, size_t len);

/* Sends raw bytes to address:to_port and reads the response until the
 * server closes. Returns 0, or -1 on a socket error, timeout or garbage. */
int exchange_at(const char *address, unsigned short to_port, const char *request,
                size_t request_len, http_response *r);

/* Reads one response whose body has a Content-Length from fd, which stays
 * open. Returns 0, or -1 on a socket error, timeout or garbage. */
int read_one_response(int fd, http_response *r);

/* Sends a request with the given method, path, content type and body to
 * 127.0.0.1:to_port. Returns as exchange_at does. */
int send_request_at(unsigned short to_port, const char *method, const char *path,
                    const char *content_type, const char *body, size_t body_len,
                    http_response *r);

/* Sends a GET for path to 127.0.0.1:to_port. */
int get_path(unsigned short to_port, const char *path, http_response *r);

/* Returns the "error" string of a JSON error body, or "" (static). *json
 * receives the parsed body, which the caller frees with cJSON_Delete. */
const char *error_text(const http_response *r, cJSON **json);

#endif
