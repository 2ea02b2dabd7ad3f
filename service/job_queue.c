/* Bounded FIFO of jobs under one mutex and one condition variable. See
 * job_queue.h for the contract. */
#include "job_queue.h"

#include <errno.h>
#include <time.h>

int job_queue_init(job_queue *queue, size_t capacity)
{
    queue->head = queue->tail = NULL;
    queue->length = 0;
    queue->capacity = capacity;
    queue->closed = 0;
    if (pthread_mutex_init(&queue->mutex, NULL) != 0)
        return -1;
    pthread_condattr_t attr;
    int failed;

    /* Timed waits in job_queue_pop_batch measure on CLOCK_MONOTONIC. */
    if (pthread_condattr_init(&attr) != 0) {
        pthread_mutex_destroy(&queue->mutex);
        return -1;
    }
    failed = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
             pthread_cond_init(&queue->not_empty, &attr) != 0;
    pthread_condattr_destroy(&attr);
    if (failed) {
        pthread_mutex_destroy(&queue->mutex);
        return -1;
    }
    return 0;
}

void job_queue_destroy(job_queue *queue)
{
    pthread_cond_destroy(&queue->not_empty);
    pthread_mutex_destroy(&queue->mutex);
}

int job_queue_push(job_queue *queue, job_queue_node *node)
{
    int rc = 0;

    node->next = NULL;
    pthread_mutex_lock(&queue->mutex);
    if (queue->closed) {
        rc = JOB_QUEUE_CLOSED;
    } else if (queue->length >= queue->capacity) {
        rc = JOB_QUEUE_FULL;
    } else {
        if (queue->tail)
            queue->tail->next = node;
        else
            queue->head = node;
        queue->tail = node;
        queue->length++;
        pthread_cond_signal(&queue->not_empty);
    }
    pthread_mutex_unlock(&queue->mutex);
    return rc;
}

size_t job_queue_pop(job_queue *queue, job_queue_node **nodes, size_t max)
{
    size_t count = 0;

    pthread_mutex_lock(&queue->mutex);
    while (!queue->closed && !queue->head)
        pthread_cond_wait(&queue->not_empty, &queue->mutex);
    while (!queue->closed && queue->head && count < max) {
        job_queue_node *node = queue->head;

        queue->head = node->next;
        if (!queue->head)
            queue->tail = NULL;
        queue->length--;
        node->next = NULL;
        nodes[count++] = node;
    }
    pthread_mutex_unlock(&queue->mutex);
    return count;
}

/* Removes the head node into nodes[*count]. The queue is locked. */
static void take_head(job_queue *queue, job_queue_node **nodes, size_t *count)
{
    job_queue_node *node = queue->head;

    queue->head = node->next;
    if (!queue->head)
        queue->tail = NULL;
    queue->length--;
    node->next = NULL;
    nodes[(*count)++] = node;
}

size_t job_queue_pop_batch(job_queue *queue, job_queue_node **nodes, size_t max,
                           size_t max_weight, unsigned wait_ms)
{
    struct timespec deadline;
    size_t count = 0, weight = 0;

    pthread_mutex_lock(&queue->mutex);
    while (!queue->closed && !queue->head)
        pthread_cond_wait(&queue->not_empty, &queue->mutex);
    if (queue->closed) {
        pthread_mutex_unlock(&queue->mutex);
        return 0;
    }
    weight = queue->head->weight;
    take_head(queue, nodes, &count);

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (count < max && weight < max_weight && !queue->closed) {
        if (!queue->head) {
            if (pthread_cond_timedwait(&queue->not_empty, &queue->mutex, &deadline) ==
                ETIMEDOUT)
                break;
            continue;
        }
        if (queue->head->weight > max_weight - weight)
            break;
        weight += queue->head->weight;
        take_head(queue, nodes, &count);
    }
    pthread_mutex_unlock(&queue->mutex);
    return count;
}

size_t job_queue_length(job_queue *queue)
{
    size_t length;

    pthread_mutex_lock(&queue->mutex);
    length = queue->length;
    pthread_mutex_unlock(&queue->mutex);
    return length;
}

job_queue_node *job_queue_close(job_queue *queue)
{
    job_queue_node *waiting;

    pthread_mutex_lock(&queue->mutex);
    queue->closed = 1;
    waiting = queue->head;
    queue->head = queue->tail = NULL;
    queue->length = 0;
    pthread_cond_broadcast(&queue->not_empty);
    pthread_mutex_unlock(&queue->mutex);
    return waiting;
}
