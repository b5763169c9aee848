#!/bin/sh
# Logging wrapper for a runc-compatible runtime: appends one record per call to
# $WRAP_LOG (argv, cwd, and the resources JSON of `update --resources -|FILE`), then execs
# $WRAP_RUNTIME with the same argv. Engines find runtimes by file name, so install it
# through a two-line shim named like the runtime (runc, pyrunc):
#   #!/bin/sh
#   WRAP_RUNTIME=/usr/sbin/runc WRAP_LOG=/tmp/calls.log exec /path/to/runtime-wrapper.sh "$@"
# Output format, one block per call:
#   --- <epoch.ns> pid=<pid> cwd=<cwd>
#   argv: <arg1> <arg2> ...          (each argument shell-quoted when needed)
#   stdin: <the JSON read from stdin>        (only for `update --resources -`)
#   resources-file: <the file's JSON>         (only for `update --resources[=| ]FILE`)
# With $WRAP_CAPTURE set (a directory), `create` also copies the bundle's config.json to
# $WRAP_CAPTURE/<container id>.json before the runtime runs (what the engine wrote).
: "${WRAP_RUNTIME:?WRAP_RUNTIME is not set}"
: "${WRAP_LOG:?WRAP_LOG is not set}"

quote() {
    case $1 in
        "" | *[!A-Za-z0-9_./=:,@%+-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
        *) printf '%s' "$1" ;;
    esac
}

{
    printf -- '--- %s pid=%s cwd=%s\nargv:' "$(date +%s.%N)" "$$" "$(pwd)"
    for a in "$@"; do printf ' '; quote "$a"; done
    printf '\n'
} >> "$WRAP_LOG"

if [ -n "${WRAP_CAPTURE:-}" ]; then
    prev= bundle=. create= id=
    for a in "$@"; do
        case $a in
            create) create=1 ;;
            --bundle=*) bundle=${a#--bundle=} ;;
            -b=*) bundle=${a#-b=} ;;
            *) if [ "$prev" = "--bundle" ] || [ "$prev" = "-b" ]; then bundle=$a; fi ;;
        esac
        prev=$a id=$a
    done
    if [ -n "$create" ] && [ -r "$bundle/config.json" ]; then
        cp "$bundle/config.json" "$WRAP_CAPTURE/$id.json"
    fi
fi

# `update --resources -` (or `-r -`, `--resources=-`): the resources come on stdin:
# keep a copy. `--resources FILE`: log the file's content.
prev=
for a in "$@"; do
    file=
    case $a in
        --resources=?*) file=${a#--resources=} ;;
        -r=?*) file=${a#-r=} ;;
        *) if [ "$a" != "-" ] && { [ "$prev" = "--resources" ] || [ "$prev" = "-r" ]; }; then file=$a; fi ;;
    esac
    if [ -n "$file" ] && [ "$file" != "-" ] && [ -r "$file" ]; then
        printf 'resources-file: %s\n' "$(tr -d '\n' < "$file")" >> "$WRAP_LOG"
    fi
    if [ "$a" = "--resources=-" ] || [ "$a" = "-r=-" ] ||
       { [ "$a" = "-" ] && { [ "$prev" = "--resources" ] || [ "$prev" = "-r" ]; }; }; then
        tmp=$(mktemp)
        cat > "$tmp"
        printf 'stdin: %s\n' "$(tr -d '\n' < "$tmp")" >> "$WRAP_LOG"
        exec < "$tmp"
        rm -f "$tmp"      # the open descriptor keeps the data for the runtime
        exec "$WRAP_RUNTIME" "$@"
    fi
    prev=$a
done
exec "$WRAP_RUNTIME" "$@"
