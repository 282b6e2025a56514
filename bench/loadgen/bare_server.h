// The bare-gRPC baseline of `switchboard-loadgen bench`: a trivial server on the control
// plane's own services and messages. It decodes every agent message, keeps the latest
// report per node in a hash map under a mutex and acknowledges it (latest-wins, as the
// control plane does); when agent 0's marker changes, and on a steady beat in between
// (`--broadcasts-per-second`, which `bench` sets to what each subscriber received from
// the control plane), one publisher thread serializes the watched pool's assignment once
// and writes the same bytes to every subscriber (latest-wins per stream). No policy, no
// history: what gRPC itself costs here.
#ifndef SWITCHBOARD_BENCH_LOADGEN_BARE_SERVER_H_
#define SWITCHBOARD_BENCH_LOADGEN_BARE_SERVER_H_

namespace switchboard::bench {

// `switchboard-loadgen bench-bare-server --agents N --endpoints-per-agent E --pools P`:
// listens on 127.0.0.1:0, prints "grpc listening on port N", serves until SIGTERM/SIGINT.
int RunBareServer(int argc, char** argv);

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_LOADGEN_BARE_SERVER_H_
