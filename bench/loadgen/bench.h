// `switchboard-loadgen bench`: N simulated agents and M native subscribers over real gRPC
// streams against a real switchboard-controlplane, then the same clients against a bare
// gRPC server in the same run; prints both and their ratio (docs/performance.md).
#ifndef SWITCHBOARD_BENCH_LOADGEN_BENCH_H_
#define SWITCHBOARD_BENCH_LOADGEN_BENCH_H_

namespace switchboard::bench {

// argv[0] is "bench". Returns the exit status: 0 when both targets ran (whatever the
// figures), 1 when one could not start or no client connected, 2 on bad flags.
int RunLoadgenBench(int argc, char** argv);

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_LOADGEN_BENCH_H_
