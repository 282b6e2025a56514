// Plain-text tables for sbctl: columns padded to the widest cell.
#ifndef SWITCHBOARD_CLI_TABLE_H_
#define SWITCHBOARD_CLI_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace switchboard::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Writes every row, each prefixed by `indent`.
  void Print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace switchboard::cli

#endif  // SWITCHBOARD_CLI_TABLE_H_
