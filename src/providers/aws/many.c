/*
 * many.c - many EC2 calls in flight from one thread (libcurl's multi
 * interface), for operations made of independent calls: DescribeInstances
 * over thousands of ids is a dozen batches, each a round trip. Sent one
 * after another they cost the sum of the latencies; with up to
 * `describe_max_in_flight` in flight they cost about the sum divided by
 * that number, without a thread per call.
 *
 * Each call keeps every rule of the single-call path (aws_do): a token from
 * its bucket before it starts, the same signed request (http.c's
 * aws_http_xfer_begin), the same classification, retries of transient and
 * throttled failures after a backoff with full jitter, and nothing past the
 * operation deadline: running transfers are cut by their own timeout (the
 * time left) and aborted when the deadline comes. A job may need several
 * calls in turn (NextToken pages); its callback decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "provisio/error.h"
#include "providers/aws/aws_strategy.h"

enum { JOB_READY = 0, JOB_RUNNING, JOB_DONE };

typedef struct run {
	aws *a;
	aws_action act;
	aws_job *jobs;
	size_t n, open, inflight;
	uint64_t deadline_ns;
	void *multi;
	aws_job_fn fn;
	void *ctx;
	ssize_t stopped; /* the job that ended the run, -1 none */
	bool token_waiting;        /* a job waits for a token ... */
	uint64_t token_wait_since; /* ... since then */
} run;

static uint64_t min64(uint64_t x, uint64_t y) { return x < y ? x : y; }

/* The call of job j has finished for good or will be retried. */
static void call_finished(run *r, size_t i)
{
	aws_job *j = &r->jobs[i];
	uint64_t delay = 0;
	if (aws_retry_delay(r->a, &j->call, j->attempt, r->deadline_ns, &delay)) {
		j->attempt++;
		j->not_before_ns = pv_clock_now(r->a->clock) + delay;
		j->state = JOB_READY;
		return;
	}
	aws_call_end(r->a, &j->call);
	j->calls += j->call.attempts;
	aws_job_next next = r->fn(r->a, j, r->ctx);
	if (next == AWS_JOB_AGAIN) {
		aws_call_free(&j->call);
		memset(&j->call, 0, sizeof j->call);
		j->attempt = 0;
		j->not_before_ns = 0;
		j->state = JOB_READY;
		return;
	}
	j->state = JOB_DONE;
	r->open--;
	if (next == AWS_JOB_STOP && r->stopped < 0)
		r->stopped = (ssize_t)i;
}

/* An HTTP exchange of job j ended (rc: its transport outcome). */
static void exchange_ended(run *r, size_t i, int rc)
{
	aws_job *j = &r->jobs[i];
	aws_http_reply_free(&j->call.reply);
	j->call.reply = j->x.reply;
	memset(&j->x.reply, 0, sizeof j->x.reply);
	aws_attempt_end(r->a, r->act, rc, r->deadline_ns, &j->call);
	call_finished(r, i);
}

/* Starts job j's next attempt; its token is already taken. */
static void start(run *r, size_t i)
{
	aws_job *j = &r->jobs[i];
	aws_creds cr;
	aws_http_opts o;
	if (!aws_attempt_begin(r->a, r->act, r->deadline_ns, &j->call, &cr, &o)) {
		aws_creds_wipe(&cr);
		call_finished(r, i);
		return;
	}
	/* libcurl copies the credentials into the handle: ours can go now. */
	int rc = aws_http_xfer_begin(&j->x, &r->a->pool, &o, &cr, j->form);
	aws_creds_wipe(&cr);
	if (rc == 0 && (rc = aws_http_multi_add(r->multi, &j->x)) < 0)
		aws_http_xfer_end(&j->x, &r->a->pool, -1);
	if (rc < 0) {
		exchange_ended(r, i, rc);
		return;
	}
	j->state = JOB_RUNNING;
	r->inflight++;
}

/* Starts what may start now; returns when the next thing may (UINT64_MAX:
 * nothing waits on time). Fails job i at once when its token would come
 * after the deadline and nothing else is running to wait for. */
static uint64_t start_ready(run *r, int max_in_flight, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < r->n && r->inflight < (size_t)max_in_flight && r->stopped < 0; i++) {
		aws_job *j = &r->jobs[i];
		if (j->state != JOB_READY)
			continue;
		if (j->not_before_ns > now) {
			next = min64(next, j->not_before_ns);
			continue;
		}
		uint64_t wait = aws_bucket_try_take(aws_action_bucket(r->a, r->act), now);
		if (wait == 0) {
			if (r->token_waiting) {
				aws_throttle_waited(r->a, now - r->token_wait_since);
				r->token_waiting = false;
			}
			start(r, i);
			continue;
		}
		if (r->deadline_ns && now + wait > r->deadline_ns && r->inflight == 0) {
			j->call.deadline_hit = true;
			j->call.cls = PV_CLASS_THROTTLED;
			snprintf(j->call.reply.error, sizeof j->call.reply.error,
				 "client-side throttle: next token in %llu ms, after the deadline",
				 (unsigned long long)(wait / PV_NS_PER_MS));
			r->stopped = (ssize_t)i;
			return next;
		}
		if (!r->token_waiting) {
			r->token_waiting = true;
			r->token_wait_since = now;
		}
		return min64(next, now + wait);
	}
	return next;
}

/* Aborts job j's transfer in flight (it is not retried). */
static void abort_transfer(run *r, aws_job *j)
{
	aws_http_multi_abort(r->multi, &j->x, &r->a->pool);
	aws_http_reply_free(&j->x.reply);
	r->inflight--;
}

/* The deadline came: abort what runs, mark what is left. */
static void cut_at_deadline(run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		aws_job *j = &r->jobs[i];
		if (j->state == JOB_DONE)
			continue;
		if (j->state == JOB_RUNNING)
			abort_transfer(r, j);
		j->call.ok = false;
		j->call.deadline_hit = true;
		j->calls += j->call.attempts;
		j->state = JOB_DONE;
		if (r->stopped < 0) {
			/* The call the operation fails with: counted like aws_do's. */
			j->call.cls = PV_CLASS_TRANSIENT;
			aws_call_end(r->a, &j->call);
			r->stopped = (ssize_t)i;
		}
	}
	r->open = 0;
}

static void wait_for_work(run *r, uint64_t now, uint64_t next)
{
	uint64_t until = r->deadline_ns ? min64(next, r->deadline_ns) : next;
	if (r->inflight > 0) {
		long ms = until == UINT64_MAX ? 1000 : (long)((until - now) / PV_NS_PER_MS) + 1;
		aws_http_xfer *x = aws_http_multi_step(r->multi, ms);
		while (x) {
			size_t i = (size_t)((aws_job *)((char *)x - offsetof(aws_job, x)) - r->jobs);
			r->inflight--;
			int rc = aws_http_xfer_end(x, &r->a->pool, x->curl_code);
			exchange_ended(r, i, rc);
			x = aws_http_multi_step(r->multi, 0);
		}
		return;
	}
	if (until == UINT64_MAX || until <= now)
		return;
	pv_clock_sleep(r->a->clock, until - now);
}

/* Aborts what still runs (a job that stopped the run leaves others). */
static void abort_running(run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		aws_job *j = &r->jobs[i];
		if (j->state != JOB_RUNNING)
			continue;
		abort_transfer(r, j);
		j->calls += j->call.attempts;
		j->state = JOB_DONE;
	}
}

ssize_t aws_do_many(aws *a, aws_action act, aws_job *jobs, size_t n, int max_in_flight,
		    uint64_t deadline_ns, aws_job_fn fn, void *ctx)
{
	run r = {.a = a, .act = act, .jobs = jobs, .n = n, .open = n, .deadline_ns = deadline_ns,
		 .fn = fn, .ctx = ctx, .stopped = -1};
	for (size_t i = 0; i < n; i++) {
		memset(&jobs[i].call, 0, sizeof jobs[i].call);
		memset(&jobs[i].x, 0, sizeof jobs[i].x);
		jobs[i].state = JOB_READY;
		jobs[i].attempt = 0;
		jobs[i].not_before_ns = 0;
		jobs[i].calls = 0;
	}
	if (n == 0)
		return -1;
	r.multi = aws_http_multi_get(&a->pool);
	if (!r.multi) {
		jobs[0].call.cls = PV_CLASS_INTERNAL;
		snprintf(jobs[0].call.reply.error, sizeof jobs[0].call.reply.error, "curl_multi_init failed");
		return 0;
	}
	if (max_in_flight < 1)
		max_in_flight = 1;
	while (r.open > 0 && r.stopped < 0) {
		uint64_t now = pv_clock_now(a->clock);
		if (deadline_ns && now >= deadline_ns) {
			cut_at_deadline(&r);
			break;
		}
		uint64_t next = start_ready(&r, max_in_flight, now);
		if (r.stopped >= 0 || r.open == 0)
			break;
		wait_for_work(&r, now, next);
	}
	abort_running(&r);
	aws_http_multi_put(&a->pool, r.multi);
	return r.stopped;
}
