package filter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
)

// benchPolicies returns n distinct, realistic policies.
func benchPolicies(b *testing.B, n int, scope string) []*Policy {
	statuses := []string{`"failed"`, `"failed","error"`, `"timeout"`, `"error","expired"`}
	prefixes := []string{"user", "order", "captcha", "user.", "payment"}
	ps := make([]*Policy, n)
	for i := range ps {
		price := strconv.FormatFloat(0.001*float64(i), 'f', 3, 64)
		raw := fmt.Sprintf(`{"status":[%s],"method":[{"prefix":%q}],"price":[{"numeric":[">",%s]}]}`,
			statuses[i%len(statuses)], prefixes[i%len(prefixes)], price)
		if scope == ScopeBody && i%2 == 1 {
			raw = fmt.Sprintf(`{"status":[%s],"request":{"method":[{"prefix":%q}],"price":[{"numeric":[">",%s]}]}}`,
				statuses[i%len(statuses)], prefixes[i%len(prefixes)], price)
		}
		p, err := Compile([]byte(raw), scope)
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	return ps
}

// BenchmarkMatch1000 evaluates one event against 1,000 compiled policies;
// ns/op is per event, ns/policy per policy evaluation.
func BenchmarkMatch1000(b *testing.B) {
	const n = 1000
	b.Run("attributes", func(b *testing.B) {
		ps := benchPolicies(b, n, ScopeAttributes)
		attrs := map[string]string{"status": "failed", "method": "user.create", "price": "0.5", "task": "t-123"}
		b.ReportAllocs()
		b.ResetTimer()
		matched := 0
		for b.Loop() {
			matched = 0
			for _, p := range ps {
				if p.MatchAttributes(attrs) {
					matched++
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/policy")
		b.ReportMetric(float64(matched), "matched")
	})
	b.Run("body", func(b *testing.B) {
		ps := benchPolicies(b, n, ScopeBody)
		var data any
		if err := json.Unmarshal([]byte(`{"status":"failed","method":"user.create","price":0.5,"request":{"method":"user.create","price":0.5},"task":"t-123"}`), &data); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		matched := 0
		for b.Loop() {
			matched = 0
			for _, p := range ps {
				if p.MatchBody(data) {
					matched++
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/policy")
		b.ReportMetric(float64(matched), "matched")
	})
}
