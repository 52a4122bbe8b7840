package topic

import (
	"errors"
	"strings"
	"testing"

	"carrier/internal/dest"
)

func field(err error) string {
	var fe *dest.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestCheckName(t *testing.T) {
	for _, c := range []struct {
		name string
		fifo bool
		ok   bool
	}{
		{"captcha-results", false, true}, {"A_b-9", false, true}, {strings.Repeat("a", 256), false, true},
		{"jobs.fifo", true, true}, {strings.Repeat("a", 251) + ".fifo", true, true},
		{"", false, false}, {strings.Repeat("a", 257), false, false}, {"a b", false, false}, {"a.b", false, false},
		{"jobs.fifo", false, false}, {"jobs", true, false}, {".fifo", true, false}, {strings.Repeat("a", 252) + ".fifo", true, false},
	} {
		err := CheckName(c.name, c.fifo)
		if (err == nil) != c.ok || (err != nil && field(err) != "Name") {
			t.Errorf("CheckName(%q, %v) = %v", c.name, c.fifo, err)
		}
	}
}

func TestCheckMessage(t *testing.T) {
	str := func(v string) map[string]Attribute { return map[string]Attribute{"a": {DataType: "String", Value: v}} }
	for _, c := range []struct {
		what        string
		fifo, dedup bool
		m           Message
		field       string // "" when valid
	}{
		{"plain", false, false, Message{Message: "hi"}, ""},
		{"empty", false, false, Message{}, "Message"},
		{"too long", false, false, Message{Message: strings.Repeat("x", MaxMessageBytes+1)}, "Message"},
		{"attributes count toward the limit", false, false, Message{Message: strings.Repeat("x", MaxMessageBytes-8), Attributes: str("0123456789")}, "Message"},
		{"subject", false, false, Message{Message: "x", Subject: strings.Repeat("s", 100)}, ""},
		{"long subject", false, false, Message{Message: "x", Subject: strings.Repeat("s", 101)}, "Subject"},
		{"subject line break", false, false, Message{Message: "x", Subject: "a\r\nb"}, "Subject"},
		{"number", false, false, Message{Message: "x", Attributes: map[string]Attribute{"n": {DataType: "Number", Value: "-1.5e3"}}}, ""},
		{"not a number", false, false, Message{Message: "x", Attributes: map[string]Attribute{"n": {DataType: "Number", Value: "x"}}}, "MessageAttributes"},
		{"array", false, false, Message{Message: "x", Attributes: map[string]Attribute{"n": {DataType: "String.Array", Value: `["a", 1, true, null]`}}}, ""},
		{"nested array", false, false, Message{Message: "x", Attributes: map[string]Attribute{"n": {DataType: "String.Array", Value: `[["a"]]`}}}, "MessageAttributes"},
		{"custom type", false, false, Message{Message: "x", Attributes: map[string]Attribute{"n": {DataType: "String.uuid", Value: "a"}}}, ""},
		{"unknown type", false, false, Message{Message: "x", Attributes: map[string]Attribute{"n": {DataType: "Float", Value: "1"}}}, "MessageAttributes"},
		{"reserved name", false, false, Message{Message: "x", Attributes: map[string]Attribute{"Amazon.x": {DataType: "String", Value: "1"}}}, "MessageAttributes"},
		{"empty value", false, false, Message{Message: "x", Attributes: str("")}, "MessageAttributes"},
		{"structure", false, false, Message{Message: `{"default": "d", "sqs": "s"}`, Structure: "json"}, ""},
		{"structure without default", false, false, Message{Message: `{"sqs": "s"}`, Structure: "json"}, "Message"},
		{"structure not an object", false, false, Message{Message: `x`, Structure: "json"}, "Message"},
		{"group on standard", false, false, Message{Message: "x", GroupID: "g"}, "MessageGroupId"},
		{"dedup on standard", false, false, Message{Message: "x", DeduplicationID: "d"}, "MessageDeduplicationId"},
		{"fifo", true, false, Message{Message: "x", GroupID: "g", DeduplicationID: "d"}, ""},
		{"fifo content dedup", true, true, Message{Message: "x", GroupID: "g"}, ""},
		{"fifo without group", true, true, Message{Message: "x"}, "MessageGroupId"},
		{"fifo without dedup", true, false, Message{Message: "x", GroupID: "g"}, "MessageDeduplicationId"},
	} {
		err := Check(c.fifo, c.dedup, c.m)
		if field(err) != c.field || (err != nil) != (c.field != "") {
			t.Errorf("%s: %v, want field %q", c.what, err, c.field)
		}
	}
}

func TestSequenceNumberGrows(t *testing.T) {
	a := sequenceNumber("01a2429e-0806-719f-bd7b-3fc2828d9844")
	b := sequenceNumber("01a2429e-0807-719f-bd7b-3fc2828d9844")
	if a == "" || len(a) > len(b) || (len(a) == len(b) && a >= b) {
		t.Fatalf("%s then %s", a, b)
	}
}
