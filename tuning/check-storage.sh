#!/usr/bin/env bash
# Kept for existing callers: tuning/check.sh covers these storage items and
# the rest of the host. Usage: tuning/check-storage.sh [DATA_DIR]
exec "$(dirname "$0")/check.sh" --data-dir "${1:-./data}"
