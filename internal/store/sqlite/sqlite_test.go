package sqlite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirIsLockedToOneProcess checks the lock that lets a restarted
// process take back every lease: a second open of the same directory fails
// with a message naming the setting, and succeeds once the first is closed.
func TestDataDirIsLockedToOneProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "CARRIER_DATA_DIR") {
		t.Fatalf("second open: err = %v, want an in-use error naming CARRIER_DATA_DIR", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	again.Close()
}

// TestDataDirThatCannotBeCreatedNamesTheSetting opens a data directory below
// a regular file (which no user, root included, can create): the error names
// CARRIER_DATA_DIR and the directory and says what to check.
func TestDataDirThatCannotBeCreatedNamesTheSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "carrier-data")
	_, err := Open(dir)
	if err == nil {
		t.Fatal("Open succeeded")
	}
	for _, want := range []string{"cannot create the data directory " + dir, "CARRIER_DATA_DIR", "may create it", "not a directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}
