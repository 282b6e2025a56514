#include "controlplane/xds/wire.h"

#include <grpcpp/support/slice.h>

#include <string>

namespace switchboard::controlplane::xds {
namespace {

template <typename Header>
grpc::ByteBuffer Assemble(const Header& header, const std::vector<std::shared_ptr<const Resource>>& resources,
                          const std::string& (Resource::*entry)() const) {
  std::vector<grpc::Slice> slices;
  slices.reserve(resources.size() + 1);
  slices.emplace_back(header.SerializeAsString());
  for (const std::shared_ptr<const Resource>& resource : resources) {
    const std::string& bytes = ((*resource).*entry)();
    auto* owner = new std::shared_ptr<const Resource>(resource);
    slices.emplace_back(
        const_cast<char*>(bytes.data()), bytes.size(),
        [](void* p) { delete static_cast<std::shared_ptr<const Resource>*>(p); }, owner);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

}  // namespace

envoy::service::discovery::v3::DiscoveryResponse ToMessage(const SotwOutgoing& out) {
  envoy::service::discovery::v3::DiscoveryResponse response = out.header;
  for (const auto& resource : out.resources) *response.add_resources() = resource->any;
  return response;
}

envoy::service::discovery::v3::DeltaDiscoveryResponse ToMessage(const DeltaOutgoing& out) {
  envoy::service::discovery::v3::DeltaDiscoveryResponse response = out.header;
  for (const auto& resource : out.resources) {
    auto* added = response.add_resources();
    added->set_name(resource->name);
    added->set_version(resource->version);
    *added->mutable_resource() = resource->any;
  }
  return response;
}

grpc::ByteBuffer ToWire(const SotwOutgoing& out) { return Assemble(out.header, out.resources, &Resource::SotwEntry); }

grpc::ByteBuffer ToWire(const DeltaOutgoing& out) { return Assemble(out.header, out.resources, &Resource::DeltaEntry); }

}  // namespace switchboard::controlplane::xds
