/* clock: the monotonic clock every timer, deadline and duration uses, so a
 * wall-clock step (NTP, a VM resume) neither fires nor stalls them. Wall time
 * (timestamps written out) is the caller's own business. */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds and milliseconds. */
uint64_t clock_now_ns(void);
uint64_t clock_now_ms(void);
/* CLOCK_MONOTONIC `ms` from now, for pthread_cond_timedwait on a condition
 * variable made by clock_cond_init. */
struct timespec clock_deadline(uint64_t ms);
/* pthread_cond_init for a condition variable whose timed waits run on
 * CLOCK_MONOTONIC (clock_deadline); 0, or pthread's error. */
int clock_cond_init(pthread_cond_t *cv);

#endif
