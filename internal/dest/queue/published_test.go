package queue

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"carrier/internal/store"
)

func TestRenderPublished(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	job := func(data, subject string, attrs map[string]string) store.Job {
		return store.Job{Event: store.Event{ID: "ev-1", ProjectID: "p", Type: "sns.t", Subject: subject, Data: json.RawMessage(data), Attributes: attrs, CreatedAt: at}}
	}
	c := Config{Queue: "q", Message: MessagePublished, TopicArn: "arn:aws:sns:us-east-1:p:t"}
	for _, tc := range []struct {
		what    string
		job     store.Job
		message string
		attrs   map[string]Attribute
	}{
		{"JSON, byte for byte", job(" {\"a\":  1}\n", "s", map[string]string{"n": "5", TypeAttrPrefix + "n": "Number", "x": "y"}), " {\"a\":  1}\n",
			map[string]Attribute{"n": {"Number", "5"}, "x": {"String", "y"}}},
		{"text", job(`"hello \"you\""`, "", map[string]string{AttrText: "true"}), `hello "you"`, nil},
		{"JSON string literal", job(`"hello"`, "", nil), `"hello"`, nil},
		{"structure", job(`{"default": "d", "sqs": "for queues"}`, "", map[string]string{AttrStructure: "json"}), "for queues", nil},
		{"structure default", job(`{"default": "d", "email": "e"}`, "", map[string]string{AttrStructure: "json"}), "d", nil},
	} {
		body, err := RenderConfig(tc.job, c, at)
		if err != nil {
			t.Fatal(err)
		}
		var env map[string]any
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if env["Message"] != tc.message || env["MessageId"] != "ev-1" || env["TopicArn"] != c.TopicArn || env["Type"] != "Notification" {
			t.Errorf("%s: %s", tc.what, body)
		}
		if _, has := env["Subject"]; has != (tc.job.Event.Subject != "") {
			t.Errorf("%s: Subject in %s", tc.what, body)
		}
		var typed struct{ MessageAttributes map[string]Attribute }
		json.Unmarshal([]byte(body), &typed)
		if len(tc.attrs) > 0 && !reflect.DeepEqual(typed.MessageAttributes, tc.attrs) || len(tc.attrs) == 0 && len(typed.MessageAttributes) != 0 {
			t.Errorf("%s: attributes %v", tc.what, typed.MessageAttributes)
		}
		raw := c
		raw.Raw = true
		if body, _ := RenderConfig(tc.job, raw, at); body != tc.message {
			t.Errorf("%s raw: %q", tc.what, body)
		}
	}
}

func TestParseConfigMessage(t *testing.T) {
	if _, err := ParseConfig(json.RawMessage(`{"queue": "q", "message": "other"}`)); err == nil {
		t.Fatal("message other accepted")
	}
	c, err := ParseConfig(json.RawMessage(`{"queue": "q", "message": "published", "topic_arn": "arn:aws:sns:r:p:t", "raw": true}`))
	if err != nil || c.Message != MessagePublished || c.TopicArn != "arn:aws:sns:r:p:t" || !c.Raw {
		t.Fatalf("%+v %v", c, err)
	}
}
