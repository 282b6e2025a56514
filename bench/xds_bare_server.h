// The bare-gRPC baseline of bench/xds_push: what gRPC itself manages here for the same
// fan-out. A trivial server on the control plane's own services (AgentService.Connect,
// ADS StreamAggregatedResources, both raw): it decodes every agent message, keeps each
// node's last endpoints and, when a node's endpoints change, one publisher thread builds
// that node's pool's assignment (as many endpoints as the control plane's), serializes
// its DiscoveryResponse once and offers the same bytes to every ADS stream (latest-wins
// per stream and pool). No policy, no protocol state: the single-thread broadcast the
// control plane is compared with.
#ifndef SWITCHBOARD_BENCH_XDS_BARE_SERVER_H_
#define SWITCHBOARD_BENCH_XDS_BARE_SERVER_H_

namespace switchboard::bench {

// Node "node-K" is in pool K % pools; pool names as `PoolName`. Listens on 127.0.0.1:0,
// prints "grpc listening on port N", serves until SIGTERM/SIGINT.
int RunXdsBareServer(int pools, int endpoints_per_pool);

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_XDS_BARE_SERVER_H_
