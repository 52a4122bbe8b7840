package queue

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"carrier/internal/dest"
	"carrier/internal/store"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(json.RawMessage(`{"queue":"results","raw":true}`))
	if err != nil || c.Queue != "results" || !c.Raw {
		t.Fatalf("%+v %v", c, err)
	}
	for raw, field := range map[string]string{`{}`: "queue", `{"queue":1}`: "queue", `{"queue":"q","raw":"yes"}`: "raw", `{"queue":"q","x":1}`: "x"} {
		var ferr *dest.FieldError
		if _, err := ParseConfig(json.RawMessage(raw)); !errors.As(err, &ferr) || ferr.Field != field {
			t.Errorf("%s: %v, want field %s", raw, err, field)
		}
	}
}

func TestRenderEnvelope(t *testing.T) {
	at := time.Date(2026, 1, 27, 10, 0, 0, 0, time.UTC)
	job := store.Job{Delivery: store.Delivery{ID: "d1"}, Subscription: store.Subscription{ProjectID: "p1"},
		Event: store.Event{ID: "e1", Type: "task.solved", Subject: "t1", Data: json.RawMessage(`{"solution":"x"}`), Attributes: map[string]string{"a": "b"}, CreatedAt: at}}
	body, err := Render(job, false, at)
	if err != nil {
		t.Fatal(err)
	}
	var env Notification
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "Notification" || env.MessageID != "d1" || env.TopicArn != "arn:carrier:p1:task.solved" || env.Subject != "task.solved" ||
		env.Timestamp != "2026-01-27T10:00:00.000Z" || env.MessageAttributes["a"] != (Attribute{Type: "String", Value: "b"}) {
		t.Errorf("envelope %+v", env)
	}
	var ev Event
	if err := json.Unmarshal([]byte(env.Message), &ev); err != nil || ev.ID != "e1" || string(ev.Data) != `{"solution":"x"}` || ev.Subject != "t1" {
		t.Errorf("message %+v %v", ev, err)
	}
	raw, _ := Render(job, true, at)
	if raw != env.Message {
		t.Errorf("raw body %s differs from the envelope's Message %s", raw, env.Message)
	}
}
