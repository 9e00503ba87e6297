#!/usr/bin/env bash
# deploy/certs.sh -- a local CA and one certificate per service for mTLS
# between the Batch-on-Kafka services (docs/SECURITY.md "Service identity").
#
#   deploy/certs.sh DIR [NAME...]     (default names: model job worker api gateway)
#
# First start only: when DIR/ca.pem exists its certificates are kept (delete
# DIR to make new ones); a NAME without DIR/NAME.pem yet is then issued by the
# existing CA (a layout that adds services, e.g. docker-compose.shards.yml).
# Writes DIR/ca.pem (+ ca.key), and for each NAME DIR/NAME.pem and
# DIR/NAME.key: CN=NAME, SANs DNS:NAME, DNS:localhost, IP:127.0.0.1 (so the Compose service name and loopback both verify), usable
# as server and client certificate. Keys are 0600, owned by whoever runs it.
# Set BOK_CERTS_DAYS (default 825) for the validity. Needs openssl.
set -euo pipefail

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: $0 DIR [NAME...]" >&2
  exit 2
fi
dir=$1
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(model job worker api gateway)
days=${BOK_CERTS_DAYS:-825}

for n in "${names[@]}"; do
  [[ "$n" =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || { echo "certs: bad name '$n'" >&2; exit 2; }
done
existing=0
if [ -s "$dir/ca.pem" ]; then
  missing=()
  for n in "${names[@]}"; do [ -s "$dir/$n.pem" ] || missing+=("$n"); done
  if [ ${#missing[@]} -eq 0 ] || [ ! -s "$dir/ca.key" ]; then
    echo "certs: $dir/ca.pem exists, keeping the certificates in $dir"
    exit 0
  fi
  names=("${missing[@]}")
  existing=1
fi
command -v openssl >/dev/null || { echo "certs: openssl is not installed" >&2; exit 1; }

umask 077
mkdir -p "$dir"
# Built in a private temporary directory and moved in at the end, with
# ca.pem last: a half-finished run never looks finished.
work=$(mktemp -d "$dir/.certs.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$existing" = 1 ]; then
  cp "$dir/ca.pem" "$dir/ca.key" "$work/"
else
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
    -keyout "$work/ca.key" -out "$work/ca.pem" -subj "/CN=bok-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for n in "${names[@]}"; do
  cat >"$work/$n.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$n,DNS:localhost,IP:127.0.0.1
EOF
  openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$work/$n.key" -out "$work/$n.csr" \
    -subj "/CN=$n" 2>/dev/null
  openssl x509 -req -sha256 -days "$days" -in "$work/$n.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/$n.ext" -out "$work/$n.pem" 2>/dev/null
  rm -f "$work/$n.csr" "$work/$n.ext"
done

chmod 600 "$work"/*.key
chmod 644 "$work"/*.pem
for n in "${names[@]}"; do
  mv -f "$work/$n.key" "$work/$n.pem" "$dir/"
done
if [ "$existing" = 0 ]; then
  mv -f "$work/ca.key" "$dir/ca.key"
  mv -f "$work/ca.pem" "$dir/ca.pem"
fi
echo "certs: CA and certificates for ${names[*]} written to $dir"
