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

/* One entry of the ranked list of a text: hypothesis k of each of its
 * sentences, joined. */
typedef struct {
    char *text;              /* malloc'd */
    double score;            /* sum of the sentences' scores */
    double normalized_score; /* sum of the sentences' normalized scores */
    int has_empty;           /* a sentence has an empty translation */
} ranked_entry;

/* Returns the index of the first sentence of text t. */
static size_t first_sentence(const translate_job *job, size_t t)
{
    size_t first = 0;

    for (size_t i = 0; i < t; i++)
        first += job->texts[i].sentence_count;
    return first;
}

/* Joins hypothesis k of every sentence of text t (a sentence's last one
 * when it has fewer) into entry. Returns 0, or -1 when out of memory. */
static int join_hypothesis(const translate_job *job, size_t t, size_t k, ranked_entry *entry)
{
    const segmented_text *st = &job->texts[t];
    const char **parts = malloc((st->sentence_count + 1) * sizeof(*parts));
    size_t first = first_sentence(job, t);

    memset(entry, 0, sizeof(*entry));
    if (!parts)
        return -1;
    for (size_t i = 0; i < st->sentence_count; i++) {
        const http_sentence *s = &job->sentences[first + i];
        size_t pick = k < s->count ? k : s->count - 1;

        parts[i] = s->count ? s->hyps[pick].text : "";
        entry->has_empty |= parts[i][0] == '\0';
        entry->score += s->count ? s->hyps[pick].score : 0.0;
        entry->normalized_score += s->count ? s->hyps[pick].normalized_score : 0.0;
    }
    entry->text = segment_join(st, parts);
    free(parts);
    return entry->text ? 0 : -1;
}

/* Returns the most hypotheses any sentence of text t has. */
static size_t max_hypotheses(const translate_job *job, size_t t)
{
    size_t first = first_sentence(job, t), most = 1;

    for (size_t i = 0; i < job->texts[t].sentence_count; i++)
        if (job->sentences[first + i].count > most)
            most = job->sentences[first + i].count;
    return most;
}

/* Returns nonzero when entry a ranks before b: one without an empty
 * sentence translation first, then the higher normalized score. */
static int entry_ranks_before(const ranked_entry *a, const ranked_entry *b)
{
    if (a->has_empty != b->has_empty)
        return !a->has_empty;
    return a->normalized_score > b->normalized_score;
}

static void free_ranked(ranked_entry *entries, size_t count)
{
    for (size_t i = 0; entries && i < count; i++)
        free(entries[i].text);
    free(entries);
}

/* Builds the ranked list of text t: entry k joins hypothesis k of its
 * sentences, and the entries are sorted by entry_ranks_before, ties in
 * order of k. Each sentence's list is already in that order, but joined
 * entries can leave it once a sentence's empty translation is reached.
 * Returns a malloc'd array of *count entries (free_ranked frees it), or
 * NULL when out of memory. */
static ranked_entry *rank_text(const translate_job *job, size_t t, size_t *count)
{
    size_t most = max_hypotheses(job, t);
    ranked_entry *entries = calloc(most, sizeof(*entries));

    *count = 0;
    if (!entries)
        return NULL;
    for (size_t k = 0; k < most; k++) {
        ranked_entry entry;
        size_t at = k;

        if (join_hypothesis(job, t, k, &entry) != 0) {
            free_ranked(entries, k);
            return NULL;
        }
        /* Insertion sort, stable: moves entry before worse ones only. */
        while (at > 0 && entry_ranks_before(&entry, &entries[at - 1])) {
            entries[at] = entries[at - 1];
            at--;
        }
        entries[at] = entry;
    }
    *count = most;
    return entries;
}

/* Adds a copy of string s to array. Returns 0 or -1. */
static int add_string(cJSON *array, const char *s)
{
    cJSON *item = cJSON_CreateString(s);

    if (!item)
        return -1;
    if (!cJSON_AddItemToArray(array, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* Builds the alternatives of a text from its ranked entries: up to count
 * distinct texts after the first, in rank order, other than the first.
 * An entry with an empty sentence translation is left out unless the
 * first entry has one too. Returns a cJSON array, or NULL when out of
 * memory. */
static cJSON *build_alternatives(const ranked_entry *entries, size_t entry_count, int count)
{
    cJSON *list = cJSON_CreateArray();

    for (size_t k = 1; list && k < entry_count && cJSON_GetArraySize(list) < count; k++) {
        int seen = strcmp(entries[k].text, entries[0].text) == 0;
        const cJSON *item;

        if (entries[k].has_empty && !entries[0].has_empty)
            continue;
        cJSON_ArrayForEach(item, list) seen |= strcmp(item->valuestring, entries[k].text) == 0;
        if (seen)
            continue;
        if (add_string(list, entries[k].text) != 0) {
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
        size_t count;
        ranked_entry *entries = rank_text(job, t, &count);
        cJSON *list = entries && alternatives > 0
                          ? build_alternatives(entries, count, alternatives)
                          : NULL;
        int failed = !entries || (alternatives > 0 && !list) ||
                     add_string(texts, entries[0].text) != 0;

        free_ranked(entries, count);
        if (failed) {
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

/* Adds "text", "score" and "normalized_score" of entry to object. Returns
 * 0 or -1. */
static int add_scored_fields(cJSON *object, const ranked_entry *entry)
{
    return cJSON_AddStringToObject(object, "text", entry->text) &&
                   cJSON_AddNumberToObject(object, "score", entry->score) &&
                   cJSON_AddNumberToObject(object, "normalized_score",
                                           entry->normalized_score)
               ? 0
               : -1;
}

/* Builds {"text", "score", "normalized_score", "n_best"} for text t.
 * Returns NULL when out of memory. */
static cJSON *build_v1_translation(const translate_job *job, size_t t, int n_best)
{
    cJSON *entry = cJSON_CreateObject(), *list = NULL;
    size_t count;
    ranked_entry *entries = rank_text(job, t, &count);

    if (!entry || !entries || add_scored_fields(entry, &entries[0]) != 0 ||
        !(list = cJSON_AddArrayToObject(entry, "n_best")))
        goto fail;
    for (size_t k = 0; k < count && k < (size_t)n_best; k++) {
        cJSON *hypothesis = cJSON_CreateObject();

        if (!hypothesis || add_scored_fields(hypothesis, &entries[k]) != 0 ||
            !cJSON_AddItemToArray(list, hypothesis)) {
            cJSON_Delete(hypothesis);
            goto fail;
        }
    }
    free_ranked(entries, count);
    return entry;
fail:
    free_ranked(entries, count);
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
