#include "common/prometheus_text.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace switchboard {
namespace {

bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsNameChar(char c) { return IsNameStart(c) || absl::ascii_isdigit(c); }

std::optional<double> ParseValue(absl::string_view s) {
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  double v;
  if (!absl::SimpleAtod(s, &v)) return std::nullopt;
  return v;
}

// Parses one sample line; `line` has no trailing newline and is not a comment.
absl::Status ParseSampleLine(absl::string_view line, PromSample* out) {
  size_t i = 0;
  if (line.empty() || !IsNameStart(line[0])) return absl::InvalidArgumentError("bad metric name");
  while (i < line.size() && IsNameChar(line[i])) ++i;
  out->name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t start = i;
      if (i >= line.size() || !IsNameStart(line[i])) return absl::InvalidArgumentError("bad label name");
      while (i < line.size() && IsNameChar(line[i])) ++i;
      std::string key(line.substr(start, i - start));
      if (i >= line.size() || line[i] != '=') return absl::InvalidArgumentError("expected '='");
      ++i;
      if (i >= line.size() || line[i] != '"') return absl::InvalidArgumentError("expected '\"'");
      ++i;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) return absl::InvalidArgumentError("dangling escape");
          char e = line[i++];
          value.push_back(e == 'n' ? '\n' : e);  // \\ -> \, \" -> ", \n -> newline
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return absl::InvalidArgumentError("unterminated label value");
      out->labels[key] = std::move(value);
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return absl::InvalidArgumentError("expected ',' or '}'");
    }
  }
  if (i >= line.size() || (line[i] != ' ' && line[i] != '\t')) {
    return absl::InvalidArgumentError("expected a value after the name");
  }
  std::vector<absl::string_view> rest = absl::StrSplit(line.substr(i), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (rest.empty() || rest.size() > 2) return absl::InvalidArgumentError("expected 'value [timestamp]'");
  std::optional<double> value = ParseValue(rest[0]);
  if (!value) return absl::InvalidArgumentError(absl::StrCat("bad value '", rest[0], "'"));
  if (rest.size() == 2) {
    int64_t ts;
    if (!absl::SimpleAtoi(rest[1], &ts)) return absl::InvalidArgumentError("bad timestamp");
  }
  out->value = *value;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PromScrape> PromScrape::Parse(absl::string_view text) {
  PromScrape scrape;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = absl::StripLeadingAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    PromSample sample;
    absl::Status status = ParseSampleLine(line, &sample);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("metrics line ", line_number, ": ", status.message()));
    }
    scrape.samples_.push_back(std::move(sample));
  }
  return scrape;
}

std::optional<double> PromScrape::Value(absl::string_view name,
                                        const std::map<std::string, std::string>& labels) const {
  for (const PromSample& s : samples_) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match) return s.value;
  }
  return std::nullopt;
}

std::optional<double> PromScrape::Sum(absl::string_view name) const {
  std::optional<double> total;
  for (const PromSample& s : samples_) {
    if (s.name == name) total = total.value_or(0) + s.value;
  }
  return total;
}

}  // namespace switchboard
