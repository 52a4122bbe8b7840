package sqlite

import (
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
