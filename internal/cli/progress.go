package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal, where a redrawn progress line
// makes sense.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar redraws one line on a terminal at a steady rate until stopped.
type Bar struct {
	w      io.Writer
	render func(elapsed time.Duration) string
	stop   chan struct{}
	done   sync.WaitGroup
	start  time.Time
}

// StartBar starts redrawing render's line on w every interval. On a writer
// that is not a terminal it draws nothing.
func StartBar(w io.Writer, interval time.Duration, render func(elapsed time.Duration) string) *Bar {
	b := &Bar{w: w, render: render, stop: make(chan struct{}), start: time.Now()}
	if !IsTerminal(w) {
		return b
	}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				fmt.Fprint(b.w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(b.w, "\r\033[K"+b.render(time.Since(b.start)))
			}
		}
	}()
	return b
}

// Stop clears the line and stops redrawing. It is safe to call twice.
func (b *Bar) Stop() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	b.done.Wait()
}

// Gauge draws "[#####.....]  42%".
func Gauge(done, total int64, width int) string {
	if total <= 0 {
		return ""
	}
	frac := float64(done) / float64(total)
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
}

// Count writes n with thousands separators: 1,234,567.
func Count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Size writes a byte count in MB with one decimal (1 MB = 10^6 bytes).
func Size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
}
