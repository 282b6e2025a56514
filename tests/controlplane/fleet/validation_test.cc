#include "controlplane/fleet/validation.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;
using ::testing::HasSubstr;

TEST(ValidateHelloTest, AcceptsWellFormed) {
  EXPECT_TRUE(ValidateHello(MakeHello("n1", {"127.0.0.1:8080", "10.0.0.2:8000"})).ok());
}

TEST(ValidateHelloTest, RejectsDuplicateAndMalformedEndpoints) {
  EXPECT_EQ(ValidateHello(MakeHello("n1", {"127.0.0.1:8080", "127.0.0.1:8080"})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateHello(MakeHello("n1", {"no-port"})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateHello(MakeHello("n1", {"h:0"})).code(), absl::StatusCode::kInvalidArgument);
  v1::Hello hello = MakeHello("n1", {"h:1"});
  hello.mutable_endpoints(0)->set_capacity_hint(std::nan(""));
  EXPECT_EQ(ValidateHello(hello).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateHelloTest, RejectsControlCharactersInTextOperatorsSee) {
  v1::Hello hello = MakeHello("n1", {"h:1"});
  hello.set_agent_version("1.0\x1b[2J");
  absl::Status s = ValidateHello(hello);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("agent_version has control characters"));
  hello = MakeHello("n1", {"h:1"});
  v1::GpuInfo* gpu = hello.add_gpus();
  gpu->set_uuid("GPU-1\n");
  EXPECT_EQ(ValidateHello(hello).code(), absl::StatusCode::kInvalidArgument);
  gpu->set_uuid("GPU-1");
  gpu->set_name("H100\r");
  s = ValidateHello(hello);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("GPU GPU-1: name has control characters"));
  gpu->set_name("NVIDIA H100 80GB HBM3");
  EXPECT_TRUE(ValidateHello(hello).ok());
}

TEST(ValidateHelloTest, RejectsModelIdsWithTheClassSeparator) {
  // Pool a~b would share its xDS cluster name with class b of pool a.
  v1::Hello hello = MakeHello("n1", {"h:1"});
  hello.mutable_endpoints(0)->add_models("a~b");
  absl::Status s = ValidateHello(hello);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("model id 'a~b' contains '~'"));
  hello.mutable_endpoints(0)->set_models(0, "a-b");
  EXPECT_TRUE(ValidateHello(hello).ok());
}

class ValidateReportTest : public ::testing::Test {
 protected:
  v1::Hello hello_ = MakeHello("n1", {"h:1"});
  v1::EndpointReport Good() { return MakeEndpointReport("h:1", "llama", 4, 2, 1); }
};

TEST_F(ValidateReportTest, AcceptsWellFormed) { EXPECT_TRUE(ValidateReport(MakeReport(1, {Good()}), hello_, 0).ok()); }

TEST_F(ValidateReportTest, RejectsBusyAboveTotal) {
  v1::EndpointReport ep = Good();
  ep.set_slots_busy(5);
  absl::Status s = ValidateReport(MakeReport(1, {ep}), hello_, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("slots_busy 5 exceeds slots_total 4"));
}

TEST_F(ValidateReportTest, RejectsNonFiniteAndOutOfRangeNumbers) {
  const double bad[] = {std::nan(""), std::numeric_limits<double>::infinity(), -1.0, 1e12};
  for (double v : bad) {
    v1::EndpointReport ep = Good();
    ep.set_ttft_p95_seconds(v);
    EXPECT_EQ(ValidateReport(MakeReport(1, {ep}), hello_, 0).code(), absl::StatusCode::kInvalidArgument) << v;
  }
  v1::EndpointReport ep = Good();
  ep.set_kv_cache_usage(1.5);
  EXPECT_EQ(ValidateReport(MakeReport(1, {ep}), hello_, 0).code(), absl::StatusCode::kInvalidArgument);
  ep = Good();
  ep.set_tokens_per_second(std::nan(""));
  EXPECT_EQ(ValidateReport(MakeReport(1, {ep}), hello_, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ValidateReportTest, RejectsSequenceThatDoesNotIncrease) {
  EXPECT_EQ(ValidateReport(MakeReport(5, {Good()}), hello_, 5).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateReport(MakeReport(4, {Good()}), hello_, 5).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateReport(MakeReport(9, {Good()}), hello_, 5).ok());
}

TEST_F(ValidateReportTest, RejectsUndeclaredOrRepeatedEndpoint) {
  EXPECT_EQ(ValidateReport(MakeReport(1, {MakeEndpointReport("other:1", "m", 4, 0)}), hello_, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateReport(MakeReport(1, {Good(), Good()}), hello_, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ValidateReportTest, RejectsMissingStateAndBadModel) {
  v1::EndpointReport ep = Good();
  ep.set_state(v1::ENDPOINT_STATE_UNSPECIFIED);
  EXPECT_EQ(ValidateReport(MakeReport(1, {ep}), hello_, 0).code(), absl::StatusCode::kInvalidArgument);
  ep = Good();
  ep.add_models("");
  EXPECT_EQ(ValidateReport(MakeReport(1, {ep}), hello_, 0).code(), absl::StatusCode::kInvalidArgument);
  ep = Good();
  ep.add_models(std::string(1000, 'm'));
  EXPECT_EQ(ValidateReport(MakeReport(1, {ep}), hello_, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ValidateReportTest, RejectsUndeclaredGpuAndBadUtilization) {
  v1::Report r = MakeReport(1, {Good()});
  r.add_gpus()->set_uuid("GPU-x");
  EXPECT_EQ(ValidateReport(r, hello_, 0).code(), absl::StatusCode::kInvalidArgument);
  hello_.add_gpus()->set_uuid("GPU-x");
  EXPECT_TRUE(ValidateReport(r, hello_, 0).ok());
  r.mutable_gpus(0)->set_utilization(std::nan(""));
  EXPECT_EQ(ValidateReport(r, hello_, 0).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace switchboard::controlplane
