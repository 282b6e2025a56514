// The protocol of one incremental (delta) ADS stream, without gRPC. Like SotwStream, the
// reactor feeds it requests and asks it for the next response.
//
// Rules, per type URL:
//   - resource_names_subscribe / _unsubscribe change the subscription on every request,
//     stale nonce or not. "*" subscribes to every resource; so does an empty first
//     Listener or Cluster request (the legacy wildcard).
//   - initial_resource_versions (first request of a type on a stream: a reconnect) says
//     what the client already has: resources at those versions are not sent again, and
//     ones that no longer exist are listed in removed_resources.
//   - A response carries the subscribed resources whose version differs from what the
//     client has, and removed_resources for the ones it has that are gone; none is sent
//     when both are empty.
//   - error_detail set: a NACK, reported; the rejected versions count as the client's, so
//     they are not sent again until they change.
//   - Make before break, as SotwStream: CDS, EDS, LDS, RDS; listeners and routes wait
//     for the answer to the last Cluster response and, on a stream with an EDS
//     subscription, for the answer to an EDS response carrying each cluster the client
//     did not have before; a removed cluster is listed in
//     removed_resources only once every Listener and RouteConfiguration response has been
//     answered and none is due.
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_DELTA_STREAM_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_DELTA_STREAM_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "controlplane/xds/resources.h"
#include "controlplane/xds/sotw_stream.h"
#include "controlplane/xds/wire.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace switchboard::controlplane::xds {

class DeltaStream {
 public:
  RequestKind OnRequest(const envoy::service::discovery::v3::DeltaDiscoveryRequest& request);

  // The next response against `catalog`, or nullopt when the client is up to date; as
  // SotwStream::Next.
  std::optional<DeltaOutgoing> Next(const Catalog& catalog);
  // Next() as a message.
  std::optional<envoy::service::discovery::v3::DeltaDiscoveryResponse> NextResponse(const Catalog& catalog);

  // The system_version_info of the last response of `type_url` the client ACKed ("" if
  // none), and its last NACK.
  std::string AckedVersion(const std::string& type_url) const;
  std::string LastNack(const std::string& type_url) const;

 private:
  struct TypeState {
    bool subscribed = false;
    bool wildcard = false;
    std::set<std::string> names;
    std::map<std::string, std::string> client_has;  // Name -> version.
    std::string last_nonce;
    std::string last_version;  // system_version_info of the last response.
    std::string acked_version;
    std::string last_nack;
    bool awaiting_answer = false;  // The last response is not yet ACKed or NACKed.
  };

  // `removals`: whether removed_resources may be listed.
  std::optional<DeltaOutgoing> ResponseFor(const std::string& type_url, TypeState& state, const Catalog& catalog,
                                           bool removals);
  bool AwaitingAnswer(const std::string& type_url) const;
  // As SotwStream's: a new cluster's assignment in `catalog` the client has not answered.
  bool AwaitingEndpoints(const Catalog& catalog) const;
  bool HasEndpoints(const std::string& service) const;

  std::map<std::string, TypeState> types_;
  // Clusters sent as new whose assignment the client has not answered yet.
  EndpointWait endpoint_wait_;
  uint64_t nonce_counter_ = 0;
};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_DELTA_STREAM_H_
