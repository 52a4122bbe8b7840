package sns

import (
	"encoding/xml"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"carrier/internal/topic"
)

func TestEncodeResult(t *testing.T) {
	got := string(Encode("CreateTopic", topicArnResult{TopicArn: "arn:aws:sns:us-east-1:p:t<&>"}, "req-1"))
	want := xml.Header + `<CreateTopicResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><CreateTopicResult><TopicArn>arn:aws:sns:us-east-1:p:t&lt;&amp;&gt;</TopicArn></CreateTopicResult>` +
		`<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></CreateTopicResponse>`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	got = string(Encode("DeleteTopic", nil, "r"))
	want = xml.Header + `<DeleteTopicResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DeleteTopicResponse>`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	got = string(Encode("GetTopicAttributes", attributes(map[string]string{"b": "2", "a": "1"}), "r"))
	want = xml.Header + `<GetTopicAttributesResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><GetTopicAttributesResult><Attributes>` +
		`<entry><key>a</key><value>1</value></entry><entry><key>b</key><value>2</value></entry></Attributes></GetTopicAttributesResult>` +
		`<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetTopicAttributesResponse>`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeError(t *testing.T) {
	got := string(errNotFound("Topic").Encode("r"))
	want := xml.Header + `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>NotFound</Code>` +
		`<Message>Topic does not exist</Message></Error><RequestId>r</RequestId></ErrorResponse>`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := string(errInternal().Encode("r")); !strings.Contains(got, "<Type>Receiver</Type><Code>InternalError</Code>") {
		t.Fatal(got)
	}
}

func TestDecodeForm(t *testing.T) {
	form, _ := url.ParseQuery("Attributes.entry.1.key=A&Attributes.entry.1.value=1&Attributes.entry.2.key=B&Attributes.entry.2.value=" +
		"&Attributes.entry.4.key=skipped&Tags.member.1.Key=k&Tags.member.1.Value=v&TagKeys.member.1=x&TagKeys.member.2=y" +
		"&MessageAttributes.entry.1.Name=n&MessageAttributes.entry.1.Value.DataType=Number&MessageAttributes.entry.1.Value.StringValue=5" +
		"&MessageAttributes.entry.2.Name=b&MessageAttributes.entry.2.Value.DataType=Binary&MessageAttributes.entry.2.Value.BinaryValue=AAE%3D")
	if got := entryMap(form, "Attributes.entry", "key", "value"); !reflect.DeepEqual(got, map[string]string{"A": "1", "B": ""}) {
		t.Fatalf("attributes %v", got)
	}
	if got := entryMap(form, "Tags.member", "Key", "Value"); !reflect.DeepEqual(got, map[string]string{"k": "v"}) {
		t.Fatalf("tags %v", got)
	}
	if got := list(form, "TagKeys.member"); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Fatalf("keys %v", got)
	}
	got, e := messageAttributes(form, "MessageAttributes")
	want := map[string]topic.Attribute{"n": {DataType: "Number", Value: "5"}, "b": {DataType: "Binary", Value: "AAE="}}
	if e != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("message attributes %v %v", got, e)
	}
	form.Set("MessageAttributes.entry.3.Name", "typeless")
	if _, e := messageAttributes(form, "MessageAttributes"); e == nil || e.Code != "ParameterValueInvalid" {
		t.Fatalf("an attribute without a type: %v", e)
	}
}
