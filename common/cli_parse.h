// Command-line parsing for every binary (CLI11): like CLI11_PARSE, but a usage error
// exits with 2, as the documentation of every binary says (CLI11's own codes are
// 105-109), and --help still exits 0.
#ifndef SWITCHBOARD_COMMON_CLI_PARSE_H_
#define SWITCHBOARD_COMMON_CLI_PARSE_H_

#include "CLI/CLI.hpp"

namespace switchboard {

inline constexpr int kUsageExitCode = 2;

// Returns from the calling function (main) when parsing ends the program.
#define SB_CLI_PARSE(app, argc, argv)                           \
  do {                                                          \
    try {                                                       \
      (app).parse((argc), (argv));                              \
    } catch (const CLI::ParseError& e) {                        \
      const int cli_exit = (app).exit(e);                       \
      return cli_exit == 0 ? 0 : ::switchboard::kUsageExitCode; \
    }                                                           \
  } while (0)

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_CLI_PARSE_H_
