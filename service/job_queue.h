/* Bounded FIFO of jobs between the threads that accept work and a pool of
 * threads that do it.
 *
 * The queue is intrusive: a job embeds a job_queue_node and the queue only
 * links nodes, so pushing never allocates. One mutex and one condition
 * variable guard it. job_queue_pop hands out up to max nodes at once, and
 * job_queue_pop_batch hands out nodes up to a total weight, waiting a short
 * while for more, which lets a consumer batch several waiting jobs into one
 * piece of work.
 *
 * Every node carries a deadline. job_queue_take_expired removes the nodes
 * whose deadline has passed while they wait, so that a job can get its reply
 * at its deadline even when every consumer is busy. A node belongs to the
 * queue from push until one call removes it (pop, pop_batch, take_expired
 * or close), which happens under the mutex, so exactly one caller gets it.
 * NOTE: take_expired scans the whole queue each time the earliest deadline
 * it knows of comes, O(length) per scan, which suits queues of thousands
 * of nodes rather than millions.
 */
#ifndef SEQMT_JOB_QUEUE_H
#define SEQMT_JOB_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

typedef struct job_queue_node {
    struct job_queue_node *next;
    size_t weight;            /* size of the job for job_queue_pop_batch, e.g. sentences */
    struct timespec deadline; /* CLOCK_MONOTONIC time at which the job expires */
} job_queue_node;

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t not_empty;      /* signalled on push and on close */
    pthread_cond_t expiry_changed; /* signalled when a push brings next_expiry
                                      forward, and on close */
    job_queue_node *head, *tail;
    size_t length, capacity;
    struct timespec next_expiry; /* when has_next_expiry: no queued deadline is
                                    earlier. After pops it may be earlier than
                                    every queued one, which costs one extra scan */
    int has_next_expiry;
    int closed;
} job_queue;

enum { JOB_QUEUE_FULL = -1, JOB_QUEUE_CLOSED = -2 };

/* Initializes an empty, open queue for at most capacity nodes
 * (capacity >= 1). Returns 0, or -1 when pthreads cannot create the mutex
 * or condition variable. */
int job_queue_init(job_queue *queue, size_t capacity);

/* Destroys the mutex and condition variable. The queue must be empty and no
 * thread may be waiting in job_queue_pop. */
void job_queue_destroy(job_queue *queue);

/* Appends node, whose deadline the caller has set. Returns 0, JOB_QUEUE_FULL when capacity nodes are waiting,
 * or JOB_QUEUE_CLOSED after job_queue_close. The queue links node but never
 * frees it. */
int job_queue_push(job_queue *queue, job_queue_node *node);

/* Waits until at least one node is queued, then removes up to max of them
 * (max >= 1) in FIFO order into nodes[0..]. Returns how many it removed, or
 * 0 once the queue is closed: the signal for a consumer thread to exit. */
size_t job_queue_pop(job_queue *queue, job_queue_node **nodes, size_t max);

/* Waits until at least one node is queued, then removes nodes in FIFO
 * order into nodes[0..max) while their total weight stays within
 * max_weight. The first node is always taken, even when it alone weighs
 * more. While the total is below max_weight and fewer than max nodes are
 * taken, it waits up to wait_ms milliseconds after taking the first node
 * for more. It never waits past the deadline of a node already taken, and
 * it stops early at a node that would pass max_weight. Returns how many it
 * removed, or 0 once the queue is closed with none taken. Nodes taken
 * before a close are returned, not lost. */
size_t job_queue_pop_batch(job_queue *queue, job_queue_node **nodes, size_t max,
                           size_t max_weight, unsigned wait_ms);

/* Waits until the deadline of at least one queued node has passed, then
 * removes every such node. Returns them linked through next in FIFO order
 * for the caller to finish, or NULL once the queue is closed. Meant for one
 * thread that replies to expired jobs while the consumers are busy. */
job_queue_node *job_queue_take_expired(job_queue *queue);

/* Number of nodes waiting now. */
size_t job_queue_length(job_queue *queue);

/* Closes the queue: later pushes fail, and every waiting job_queue_pop
 * and job_queue_take_expired returns 0 or NULL. Returns the nodes that were still waiting, linked through next
 * in FIFO order, for the caller to finish. */
job_queue_node *job_queue_close(job_queue *queue);

#endif
