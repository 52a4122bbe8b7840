package postgres

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
)

// envTestDatabaseURL names the test PostgreSQL (as in storetest, which this
// package cannot import: storetest imports it).
const envTestDatabaseURL = "CARRIER_TEST_DATABASE_URL"

// closedPort returns a loopback port on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// testServerURL returns CARRIER_TEST_DATABASE_URL parsed, skipping the test
// when it is unset or not a URL.
func testServerURL(t *testing.T) *url.URL {
	t.Helper()
	base := os.Getenv(envTestDatabaseURL)
	if base == "" {
		t.Skipf("%s is not set: no PostgreSQL server to test against", envTestDatabaseURL)
	}
	u, err := url.Parse(base)
	if err != nil || !strings.Contains(base, "://") {
		t.Skipf("%s is not a postgres:// URL", envTestDatabaseURL)
	}
	return u
}

func randomName(t *testing.T, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func expectMessage(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Open succeeded")
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestOpenUnreachableServerSaysWhatToCheck opens a loopback port where
// nothing listens: the error names the setting, the address and what to
// check, and never the password.
func TestOpenUnreachableServerSaysWhatToCheck(t *testing.T) {
	port := closedPort(t)
	_, err := Open("postgres://carrier:s3cret-pw@127.0.0.1:" + port + "/carrier?sslmode=disable")
	expectMessage(t, err, "cannot reach PostgreSQL at 127.0.0.1:"+port, "CARRIER_DATABASE_URL", "server is running",
		"pg_isready -h 127.0.0.1 -p "+port, "connection refused")
	if err != nil && strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestOpenMissingDatabaseSaysCreateIt connects to the test server with the
// name of a database that does not exist (nothing is created).
func TestOpenMissingDatabaseSaysCreateIt(t *testing.T) {
	u := testServerURL(t)
	name := randomName(t, "carrier_missing_")
	u.Path = "/" + name
	_, err := Open(u.String())
	expectMessage(t, err, "has no database \""+name+"\"", "CARRIER_DATABASE_URL", "createdb ", " "+name+" (")
}

// TestOpenUnknownRoleSaysCheckTheUser connects to the test server as a role
// that does not exist (nothing is created).
func TestOpenUnknownRoleSaysCheckTheUser(t *testing.T) {
	u := testServerURL(t)
	role := randomName(t, "carrier_no_role_")
	u.User = url.User(role)
	_, err := Open(u.String())
	expectMessage(t, err, "refused user \""+role+"\"", "CARRIER_DATABASE_URL", "check the user and password")
}
