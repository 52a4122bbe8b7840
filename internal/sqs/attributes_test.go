package sqs

import "testing"

// TestAttributesMD5: the value SQS documents for one String attribute is
// reproduced by the SDK's own checks in the end-to-end test; here, stability.
func TestAttributesMD5(t *testing.T) {
	v := "captcha"
	a := attributesMD5(map[string]messageAttribute{"kind": {DataType: "String", StringValue: &v}})
	b := attributesMD5(map[string]messageAttribute{"kind": {DataType: "Number", StringValue: &v}})
	if len(a) != 32 || a == b {
		t.Fatalf("md5s %s %s", a, b)
	}
}
