package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/kafka"
)

// Committed is a snapshot of consumer groups' committed offsets on a topic.
type Committed struct {
	topic  string
	groups []string
	offs   []kadm.OffsetResponses
	// topicID is the topic's Kafka ID: committed offsets are positions in
	// that incarnation only.
	topicID string
}

// FetchCommitted reads the groups' committed offsets on topic, then the
// topic's ID, in that order and around the client's metadata cache: offsets
// that a group committed on a recreated topic are never read as positions
// in the topic as it was.
func FetchCommitted(ctx context.Context, cl *kgo.Client, groups []string, topic string) (*Committed, error) {
	c := &Committed{topic: topic, groups: groups}
	adm := kadm.NewClient(cl)
	for _, g := range groups {
		resp, err := adm.FetchOffsets(ctx, g)
		if err == nil {
			err = resp.Error()
		}
		// A group that has never committed has not started: nothing of
		// any job is through it yet. (Kafka answers with no offsets, some
		// brokers with this error.)
		if errors.Is(err, kerr.GroupIDNotFound) {
			resp, err = kadm.OffsetResponses{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("committed offsets of group %s: %w", g, err)
		}
		c.offs = append(c.offs, resp)
	}
	st, err := kafka.Describe(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	c.topicID = st.ID
	return c, nil
}

// GroupProgress is how far one consumer group is from the end of a job.
type GroupProgress struct {
	Group string `json:"group"`
	// Behind is how many records the group has still to commit before it
	// passes every end offset of the job: the job's own, and any other
	// records interleaved with them.
	Behind int64 `json:"records_behind"`
}

// Progress returns, per group, how far it is from passing ends: for each
// partition, its last offset plus one, less the group's committed offset.
// Zero for every group means the job is done (invariant 4): no counting of
// rows, no guessing.
func (c *Committed) Progress(ends map[int32]int64) []GroupProgress {
	out := make([]GroupProgress, len(c.groups))
	for i, g := range c.groups {
		out[i].Group = g
		for p, last := range ends {
			committed := int64(0)
			if o, ok := c.offs[i].Lookup(c.topic, p); ok && o.At >= 0 {
				committed = o.At
			}
			out[i].Behind += max(last+1-committed, 0)
		}
	}
	return out
}

// Passed reports whether every group in progress is past the job's end.
func Passed(progress []GroupProgress) bool {
	for _, g := range progress {
		if g.Behind > 0 {
			return false
		}
	}
	return true
}

// ErrTopicRecreated is returned for a job whose topic was deleted and
// created again (or moved) before its records were loaded: its end offsets
// mean nothing on the new topic, and its records may be gone.
var ErrTopicRecreated = errors.New("the topic was recreated before the job's records were loaded; push its input again")

// Recreated returns ErrTopicRecreated, with the IDs, when a job produced
// to the incarnation of the topic with ID topicID, and c was read from
// another one.
func (c *Committed) Recreated(topicID string) error {
	if topicID == "" || c.topicID == "" || topicID == c.topicID {
		return nil
	}
	return fmt.Errorf("%w (topic %s had ID %s, it has %s now)", ErrTopicRecreated, c.topic, topicID, c.topicID)
}

// firstLook is the pause between Wait's looks during its first quickLooks;
// after that the pauses double up to Wait's every. A small push is loaded
// within a few hundred milliseconds, and a wait of a fixed 200 ms added up
// to that again to it (measured: loader push --wait of one record, p50
// 334 ms); pauses doubling from the first look (10, 20, 40, 80, 160 ms)
// still saw a commit made at 160 ms only at 310 ms. A long wait asks the
// broker every `every` after the first second or so; the looks of the
// first second are an OffsetFetch each, nothing to a broker.
const (
	firstLook  = 10 * time.Millisecond
	quickLooks = time.Second
)

// nextPause is the pause after a look made since into a wait, the last
// pause having been pause.
func nextPause(since, pause, every time.Duration) time.Duration {
	if since < quickLooks {
		return min(firstLook, every)
	}
	return min(2*pause, every)
}

// Wait returns once every group has committed past ends, or when ctx
// ends. It calls progress after every look with the records still to go,
// summed over the groups. Looks come closer together at first: 10 ms
// apart for a second, then twice as far each time up to every. It fails with ErrTopicRecreated when the topic's
// ID is not topicID, the one the job produced to (empty: not checked).
//
// A broker that cannot be asked (restarting, say) is asked again at the
// next look: only ctx ends the wait then, with the last error in it.
func Wait(ctx context.Context, cl *kgo.Client, groups []string, topic, topicID string, ends map[int32]int64, every time.Duration, progress func(left int64)) error {
	var last error
	start := time.Now()
	pause := min(firstLook, every)
	for {
		c, err := FetchCommitted(ctx, cl, groups, topic)
		switch {
		case err != nil:
			last = err
		default:
			if err := c.Recreated(topicID); err != nil {
				return err
			}
			var left int64
			for _, g := range c.Progress(ends) {
				left += g.Behind
			}
			if progress != nil {
				progress(left)
			}
			if left == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (the last look failed: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(pause):
			pause = nextPause(time.Since(start), pause, every)
		}
	}
}

// MarkDone records that j is done: both groups have passed its end.
func (s *Store) MarkDone(ctx context.Context, j *Job) error {
	now := time.Now()
	j.State, j.FinishedAt = Done, now
	j.LoadSeconds = now.Sub(j.Started).Seconds()
	return s.Save(ctx, j)
}

// Settle brings a produced job up to date: it returns each group's
// progress and, when every group has passed the job's end, marks it done.
// Jobs in any other state are returned as they are, without progress.
func (s *Store) Settle(ctx context.Context, c *Committed, j *Job) ([]GroupProgress, error) {
	if j.State != Produced {
		return nil, nil
	}
	if err := c.Recreated(j.TopicID); err != nil {
		j.State, j.Error, j.FinishedAt = Failed, err.Error(), time.Now()
		return nil, s.Save(ctx, j)
	}
	progress := c.Progress(j.EndOffsets)
	if Passed(progress) {
		if err := s.MarkDone(ctx, j); err != nil {
			return progress, err
		}
	}
	return progress, nil
}
