#!/bin/sh
# Regenerates the test certificates in this directory (committed; run only to replace them).
#
#   ca.crt ca.key               a test CA ("ferry test CA"), the issuer of both server certs
#   localhost.crt localhost.key CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   alt.crt alt.key             CN=alt.test, SAN DNS:alt.test, DNS:*.wild.test
#   mismatch.key                a key that matches no certificate (for error tests)
#   encrypted.key               localhost.key encrypted with the passphrase "ferry"
#
# ECDSA P-256 keys, valid for 100 years. The .crt files hold the leaf then the CA (a chain).
# Needs the openssl command line (1.1.1 or 3).
set -eu
cd "$(dirname "$0")"
days=36500
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -days $days -subj "/CN=ferry test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt

# server NAME SAN: a leaf for NAME signed by the CA, chain in NAME.crt
server() {
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$tmp/$1.csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$3" >"$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -CAserial "$tmp/ca.srl" -days $days -extfile "$tmp/$1.ext" -out "$tmp/$1.leaf" 2>/dev/null
    cat "$tmp/$1.leaf" ca.crt >"$1.crt"
}

server localhost localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
server alt alt.test "DNS:alt.test,DNS:*.wild.test"
key mismatch.key
openssl pkey -in localhost.key -aes256 -passout pass:ferry -out encrypted.key
chmod 644 ./*.key ./*.crt
