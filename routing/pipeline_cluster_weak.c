/* Stand-ins for the cluster half of pipeline.h until pipeline.c implements
 * it (in parallel work): weak, so pipeline.c's definitions win the moment
 * they exist, and this file can then be deleted. Until then a forwarded
 * request is refused (the sender hands its spans back) and this member
 * never says it is draining. */
#include "pipeline.h"

#include <stdio.h>

__attribute__((weak)) pipeline_status pipeline_accept_forwarded(pipeline *pl, const otlp_request *req,
                                                                const char *tenant, const char *pipeline_name,
                                                                arena *a, char *err, size_t errlen)
{
    (void)pl;
    (void)req;
    (void)tenant;
    (void)a;
    snprintf(err, errlen, "pipeline %s: forwarded spans are not supported by this build", pipeline_name);
    return PIPELINE_FAIL;
}

__attribute__((weak)) int pipeline_draining(pipeline *pl)
{
    (void)pl;
    return 0;
}
