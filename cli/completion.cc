#include "cli/completion.h"

#include <vector>

#include "absl/strings/str_join.h"

namespace switchboard::cli {
namespace {

std::vector<std::string> LongFlags(const CLI::App& app) {
  std::vector<std::string> flags;
  for (const CLI::Option* o : app.get_options()) {
    for (const std::string& name : o->get_lnames()) flags.push_back("--" + name);
  }
  return flags;
}

}  // namespace

int RunCompletion(CLI::App* app, const std::string& shell, std::ostream& out, std::ostream& err) {
  if (shell != "bash") {
    err << "sbctl completion: only bash is supported (got '" << shell << "')\n";
    return 2;
  }
  std::vector<std::string> commands;
  for (const CLI::App* sub : app->get_subcommands({})) commands.push_back(sub->get_name());
  out << "# bash completion for sbctl: source it, or install it as\n"
      << "# /etc/bash_completion.d/sbctl (sbctl completion bash > /etc/bash_completion.d/sbctl)\n"
      << "_sbctl() {\n"
      << "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      << "  local globals=\"" << absl::StrJoin(LongFlags(*app), " ") << "\"\n"
      << "  local commands=\"" << absl::StrJoin(commands, " ") << "\"\n"
      << "  case \"$prev\" in\n"
      << "    --metric) COMPREPLY=($(compgen -W \"" << kHistoryMetrics << "\" -- \"$cur\")); return ;;\n"
      << "    --controlplane|--timeout|--since|--until|--step|--limit|--count|--for|--reason) return ;;\n"
      << "  esac\n"
      << "  local sub=\"\" w\n"
      << "  for w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n"
      << "    case \" $commands \" in *\" $w \"*) sub=\"$w\"; break ;; esac\n"
      << "  done\n"
      << "  case \"$sub\" in\n"
      << "    \"\") COMPREPLY=($(compgen -W \"$commands $globals\" -- \"$cur\")) ;;\n";
  for (const CLI::App* sub : app->get_subcommands({})) {
    std::vector<std::string> words = LongFlags(*sub);
    for (const CLI::App* subsub : sub->get_subcommands({})) words.push_back(subsub->get_name());
    if (sub->get_name() == "completion") words.push_back("bash");
    out << "    " << sub->get_name() << ") COMPREPLY=($(compgen -W \"" << absl::StrJoin(words, " ")
        << " $globals\" -- \"$cur\")) ;;\n";
  }
  out << "  esac\n"
      << "}\n"
      << "complete -F _sbctl sbctl\n";
  return 0;
}

}  // namespace switchboard::cli
