/* clock: the monotonic clock every timer, deadline and duration uses, so a
 * wall-clock step (NTP, a VM resume) neither fires nor stalls them. Wall time
 * (timestamps written out) is the caller's own business. */
#ifndef GW_CLOCK_H
#define GW_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds and milliseconds. */
uint64_t clock_now_ns(void);
uint64_t clock_now_ms(void);
/* CLOCK_MONOTONIC `ms` from now, for pthread_cond_timedwait on a condition
 * variable created with pthread_condattr_setclock(CLOCK_MONOTONIC). */
struct timespec clock_deadline(uint64_t ms);

#endif
