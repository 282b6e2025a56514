#include "controlplane/service/limits.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

using ::testing::HasSubstr;

TEST(DecideStreamAdmissionTest, PerPeerAndSubscriberLimits) {
  ServiceLimits limits;
  limits.max_streams_per_peer = 2;
  limits.max_subscribers = 5;
  EXPECT_TRUE(DecideStreamAdmission({1, 4}, StreamKind::kSubscriber, "ipv4:10.0.0.1", limits).ok());
  absl::Status s = DecideStreamAdmission({2, 0}, StreamKind::kAgent, "ipv4:10.0.0.1", limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("ipv4:10.0.0.1 already has 2 open streams"));
  s = DecideStreamAdmission({0, 5}, StreamKind::kSubscriber, "p", limits);
  EXPECT_THAT(s.message(), HasSubstr("--max-subscribers 5"));
  EXPECT_TRUE(DecideStreamAdmission({0, 5}, StreamKind::kAgent, "p", limits).ok());  // Agents are not subscribers.
}

TEST(AdmitReportTest, BurstThenSustainedRate) {
  ServiceLimits limits;
  limits.max_reports_per_second = 2;
  limits.report_burst = 4;
  ReportBucket bucket;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(AdmitReport(bucket, t0, limits).ok()) << i;
  absl::Status s = AdmitReport(bucket, t0, limits);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("faster than 2 per second"));
  EXPECT_TRUE(AdmitReport(bucket, t0 + absl::Milliseconds(500), limits).ok());  // One refilled.
  EXPECT_FALSE(AdmitReport(bucket, t0 + absl::Milliseconds(500), limits).ok());
  // At the sustained rate it never runs out.
  absl::Time t = t0 + absl::Seconds(10);
  for (int i = 0; i < 100; ++i, t += absl::Milliseconds(500)) EXPECT_TRUE(AdmitReport(bucket, t, limits).ok()) << i;
}

TEST(StreamGateTest, TicketsGiveTheirPlaceBack) {
  ServiceLimits limits;
  limits.max_streams_per_peer = 1;
  StreamGate gate(limits, nullptr);
  auto a = gate.Admit("ipv4:10.0.0.1:1000", StreamKind::kAgent);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(gate.Admit("ipv4:10.0.0.1:1001", StreamKind::kAgent).ok());  // Same address, other port.
  EXPECT_TRUE(gate.Admit("ipv4:10.0.0.2:1000", StreamKind::kAgent).ok());
  a->reset();
  EXPECT_TRUE(gate.Admit("ipv4:10.0.0.1:1002", StreamKind::kAgent).ok());
}

TEST(PeerAddressTest, DropsThePort) {
  EXPECT_EQ(PeerAddress("ipv4:10.0.0.7:53122"), "ipv4:10.0.0.7");
  EXPECT_EQ(PeerAddress("ipv6:[::1]:53122"), "ipv6:[::1]");
  EXPECT_EQ(PeerAddress("unix:/run/x.sock"), "unix:/run/x.sock");
}

}  // namespace
}  // namespace switchboard::controlplane
