#!/bin/bash
# usage (as root): mailsys.sh start|stop DIR [SMTP_PORT=10025] [IMAP_PORT=10143] [IMAPS_PORT=0] [SMTPS_PORT=0]
# IMAP offers STARTTLS and SMTP STARTTLS with a self-signed certificate ({DIR}/tls/cert.pem); IMAPS and SMTPS (TLS from
# the first byte) listen only when their ports are given.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); cmd=$1; DIR=$(realpath -m "$2"); SMTP=${3:-10025}; IMAP=${4:-10143}; IMAPS=${5:-0}; SMTPS=${6:-0}
render() { sed -e "s#{DIR}#$DIR#g" -e "s#{SMTP_PORT}#$SMTP#g" -e "s#{IMAP_PORT}#$IMAP#g" -e "s#{IMAPS_PORT}#$IMAPS#g" "$HERE/$1" > "$2"; }
greeting() {  # wait (max 10 s) until 127.0.0.1:$1 answers with a line starting with $2
  for _ in $(seq 100); do
    ( exec 3<>"/dev/tcp/127.0.0.1/$1" && read -t 2 -r l <&3 && [[ $l == "$2"* ]] ) 2>/dev/null && return 0
    sleep 0.1
  done; echo "port $1 not ready" >&2; return 1; }
ours() { [[ -n $1 && $(readlink "/proc/$1/cwd" 2>/dev/null) == "$DIR"/* ]]; }  # pid-reuse guard
case $cmd in
start)
  for port in "$SMTP" "$IMAP" $( [ "$IMAPS" != 0 ] && echo "$IMAPS" ) $( [ "$SMTPS" != 0 ] && echo "$SMTPS" ); do  # postfix binds with SO_REUSEPORT and would silently share a busy port
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port already in use" >&2; exit 1; fi
  done
  trap '[ $? -eq 0 ] || bash "$HERE/mailsys.sh" stop "$DIR" >&2' EXIT  # never leave half a system running
  mkdir -p "$DIR/dovecot/mail" "$DIR/postfix/conf" "$DIR/postfix/spool" "$DIR/postfix/data"
  chmod 755 "$DIR"; chown mail:mail "$DIR/dovecot/mail"; chown postfix "$DIR/postfix/data"
  mkdir -p "$DIR/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=mail.example.test \
    -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" 2>/dev/null
  chmod 644 "$DIR/tls/cert.pem"; chmod 600 "$DIR/tls/key.pem"
  render dovecot.conf "$DIR/dovecot/dovecot.conf"
  render main.cf "$DIR/postfix/conf/main.cf"; render master.cf "$DIR/postfix/conf/master.cf"
  [ "$SMTPS" = 0 ] || echo "127.0.0.1:$SMTPS inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt" >> "$DIR/postfix/conf/master.cf"
  touch -d '-1 minute' "$DIR/postfix/conf/main.cf" "$DIR/postfix/conf/master.cf"
  [ -f "$DIR/dovecot/passwd" ] || printf '%s\n' 'support@example.test:{PLAIN}support-pw:mail:mail' \
      'customer@example.test:{PLAIN}customer-pw:mail:mail' > "$DIR/dovecot/passwd"
  chmod 644 "$DIR/dovecot/passwd"
  /usr/sbin/dovecot -c "$DIR/dovecot/dovecot.conf"
  /usr/sbin/postfix -c "$DIR/postfix/conf" start >/dev/null ||  # postfix prints errors only to a TTY
    { echo "postfix start failed:" >&2; tail -5 "$DIR/postfix/postfix.log" >&2 2>/dev/null || true; exit 1; }
  greeting "$IMAP" '* OK'; greeting "$SMTP" '220'
  echo "dovecot=$(cat "$DIR/dovecot/run/master.pid") postfix=$(tr -d ' ' < "$DIR/postfix/spool/pid/master.pid")" ;;
stop)
  pids=()
  for f in "$DIR/postfix/spool/pid/master.pid" "$DIR/dovecot/run/master.pid"; do
    p=$(tr -d ' ' 2>/dev/null < "$f" || true)
    if ours "$p"; then kill -TERM "$p" && pids+=("$p"); fi
  done
  for p in "${pids[@]}"; do  # wait until gone (or a zombie nobody reaps), max 10 s
    for _ in $(seq 200); do [[ -d /proc/$p && $(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null) != Z ]] || break; sleep 0.05; done
  done
  echo "stopped ${pids[*]}" ;;
esac
