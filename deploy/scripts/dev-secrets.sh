#!/bin/sh
# Throwaway secrets for deploy/compose.yaml's event sources, in deploy/secrets/ (git-ignored):
#   tls.crt / tls.key   self-signed certificate for `mail serve` STARTTLS (and the gateway)
#   signing-keys        kid:secret for VERP and mailto unsubscribe addresses
# Files that exist are kept. Readable by uid 10001 (compose mounts them as they are).
# For anything real, point MAIL_TLS_CERT, MAIL_TLS_KEY and SIGNING_KEYS_FILE at real files.
set -eu
dir="$(cd "$(dirname "$0")/../secrets" && pwd)"
name="${MAIL_DOMAIN:-bounces.example.com}"

if [ ! -f "$dir/tls.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$name" \
        -addext "subjectAltName=DNS:$name" \
        -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
fi
if [ ! -f "$dir/signing-keys" ]; then
    printf 'dev%s:%s\n' "$(date +%Y%m%d)" "$(openssl rand -hex 32)" > "$dir/signing-keys"
fi
chmod 644 "$dir/tls.crt" "$dir/tls.key" "$dir/signing-keys"  # the container's uid 10001 reads them
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
