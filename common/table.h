// Plain-text tables (sbctl, switchboard-sim): columns padded to the widest cell.
#ifndef SWITCHBOARD_COMMON_TABLE_H_
#define SWITCHBOARD_COMMON_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace switchboard {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Writes every row, each prefixed by `indent`.
  void Print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_TABLE_H_
