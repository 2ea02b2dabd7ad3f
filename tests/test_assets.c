/* Tests of the embedded files (assets.h): every file of service/web
 * (found through SEQMT_SOURCE_DIR) must be embedded byte for byte with the
 * right Content-Type, and nothing else may be found.
 */
#include "assets.h"
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES (1024 * 1024)

/* Folder of the page's source files, or NULL with a message. */
static const char *web_folder(void)
{
    static char path[4096];
    const char *source = getenv("SEQMT_SOURCE_DIR");

    if (!source) {
        fprintf(stderr, "SEQMT_SOURCE_DIR is unset; run this test through ctest\n");
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/service/web", source);
    return path;
}

/* Reads the file folder/name into a malloc'd buffer and its size into
 * *size. Returns NULL when it cannot be read. */
static unsigned char *read_file(const char *folder, const char *name, size_t *size)
{
    char path[4096];
    unsigned char *data = malloc(MAX_FILE_BYTES);
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", folder, name);
    f = fopen(path, "rb");
    if (!f || !data) {
        free(data);
        if (f)
            fclose(f);
        return NULL;
    }
    *size = fread(data, 1, MAX_FILE_BYTES, f);
    fclose(f);
    return data;
}

static void test_every_file_embedded(void)
{
    const char *folder = web_folder();
    size_t files = 0;
    DIR *dir;
    struct dirent *entry;

    CU_ASSERT_PTR_NOT_NULL_FATAL(folder);
    dir = opendir(folder);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    while ((entry = readdir(dir)) != NULL) {
        char url[300];
        size_t size = 0;
        unsigned char *data;
        const seqmt_asset *asset;

        if (entry->d_name[0] == '.')
            continue;
        files++;
        snprintf(url, sizeof(url), "/%s", entry->d_name);
        asset = assets_find(url);
        data = read_file(folder, entry->d_name, &size);
        CU_ASSERT_PTR_NOT_NULL(data);
        CU_ASSERT_PTR_NOT_NULL(asset);
        if (!asset || !data) {
            fprintf(stderr, "\n%s is not embedded or not readable\n", url);
            free(data);
            continue;
        }
        CU_ASSERT_STRING_EQUAL(asset->path, url);
        CU_ASSERT_EQUAL(asset->size, size);
        CU_ASSERT(asset->size == size && memcmp(asset->data, data, size) == 0);
        CU_ASSERT_EQUAL(asset->data[asset->size], 0);
        free(data);
    }
    closedir(dir);
    CU_ASSERT(files >= 1);
    CU_ASSERT_EQUAL(assets_count(), files);
}

static void test_content_types(void)
{
    const seqmt_asset *index = assets_find("/index.html");
    const seqmt_asset *script = assets_find("/app.js");
    const seqmt_asset *style = assets_find("/style.css");
    const seqmt_asset *icon = assets_find("/favicon.svg");
    const seqmt_asset *openapi = assets_find("/openapi.json");

    CU_ASSERT_PTR_NOT_NULL_FATAL(index);
    CU_ASSERT_PTR_NOT_NULL_FATAL(script);
    CU_ASSERT_PTR_NOT_NULL_FATAL(style);
    CU_ASSERT_PTR_NOT_NULL_FATAL(icon);
    CU_ASSERT_PTR_NOT_NULL_FATAL(openapi);
    CU_ASSERT_STRING_EQUAL(index->content_type, "text/html; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(script->content_type, "text/javascript; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(style->content_type, "text/css; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(icon->content_type, "image/svg+xml");
    CU_ASSERT_STRING_EQUAL(openapi->content_type, "application/json");
}

static void test_root_is_index(void)
{
    CU_ASSERT_PTR_NOT_NULL(assets_find("/"));
    CU_ASSERT_PTR_EQUAL(assets_find("/"), assets_find("/index.html"));
}

static void test_unknown_paths_not_found(void)
{
    static const char *const paths[] = {
        "", "index.html", "/index.htm", "/INDEX.HTML", "/index.html/", "//index.html",
        "/index.html?x=1", "/../CMakeLists.txt", "/service/web/index.html", "/translate",
    };

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (assets_find(paths[i]))
            fprintf(stderr, "\n\"%s\" was found but should not be\n", paths[i]);
        CU_ASSERT_PTR_NULL(assets_find(paths[i]));
    }
    CU_ASSERT_PTR_NULL(assets_find(NULL));
}

static void test_etags_and_order(void)
{
    for (size_t i = 0; i < assets_count(); i++) {
        const seqmt_asset *asset = assets_at(i);
        const char *etag = asset->etag;

        /* A quoted strong ETag: '"', 32 hex digits, '"'. */
        CU_ASSERT_EQUAL(strlen(etag), 34);
        CU_ASSERT_EQUAL(etag[0], '"');
        CU_ASSERT_EQUAL(etag[33], '"');
        CU_ASSERT_EQUAL(strspn(etag + 1, "0123456789abcdef"), 32);
        if (i > 0) {
            CU_ASSERT(strcmp(assets_at(i - 1)->path, asset->path) < 0);
            CU_ASSERT_STRING_NOT_EQUAL(assets_at(i - 1)->etag, etag);
        }
    }
    CU_ASSERT_PTR_NULL(assets_at(assets_count()));
}

/* The page must load nothing from other hosts: no absolute URLs in its
 * markup, script or style. (The SVG's xmlns is a name, not a load.) */
static void test_page_has_no_remote_urls(void)
{
    static const char *const paths[] = {"/index.html", "/app.js", "/style.css"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const seqmt_asset *asset = assets_find(paths[i]);
        const char *text;

        CU_ASSERT_PTR_NOT_NULL_FATAL(asset);
        text = (const char *)asset->data;
        CU_ASSERT_PTR_NULL(strstr(text, "http:"));
        CU_ASSERT_PTR_NULL(strstr(text, "https:"));
        CU_ASSERT_PTR_NULL(strstr(text, "src=\"//"));
        CU_ASSERT_PTR_NULL(strstr(text, "href=\"//"));
        CU_ASSERT_PTR_NULL(strstr(text, "@import"));
    }
}

int main(void)
{
    CU_pSuite suite;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("assets", NULL, NULL);
    if (!suite)
        return 1;
    CU_add_test(suite, "every web file is embedded", test_every_file_embedded);
    CU_add_test(suite, "content types by extension", test_content_types);
    CU_add_test(suite, "root is index.html", test_root_is_index);
    CU_add_test(suite, "unknown paths not found", test_unknown_paths_not_found);
    CU_add_test(suite, "etags and order", test_etags_and_order);
    CU_add_test(suite, "page has no remote URLs", test_page_has_no_remote_urls);
    return test_run_all();
}
