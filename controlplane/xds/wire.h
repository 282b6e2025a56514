// ADS responses as they go on the wire. A response is assembled, not serialized per
// stream: the fields that belong to one stream (nonce, version, type, removals) in a small
// message serialized for it, followed by each resource's wire entry, encoded once per
// resource version and shared by every stream that sends it (Resource::SotwEntry,
// DeltaEntry). Protobuf parsers accept fields in any order and append repeated ones, so
// the bytes parse to the message ToMessage returns.
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_WIRE_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_WIRE_H_

#include <grpcpp/support/byte_buffer.h>

#include <memory>
#include <vector>

#include "controlplane/xds/resources.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace switchboard::controlplane::xds {

// A state-of-the-world response: `header` without resources, and the resources in order.
struct SotwOutgoing {
  envoy::service::discovery::v3::DiscoveryResponse header;
  std::vector<std::shared_ptr<const Resource>> resources;
};

// A delta response: `header` with everything but resources (removed_resources included).
struct DeltaOutgoing {
  envoy::service::discovery::v3::DeltaDiscoveryResponse header;
  std::vector<std::shared_ptr<const Resource>> resources;
};

// The response as a message (tests, and what the wire bytes parse to).
envoy::service::discovery::v3::DiscoveryResponse ToMessage(const SotwOutgoing& out);
envoy::service::discovery::v3::DeltaDiscoveryResponse ToMessage(const DeltaOutgoing& out);

// The response's wire bytes: the header serialized, then one slice per resource that
// refers to its shared entry (no copy) and keeps the resource alive until gRPC releases it.
grpc::ByteBuffer ToWire(const SotwOutgoing& out);
grpc::ByteBuffer ToWire(const DeltaOutgoing& out);

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_WIRE_H_
