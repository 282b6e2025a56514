// Names the calling thread (what `top -H`, `ps -L`, perf and /proc/PID/task/*/comm show),
// so a profile or a per-thread CPU reading tells the reconciler from the history writer.
#ifndef SWITCHBOARD_COMMON_THREAD_NAME_H_
#define SWITCHBOARD_COMMON_THREAD_NAME_H_

#include <pthread.h>

namespace switchboard {

// `name`: at most 15 characters (Linux's limit; a longer one is not applied).
inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_THREAD_NAME_H_
