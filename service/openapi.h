/* The OpenAPI 3.0 description of the daemon's routes (service/openapi.json),
 * compiled into the binary by a CMake step so that no file is read at run
 * time. */
#ifndef SEQMT_OPENAPI_H
#define SEQMT_OPENAPI_H

#include <stddef.h>

/* The JSON text, http_openapi_json_len bytes followed by a NUL. */
extern const char http_openapi_json[];
extern const size_t http_openapi_json_len;

#endif
