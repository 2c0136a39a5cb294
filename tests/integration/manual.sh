#!/bin/bash
# manual.sh PROVISIO BUILD_DIR SOURCE_DIR - the manual pages and the shell
# completion say what the program does:
# - provisio(1) and provisio.json(5), as built, are what the program prints,
#   and render with groff and man without a single warning;
# - every command, subcommand and option the parsers accept (help --flags)
#   is in the command's --help text and in provisio(1), and the parser's
#   own "valid:" list for each subcommand is that same set;
# - every PROVISIO_* and HF_* variable the code reads is in ENVIRONMENT;
#   every key the configuration's validators accept is in provisio.json(5);
# - the bash and zsh scripts load, and completing through their functions
#   (COMP_WORDS in bash; words/CURRENT in zsh) gives the commands,
#   subcommands, options, --format values and template ids.
set -u
CLI=$(realpath "$1")
BUILD=$(realpath "$2")
SRC=$(realpath "$3")
T=$(mktemp -d /tmp/pv_manual.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
PATH=$(dirname "$CLI"):$PATH
cd "$T" || exit 1

# ---- the pages: as built, and rendered without warnings -------------------------------------------
for sec in 1 5; do
	page=$BUILD/man/provisio.1
	[ $sec = 5 ] && page=$BUILD/man/provisio.json.5
	"$CLI" help --man $sec >"$T/man.$sec" 2>"$T/err" || fail "help --man $sec: $(cat "$T/err")"
	cmp -s "$T/man.$sec" "$page" && ok "the built $(basename "$page") is what 'help --man $sec' prints" ||
		fail "$page differs from 'provisio help --man $sec'"
	groff -man -Tutf8 -ww -z "$T/man.$sec" 2>"$T/groff.err"
	[ $? = 0 ] && [ ! -s "$T/groff.err" ] && ok "groff -man -ww renders section $sec with no warning" ||
		fail "groff warns on section $sec: $(head -5 "$T/groff.err")"
	MANWIDTH=80 man -l "$T/man.$sec" >"$T/text.$sec" 2>"$T/man.err"
	[ -s "$T/text.$sec" ] && [ ! -s "$T/man.err" ] && ok "man -l renders section $sec" ||
		fail "man -l on section $sec: $(head -5 "$T/man.err")"
	# plain text, one space between words, for the searches below
	MANWIDTH=2000 man -l "$T/man.$sec" 2>/dev/null | col -b | tr -s ' ' >"$T/plain.$sec"
done
for s in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS FILES ENVIRONMENT "EXIT STATUS" "SEE ALSO"; do
	grep -q "^$s\$" "$T/plain.1" || fail "provisio(1) has no $s section"
done
grep -q "provisio/provisio.json" "$T/plain.1" && grep -q "lib/provisio/provisio.db" "$T/plain.1" &&
	ok "FILES names the configuration and the state folder" || fail "FILES lacks provisio.json or the state folder"
"$CLI" help --man 7 >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q "'7'.*1.*5" "$T/err" && ok "help --man 7 is a usage error naming 1 and 5" ||
	fail "help --man 7: $(cat "$T/err")"

# ---- every command and option: in --help, in provisio(1), and what the parser takes ------------------
"$CLI" help --flags >"$T/flags" || fail "help --flags"
[ "$(wc -l <"$T/flags")" -gt 50 ] || fail "help --flags lists only $(wc -l <"$T/flags") options"
"$CLI" --help >"$T/help.-" 2>&1
checked=0
while read -r cmd sub flag value; do
	if [ "$cmd" != - ] && [ ! -f "$T/help.$cmd" ]; then
		"$CLI" "$cmd" --help >"$T/help.$cmd" 2>&1 || fail "$cmd --help exits $?"
		grep -q "^ *$cmd " "$T/help.-" || fail "'$cmd' is not in provisio --help"
		grep -q "^ *provisio $cmd\$" "$T/plain.1" || fail "provisio(1) has no section for '$cmd'"
	fi
	[ "$sub" != - ] && ! grep -q -- "$sub" "$T/help.$cmd" && fail "$cmd --help does not name '$sub'"
	[ "$flag" = - ] && continue
	grep -q -- "$flag" "$T/help.$cmd" || fail "$cmd --help does not name $flag (of '$cmd $sub')"
	grep -q -- "$flag" "$T/plain.1" || fail "provisio(1) does not name $flag"
	checked=$((checked + 1))
done <"$T/flags"
ok "$checked options, each in its command's --help and in provisio(1)"
"$CLI" help templates >"$T/a" && "$CLI" templates --help >"$T/b" && cmp -s "$T/a" "$T/b" &&
	ok "help templates prints templates --help" || fail "help templates differs from templates --help"

# the parser's own list of valid options for each subcommand is the table's
# (a deprecated spelling, a fifth column, is accepted but not offered)
subs=0
while read -r cmd sub; do
	[ "$cmd" = - ] || [ "$cmd" = hostfactory ] && continue # hostfactory answers Host Factory (JSON)
	want=$(awk -v c="$cmd" -v s="$sub" '$1 == c && $2 == s && $3 != "-" && NF == 4 { print $3 }' "$T/flags" |
		sort | tr '\n' ' ')
	[ -z "$want" ] && want="none "
	args=("$cmd")
	[ "$sub" != - ] && args+=("$sub")
	"$CLI" "${args[@]}" --no-such-option >/dev/null 2>"$T/err"
	rc=$?
	got=$(sed -n 's/.*(valid: \(.*\); see --help).*/\1/p' "$T/err" | tr -d ',' | tr ' ' '\n' | sort | tr '\n' ' ')
	[ "$rc" = 2 ] && [ "$got" = "$want" ] && subs=$((subs + 1)) ||
		fail "'${args[*]} --no-such-option': exit $rc, valid '$got', the table says '$want'"
done < <(awk '{ print $1, $2 }' "$T/flags" | uniq)
ok "$subs subcommands refuse an unknown option listing exactly their table's options"

# ---- the environment and the configuration keys -------------------------------------------------
vars=$(grep -rhoE '"(PROVISIO|HF)_[A-Z_]+"' "$SRC/src" --include=*.c | tr -d '"' | grep -v '^PROVISIO_TEST_' | sort -u)
[ -n "$vars" ] || fail "found no variable in the sources"
env_text=$(sed -n '/^ENVIRONMENT$/,/^EXIT STATUS$/p' "$T/plain.1")
for v in $vars; do
	grep -q "$v" <<<"$env_text" || fail "provisio(1) ENVIRONMENT lacks $v (read by the code)"
done
ok "ENVIRONMENT names the $(wc -w <<<"$vars") PROVISIO_*/HF_* variables the code reads"
keys=$(sed -n '/^const char \*const pv_config_keys/,/^static const pv_config_section/p' "$SRC/src/config/keys.c" |
	grep -oE '"[a-z_]+"' | tr -d '"' | grep -v '^_' | sort -u)
[ "$(wc -w <<<"$keys")" -gt 60 ] || fail "found only $(wc -w <<<"$keys") keys in src/config/keys.c"
for k in $keys; do
	grep -qw -- "$k" "$T/plain.5" || fail "provisio.json(5) lacks the key '$k'"
done
ok "provisio.json(5) names the $(wc -w <<<"$keys") keys the validators accept"
for type in sim local aws libvirt rest; do
	grep -qw "$type" "$T/plain.5" || fail "provisio.json(5) lacks the provider type $type"
done

# ---- completion ----------------------------------------------------------------------------------
"$CLI" completion fish >"$T/out" 2>"$T/err"
[ $? = 2 ] && [ ! -s "$T/out" ] && grep -q "'fish' (bash, zsh)" "$T/err" &&
	ok "completion fish: exit 2 naming bash and zsh" || fail "completion fish: $(cat "$T/err")"
for sh in bash zsh; do
	"$CLI" completion $sh >"$T/c.$sh" || fail "completion $sh"
done
cmp -s "$T/c.bash" "$BUILD/completion/provisio" && cmp -s "$T/c.zsh" "$BUILD/completion/_provisio" &&
	ok "the built completion files are what 'completion bash|zsh' print" || fail "built completion files differ"

# a configuration with templates, its store in this folder
mkdir -p conf
cp "$SRC/config/provisio.json" "$SRC/config/templates.json" conf/
export HF_PROVIDER_WORKDIR=$T HF_PROVIDER_CONFDIR=$T/conf
tids=$("$CLI" --config conf/provisio.json templates list --json | jq -r '.templates[].templateId' | sort | tr '\n' ' ')
[ -n "$tids" ] || fail "no template in the test configuration"
commands=$(awk '$1 != "-" { print $1 }' "$T/flags" | uniq | tr '\n' ' ')
subs_of() { awk -v c="$1" '$1 == c && $2 != "-" { print $2 }' "$T/flags" | uniq | tr '\n' ' '; }
flags_of() { # a subcommand's options as completion offers them: deprecated spellings left out
	{ awk -v c="$1" -v s="$2" '$1 == c && $2 == s && $3 != "-" && NF == 4 { print $3 }' "$T/flags"
	  [ "$1" != - ] && echo --help; } | sort -u | tr '\n' ' '
}
sorted() { tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' '; }

# expect SHELL "WORDS..." "CANDIDATES" (sorted, space-separated)
expect() {
	local got w i
	read -ra w <<<"$2"
	for i in "${!w[@]}"; do [ "${w[i]}" = '""' ] && w[i]=""; done
	if [ "$1" = bash ]; then
		got=$(bash --norc --noprofile -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _provisio
			printf "%s\n" "${COMPREPLY[@]}"' - "$T/c.bash" "${w[@]}" 2>&1 | sed '/^$/d' | sort -u | tr '\n' ' ')
	else
		# zsh filters by the typed prefix itself: the stub of compadd shows all, filtered here
		got=$(zsh -f -c 'compdef() { :; }; compadd() { [[ $1 == -a ]] && print -rl -- ${(P)2}; }
			_files() { print -r -- "@files $*"; }; source "$1"; shift; words=("$@"); CURRENT=$#
			PREFIX=${words[CURRENT]}; _provisio' - "$T/c.zsh" "${w[@]}" 2>&1 |
			awk -v p="${w[${#w[@]}-1]}" 'p == "" || index($0, p) == 1' | sed '/^$/d' | sort -u | tr '\n' ' ')
	fi
	[ "$got" = "$3" ] && return 0
	fail "$1: completing '$2': got '$got', want '$3'"
	return 1
}
for sh in bash zsh; do
	if ! command -v $sh >/dev/null; then
		fail "$sh is not installed (scripts/install-deps installs it)"
		continue
	fi
	$sh -n "$T/c.$sh" 2>"$T/err" || fail "$sh -n: $(cat "$T/err")"
	n=0
	# '""' is the empty current word
	expect $sh 'provisio ""' "$(sorted <<<"$commands")" && n=$((n + 1))
	expect $sh 'provisio -' "$(flags_of - -)" && n=$((n + 1))
	for cmd in $commands; do
		subs=$(subs_of "$cmd")
		if [ -n "$subs" ]; then
			expect $sh "provisio $cmd \"\"" "$(sorted <<<"$subs")" && n=$((n + 1))
			for sub in $subs; do
				expect $sh "provisio $cmd $sub -" "$(flags_of "$cmd" "$sub")" && n=$((n + 1))
			done
		else
			expect $sh "provisio $cmd -" "$(flags_of "$cmd" -)" && n=$((n + 1))
		fi
	done
	expect $sh 'provisio templates list --format ""' "json table " && n=$((n + 1))
	expect $sh 'provisio --log-level ""' "debug error info off warn " && n=$((n + 1))
	expect $sh 'provisio completion ""' "bash zsh " && n=$((n + 1))
	expect $sh 'provisio --config conf/provisio.json templates show ""' "$tids" && n=$((n + 1))
	expect $sh 'provisio --config conf/provisio.json machines request ""' "$tids" && n=$((n + 1))
	ok "$sh: $n completions as the tables say"
done

[ "$fails" = 0 ] && echo "PASS" || echo "$fails failure(s)"
[ "$fails" = 0 ]
