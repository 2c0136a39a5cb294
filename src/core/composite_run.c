/*
 * composite_run.c - running one composite call's child operations.
 *
 * Sequential runs are a plain loop in the caller's thread. Parallel runs put
 * one task per child on the composite's persistent pool and wait, on the
 * composite's clock, until every child answered, enough succeeded, or the
 * deadline passed; children known to answer within microseconds the
 * caller runs itself meanwhile (choose_mine).
 *
 * A child that has not answered by the deadline cannot be stopped (it is a
 * blocking call on another thread), so the call's state must outlive the
 * caller. Everything a task touches - the operation, the parameters, the
 * member (and through it the child strategy), the slot for its result -
 * lives in one "call" block with a reference count: one reference for the
 * caller and one per queued task. Whoever drops the last reference frees it,
 * so a late finisher neither writes into freed memory nor leaks. Its result
 * is discarded, except that machines a late create made are terminated
 * through the child that made them, because nobody else knows they exist.
 *
 * Results travel without locks: a task writes its slot and publishes it
 * with one compare-and-swap, the caller polls a counter for a few
 * microseconds and only then sleeps on a condition variable, which a task
 * signals only when the caller said it sleeps.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/composite_internal.h"
#include "core/strategy_internal.h"
#include "provisio/error.h"
#include "provisio/log.h"

typedef struct call call;

enum { SLOT_PENDING = 0, SLOT_DONE, SLOT_GIVEN_UP };

/*
 * A slot's result is written by its task and published by one CAS of
 * `state` from PENDING to DONE; the caller, when it stops waiting, CASes
 * every slot from PENDING to GIVEN_UP. Exactly one of the two wins, so the
 * result is read either by the caller (DONE) or by the late task itself
 * (GIVEN_UP), never by both, and no lock is taken on the way.
 */
typedef struct slot {
	pv_pool_task task; /* first: the pool hands it back */
	call *call;
	cmember *m; /* one reference */
	json_t *params;
	int64_t requested;
	pv_result res;
	uint64_t seq; /* completion order, set before DONE is published */
	atomic_int state;
	bool mine;    /* run by the caller itself, not queued */
} slot;

struct call {
	atomic_uint refs;           /* the caller + one per queued task */
	atomic_bool given_up;       /* tasks not started yet do not start */
	atomic_size_t finished, successes, next_seq;
	atomic_int sleeping;        /* the caller sleeps (or is about to) on `done` */
	pthread_mutex_t lock;       /* only for sleeping and waking the caller */
	pthread_cond_t done;
	size_t n;
	composite *c;
	pv_op_type type;
	json_t *context;
	uint64_t deadline_ns;
	slot slots[];
};

#define WAIT_SLICE_NS (20 * PV_NS_PER_MS)
/* How long the caller polls before sleeping: fast children answer in a few
 * microseconds, and a sleep plus wake-up costs more than that. */
#define SPIN_NS (20 * 1000ull)
#define PAUSE_NS (1 * 1000ull)

static bool is_abstention(pv_op_type type, const pv_result *r)
{
	return !r->success && strcmp(r->error_code, PV_ERR_NOT_FOUND) == 0 &&
	       (type == PV_OP_TERMINATE_INSTANCES || type == PV_OP_GET_INSTANCE_STATUS);
}

/* Remembers roughly how long a member's call took (UINT64_MAX: unknown or
 * timed out): written only when it halves, doubles or becomes (un)known,
 * so callers on many cores mostly read it. */
static void note_latency(cmember *m, uint64_t ns)
{
	uint64_t last = atomic_load_explicit(&m->last_ns, memory_order_relaxed);
	bool changed = ns == UINT64_MAX || last == UINT64_MAX ? ns != last
							       : ns / 2 > last || ns < last / 2;
	if (changed)
		atomic_store_explicit(&m->last_ns, ns, memory_order_relaxed);
}

void pv_composite_count_member(cmember *m, const pv_result *r)
{
	pv_counters_add(&m->counts, r->success ? MC_SUCCESSES : MC_FAILURES, 1);
	bool timeout = !r->success && strcmp(r->error_code, PV_ERR_TIMEOUT) == 0;
	if (timeout)
		pv_counters_add(&m->counts, MC_TIMEOUTS, 1);
	note_latency(m, timeout || !r->latency_ns ? UINT64_MAX : r->latency_ns);
}

void child_outcomes_clear(child_outcome *o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pv_result_clear(&o[i].res);
}

uint64_t pv_composite_deadline_at(const composite *c, const pv_operation *op, uint64_t now)
{
	uint64_t limit = now + c->timeout_ns;
	return op->deadline_ns && op->deadline_ns < limit ? op->deadline_ns : limit;
}

uint64_t pv_composite_deadline(const composite *c, const pv_operation *op)
{
	return pv_composite_deadline_at(c, op, pv_clock_now(c->clock));
}

/* ---- sequential --------------------------------------------------------- */

static void run_sequential(composite *c, const pv_operation *op, child_job *jobs, size_t n,
			   size_t stop_after, child_outcome *out, uint64_t *now)
{
	size_t successes = 0;
	uint64_t at = now ? *now : 0;
	for (size_t i = 0; i < n; i++) {
		/* Each field set once, not the whole outcome zeroed first: the
		 * result is most of its 300 bytes, and the call initializes it. */
		out[i].m = jobs[i].m;
		out[i].requested = jobs[i].requested;
		out[i].seq = 0;
		out[i].abstained = false;
		out[i].cancelled = stop_after && successes >= stop_after;
		if (out[i].cancelled) {
			pv_result_init(&out[i].res);
			continue;
		}
		pv_operation child_op = *op;
		child_op.params = jobs[i].params;
		at = pv_strategy_execute_from(jobs[i].m->s, &child_op, &out[i].res, c->clock, at);
		pv_composite_count_member(jobs[i].m, &out[i].res);
		out[i].seq = i + 1;
		out[i].abstained = is_abstention(op->type, &out[i].res);
		successes += out[i].res.success;
	}
	for (size_t i = 0; i < n; i++)
		json_decref(jobs[i].params);
	if (now)
		*now = at;
}

/* ---- parallel ----------------------------------------------------------- */

static void call_unref(call *cl)
{
	if (atomic_fetch_sub_explicit(&cl->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < cl->n; i++) {
		pv_result_clear(&cl->slots[i].res);
		json_decref(cl->slots[i].params);
		pv_cmember_unref(cl->slots[i].m);
	}
	json_decref(cl->context);
	pthread_cond_destroy(&cl->done);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

/* Machines made by a create nobody waits for any more: terminate them
 * through the child that made them (pool thread, no lock held). */
static void reap_late_create(call *cl, slot *sl, pv_result *res)
{
	json_t *ids = res->data ? json_object_get(res->data, "instance_ids") : NULL;
	if (!res->success || !json_array_size(ids))
		return;
	pv_operation op = {.type = PV_OP_TERMINATE_INSTANCES,
			   .params = json_pack("{s:O}", "instance_ids", ids),
			   .context = cl->context,
			   .deadline_ns = pv_composite_deadline(cl->c, &(pv_operation){0})};
	pv_result tr;
	pv_strategy_execute(sl->m->s, &op, &tr, cl->c->clock);
	pv_counters_add(&cl->c->counts, CC_LATE_REAPED, json_array_size(ids));
	pv_log(tr.success ? PV_LOG_WARN : PV_LOG_ERROR,
	       "composite '%s': child '%s' created %zu machine(s) after the call timed out; "
	       "terminating them %s%s",
	       cl->c->base.name, sl->m->s->name, json_array_size(ids),
	       tr.success ? "succeeded" : "FAILED: ", tr.success ? "" : tr.error_code);
	pv_result_clear(&tr);
	json_decref(op.params);
}

/* Publishes a finished slot, or returns false when the caller gave up. */
static bool publish(call *cl, slot *sl)
{
	sl->seq = atomic_fetch_add(&cl->next_seq, 1) + 1;
	int expect = SLOT_PENDING;
	if (!atomic_compare_exchange_strong(&sl->state, &expect, SLOT_DONE))
		return false;
	if (sl->res.success)
		atomic_fetch_add(&cl->successes, 1);
	atomic_fetch_add(&cl->finished, 1);
	/* Dekker with the caller: it sets `sleeping` then re-reads `finished`. */
	if (atomic_load(&cl->sleeping)) {
		pthread_mutex_lock(&cl->lock);
		pthread_cond_broadcast(&cl->done);
		pthread_mutex_unlock(&cl->lock);
	}
	return true;
}

/* Runs one child into its slot and publishes it. false: too late, the
 * result is the runner's to drop. */
static bool slot_call(call *cl, slot *sl)
{
	pv_operation op = {cl->type, sl->params, cl->context, cl->deadline_ns};
	pv_strategy_execute(sl->m->s, &op, &sl->res, cl->c->clock);
	pv_composite_count_member(sl->m, &sl->res);
	return publish(cl, sl);
}

static void slot_run(pv_pool_task *task)
{
	slot *sl = (slot *)task;
	call *cl = sl->call;
	if (atomic_load(&cl->given_up)) { /* nobody waits: start nothing (above all, machines) */
		call_unref(cl);
		return;
	}
	if (!slot_call(cl, sl)) { /* late: the result is ours to drop */
		pv_counters_add(&cl->c->counts, CC_LATE_RESULTS, 1);
		if (cl->type == PV_OP_CREATE_INSTANCES)
			reap_late_create(cl, sl, &sl->res);
		pv_result_clear(&sl->res);
	}
	call_unref(cl);
}

static call *call_new(composite *c, const pv_operation *op, child_job *jobs, size_t n)
{
	call *cl = calloc(1, sizeof *cl + n * sizeof cl->slots[0]);
	if (!cl)
		return NULL;
	atomic_init(&cl->refs, 1);
	pthread_mutex_init(&cl->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->done, &attr);
	pthread_condattr_destroy(&attr);
	cl->n = n;
	cl->c = c;
	cl->type = op->type;
	cl->context = json_incref(op->context);
	cl->deadline_ns = op->deadline_ns;
	for (size_t i = 0; i < n; i++) {
		slot *sl = &cl->slots[i];
		sl->task.run = slot_run;
		sl->call = cl;
		sl->m = pv_cmember_ref(jobs[i].m);
		sl->params = jobs[i].params; /* taken over */
		sl->requested = jobs[i].requested;
		jobs[i].params = NULL;
	}
	return cl;
}

/* Queues the slots the caller does not run itself. */
static void submit_all(composite *c, call *cl)
{
	pv_pool_task *stack[16];
	pv_pool_task **tasks = cl->n <= 16 ? stack : malloc(cl->n * sizeof *tasks);
	size_t want = 0, queued = 0;
	if (tasks) {
		for (size_t i = 0; i < cl->n; i++)
			if (!cl->slots[i].mine)
				tasks[want++] = &cl->slots[i].task;
		atomic_fetch_add_explicit(&cl->refs, (unsigned)want, memory_order_relaxed);
		queued = want ? pv_pool_submit_many(c->pool, tasks, want) : 0;
		atomic_fetch_sub_explicit(&cl->refs, (unsigned)(want - queued), memory_order_relaxed);
	}
	/* Those that could not be queued (the first `queued` were): say so. */
	for (size_t i = 0, k = 0; i < cl->n; i++) {
		slot *sl = &cl->slots[i];
		if (sl->mine || (tasks && k++ < queued))
			continue;
		pv_result_fail(&sl->res, PV_ERR_INTERNAL, PV_CLASS_INTERNAL,
			       "composite '%s': cannot queue child '%s'", c->base.name,
			       sl->m->s->name);
		pv_result_set_provider(&sl->res, sl->m->s->name);
		sl->res.attempts = 1;
		publish(cl, sl);
	}
	if (tasks != stack)
		free(tasks);
}

/*
 * Children known to answer within microseconds are run by the caller
 * itself: handing a call to a pool thread and collecting it costs more than
 * such a call (a wake-up, two cache-line transfers; tens of microseconds on
 * a busy machine). The caller takes them while their last latencies add up
 * to INLINE_BUDGET_NS; everything else, and every child the first time, goes
 * to the pool, where the deadline holds whatever the child does. (A quick
 * child that suddenly hangs holds the caller as long as it ignores its
 * deadline, as in sequential mode.)
 */
#define INLINE_BUDGET_NS (20 * 1000ull)

static void choose_mine(call *cl)
{
	uint64_t budget = INLINE_BUDGET_NS;
	for (size_t i = 0; i < cl->n; i++) {
		uint64_t last = atomic_load_explicit(&cl->slots[i].m->last_ns, memory_order_relaxed);
		if ((cl->slots[i].mine = last <= budget))
			budget -= last;
	}
}

/* Runs the caller's own children, while the answer is not known yet. */
static void run_mine(call *cl, size_t stop_after)
{
	for (size_t i = 0; i < cl->n; i++) {
		if (stop_after && atomic_load(&cl->successes) >= stop_after)
			return; /* the rest are cancelled: not needed */
		if (cl->slots[i].mine)
			slot_call(cl, &cl->slots[i]);
	}
}

typedef struct wait_arg {
	call *cl;
	size_t stop_after;
} wait_arg;

static bool answered(void *arg)
{
	wait_arg *a = arg;
	return atomic_load(&a->cl->finished) >= a->cl->n ||
	       (a->stop_after && atomic_load(&a->cl->successes) >= a->stop_after);
}

/* Waits until done, enough successes, or the deadline on the composite's
 * clock: first polling briefly, then asleep in slices so that a manual
 * clock moved by another thread is noticed. */
static void wait_for(call *cl, size_t stop_after)
{
	wait_arg a = {cl, stop_after};
	if (pv_spin_until(answered, &a, PAUSE_NS, SPIN_NS))
		return;
	const pv_clock *clock = cl->c->clock;
	pthread_mutex_lock(&cl->lock);
	for (;;) {
		atomic_store(&cl->sleeping, 1);
		if (answered(&a))
			break;
		uint64_t now = pv_clock_now(clock);
		if (now >= cl->deadline_ns)
			break;
		uint64_t wait = cl->deadline_ns - now;
		if (wait > WAIT_SLICE_NS)
			wait = WAIT_SLICE_NS;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t abs_ns = (uint64_t)ts.tv_sec * PV_NS_PER_S + (uint64_t)ts.tv_nsec + wait;
		ts.tv_sec = (time_t)(abs_ns / PV_NS_PER_S);
		ts.tv_nsec = (long)(abs_ns % PV_NS_PER_S);
		pthread_cond_timedwait(&cl->done, &cl->lock, &ts);
	}
	atomic_store(&cl->sleeping, 0);
	pthread_mutex_unlock(&cl->lock);
}

/* Takes what finished into `out`; the rest timed out or was not needed. */
static void collect(call *cl, const pv_operation *op, size_t stop_after, child_outcome *out)
{
	atomic_store(&cl->given_up, true);
	bool enough = stop_after && atomic_load(&cl->successes) >= stop_after;
	for (size_t i = 0; i < cl->n; i++) {
		slot *sl = &cl->slots[i];
		child_outcome *o = &out[i];
		o->m = sl->m;
		o->requested = sl->requested;
		int expect = SLOT_PENDING;
		if (!atomic_compare_exchange_strong(&sl->state, &expect, SLOT_GIVEN_UP)) {
			o->seq = sl->seq; /* DONE: the task is finished with the slot */
			o->res = sl->res;
			memset(&sl->res, 0, sizeof sl->res);
			o->abstained = is_abstention(op->type, &o->res);
		} else if (enough) {
			o->cancelled = true;
		} else {
			pv_result_fail(&o->res, PV_ERR_TIMEOUT, PV_CLASS_TRANSIENT,
				       "composite '%s': child '%s' did not answer in time",
				       cl->c->base.name, sl->m->s->name);
			pv_result_set_provider(&o->res, sl->m->s->name);
			o->res.attempts = 1;
			pv_counters_add(&sl->m->counts, MC_TIMEOUTS, 1);
			note_latency(sl->m, UINT64_MAX); /* not one for the caller to run */
		}
	}
}

static void run_parallel(composite *c, const pv_operation *op, child_job *jobs, size_t n,
			 size_t stop_after, child_outcome *out)
{
	call *cl = call_new(c, op, jobs, n);
	if (!cl) {
		for (size_t i = 0; i < n; i++) {
			out[i].m = jobs[i].m;
			pv_result_fail(&out[i].res, PV_ERR_INTERNAL, PV_CLASS_INTERNAL, "out of memory");
			json_decref(jobs[i].params);
		}
		return;
	}
	choose_mine(cl);
	submit_all(c, cl);
	run_mine(cl, stop_after);
	wait_for(cl, stop_after);
	collect(cl, op, stop_after, out);
	call_unref(cl);
}

void pv_composite_run(composite *c, const pv_operation *op, child_job *jobs, size_t n,
		      bool parallel, size_t stop_after, child_outcome *out, uint64_t *now)
{
	if (parallel) {
		memset(out, 0, n * sizeof *out);
		run_parallel(c, op, jobs, n, stop_after, out);
		if (now)
			*now = 0;
	} else {
		run_sequential(c, op, jobs, n, stop_after, out, now);
	}
}
