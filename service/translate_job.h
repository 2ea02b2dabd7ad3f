/* The sentences of one translation request and the replies built from
 * their hypotheses.
 *
 * A job splits every text of a request into sentences (segment.h) and
 * lists them all as http_sentence entries for the translate callback. Once
 * the callback has filled in the hypotheses, the job joins them back per
 * text into LibreTranslate's reply or the /v1/translate reply.
 *
 * Entry k of the ranked list of a text joins the k-th hypothesis of each
 * of its sentences (a sentence's last one when it has fewer). Its score and
 * normalized_score are the sums of the sentences' scores and normalized
 * scores. The list is sorted by normalized_score, best first, except that
 * entries in which a sentence has an empty translation come last. For a
 * text of one sentence that is exactly the sentence's n-best list. The
 * translation, the alternatives and the n-best list all come from it.
 */
#ifndef SEQMT_TRANSLATE_JOB_H
#define SEQMT_TRANSLATE_JOB_H

#include <stddef.h>

#include "http.h"
#include "segment.h"

typedef struct {
    segmented_text *texts;    /* [text_count] */
    size_t text_count;
    http_sentence *sentences; /* [sentence_count], the sentences of all texts in order */
    size_t sentence_count;
} translate_job;

/* Splits texts[0..count) (HTML when html is set) into job, which the
 * caller zeroes, and sets n_best and max_length of every sentence.
 * Returns 0, or -1 when out of memory; job needs translate_job_free in
 * either case. */
int translate_job_init(translate_job *job, const char *const *texts, size_t count, int html,
                       int n_best, int max_length);

/* Returns the index of the text that sentence i belongs to. */
size_t translate_job_text_of(const translate_job *job, size_t i);

/* Frees the hypotheses of every sentence and resets their outputs. */
void translate_job_clear_results(translate_job *job);

/* Frees what job owns and zeroes it. */
void translate_job_free(translate_job *job);

/* Builds LibreTranslate's reply: {"translatedText": text} with up to
 * alternatives entries in "alternatives" when alternatives > 0, or arrays
 * of both when is_list is set. The translation is the first entry of the
 * ranked list and the alternatives follow in rank order. Alternatives equal
 * to the translation or to an earlier alternative are left out, and so are
 * those with an empty sentence translation when the translation has none.
 * When detected_language is not NULL, the reply also has
 * "detectedLanguage": {"confidence": 100, "language": detected_language},
 * or an array of one such object per text when is_list is set. Returns
 * malloc'd JSON text, or NULL when out of memory. */
char *translate_job_reply_libre(const translate_job *job, int is_list, int alternatives,
                                const char *detected_language);

/* Timings of a /v1/translate reply, in milliseconds. */
typedef struct {
    double queue_ms;     /* from the request to the start of its translation */
    double translate_ms; /* the translation itself */
    double total_ms;     /* from the request to the reply */
} translate_job_timing;

/* Builds the /v1/translate reply: {"translations": [{"text", "score",
 * "normalized_score", "n_best": [{"text", "score", "normalized_score"}...]}
 * ...], "source", "target", "timing"}, with the first n_best entries of
 * each text's ranked list. Returns malloc'd JSON text, or NULL when out of
 * memory. */
char *translate_job_reply_v1(const translate_job *job, int n_best, const char *source,
                             const char *target, const translate_job_timing *timing);

#endif
