package balancer

// Kernel is the IPVS table of one network namespace. Each method is one
// netlink request in the real implementation (IPVS); Fake keeps the table in
// memory for tests. Implementations are safe for concurrent use, and their
// errors name the operation and the entry ("balancer: add real server
// 10.1.0.5:80 on tcp/10.0.0.1:80: file exists").
type Kernel interface {
	// Services lists every virtual service, lbd's or not. An empty table
	// is an empty list, not an error.
	Services() ([]ServiceStatus, error)
	// Destinations lists a service's real servers with their counters.
	// A service without destinations, or one that does not exist, gives an
	// empty list.
	Destinations(Key) ([]DestinationStatus, error)

	CreateService(Service) error
	UpdateService(Service) error
	RemoveService(Key) error // removes its destinations too

	CreateDestination(Key, Destination) error
	UpdateDestination(Key, Destination) error
	RemoveDestination(Key, DestKey) error

	// Timeouts reads the connection timeouts (IPVS_CMD_GET_CONFIG);
	// SetTimeouts writes the non-zero ones and leaves the others as they
	// are (IPVS_CMD_SET_CONFIG).
	Timeouts() (Timeouts, error)
	SetTimeouts(Timeouts) error

	// The connection-sync daemons and the connection table's origins
	// (sync.go).
	SyncKernel
}
