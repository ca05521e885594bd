// Package realserver has no code: its tests prove scripts/realserver.sh in
// network namespaces on the host (root; CI runs them as root).
package realserver
