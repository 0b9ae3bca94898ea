package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"skuflow/api"
	"skuflow/config"
)

// tokenName is what a token's name may be: it shows in logs, rate limits
// and 403 answers, and goes into YAML unquoted.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func runToken(ctx context.Context, args []string, stdio stdio) error {
	return runTokenWith(args, stdio, api.NewToken)
}

// runTokenWith is `loader token`, with the token maker a test can fix.
func runTokenWith(args []string, stdio stdio, newToken func() (tok, sum string)) error {
	fs := newFlags("token", "create NAME [--scope read,write]", stdio.err)
	scopes := fs.StringSlice("scope", []string{config.ScopeRead}, "what the token may do: read (GET), write (POST files and records), or read,write")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "create" {
		return usageError{errors.New("say what to do: loader token create NAME [--scope read,write]")}
	}
	if fs.NArg() != 2 {
		return usageError{errors.New("token create takes one NAME")}
	}
	name := fs.Arg(1)
	if !tokenName.MatchString(name) {
		return usageError{fmt.Errorf("name %q: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)", name)}
	}
	var scope []string
	for _, s := range *scopes {
		s = strings.TrimSpace(s)
		if s != config.ScopeRead && s != config.ScopeWrite {
			return usageError{fmt.Errorf("--scope %q: the scopes are read and write", s)}
		}
		if !slices.Contains(scope, s) {
			scope = append(scope, s)
		}
	}
	if len(scope) == 0 {
		return usageError{errors.New("--scope: name read, write or both")}
	}
	slices.Sort(scope) // read before write, however given
	tok, sum := newToken()
	return writeToken(stdio.out, name, scope, tok, sum)
}

// writeToken prints a new token and the api.tokens entry that makes the
// API accept it.
func writeToken(w io.Writer, name string, scopes []string, tok, sum string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Token %s (scopes: %s):\n\n", name, strings.Join(scopes, ", "))
	fmt.Fprintf(&b, "    %s\n\n", tok)
	fmt.Fprintf(&b, "It is shown once: keep it now. skuflow stores only its SHA-256, and cannot show it again.\n")
	fmt.Fprintf(&b, "Send it as 'Authorization: Bearer TOKEN'.\n")
	if !slices.Contains(scopes, config.ScopeRead) {
		fmt.Fprintf(&b, "Without read it cannot follow the jobs of its uploads (GET /v1/jobs/{id}).\n")
	}
	fmt.Fprintf(&b, "\nAdd its entry to api.tokens in skuflow.yaml (beside the tokens already there), then restart the API:\n\n")
	fmt.Fprintf(&b, "api:\n  tokens:\n    - name: %s\n      sha256: %s\n      scopes: [%s]\n", name, sum, strings.Join(scopes, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}
