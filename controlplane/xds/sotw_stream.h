// The protocol of one state-of-the-world ADS stream, without gRPC: what a request means and
// what, if anything, to send next. The reactor (ads_service.cc) feeds it requests and asks
// it for the next response whenever a write completes or the catalog changes.
//
// Rules, per type URL (docs/api.md, "xDS"):
//   - error_detail set: a NACK. It is reported and otherwise ignored: the rejected versions
//     stay recorded as sent, so they are not sent again until the content changes.
//   - response_nonce not the last one sent for the type: stale, ignored.
//   - empty response_nonce (first request of the type on this stream, or a reconnect):
//     everything subscribed is sent.
//   - resource_names: the subscription. Empty on the first LDS or CDS request means every
//     resource (wildcard); empty later, or on RDS and EDS, means none (unsubscribe).
//   - A response goes out only when a subscribed resource's version differs from what was
//     sent (or on the answer to a first request). LDS and CDS responses carry every
//     subscribed resource that exists; a deleted one is left out, which deletes it. EDS
//     and RDS responses carry only the resources that changed (all subscribed ones on the
//     answer to a first request): a change to one pool sends that pool's assignment only.
//   - Names requested before they exist are kept and sent when they appear. A first
//     request none of whose resources exist is not answered, not even with an empty
//     Listener or Cluster list: that would delete what a client reconnecting to a
//     restarted control plane still has, before the agents have reported again.
//   - Make before break. When several types have something to send: CDS, EDS, LDS, RDS.
//     Listeners and routes wait while a Cluster response is not yet answered (ACK or
//     NACK), and, on a stream that takes endpoints (an EDS subscription), while a cluster
//     sent as new has an assignment in the catalog that the client has not answered
//     (the ACK or NACK of an EDS response carrying it; it may have to subscribe to it
//     first): a route never names a cluster the client has not taken, nor one it holds
//     without endpoints (Envoy answers 503 there, gRPC fails the RPCs). A cluster gone
//     from the catalog is still carried in Cluster responses until the listeners and
//     routes sent no longer can name it: until every Listener and RouteConfiguration
//     response has been answered and none is due; then a Cluster response without it
//     goes out.
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_SOTW_STREAM_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_SOTW_STREAM_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "controlplane/xds/endpoint_wait.h"
#include "controlplane/xds/resources.h"
#include "controlplane/xds/type_urls.h"
#include "controlplane/xds/wire.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace switchboard::controlplane::xds {

// What a request was, as both ADS variants (SotwStream, DeltaStream) classify it.
enum class RequestKind {
  kFirst,        // Empty nonce: the first request of its type (or after a reconnect).
  kAck,          // Accepted the last response (or changed the subscription).
  kNack,         // Rejected the last response: error_detail says why.
  kStale,        // Answers a response that was superseded; ignored.
  kUnknownType,  // A type URL this server does not serve; ignored.
};

// The type URLs ADS serves, in the order responses go out when several are due:
// clusters, their endpoints, listeners, routes (make before break).
inline constexpr const char* kServedTypesInOrder[] = {kClusterType, kClusterLoadAssignmentType, kListenerType,
                                                      kRouteConfigurationType};
bool IsServedType(const std::string& type_url);
// Listener and Cluster: a SotW response carries every resource, and an empty first
// request asks for all of them.
bool IsCompleteStateType(const std::string& type_url);

class SotwStream {
 public:
  using RequestKind = xds::RequestKind;

  // Records a request and says what it was.
  RequestKind OnRequest(const envoy::service::discovery::v3::DiscoveryRequest& request);

  // The next response to send against `catalog`, or nullopt when the client is up to
  // date. The response counts as sent: its nonce becomes the one a reply must carry.
  std::optional<SotwOutgoing> Next(const Catalog& catalog);
  // Next() as a message.
  std::optional<envoy::service::discovery::v3::DiscoveryResponse> NextResponse(const Catalog& catalog);

  // The version the client last accepted for `type_url` ("" if none), and its last NACK.
  std::string AckedVersion(const std::string& type_url) const;
  std::string LastNack(const std::string& type_url) const;

  // The version_info of a response carrying `resources` (name -> version): a hash of
  // them, so it is the same for the same content on every replica and after a restart.
  static std::string VersionOf(const std::map<std::string, std::string>& resources);

 private:
  struct TypeState {
    bool subscribed = false;  // A request of this type arrived.
    bool wildcard = false;
    std::set<std::string> names;
    bool answer_pending = false;              // A first request waits for its answer.
    std::string last_nonce;                   // Of the last response of this type.
    std::string last_version;                 // Its version_info.
    std::map<std::string, std::string> sent;  // Name -> version, as last sent.
    std::string acked_version;
    std::string last_nack;
    bool awaiting_answer = false;  // The last response is not yet ACKed or NACKed.
    // Cluster: the resources as last sent, so that one gone from the catalog can still
    // be carried (make before break).
    std::map<std::string, std::shared_ptr<const Resource>> sent_resources;
  };

  // `keep_removed`: a Cluster response keeps carrying what was sent and the catalog no
  // longer has.
  std::optional<SotwOutgoing> ResponseFor(const std::string& type_url, TypeState& state, const Catalog& catalog,
                                          bool keep_removed);
  // Whether a response of `type_url` is unanswered.
  bool AwaitingAnswer(const std::string& type_url) const;
  // Whether a new cluster's assignment, in `catalog`, has not reached the client yet (make
  // before break); false on a stream with no EDS subscription.
  bool AwaitingEndpoints(const Catalog& catalog) const;
  // Whether the client answered the last EDS response and it carried the assignment
  // `service` (a cluster's EDS service name).
  bool HasEndpoints(const std::string& service) const;

  std::map<std::string, TypeState> types_;
  // Clusters sent as new whose assignment the client has not answered yet.
  EndpointWait endpoint_wait_;
  uint64_t nonce_counter_ = 0;
};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_SOTW_STREAM_H_
