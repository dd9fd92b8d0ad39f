package sandbox

// Limits bound a sandbox's resources.
type Limits struct {
	CPUMillis   int64 `json:"CPUMillis"` // 1000 = one CPU
	MemoryBytes int64 `json:"MemoryBytes"`
	Pids        int64 `json:"Pids"`
}

// InstanceTypes are the named resource shapes a sandbox can be created with.
var InstanceTypes = map[string]Limits{
	"lite":     {CPUMillis: 250, MemoryBytes: 256 << 20, Pids: 256},
	"basic":    {CPUMillis: 1000, MemoryBytes: 1 << 30, Pids: 512},
	"standard": {CPUMillis: 2000, MemoryBytes: 4 << 30, Pids: 1024},
}

// DefaultInstanceType is used when a request names none.
const DefaultInstanceType = "basic"
