package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"carrier/internal/app"
	"carrier/internal/store/sqlite"
)

const adminKeyUsage = `Usage: carrier admin-key create [flags]

Mints a new admin API key of the default project on the store directly and
prints it once: the way back in when every admin key is lost or revoked. It
reads the store settings of "carrier serve" (CARRIER_DATABASE_URL,
CARRIER_DATA_DIR; see "carrier admin-key create --help"). On SQLite, stop
"carrier serve" first (one process at a time opens the data directory); on
PostgreSQL it works while Carrier runs, and the key works at once.
`

// adminKey runs `carrier admin-key create`.
func adminKey(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, adminKeyUsage)
			return errors.New(`admin-key: missing subcommand "create"`)
		}
		fmt.Print(adminKeyUsage)
		return flag.ErrHelp
	}
	if args[0] != "create" {
		fmt.Fprint(os.Stderr, adminKeyUsage)
		return fmt.Errorf("admin-key: unknown subcommand %q", args[0])
	}
	cfg, err := loadConfig("admin-key create", args[1:])
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, cfg)
	if errors.Is(err, sqlite.ErrInUse) {
		return fmt.Errorf("%w: stop `carrier serve` on this data directory first, then run `carrier admin-key create` again", err)
	}
	if err != nil {
		return err
	}
	k, key, err := app.CreateAdminKey(ctx, st, "admin-key create")
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Printf("New admin API key %s of project %s (shown once, save it): %s\n", k.ID, k.ProjectID, key)
	return nil
}
