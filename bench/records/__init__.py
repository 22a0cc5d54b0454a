"""The record store: one JSON file per run, written atomically, checked against a typed schema before use; reading
untrusted files safely."""
