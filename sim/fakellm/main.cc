// switchboard-fakellm: a live fake inference server that speaks llama.cpp server's HTTP
// API (see shared/reference/inference-servers.md and the real captures there). It is
// what the demo and the tests run instead of a GPU server.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/net.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "sim/fakellm/engine_shapes.h"
#include "sim/fakellm/fake_engine.h"

namespace {

using switchboard::fakellm::FakeEngine;
using switchboard::fakellm::Flavor;
using switchboard::fakellm::HttpAnswer;
using json = nlohmann::json;

enum class Fault { kNone, kError, kHang, kGarbage };

struct ServerConfig {
  Fault fault = Fault::kNone;
  // Share of completions answered with HTTP 500. Changed at run time through
  // /admin/fail-rate (handler threads read it).
  std::atomic<double> fail_rate{0};
  bool metrics = true;  // false: /metrics answers 501, as llama-server without --metrics.
  bool slots_endpoint = true;
  int default_max_tokens = 128;
};

const char* kWords[] = {" the",  " model",  " answers", " slowly", " with", " tokens", " from", " a",
                        " fake", " server", " that",    " fills",  " its",  " slots",  " and",  " drains"};

std::string ErrorJson(int code, const std::string& message, const std::string& type) {
  return json{{"error", {{"code", code}, {"message", message}, {"type", type}}}}.dump();
}

void SetJson(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json; charset=utf-8");
}

void SetAnswer(httplib::Response& res, const HttpAnswer& a) {
  res.status = a.status;
  res.set_content(a.body, a.content_type.c_str());
}

// Which API a completion request came in on: OpenAI chat (/v1/chat/completions), OpenAI
// text (/v1/completions) or llama.cpp's own (/completion).
enum class Api { kChat, kText, kLlama };

struct Completion {
  Api api = Api::kChat;
  bool chat = true;  // kChat.
  bool stream = false;
  int prompt_tokens = 1;
  int max_tokens = 128;
};

// Parses a chat, text or /completion request body; returns an error message on bad input.
std::string ParseCompletion(const std::string& body, Api api, const ServerConfig& config, int n_ctx, Completion* out) {
  const bool chat = api == Api::kChat;
  out->api = api;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "request body is not a JSON object";
  out->chat = chat;
  out->stream = j.value("stream", false);
  std::string text;
  if (chat) {
    if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty()) {
      return "'messages' must be a non-empty array";
    }
    for (const json& m : j["messages"]) {
      if (m.is_object() && m.contains("content") && m["content"].is_string()) text += m["content"].get<std::string>();
    }
    out->max_tokens = j.value("max_tokens", j.value("max_completion_tokens", config.default_max_tokens));
  } else {
    if (!j.contains("prompt") || !j["prompt"].is_string()) return "'prompt' must be a string";
    text = j["prompt"].get<std::string>();
    out->max_tokens = j.value("n_predict", j.value("max_tokens", config.default_max_tokens));
  }
  if (out->max_tokens < 0) out->max_tokens = config.default_max_tokens;
  out->prompt_tokens = switchboard::fakellm::EstimateTokens(text);
  if (out->prompt_tokens >= n_ctx)
    return absl::StrCat("prompt of ", out->prompt_tokens, " tokens exceeds n_ctx ", n_ctx);
  out->max_tokens = std::min(out->max_tokens, n_ctx - out->prompt_tokens);
  return "";
}

std::string ChunkJson(const Completion& c, const std::string& model, const std::string& id, const std::string& piece,
                      bool last, int decoded) {
  if (c.chat) {
    json delta = last ? json::object() : json{{"content", piece}};
    json j = {
        {"id", id},
        {"object", "chat.completion.chunk"},
        {"model", model},
        {"created", absl::ToUnixSeconds(switchboard::SystemClock::Get()->Now())},
        {"choices",
         json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", last ? json("length") : json(nullptr)}}})}};
    return j.dump();
  }
  if (c.api == Api::kText) {
    return json{{"id", id},
                {"object", "text_completion"},
                {"model", model},
                {"created", absl::ToUnixSeconds(switchboard::SystemClock::Get()->Now())},
                {"choices", json::array({{{"index", 0},
                                          {"text", piece},
                                          {"logprobs", nullptr},
                                          {"finish_reason", last ? json("length") : json(nullptr)}}})}}
        .dump();
  }
  json j = {{"content", piece}, {"stop", last}};
  if (last) j["tokens_predicted"] = decoded;
  return j.dump();
}

std::string FinalJson(const Completion& c, const std::string& model, const std::string& id, const std::string& text,
                      int decoded) {
  if (c.chat) {
    return json{
        {"id", id},
        {"object", "chat.completion"},
        {"model", model},
        {"created", absl::ToUnixSeconds(switchboard::SystemClock::Get()->Now())},
        {"choices",
         json::array(
             {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", "length"}}})},
        {"usage",
         {{"prompt_tokens", c.prompt_tokens},
          {"completion_tokens", decoded},
          {"total_tokens", c.prompt_tokens + decoded}}}}
        .dump();
  }
  if (c.api == Api::kText) {
    return json{
        {"id", id},
        {"object", "text_completion"},
        {"model", model},
        {"created", absl::ToUnixSeconds(switchboard::SystemClock::Get()->Now())},
        {"choices", json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", "length"}}})},
        {"usage",
         {{"prompt_tokens", c.prompt_tokens},
          {"completion_tokens", decoded},
          {"total_tokens", c.prompt_tokens + decoded}}}}
        .dump();
  }
  return json{{"content", text}, {"stop", true}, {"tokens_predicted", decoded}, {"tokens_evaluated", c.prompt_tokens}}
      .dump();
}

std::atomic<uint64_t> g_request_id{0};

void HandleCompletion(FakeEngine& engine, const ServerConfig& config, Api api, const httplib::Request& req,
                      httplib::Response& res) {
  const absl::Time arrived = engine.clock().MonotonicNow();
  thread_local std::mt19937 rng(std::random_device{}());
  const double fail_rate = config.fail_rate.load();
  if (fail_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < fail_rate) {
    engine.RecordFailure();
    SetJson(res, 500, ErrorJson(500, "injected failure", "server_error"));
    return;
  }
  Completion c;
  std::string err = ParseCompletion(req.body, api, config, engine.options().n_ctx, &c);
  if (!err.empty()) {
    SetJson(res, 400, ErrorJson(400, err, "invalid_request_error"));
    return;
  }
  const std::string id = absl::StrCat(api == Api::kChat ? "chatcmpl-" : "cmpl-", g_request_id++);
  const std::string model = engine.options().model;
  if (!c.stream) {
    int slot = engine.AcquireSlot(c.prompt_tokens, c.max_tokens, arrived);
    if (slot < 0) {
      SetJson(res, 503, ErrorJson(503, "server is shutting down", "unavailable_error"));
      return;
    }
    std::string text;
    int decoded = 0;
    bool ok = engine.Prefill(slot);
    for (; ok && decoded < c.max_tokens; ++decoded) {
      ok = engine.DecodeToken(slot);
      if (ok) text += kWords[decoded % 16];
    }
    engine.ReleaseSlot(slot);
    if (!ok) {
      SetJson(res, 503, ErrorJson(503, "server is shutting down", "unavailable_error"));
      return;
    }
    SetJson(res, 200, FinalJson(c, model, id, text, decoded));
    return;
  }
  // Streaming (SSE). The slot is taken when the first chunk is asked for, so a queued
  // request holds its connection open without a slot, exactly like llama-server.
  struct StreamState {
    int slot = -1;
    int decoded = 0;
    bool done = false;
  };
  auto state = std::make_shared<StreamState>();
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&engine, c, id, model, state, arrived](size_t, httplib::DataSink& sink) {
        if (state->done) {
          sink.done();
          return true;
        }
        auto send = [&sink](const std::string& payload) {
          std::string frame = absl::StrCat("data: ", payload, "\n\n");
          return sink.write(frame.data(), frame.size());
        };
        if (state->slot < 0) {
          state->slot = engine.AcquireSlot(c.prompt_tokens, c.max_tokens, arrived);
          if (state->slot < 0 || !engine.Prefill(state->slot)) return false;
          if (c.chat) {
            json first = {{"id", id},
                          {"object", "chat.completion.chunk"},
                          {"model", model},
                          {"choices", json::array({{{"index", 0},
                                                    {"delta", {{"role", "assistant"}, {"content", nullptr}}},
                                                    {"finish_reason", nullptr}}})}};
            if (!send(first.dump())) return false;
          }
        }
        if (state->decoded < c.max_tokens) {
          if (!engine.DecodeToken(state->slot)) return false;
          return send(ChunkJson(c, model, id, kWords[state->decoded++ % 16], false, state->decoded));
        }
        bool ok = send(ChunkJson(c, model, id, "", true, state->decoded));
        if (ok && c.api != Api::kLlama) {
          const std::string done = "data: [DONE]\n\n";
          ok = sink.write(done.data(), done.size());
        }
        state->done = true;
        return ok;
      },
      [&engine, state](bool) {
        if (state->slot >= 0) engine.ReleaseSlot(state->slot);
      });
}

}  // namespace

int main(int argc, char** argv) {
  switchboard::fakellm::FakeEngineOptions options;
  ServerConfig config;
  std::string listen = "127.0.0.1:8080";
  std::string startup_delay = "0s";
  std::string fault = "none";
  bool no_metrics = false, no_slots = false;
  std::string engine_name = "llamacpp";
  CLI::App app{
      "switchboard-fakellm: a fake LLM inference server speaking llama.cpp server's HTTP API\n"
      "(/health, /slots, /props, /metrics, /v1/models, /v1/chat/completions, /v1/completions,\n"
      "/completion).\n"
      "Requests take real time: prefill, then one token every 1/tokens-per-second seconds,\n"
      "on a fixed number of slots, with a FIFO queue beyond them.\n"
      "Test control: GET /admin/fail-rate reads the share of completions failed with HTTP 500;\n"
      "POST /admin/fail-rate with a number in [0, 1] as the body changes it at run time."};
  app.add_option("--listen", listen, "HTTP address (port 0 picks a free port, printed on stdout)")
      ->capture_default_str();
  app.add_option("--model", options.model, "model name served (reported as /models/NAME.gguf)")->capture_default_str();
  app.add_option("--slots", options.slots, "parallel slots (llama-server -np)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--ctx", options.n_ctx, "context per slot, tokens")
      ->check(CLI::Range(16, 1 << 22))
      ->capture_default_str();
  app.add_option("--tokens-per-second", options.tokens_per_second, "decode speed of one sequence")
      ->check(CLI::Range(0.1, 1e6))
      ->capture_default_str();
  app.add_option("--prefill-tokens-per-second", options.prefill_tokens_per_second, "prompt processing speed")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  app.add_option("--startup-delay", startup_delay, "answer 503 'Loading model' for this long (e.g. 5s)")
      ->capture_default_str();
  app.add_option("--default-max-tokens", config.default_max_tokens, "output length when a request sets none")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--fault", fault,
                 "inject a fault: none | error (HTTP 500 everywhere) | hang (never answer) | "
                 "garbage (200 with unparseable bodies)")
      ->check(CLI::IsMember({"none", "error", "hang", "garbage"}))
      ->capture_default_str();
  double fail_rate = 0;
  app.add_option("--fail-rate", fail_rate,
                 "share of completions answered with HTTP 500 (the rest are served). Change it while running: "
                 "curl -X POST --data 0.1 http://HOST:PORT/admin/fail-rate (GET reads it)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--engine", engine_name,
                 "which server's HTTP shapes to speak: llamacpp | llamacpp-2024 | vllm | sglang | tgi")
      ->check(CLI::IsMember({"llamacpp", "llamacpp-2024", "vllm", "sglang", "tgi"}))
      ->capture_default_str();
  app.add_flag("--no-metrics", no_metrics, "answer 501 on /metrics (llama-server without --metrics)");
  app.add_flag("--no-slots", no_slots, "answer 501 on /slots (llama-server --no-slots)");
  CLI11_PARSE(app, argc, argv);

  if (!absl::ParseDuration(startup_delay, &options.startup_delay) || options.startup_delay < absl::ZeroDuration()) {
    std::cerr << "switchboard-fakellm: --startup-delay: '" << startup_delay << "' is not a duration (e.g. 5s)\n";
    return 2;
  }
  config.fault = fault == "error"     ? Fault::kError
                 : fault == "hang"    ? Fault::kHang
                 : fault == "garbage" ? Fault::kGarbage
                                      : Fault::kNone;
  config.fail_rate = fail_rate;
  config.metrics = !no_metrics;
  config.slots_endpoint = !no_slots;
  absl::StatusOr<switchboard::HostPort> hp = switchboard::ParseHostPort(listen);
  if (!hp.ok()) {
    std::cerr << "switchboard-fakellm: --listen: " << hp.status().message() << "\n";
    return 2;
  }

  // Stop signals are taken by a dedicated thread (below), not by a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const Flavor flavor = *switchboard::fakellm::ParseFlavor(engine_name);
  const bool llama = flavor == Flavor::kLlamaCpp || flavor == Flavor::kLlamaCpp2024;
  FakeEngine engine(options);
  httplib::Server server;
  // Every waiting request holds a connection thread; leave room for a deep queue.
  const size_t threads = std::max<size_t>(64, static_cast<size_t>(options.slots) * 8);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_keep_alive_max_count(1000);

  // Routing wrapper: loading state and faults apply to every path, as on llama-server.
  auto route = [&engine, &config, flavor, llama](auto handler) {
    return [&engine, &config, handler, flavor, llama](const httplib::Request& req, httplib::Response& res) {
      if (llama) res.set_header("Server", "llama.cpp");
      if (config.fault == Fault::kHang) {
        engine.WaitUntilStopped();
        return;
      }
      if (!engine.Ready()) {
        SetAnswer(res, switchboard::fakellm::LoadingAnswer(flavor));
        return;
      }
      if (config.fault == Fault::kError) {
        SetJson(res, 500, ErrorJson(500, "injected failure", "server_error"));
        return;
      }
      if (config.fault == Fault::kGarbage) {
        res.status = 200;
        res.set_content("<html>\x01\x02 this is not what you asked for {{{", "text/plain");
        return;
      }
      handler(req, res);
    };
  };

  auto health = route([&engine, flavor](const httplib::Request&, httplib::Response& res) {
    SetAnswer(res, switchboard::fakellm::HealthAnswer(flavor, engine));
  });
  server.Get("/health", health);
  if (llama) server.Get("/v1/health", health);
  if (flavor == Flavor::kSglang) server.Get("/health_generate", health);
  if (llama) {
    server.Get("/slots", route([&engine, &config, flavor](const httplib::Request& req, httplib::Response& res) {
                 if (!config.slots_endpoint) {
                   SetJson(res, 501,
                           ErrorJson(501, "This server does not support slots endpoint.", "not_supported_error"));
                   return;
                 }
                 if (req.has_param("fail_on_no_slot") && req.get_param_value("fail_on_no_slot") == "1" &&
                     engine.idle_slots() == 0) {
                   SetJson(res, 503, ErrorJson(503, "no slot available", "unavailable_error"));
                   return;
                 }
                 SetJson(res, 200, engine.SlotsJson(/*legacy_state=*/flavor == Flavor::kLlamaCpp2024));
               }));
    server.Get("/props", route([&engine](const httplib::Request&, httplib::Response& res) {
                 SetAnswer(res, switchboard::fakellm::PropsAnswer(engine));
               }));
  }
  if (flavor == Flavor::kTgi) {
    server.Get("/info", route([&engine](const httplib::Request&, httplib::Response& res) {
                 SetAnswer(res, switchboard::fakellm::InfoAnswer(engine));
               }));
  }
  if (flavor == Flavor::kSglang) {
    server.Get("/get_load", route([&engine](const httplib::Request&, httplib::Response& res) {
                 SetAnswer(res, switchboard::fakellm::LoadAnswer(engine));
               }));
  }
  server.Get("/metrics", route([&engine, &config, flavor, llama](const httplib::Request&, httplib::Response& res) {
               if (llama && !config.metrics) {
                 SetJson(res, 501,
                         ErrorJson(501, "This server does not support metrics endpoint.", "not_supported_error"));
                 return;
               }
               SetAnswer(res, switchboard::fakellm::MetricsAnswer(flavor, engine));
             }));
  auto models = route([&engine, flavor](const httplib::Request&, httplib::Response& res) {
    SetAnswer(res, switchboard::fakellm::ModelsAnswer(flavor, engine));
  });
  server.Get("/v1/models", models);
  if (llama) server.Get("/models", models);
  server.Post("/v1/chat/completions", route([&engine, &config](const httplib::Request& req, httplib::Response& res) {
                HandleCompletion(engine, config, Api::kChat, req, res);
              }));
  server.Post("/v1/completions", route([&engine, &config](const httplib::Request& req, httplib::Response& res) {
                HandleCompletion(engine, config, Api::kText, req, res);
              }));
  if (llama) {
    auto completion = route([&engine, &config](const httplib::Request& req, httplib::Response& res) {
      HandleCompletion(engine, config, Api::kLlama, req, res);
    });
    server.Post("/completion", completion);
    server.Post("/completions", completion);
  }
  // Test control, outside the routing wrapper: it answers whatever fault or loading state
  // the server is in.
  server.Get("/admin/fail-rate", [&config](const httplib::Request&, httplib::Response& res) {
    SetJson(res, 200, json{{"fail_rate", config.fail_rate.load()}}.dump());
  });
  server.Post("/admin/fail-rate", [&config](const httplib::Request& req, httplib::Response& res) {
    double rate = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(req.body), &rate) || !(rate >= 0 && rate <= 1)) {
      SetJson(res, 400, ErrorJson(400, "the body must be a number in [0, 1]", "invalid_request_error"));
      return;
    }
    config.fail_rate = rate;
    SetJson(res, 200, json{{"fail_rate", rate}}.dump());
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) SetJson(res, 404, ErrorJson(404, "File Not Found", "not_found_error"));
  });

  // cpp-httplib (Debian's, a shared library) listens with a backlog of 5: a burst of new
  // connections beyond that has its SYNs dropped and retried after 1, 3, 7, 15 s, so
  // requests sent together arrived up to 16 s late. Keep the listening socket (and the
  // SO_REUSEADDR httplib would set) and widen the backlog once bound.
  int listen_fd = -1;
  server.set_socket_options([&listen_fd](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = sock;
  });
  int port = hp->port;
  if (port == 0) {
    port = server.bind_to_any_port(hp->host);
  } else if (!server.bind_to_port(hp->host, port)) {
    port = -1;
  }
  if (port <= 0) {
    std::cerr << "switchboard-fakellm: cannot listen on " << listen << "\n";
    return 1;
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);  // Again, with the full backlog.
  std::printf("http listening on port %d\n", port);
  std::fflush(stdout);

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    engine.Stop();  // Ends queued waits and generations so handler threads return.
    server.stop();
  });
  server.listen_after_bind();
  if (!engine.stopped()) {  // listen ended on its own: wake the signal thread.
    engine.Stop();
    pthread_kill(signal_thread.native_handle(), SIGTERM);
  }
  signal_thread.join();
  return 0;
}
