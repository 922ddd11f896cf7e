"""`bouncewire smtp-gateway`: the SMTP server CleverTap connects to, in front of a real relay.

Pure pieces (no I/O): `users` (the users file, scrypt hashes), `limits` (limits, AUTH
throttle), `headers` (what is read from and added to a message), `replies` (upstream outcome
→ client reply), `dedup` (relayed-but-unpublished transactions). `relay` drives the upstream
through `smtp_capture.RelaySession` and publishes; `server` is the thin aiosmtpd edge.
"""
