#!/bin/sh
# check_header.sh HEADER CC INCDIR...: compile a file that includes only HEADER, as C17 with the
# project's warnings as errors. A header that needs another one included first fails here.
set -eu
header=$1 cc=$2
shift 2
incs=
for d in "$@"; do incs="$incs -I$d"; done
printf '#include "%s"\n#include "%s"\n' "$(basename "$header")" "$(basename "$header")" |
	$cc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -Wno-unused-function -fsyntax-only $incs -x c -
