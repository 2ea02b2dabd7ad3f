/* Splitting of request texts into sentences for the translate callback,
 * and the JSON replies built from their hypotheses. See translate_job.h. */
#include "translate_job.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int translate_job_init(translate_job *job, const char *const *texts, size_t count, int html,
                       int n_best, int max_length)
{
    size_t total = 0, at = 0;

    job->texts = calloc(count ? count : 1, sizeof(*job->texts));
    if (!job->texts)
        return -1;
    job->text_count = count;
    for (size_t i = 0; i < count; i++) {
        if (segment_text(texts[i], html, &job->texts[i]) != 0)
            return -1;
        total += job->texts[i].sentence_count;
    }
    job->sentences = calloc(total ? total : 1, sizeof(*job->sentences));
    if (!job->sentences)
        return -1;
    job->sentence_count = total;
    for (size_t i = 0; i < count; i++)
        for (size_t k = 0; k < job->texts[i].sentence_count; k++) {
            http_sentence *s = &job->sentences[at++];

            s->text = job->texts[i].sentences[k];
            s->n_best = n_best;
            s->max_length = max_length;
        }
    return 0;
}

size_t translate_job_text_of(const translate_job *job, size_t i)
{
    size_t t = 0;

    while (t < job->text_count && i >= job->texts[t].sentence_count) {
        i -= job->texts[t].sentence_count;
        t++;
    }
    return t;
}

void translate_job_clear_results(translate_job *job)
{
    for (size_t i = 0; i < job->sentence_count; i++) {
        http_sentence *s = &job->sentences[i];

        for (size_t k = 0; s->hyps && k < s->count; k++)
            free(s->hyps[k].text);
        free(s->hyps);
        s->hyps = NULL;
        s->count = 0;
        s->stopped = 0;
    }
}

void translate_job_free(translate_job *job)
{
    if (job->sentences)
        translate_job_clear_results(job);
    for (size_t i = 0; job->texts && i < job->text_count; i++)
        segment_free(&job->texts[i]);
    free(job->texts);
    free(job->sentences);
    memset(job, 0, sizeof(*job));
}

/* Joins hypothesis k of every sentence of text t (a sentence's last one
 * when it has fewer) into a malloc'd string, and stores the summed score
 * in *score when score is not NULL. Returns NULL when out of memory. */
static char *join_hypothesis(const translate_job *job, size_t t, size_t k, double *score)
{
    const segmented_text *st = &job->texts[t];
    const char **parts = malloc((st->sentence_count + 1) * sizeof(*parts));
    size_t first = 0;
    double sum = 0.0;
    char *text;

    if (!parts)
        return NULL;
    for (size_t i = 0; i < t; i++)
        first += job->texts[i].sentence_count;
    for (size_t i = 0; i < st->sentence_count; i++) {
        const http_sentence *s = &job->sentences[first + i];
        size_t pick = k < s->count ? k : s->count - 1;

        parts[i] = s->count ? s->hyps[pick].text : "";
        sum += s->count ? s->hyps[pick].score : 0.0;
    }
    text = segment_join(st, parts);
    free(parts);
    if (score)
        *score = sum;
    return text;
}

/* Returns the most hypotheses any sentence of text t has. */
static size_t max_hypotheses(const translate_job *job, size_t t)
{
    size_t first = 0, most = 1;

    for (size_t i = 0; i < t; i++)
        first += job->texts[i].sentence_count;
    for (size_t i = 0; i < job->texts[t].sentence_count; i++)
        if (job->sentences[first + i].count > most)
            most = job->sentences[first + i].count;
    return most;
}

/* Adds string s (malloc'd, taken over) to array. Returns 0 or -1. */
static int add_owned_string(cJSON *array, char *s)
{
    cJSON *item = s ? cJSON_CreateString(s) : NULL;

    free(s);
    if (!item)
        return -1;
    if (!cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* Builds the alternatives of text t: up to count distinct texts other than
 * best. Returns a cJSON array, or NULL when out of memory. */
static cJSON *build_alternatives(const translate_job *job, size_t t, const char *best,
                                 int count)
{
    cJSON *list = cJSON_CreateArray();
    size_t most = max_hypotheses(job, t);

    for (size_t k = 1; list && k < most && cJSON_GetArraySize(list) < count; k++) {
        char *text = join_hypothesis(job, t, k, NULL);
        int seen;
        const cJSON *item;

        if (!text) {
            cJSON_Delete(list);
            return NULL;
        }
        seen = strcmp(text, best) == 0;
        cJSON_ArrayForEach(item, list) seen |= strcmp(item->valuestring, text) == 0;
        if (seen) {
            free(text);
            continue;
        }
        if (add_owned_string(list, text) != 0) {
            cJSON_Delete(list);
            return NULL;
        }
    }
    return list;
}

/* Builds LibreTranslate's {"confidence": 100, "language": code}. The
 * daemon does not detect languages: code is the source of the only pair
 * that matched, so the confidence is always 100. Returns NULL when out of
 * memory. */
static cJSON *build_detected_language(const char *code)
{
    cJSON *entry = cJSON_CreateObject();

    if (!entry || !cJSON_AddNumberToObject(entry, "confidence", 100) ||
        !cJSON_AddStringToObject(entry, "language", code)) {
        cJSON_Delete(entry);
        return NULL;
    }
    return entry;
}

/* Adds "detectedLanguage" to reply: one object, or an array of one per
 * text when is_list is set. Returns 0, or -1 when out of memory. */
static int add_detected_language(cJSON *reply, const translate_job *job, int is_list,
                                 const char *code)
{
    cJSON *value = is_list ? cJSON_CreateArray() : build_detected_language(code);

    for (size_t t = 0; value && is_list && t < job->text_count; t++) {
        cJSON *entry = build_detected_language(code);

        if (!entry || !cJSON_AddItemToArray(value, entry)) {
            cJSON_Delete(entry);
            cJSON_Delete(value);
            return -1;
        }
    }
    if (!value || !cJSON_AddItemToObject(reply, "detectedLanguage", value)) {
        cJSON_Delete(value);
        return -1;
    }
    return 0;
}

char *translate_job_reply_libre(const translate_job *job, int is_list, int alternatives,
                                const char *detected_language)
{
    cJSON *reply = cJSON_CreateObject();
    cJSON *texts = cJSON_CreateArray(), *alts = cJSON_CreateArray();
    char *json = NULL;

    if (!reply || !texts || !alts)
        goto done;
    if (detected_language &&
        add_detected_language(reply, job, is_list, detected_language) != 0)
        goto done;
    for (size_t t = 0; t < job->text_count; t++) {
        char *best = join_hypothesis(job, t, 0, NULL);
        cJSON *list = best && alternatives > 0 ? build_alternatives(job, t, best, alternatives)
                                               : NULL;

        if (!best || (alternatives > 0 && !list) || add_owned_string(texts, best) != 0) {
            cJSON_Delete(list);
            goto done;
        }
        if (list && !cJSON_AddItemToArray(alts, list)) {
            cJSON_Delete(list);
            goto done;
        }
    }
    if (is_list) {
        if (!cJSON_AddItemToObject(reply, "translatedText", texts))
            goto done;
        texts = NULL;
        if (alternatives > 0) {
            if (!cJSON_AddItemToObject(reply, "alternatives", alts))
                goto done;
            alts = NULL;
        }
    } else {
        if (!cJSON_AddItemReferenceToObject(reply, "translatedText",
                                            cJSON_GetArrayItem(texts, 0)))
            goto done;
        if (alternatives > 0 &&
            !cJSON_AddItemReferenceToObject(reply, "alternatives", cJSON_GetArrayItem(alts, 0)))
            goto done;
    }
    json = cJSON_PrintUnformatted(reply);
done:
    cJSON_Delete(reply);
    cJSON_Delete(texts);
    cJSON_Delete(alts);
    return json;
}

/* Adds {"text": text, "score": score} to array, taking over text. Returns
 * 0 or -1. */
static int add_scored(cJSON *array, char *text, double score)
{
    cJSON *entry = cJSON_CreateObject();
    int ok = entry && text && cJSON_AddStringToObject(entry, "text", text) &&
             cJSON_AddNumberToObject(entry, "score", score);

    free(text);
    if (!ok || !cJSON_AddItemToArray(array, entry)) {
        cJSON_Delete(entry);
        return -1;
    }
    return 0;
}

/* Builds {"text", "score", "n_best"} for text t. Returns NULL when out of
 * memory. */
static cJSON *build_v1_translation(const translate_job *job, size_t t, int n_best)
{
    cJSON *entry = cJSON_CreateObject(), *list = NULL;
    size_t most = max_hypotheses(job, t);
    double score;
    char *best = join_hypothesis(job, t, 0, &score);

    if (!entry || !best || !cJSON_AddStringToObject(entry, "text", best) ||
        !cJSON_AddNumberToObject(entry, "score", score) ||
        !(list = cJSON_AddArrayToObject(entry, "n_best")))
        goto fail;
    for (size_t k = 0; k < most && k < (size_t)n_best; k++) {
        double s;
        char *text = k == 0 ? strdup(best) : join_hypothesis(job, t, k, &s);

        if (add_scored(list, text, k == 0 ? score : s) != 0)
            goto fail;
    }
    free(best);
    return entry;
fail:
    free(best);
    cJSON_Delete(entry);
    return NULL;
}

char *translate_job_reply_v1(const translate_job *job, int n_best, const char *source,
                             const char *target, const translate_job_timing *timing)
{
    cJSON *reply = cJSON_CreateObject(), *list, *times;
    char *json = NULL;

    if (!reply || !(list = cJSON_AddArrayToObject(reply, "translations")))
        goto done;
    for (size_t t = 0; t < job->text_count; t++) {
        cJSON *entry = build_v1_translation(job, t, n_best);

        if (!entry || !cJSON_AddItemToArray(list, entry)) {
            cJSON_Delete(entry);
            goto done;
        }
    }
    if (!cJSON_AddStringToObject(reply, "source", source) ||
        !cJSON_AddStringToObject(reply, "target", target) ||
        !(times = cJSON_AddObjectToObject(reply, "timing")) ||
        !cJSON_AddNumberToObject(times, "queue_ms", timing->queue_ms) ||
        !cJSON_AddNumberToObject(times, "translate_ms", timing->translate_ms) ||
        !cJSON_AddNumberToObject(times, "total_ms", timing->total_ms))
        goto done;
    json = cJSON_PrintUnformatted(reply);
done:
    cJSON_Delete(reply);
    return json;
}
