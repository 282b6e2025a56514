#include "agent/probe/active_check.h"

#include "absl/strings/str_cat.h"
#include "agent/probe/llamacpp_probe.h"
#include "nlohmann/json.hpp"

namespace switchboard::agent {
namespace {

constexpr char kPath[] = "/v1/completions";

}  // namespace

absl::StatusOr<ActiveCheckOptions::Mode> ParseActiveCheckMode(const std::string& text) {
  if (text == "auto") return ActiveCheckOptions::Mode::kAuto;
  if (text == "on") return ActiveCheckOptions::Mode::kOn;
  if (text == "off") return ActiveCheckOptions::Mode::kOff;
  return absl::InvalidArgumentError(absl::StrCat("'", text, "': want auto, on or off"));
}

bool ActiveChecksEnabled(ActiveCheckOptions::Mode mode, v1::Engine engine) {
  switch (mode) {
    case ActiveCheckOptions::Mode::kOn:
      return true;
    case ActiveCheckOptions::Mode::kOff:
      return false;
    case ActiveCheckOptions::Mode::kAuto:
      // TGI counts its failed requests (tgi_request_failure): its own evidence suffices.
      return engine != v1::ENGINE_TGI && engine != v1::ENGINE_UNSPECIFIED;
  }
  return false;
}

CheckVerdict JudgeCheck(const HttpResponse& response) {
  using json = nlohmann::json;
  if (!response.error.empty() || response.status >= 500 || response.status < 200 || response.status >= 300) {
    if (response.status >= 400 && response.status < 500) {
      return {CheckVerdict::Kind::kNoVerdict,
              absl::StrCat(HttpFailure(kPath, response), " (not counted: the check's request was refused)")};
    }
    return {CheckVerdict::Kind::kFailure, HttpFailure(kPath, response)};
  }
  json j = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty()) {
    return {CheckVerdict::Kind::kFailure, absl::StrCat(kPath, ": HTTP ", response.status, " but no completion")};
  }
  return {CheckVerdict::Kind::kSuccess, ""};
}

void ActiveCheck::Collect(const HttpResponse& response) {
  const CheckVerdict v = JudgeCheck(response);
  last_error_ = v.message;
  if (v.kind == CheckVerdict::Kind::kNoVerdict) return;
  ++checks_;
  if (v.kind == CheckVerdict::Kind::kFailure) ++failures_;
}

void ActiveCheck::Update(absl::Time now, const std::string& base_url, v1::EndpointReport* report) {
  if (in_flight_ && in_flight_->wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    Collect(in_flight_->get());
    in_flight_.reset();
  }
  // The first check comes an interval after the first poll: not in the agent's first two
  // rounds, which run back to back (the one before the Hello and the first report).
  if (!next_) next_ = now + options_.interval;
  const bool due = now >= *next_;
  const bool idle = report->state() == v1::ENDPOINT_STATE_READY && report->slots_busy() < report->slots_total() &&
                    report->queue_depth() == 0;
  if (!in_flight_ && due && idle && report->models_size() > 0 && ActiveChecksEnabled(options_.mode, report->engine())) {
    next_ = now + options_.interval;
    nlohmann::json body = {{"model", report->models(0)}, {"prompt", "Hi"}, {"max_tokens", 1}, {"temperature", 0}};
    in_flight_ =
        std::async(std::launch::async, [http = http_, url = base_url + kPath, body = body.dump(),
                                        timeout = options_.timeout] { return http->Post(url, body, timeout); });
  }
  report->set_checks_total(checks_);
  report->set_check_failures_total(failures_);
  report->set_check_error(last_error_);
}

void ActiveCheck::Wait() {
  if (in_flight_) in_flight_->wait();
}

}  // namespace switchboard::agent
