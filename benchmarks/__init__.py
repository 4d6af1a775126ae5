"""Benchmarks of Chorus through its public interfaces, on PostgreSQL: `python -m benchmarks` (or `make bench`)
runs them all and prints one table and one JSON line.

- `intake`: `chorus web` under gunicorn vs a bare HMAC-and-insert baseline, with wrk; peak and ~80% load.
- `events`: stored webhooks drained by one, then two, `chorus worker --once` processes.
- `sending`: due abandoned-checkout reminders sent by `chorus worker --once` to a loopback SMTP server.
- `scheduling`: an idle worker pass with 10,000 vs 1,000,000 waiting journeys.
"""
