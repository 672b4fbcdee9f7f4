package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// newGenDocsCmd is the hidden `v9 gen-docs DIR`: it writes the CLI reference, one Markdown
// page per command, into DIR (`make docs` writes docs/cli; `make check-docs` and
// TestCLIReferenceUpToDate fail when the committed pages are stale).
func newGenDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write the CLI reference as Markdown into DIR",
		Hidden: true,
		Args:   exactArgs("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeCLIReference(args[0])
		},
	}
}

// writeCLIReference replaces the Markdown files of dir with the reference of a fresh command
// tree. Defaults that depend on the machine (host and user names, $V9_ADDR) are written as
// placeholders, so the pages are the same wherever they are made.
func writeCLIReference(dir string) error {
	root := newRootCmd(&app{})
	root.DisableAutoGenTag = true
	host, _ := os.Hostname()
	var login string
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	if env := os.Getenv("USER"); env != "" {
		login = env
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		fix := func(f *pflag.Flag) {
			switch {
			case f.Name == "addr":
				f.DefValue = defaultAddr
			case host != "" && strings.Contains(f.DefValue, host):
				f.DefValue = strings.ReplaceAll(f.DefValue, host, "$HOSTNAME")
			case login != "" && f.DefValue == login:
				f.DefValue = "$USER"
			}
		}
		c.Flags().VisitAll(fix)
		c.PersistentFlags().VisitAll(fix)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "v9*.md"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		return fmt.Errorf("write the CLI reference: %w", err)
	}
	return nil
}
