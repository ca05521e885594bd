package config

// NewGlobal and NewSync complete the New* constructors for a config built
// from scratch in code (lbd import, lbd init): they set the settings whose
// zero value is itself a setting (see Normalize) to their defaults, so the
// canonical encoding leaves them out.
func NewGlobal() Global {
	var g Global
	g.RemoveGrace.Duration = defaultRemoveGrace
	return g
}

// NewSync: see NewGlobal. Enabled, Interface and ID stay unset: they follow
// [vrrp] when the config is resolved.
func NewSync() *Sync {
	s := &Sync{}
	s.WarmUp.Duration = defaultSyncRefresh + defaultSyncWarmUpMargin
	s.HandoverHold.Duration = defaultSyncHandoverHold
	s.TakeoverQuiet.Duration = defaultSyncTakeoverQuiet
	return s
}
