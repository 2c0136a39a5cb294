/*
 * hostfactory.h - the IBM Spectrum Symphony / LSF Host Factory contract on
 * top of the broker: JSON in, JSON out, field for field as HF expects
 * (the contract is summarised in docs/hostfactory.md).
 *
 * The CLI (`provisio hostfactory COMMAND -f FILE`) and the five scripts in
 * scripts/hostfactory/ are thin wrappers around pv_hf_run.
 */
#ifndef PROVISIO_HOSTFACTORY_H
#define PROVISIO_HOSTFACTORY_H

#include <stdio.h>
#include <jansson.h>
#include "broker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pv_hf_command {
	PV_HF_GET_AVAILABLE_TEMPLATES = 0,
	PV_HF_REQUEST_MACHINES,
	PV_HF_GET_REQUEST_STATUS,
	PV_HF_REQUEST_RETURN_MACHINES,
	PV_HF_GET_RETURN_REQUESTS,
	PV_HF_COMMAND_COUNT
} pv_hf_command;

/* "getAvailableTemplates", "requestMachines", "getRequestStatus",
 * "requestReturnMachines", "getReturnRequests"; static. */
const char *pv_hf_command_name(pv_hf_command c);
/* Exact names above (case-insensitive). 0 or PV_EINVAL listing them. */
int pv_hf_command_parse(const char *name, pv_hf_command *out);

/*
 * Runs one command on its input document. First it sets the broker's mode
 * from the store's daemon heartbeat (pv_broker_daemon_get): with a live
 * `provisio serve`, PV_BROKER_DEFERRED (no provider call: requestMachines
 * and requestReturnMachines are queued for the daemon, the status commands
 * read the store); without one, PV_BROKER_DIRECT after finishing any
 * queued request left behind (pv_broker_run_queue). The answers have the
 * same shape in both modes. *out always receives a new
 * object: the answer, or {"message": "what is wrong"} on failure. Returns
 * 0, PV_EINVAL (bad input: nothing was written) or another PV_E* (provider
 * or store failure). getRequestStatus answers an unknown request id with
 * an entry of its own (complete_with_error), not an error. The caller that
 * hands a requestMachines answer on calls pv_broker_request_delivered with
 * its requestId once it is out (pv_hf_write does).
 */
int pv_hf_run(pv_broker *b, pv_hf_command cmd, const json_t *in, json_t **out);

/*
 * Runs one command and writes its answer (or {"message"}) to `f` as
 * indented JSON and a newline; returns like pv_hf_run. getRequestStatus is
 * written as it is read, without building a JSON tree: for a request of
 * 1,000 machines that tree is most of the call's time. The text is the one
 * json_dumpf(JSON_INDENT(2)) gives for pv_hf_run's answer. A
 * requestMachines answer is flushed, then its id marked delivered.
 */
int pv_hf_write(pv_broker *b, pv_hf_command cmd, const json_t *in, FILE *f);

/* One machine as Host Factory shows it in getRequestStatus. New object. */
json_t *pv_hf_machine_json(const pv_machine_rec *m);

#ifdef __cplusplus
}
#endif
#endif
