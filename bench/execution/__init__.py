"""Where and how runs run: the training loop and its building blocks, the single-run path, executors (serial, --jobs,
shards, Ray) and per-run locks."""
