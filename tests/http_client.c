/* A minimal HTTP/1.1 client for the tests of the daemon. See
 * http_client.h. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

void response_free(http_response *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

/* Returns the start of the value of the next header line called name at or
 * after *at, and moves *at past that line, or returns NULL. */
static const char *find_header(const char **at, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);

    while (**at) {
        const char *line = *at, *end = strstr(line, "\r\n");

        if (!end)
            end = line + strlen(line);
        *at = *end ? end + 2 : end;
        if ((size_t)(end - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *value = line + name_len + 1;

            value += strspn(value, " \t");
            *value_len = (size_t)(end - value);
            while (*value_len > 0 && strchr(" \t", value[*value_len - 1]))
                (*value_len)--;
            return value;
        }
    }
    return NULL;
}

const char *response_header(const http_response *r, const char *name, char *value,
                            size_t size)
{
    const char *at = r->headers ? r->headers : "";
    size_t len;
    const char *found = find_header(&at, name, &len);

    if (!found || size == 0)
        return NULL;
    if (len >= size)
        len = size - 1;
    memcpy(value, found, len);
    value[len] = '\0';
    return value;
}

size_t response_header_count(const http_response *r, const char *name)
{
    const char *at = r->headers ? r->headers : "";
    size_t len, count = 0;

    while (find_header(&at, name, &len))
        count++;
    return count;
}

int connect_to(const char *address, unsigned short to_port)
{
    struct sockaddr_storage storage;
    socklen_t len;
    struct timeval timeout = {SOCKET_TIMEOUT_SECONDS, 0};
    int family = strchr(address, ':') ? AF_INET6 : AF_INET;
    int fd;

    memset(&storage, 0, sizeof(storage));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&storage;

        a->sin_family = AF_INET;
        a->sin_port = htons(to_port);
        inet_pton(AF_INET, address, &a->sin_addr);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&storage;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons(to_port);
        inet_pton(AF_INET6, address, &a->sin6_addr);
        len = sizeof(*a);
    }
    fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, (struct sockaddr *)&storage, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);

        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* Parses a raw response into r. Returns 0, or -1 when it is not HTTP. */
static int parse_response_text(char *raw, size_t len, http_response *r)
{
    char *header_end = strstr(raw, "\r\n\r\n");
    char *line, *save = NULL;
    long content_length = -1;

    if (!header_end || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    *header_end = '\0';
    line = strstr(raw, "\r\n");
    r->headers = strdup(line ? line + 2 : "");
    if (!r->headers)
        return -1;
    for (line = strtok_r(raw, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (strncasecmp(line, "Content-Type:", 13) == 0)
            snprintf(r->content_type, sizeof(r->content_type), "%s", line + 13 + strspn(line + 13, " "));
        else if (strncasecmp(line, "Retry-After:", 12) == 0)
            snprintf(r->retry_after, sizeof(r->retry_after), "%s", line + 12 + strspn(line + 12, " "));
        else if (strncasecmp(line, "Content-Length:", 15) == 0)
            content_length = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "X-Request-Id:", 13) == 0)
            snprintf(r->request_id, sizeof(r->request_id), "%s", line + 13 + strspn(line + 13, " "));
        else if (strncasecmp(line, "Access-Control-Allow-Origin:", 28) == 0)
            snprintf(r->allow_origin, sizeof(r->allow_origin), "%s", line + 28 + strspn(line + 28, " "));
        else if (strncasecmp(line, "Access-Control-Allow-Methods:", 29) == 0)
            snprintf(r->allow_methods, sizeof(r->allow_methods), "%s", line + 29 + strspn(line + 29, " "));
    }
    r->body_len = len - (size_t)(header_end + 4 - raw);
    if (content_length >= 0 && (size_t)content_length < r->body_len)
        r->body_len = (size_t)content_length;
    r->body = malloc(r->body_len + 1);
    if (!r->body)
        return -1;
    memcpy(r->body, header_end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    return 0;
}

/* Sends raw bytes to address:to_port and reads the response until the
 * server closes. Returns 0, or -1 on a socket error, timeout or garbage. */
int exchange_at(const char *address, unsigned short to_port, const char *request,
                       size_t request_len, http_response *r)
{
    char *raw = malloc(MAX_RESPONSE_BYTES + 1);
    size_t len = 0;
    int fd, rc = -1;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    if (!raw)
        return -1;
    fd = connect_to(address, to_port);
    if (fd >= 0 && send_all(fd, request, request_len) == 0) {
        for (;;) {
            ssize_t got = recv(fd, raw + len, MAX_RESPONSE_BYTES - len, 0);

            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            len += (size_t)got;
            if (len == MAX_RESPONSE_BYTES)
                break;
        }
        raw[len] = '\0';
        rc = parse_response_text(raw, len, r);
    }
    if (fd >= 0)
        close(fd);
    free(raw);
    return rc;
}

/* Reads one response whose body has a Content-Length from fd, which stays
 * open. Returns 0, or -1 on a socket error, timeout or garbage. */
int read_one_response(int fd, http_response *r)
{
    char raw[8192];
    size_t len = 0;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    while (len < sizeof(raw) - 1) {
        ssize_t got = recv(fd, raw + len, sizeof(raw) - 1 - len, 0);
        char *header_end, *length;

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        len += (size_t)got;
        raw[len] = '\0';
        header_end = strstr(raw, "\r\n\r\n");
        length = strcasestr(raw, "\r\nContent-Length:");
        if (header_end && length && length < header_end &&
            len >= (size_t)(header_end + 4 - raw) + strtoul(length + 17, NULL, 10))
            return parse_response_text(raw, len, r);
    }
    return -1;
}


/* Sends a request with the given method, path, content type and body to
 * the server on to_port. */
int send_request_at(unsigned short to_port, const char *method, const char *path,
                           const char *content_type, const char *body, size_t body_len,
                           http_response *r)
{
    size_t cap = body_len + 512;
    char *request = malloc(cap);
    int head, rc;

    if (!request)
        return -1;
    head = snprintf(request, cap,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    method, path, content_type, body_len);
    memcpy(request + head, body, body_len);
    rc = exchange_at("127.0.0.1", to_port, request, (size_t)head + body_len, r);
    free(request);
    return rc;
}


int get_path(unsigned short to_port, const char *path, http_response *r)
{
    char request[256];
    int len = snprintf(request, sizeof(request),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);

    return exchange_at("127.0.0.1", to_port, request, (size_t)len, r);
}

/* Returns the "error" string of a JSON error body, or "" (static). */
const char *error_text(const http_response *r, cJSON **json)
{
    const cJSON *error;

    *json = cJSON_Parse(r->body ? r->body : "");
    error = cJSON_GetObjectItemCaseSensitive(*json, "error");
    return cJSON_IsString(error) ? error->valuestring : "";
}

