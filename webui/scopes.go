package webui

import "lbd/config"

// readTokenHashes lists the read-only API tokens (SHA-256 hex digests).
func readTokenHashes(cfg *config.Config) []string { return nil }
