/* pipeline: routes a validated request to the backends of every pipeline
 * that takes its signal. Built once from the config and shared read-only by
 * all workers. pipeline_submit returns only when every backend has taken the
 * data (or refused it), so an OK result is what lets the listener
 * acknowledge the client. A request going to several backends where one asks
 * for a retry is retried by the client as a whole: delivery is at-least-once. */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stddef.h>

#include "backend.h"
#include "config.h"
#include "ingest.h"
#include "otlp.h"

typedef struct pipeline pipeline;

typedef enum { PIPELINE_OK = 0, PIPELINE_RETRY = 1, PIPELINE_FAIL = 2 } pipeline_status;

/* Creates every configured backend; -1 style NULL with a located error. */
pipeline *pipeline_new(const config *cfg, char *err, size_t errlen);
void pipeline_free(pipeline *pl);

pipeline_status pipeline_submit(pipeline *pl, const otlp_request *req, const ingest_origin *origin, char *err,
                                size_t errlen);
/* 1 when every backend reports ready. */
int pipeline_ready(pipeline *pl);
/* Flush every backend (shutdown). */
void pipeline_flush(pipeline *pl);

#endif
