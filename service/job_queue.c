/* Bounded FIFO of jobs under one mutex and two condition variables. See
 * job_queue.h for the contract. */
#include "job_queue.h"

#include <errno.h>
#include <time.h>

/* Returns nonzero when a is earlier than b. */
static int time_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int job_queue_init(job_queue *queue, size_t capacity)
{
    pthread_condattr_t attr;
    int failed;

    queue->head = queue->tail = NULL;
    queue->length = 0;
    queue->capacity = capacity;
    queue->has_next_expiry = 0;
    queue->closed = 0;
    if (pthread_mutex_init(&queue->mutex, NULL) != 0)
        return -1;

    /* Timed waits in job_queue_pop_batch and job_queue_take_expired
     * measure on CLOCK_MONOTONIC. */
    if (pthread_condattr_init(&attr) != 0) {
        pthread_mutex_destroy(&queue->mutex);
        return -1;
    }
    failed = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
             pthread_cond_init(&queue->not_empty, &attr) != 0;
    if (!failed && pthread_cond_init(&queue->expiry_changed, &attr) != 0) {
        pthread_cond_destroy(&queue->not_empty);
        failed = 1;
    }
    pthread_condattr_destroy(&attr);
    if (failed) {
        pthread_mutex_destroy(&queue->mutex);
        return -1;
    }
    return 0;
}

void job_queue_destroy(job_queue *queue)
{
    pthread_cond_destroy(&queue->expiry_changed);
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

        /* Wake the expiry waiter only when it would otherwise sleep past
         * this node's deadline. */
        if (!queue->has_next_expiry || time_before(&node->deadline, &queue->next_expiry)) {
            queue->next_expiry = node->deadline;
            queue->has_next_expiry = 1;
            pthread_cond_signal(&queue->expiry_changed);
        }
    }
    pthread_mutex_unlock(&queue->mutex);
    return rc;
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

size_t job_queue_pop(job_queue *queue, job_queue_node **nodes, size_t max)
{
    size_t count = 0;

    pthread_mutex_lock(&queue->mutex);
    while (!queue->closed && !queue->head)
        pthread_cond_wait(&queue->not_empty, &queue->mutex);
    while (!queue->closed && queue->head && count < max)
        take_head(queue, nodes, &count);
    pthread_mutex_unlock(&queue->mutex);
    return count;
}

size_t job_queue_pop_batch(job_queue *queue, job_queue_node **nodes, size_t max,
                           size_t max_weight, unsigned wait_ms)
{
    struct timespec wait_until;
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

    /* Wait for more nodes until wait_ms have passed or the first deadline
     * among the taken nodes comes, whichever is earlier. */
    clock_gettime(CLOCK_MONOTONIC, &wait_until);
    wait_until.tv_sec += wait_ms / 1000;
    wait_until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (wait_until.tv_nsec >= 1000000000L) {
        wait_until.tv_sec++;
        wait_until.tv_nsec -= 1000000000L;
    }
    if (time_before(&nodes[0]->deadline, &wait_until))
        wait_until = nodes[0]->deadline;
    while (count < max && weight < max_weight && !queue->closed) {
        if (!queue->head) {
            if (pthread_cond_timedwait(&queue->not_empty, &queue->mutex, &wait_until) ==
                ETIMEDOUT)
                break;
            continue;
        }
        if (queue->head->weight > max_weight - weight)
            break;
        weight += queue->head->weight;
        if (time_before(&queue->head->deadline, &wait_until))
            wait_until = queue->head->deadline;
        take_head(queue, nodes, &count);
    }
    pthread_mutex_unlock(&queue->mutex);
    return count;
}

/* Unlinks every node whose deadline is not after now and returns them in
 * FIFO order, and sets next_expiry to the earliest deadline left. The
 * queue is locked. */
static job_queue_node *unlink_expired(job_queue *queue, const struct timespec *now)
{
    job_queue_node *expired = NULL, **expired_tail = &expired;
    job_queue_node **link = &queue->head, *prev = NULL;

    queue->has_next_expiry = 0;
    while (*link) {
        job_queue_node *node = *link;

        if (!time_before(now, &node->deadline)) {
            *link = node->next;
            queue->length--;
            node->next = NULL;
            *expired_tail = node;
            expired_tail = &node->next;
            continue;
        }
        if (!queue->has_next_expiry || time_before(&node->deadline, &queue->next_expiry)) {
            queue->next_expiry = node->deadline;
            queue->has_next_expiry = 1;
        }
        prev = node;
        link = &node->next;
    }
    queue->tail = prev;
    return expired;
}

job_queue_node *job_queue_take_expired(job_queue *queue)
{
    job_queue_node *expired = NULL;

    pthread_mutex_lock(&queue->mutex);
    while (!queue->closed) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        expired = unlink_expired(queue, &now);
        if (expired)
            break;
        if (queue->has_next_expiry)
            pthread_cond_timedwait(&queue->expiry_changed, &queue->mutex, &queue->next_expiry);
        else
            pthread_cond_wait(&queue->expiry_changed, &queue->mutex);
    }
    pthread_mutex_unlock(&queue->mutex);
    return expired;
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
    queue->has_next_expiry = 0;
    pthread_cond_broadcast(&queue->not_empty);
    pthread_cond_broadcast(&queue->expiry_changed);
    pthread_mutex_unlock(&queue->mutex);
    return waiting;
}
