# Sourced by the scripts that make a tool available (fetch-helm, fetch-promtool,
# fetch-nats-server, install-chromium): their common flags and `say`.

# tool_args NAME WHAT "$@": parses --quiet, --check and --help into $quiet and $check;
# NAME prefixes messages, WHAT ends the usage line.
tool_args() {
  tool_name=$1
  local usage="usage: $0 [--quiet] [--check]   ($2)"
  shift 2
  quiet=0
  check=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --quiet) quiet=1 ;;
      --check) check=1 ;;
      -h | --help) echo "$usage"; exit 0 ;;
      *) echo "$tool_name: unknown argument '$arg' ($usage)" >&2; exit 2 ;;
    esac
  done
}

say() { if [ "$quiet" = 0 ]; then echo "$tool_name: $*" >&2; fi; }
