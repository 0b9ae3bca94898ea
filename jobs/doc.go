// Package jobs follows a push through its life: it names the job, and keeps
// what it produced, per partition, so that "done" can be decided from the
// consumer groups' committed offsets rather than by counting rows.
package jobs
