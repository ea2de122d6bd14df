#!/bin/sh
# Cross-check a genlog.py truth file against its log with independent greps.
# Usage: bench/check_truth.sh LOG TRUTH     (exit 0 = all checks pass)
set -eu
umask 022   # a config file others can write is refused (src/cfgfile.h)
LOG=$1 TRUTH=$2
export LC_ALL=C
fail=0
tv() { awk -v k="$1" '$1=="event_total" && $2==k {print $3}' "$TRUTH"; }
chk() { # name got want
	if [ "$2" = "$3" ]; then echo "ok   $1 $2"; else echo "FAIL $1 log=$2 truth=$3"; fail=1; fi
}
chk lines "$(wc -l < "$LOG" | tr -d ' ')" "$(awk '$1=="lines"{print $2}' "$TRUTH")"
af=$(grep 'SASL [A-Za-z0-9-]* authentication failed' "$LOG" | grep -v 'non-SMTP command' \
	| grep -vc 'authentication failed: Connection lost to authentication server' || true)
chk auth_failure "$af" "$(tv auth_failure)"
chk submission "$(grep -cE '\]: [0-9A-F]{10,12}: client=[^ ]+, sasl_method=[A-Za-z0-9-]+, sasl_username=' "$LOG" || true)" "$(tv submission)"
chk queued "$(grep -cE 'postfix/qmgr\[[0-9]+\]: [0-9A-F]{10,12}: from=<.*\(queue active\)$' "$LOG" || true)" "$(tv queued)"
chk relay_denied "$(grep -c ': Relay access denied; from=<' "$LOG" || true)" "$(tv relay_denied)"
chk rbl_reject "$(grep -v 'Relay access denied' "$LOG" | grep -c 'Service unavailable; Client host \[' || true)" "$(tv rbl_reject)"
chk lost_after_auth "$(grep -c ': lost connection after AUTH from ' "$LOG" || true)" "$(tv lost_after_auth)"
chk auth_disconnect "$(grep -cE ': disconnect from .* auth=0/[1-9]' "$LOG" || true)" "$(tv auth_disconnect)"
chk non_smtp "$(grep -c ': warning: non-SMTP command from ' "$LOG" || true)" "$(tv non_smtp)"
chk postscreen_pregreet "$(grep -c 'postscreen\[[0-9]*\]: PREGREET ' "$LOG" || true)" "$(tv postscreen_pregreet)"
chk postscreen_dnsbl "$(grep -c 'postscreen\[[0-9]*\]: DNSBL rank ' "$LOG" || true)" "$(tv postscreen_dnsbl)"
# per-IP auth failures
a=$(grep 'SASL [A-Za-z0-9-]* authentication failed' "$LOG" | grep -v 'non-SMTP command' \
	| grep -v 'authentication failed: Connection lost to authentication server' \
	| sed -E 's/.*: warning: [^ []*\[([0-9a-f.:]+)\](:[0-9]+)?: SASL .*/\1/' | sort | uniq -c \
	| awk '{print "auth_failure "$2" "$1}' | sort | cksum)
chk per_ip_auth_failure "$a" "$(grep '^auth_failure ' "$TRUTH" | cksum)"
r=$(grep ': Relay access denied; from=<' "$LOG" | sed -E 's/.*RCPT from [^ []*\[([0-9a-f.:]+)\]: .*/\1/' \
	| sort | uniq -c | awk '{print "relay_denied "$2" "$1}' | sort | cksum)
chk per_ip_relay_denied "$r" "$(grep '^relay_denied ' "$TRUTH" | cksum)"
s=$(grep -E '\]: [0-9A-F]{10,12}: client=[^ ]+, sasl_method=[A-Za-z0-9-]+, sasl_username=' "$LOG" \
	| sed 's/.*sasl_username=//' | sort | uniq -c | awk '{print "submission "$2" "$1}' | sort | cksum)
chk per_account_submission "$s" "$(grep '^submission ' "$TRUTH" | cksum)"
sort -c "$TRUTH" && echo "ok   truth sorted (C locale)" || { echo "FAIL truth not sorted"; fail=1; }
exit $fail
