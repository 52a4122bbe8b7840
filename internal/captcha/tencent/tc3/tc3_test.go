package tc3

import (
	"testing"
)

// The worked example of Tencent's "Signature v3" document
// (tencentcloud.com/document/api/267/37447): DescribeInstances on CVM in
// ap-guangzhou, SecretId AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE (later
// editions of the page mask it; it is not part of what is signed), SecretKey
// Gu5t9xGARNpq86cd98joQYCN3EXAMPLE, timestamp 1551113065. Every
// intermediate value below is the one the document prints.
const (
	exampleID      = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
	exampleKey     = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
	exampleTS      = 1551113065
	examplePayload = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
)

func exampleRequest() Request {
	return Request{
		Method: "POST",
		URI:    "/",
		Headers: map[string]string{
			"Content-Type": "application/json; charset=utf-8",
			"Host":         "cvm.tencentcloudapi.com",
		},
		Payload: []byte(examplePayload),
	}
}

func TestPublishedExample(t *testing.T) {
	t.Parallel()
	r := exampleRequest()

	wantCanonical := "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n" +
		"content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
	if got := r.CanonicalRequest(); got != wantCanonical {
		t.Fatalf("CanonicalRequest =\n%q\nwant\n%q", got, wantCanonical)
	}
	wantToSign := "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n" +
		"5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
	if got := StringToSign(exampleTS, "cvm", r); got != wantToSign {
		t.Fatalf("StringToSign =\n%q\nwant\n%q", got, wantToSign)
	}
	const wantSig = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	if got := Signature(exampleKey, "cvm", exampleTS, r); got != wantSig {
		t.Fatalf("Signature = %s, want %s", got, wantSig)
	}
	wantAuth := "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, " +
		"SignedHeaders=content-type;host, Signature=" + wantSig
	if got := Authorization(exampleID, exampleKey, "cvm", exampleTS, r); got != wantAuth {
		t.Fatalf("Authorization =\n%s\nwant\n%s", got, wantAuth)
	}
}

// The document's first note: the date is UTC. 1551113065 is 2019-02-26
// 00:44:25 in UTC+8 but 2019-02-25 in UTC.
func TestDateIsUTC(t *testing.T) {
	t.Parallel()
	if got := Date(exampleTS); got != "2019-02-25" {
		t.Fatalf("Date = %s, want 2019-02-25", got)
	}
}

func TestParseRoundTrip(t *testing.T) {
	t.Parallel()
	h := Authorization(exampleID, exampleKey, "captcha", exampleTS, exampleRequest())
	a, err := Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	if a.SecretID != exampleID || a.Date != "2019-02-25" || a.Service != "captcha" ||
		len(a.SignedHeaders) != 2 || a.SignedHeaders[0] != "content-type" || a.SignedHeaders[1] != "host" ||
		!Equal(a.Signature, Signature(exampleKey, "captcha", exampleTS, exampleRequest())) {
		t.Fatalf("Parse(%q) = %+v", h, a)
	}
	for _, bad := range []string{
		"",
		"HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab",
		"TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm, SignedHeaders=host, Signature=ab",
		"TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, SignedHeaders=host",
		"TC3-HMAC-SHA256 Credential=a/2019-02-25/cvm/tc3_request, Bogus=1, Signature=ab",
		"TC3-HMAC-SHA256 garbage",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

// Any change to what is signed changes the signature.
func TestSignatureCoversEveryPart(t *testing.T) {
	t.Parallel()
	base := Signature(exampleKey, "cvm", exampleTS, exampleRequest())
	mutations := map[string]func(*Request){
		"payload": func(r *Request) { r.Payload = append([]byte(nil), `{"Limit": 2}`...) },
		"host":    func(r *Request) { r.Headers["Host"] = "cvm.ap-guangzhou.tencentcloudapi.com" },
		"type":    func(r *Request) { r.Headers["Content-Type"] = "application/json" },
		"uri":     func(r *Request) { r.URI = "/x" },
		"method":  func(r *Request) { r.Method = "GET" },
		"header":  func(r *Request) { r.Headers["x-tc-action"] = "describeinstances" },
	}
	for name, mutate := range mutations {
		r := exampleRequest()
		mutate(&r)
		if Signature(exampleKey, "cvm", exampleTS, r) == base {
			t.Errorf("%s: signature unchanged", name)
		}
	}
	if Signature(exampleKey, "captcha", exampleTS, exampleRequest()) == base {
		t.Error("service: signature unchanged")
	}
	if Signature(exampleKey, "cvm", exampleTS+86400, exampleRequest()) == base {
		t.Error("timestamp: signature unchanged")
	}
	if Signature(exampleKey+"x", "cvm", exampleTS, exampleRequest()) == base {
		t.Error("key: signature unchanged")
	}
}
