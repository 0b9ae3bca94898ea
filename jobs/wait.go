package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Remaining returns how many of a job's records a consumer group has not
// yet committed past: for each partition the job wrote to, its last offset
// plus one, less the group's committed offset. Zero means the group has
// committed everything the job produced (invariant 4): no counting of rows,
// no guessing.
func Remaining(ctx context.Context, adm *kadm.Client, group, topic string, ends map[int32]int64) (int64, error) {
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if err := resp.Error(); err != nil {
		return 0, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	var left int64
	for p, last := range ends {
		committed := int64(0)
		if o, ok := resp.Lookup(topic, p); ok && o.At >= 0 {
			committed = o.At
		}
		left += max(last+1-committed, 0)
	}
	return left, nil
}

// Wait returns once every group has committed past the job's end offsets,
// or when ctx ends. It calls progress after every look with the records
// still to go, summed over the groups.
func Wait(ctx context.Context, adm *kadm.Client, groups []string, topic string, ends map[int32]int64, every time.Duration, progress func(left int64)) error {
	for {
		var left int64
		for _, g := range groups {
			n, err := Remaining(ctx, adm, g, topic, ends)
			if err != nil {
				return err
			}
			left += n
		}
		if progress != nil {
			progress(left)
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
