#include "srv_pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct task {
    srv_task_fn fn;
    void *arg;
    struct task *next;
} task;

struct srv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    task *head, *tail;
    int stop;
    int n;
    pthread_t *threads;
};

static void *pool_main(void *arg)
{
    srv_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        task *t = p->head;
        if (!t) break;
        p->head = t->next;
        if (!p->head) p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

srv_pool *srv_pool_start(int threads, sx_status *st)
{
    srv_pool *p = calloc(1, sizeof *p);
    if (threads < 1) threads = 1;
    if (p) p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p || !p->threads) {
        free(p);
        sx_status_set(st, SX_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->n < threads; p->n++) {
        if (pthread_create(&p->threads[p->n], NULL, pool_main, p) != 0) {
            sx_status_set(st, SX_EINTERNAL, "cannot start a pool thread");
            srv_pool_stop(p);
            return NULL;
        }
    }
    return p;
}

int srv_pool_submit(srv_pool *p, srv_task_fn fn, void *arg)
{
    task *t = malloc(sizeof *t);
    if (!t) return SX_ENOMEM;
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        free(t);
        return SX_ESTATE;
    }
    if (p->tail) p->tail->next = t;
    else p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return SX_OK;
}

void srv_pool_stop(srv_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
