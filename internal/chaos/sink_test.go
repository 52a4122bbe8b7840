package chaos

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestSinkNamesTheSender checks that the sink finds the process at the
// other end of a connection: here this test's own.
func TestSinkNamesTheSender(t *testing.T) {
	self := os.Getpid()
	sink, err := StartSink(func(inode string) string {
		if socketOwner(self, inode) {
			return "me"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	req, _ := http.NewRequest("POST", sink.URL("plain"), strings.NewReader(`{"id":"ev-1"}`))
	req.Header.Set("webhook-id", "d-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := sink.Receipts()
	if len(got) != 1 {
		t.Fatalf("receipts: %d, want 1", len(got))
	}
	if got, want := got[0], (Receipt{WebhookID: "d-1", EventID: "ev-1", Sub: "plain", Node: "me", Status: 200}); got.WebhookID != want.WebhookID ||
		got.EventID != want.EventID || got.Sub != want.Sub || got.Node != want.Node || got.Status != want.Status {
		t.Errorf("receipt %+v, want %+v", got, want)
	}
}
