#!/bin/sh
# Throwaway secrets for deploy/compose.yaml's event sources, in deploy/secrets/ (git-ignored):
#   tls.crt / tls.key   self-signed certificate for `mail serve` STARTTLS (and the gateway)
#   signing-keys        kid:secret for VERP and mailto unsubscribe addresses
#   gateway-users       the smtp-gateway's users file, one user `clevertap` (or $GATEWAY_USER)
#   gateway-password    that user's password, for `bouncewire simulate --via-gateway
#                       127.0.0.1:2587 --gateway-username clevertap --gateway-password-file ...`
# The users file is made by `bouncewire smtp-gateway-user` ($BOUNCEWIRE, else the one on PATH,
# else the repository's .venv).
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
if [ ! -f "$dir/gateway-users" ]; then
    repo="$(cd "$dir/../.." && pwd)"
    cli="${BOUNCEWIRE:-$(command -v bouncewire || echo "$repo/.venv/bin/bouncewire")}"
    openssl rand -hex 16 > "$dir/gateway-password"
    "$cli" smtp-gateway-user "${GATEWAY_USER:-clevertap}" --users-file "$dir/gateway-users" \
        < "$dir/gateway-password"
fi
# The container's uid 10001 reads them (compose mounts them as they are).
chmod 644 "$dir/tls.crt" "$dir/tls.key" "$dir/signing-keys" "$dir/gateway-users" \
    "$dir/gateway-password"
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
