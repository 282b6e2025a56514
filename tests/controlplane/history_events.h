// What a control-plane test reads back from a real HistoryStore.
#ifndef SWITCHBOARD_TESTS_CONTROLPLANE_HISTORY_EVENTS_H_
#define SWITCHBOARD_TESTS_CONTROLPLANE_HISTORY_EVENTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/history/history_store.h"
#include "gtest/gtest.h"

namespace switchboard::testing {

// The kinds of the last 100 events, oldest first, once the writer has flushed (a read
// error is a test failure and gives what was read: nothing).
inline std::vector<std::string> RecentEventKinds(controlplane::HistoryStore* history) {
  history->Flush();
  std::vector<std::string> kinds;
  absl::StatusOr<std::vector<controlplane::HistoryEvent>> events = history->RecentEvents(100);
  if (!events.ok()) {
    ADD_FAILURE() << events.status();
    return kinds;
  }
  for (const controlplane::HistoryEvent& e : *events) kinds.insert(kinds.begin(), e.kind);
  return kinds;
}

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_CONTROLPLANE_HISTORY_EVENTS_H_
