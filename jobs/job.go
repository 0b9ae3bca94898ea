package jobs

import (
	"time"
)

// State is where a job is in its life.
type State string

// A job is producing while the loader reads its input, produced once every
// record it sent is acknowledged by the broker, and done once the
// processor and aggregator groups have committed past its end offsets. It
// is failed if the input could not be read to its end or the loader
// stopped; records produced before that stay on the topic and are loaded.
const (
	Producing State = "producing"
	Produced  State = "produced"
	Done      State = "done"
	Failed    State = "failed"
)

// Heartbeat is how often a producing job's row is rewritten with its
// counts; a producing job silent for much longer has lost its loader.
const Heartbeat = 5 * time.Second

// Job is one push of one input.
type Job struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	// Size is the input's stored (possibly compressed) size, -1 if unknown.
	Size int64 `json:"size_bytes"`
	// SHA256 is the hex digest of the stored bytes: the same content has
	// the same digest whatever its name.
	SHA256      string `json:"sha256"`
	Format      string `json:"format"`
	Compression string `json:"compression,omitempty"`
	// Type is the record type the job's records were pushed as; empty in
	// jobs of releases before types, which were all products.
	Type  string `json:"type"`
	Topic string `json:"topic"`
	// TopicID is the topic's Kafka ID when the job produced: its end
	// offsets are positions in that incarnation of the topic only.
	TopicID string `json:"topic_id,omitempty"`
	// Origin says what started the job: "push" or "watch DIR".
	Origin   string `json:"origin"`
	Read     int64  `json:"records_read"`
	Produced int64  `json:"records_produced"`
	Rejected int64  `json:"records_rejected"`
	// EndOffsets holds, per partition the job wrote to, the last offset it
	// produced there.
	EndOffsets map[int32]int64 `json:"end_offsets"`
	State      State           `json:"state"`
	Error      string          `json:"error,omitempty"`
	Started    time.Time       `json:"started_at"`
	// ProducedAt and FinishedAt are zero until the job gets there;
	// FinishedAt is when it was seen done, or when it failed.
	ProducedAt     time.Time `json:"produced_at,omitzero"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
	ProduceSeconds float64   `json:"produce_seconds"`
	// LoadSeconds is from the start until the job was seen done.
	LoadSeconds float64   `json:"load_seconds,omitempty"`
	Updated     time.Time `json:"updated_at"`
	// CSVHeader is a CSV input's header line as read (without its line
	// end): `loader errors --raw` and `loader redrive` write the rejected
	// rows after it. Empty for other formats, and in jobs of releases
	// before it was kept.
	CSVHeader string `json:"-"`
	// RedriveOf is the job whose rejected records this job pushed again
	// (`loader redrive`); RedrivenBy the jobs that pushed this job's
	// rejected records again, oldest first (read by Store.Get only).
	RedriveOf  string   `json:"redrive_of,omitempty"`
	RedrivenBy []string `json:"redriven_by,omitempty"`
}

// Blocks reports whether the job has put its whole input on the topic, so
// that pushing the same content again would only repeat it. A failed job,
// or one that never finished producing, does not block a retry.
func (j *Job) Blocks() bool { return j.State == Produced || j.State == Done }

// Stalled reports whether a producing job has not been heard from for
// several heartbeats: its loader was most likely killed.
func (j *Job) Stalled(now time.Time) bool {
	return j.State == Producing && now.Sub(j.Updated) > 6*Heartbeat
}

// rank orders the states a job moves through: a row of a later state is
// never hidden by one of an earlier state, whatever the clocks of the hosts
// that wrote them (see Store.Save).
func (s State) rank() uint64 {
	switch s {
	case Producing:
		return 1
	case Produced:
		return 2
	case Failed:
		return 3
	case Done:
		return 4
	}
	return 0
}
