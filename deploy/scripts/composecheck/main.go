// composecheck loads docker compose files with compose-go (the library `docker compose` itself
// uses): schema validation, interpolation, merging, every profile active. It prints the
// resolved project as JSON on success, the loader's error and exit 1 otherwise. No Docker needed.
//
// Usage: composecheck FILE [FILE...]
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck FILE [FILE...]")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(os.Args[1:],
		cli.WithProfiles([]string{"*"}), cli.WithResolvedPaths(true), cli.WithOsEnv)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
