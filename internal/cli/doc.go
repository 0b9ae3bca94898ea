// Package cli holds what the commands show a person: a progress bar that
// redraws one terminal line, and number formatting.
package cli
