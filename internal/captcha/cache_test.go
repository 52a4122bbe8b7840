package captcha

import (
	"testing"
	"time"
)

func TestVerdictCacheBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newVerdictCache(2)
	c.put("old", Verdict{Decision: Allow}, now, now.Add(time.Second))
	c.put("live", Verdict{Decision: Deny}, now, now.Add(time.Hour))
	later := now.Add(time.Minute)
	c.put("new", Verdict{Decision: Allow}, later, later.Add(time.Hour))
	if _, ok := c.get("old", later); ok {
		t.Error("an expired verdict is kept")
	}
	if v, ok := c.get("live", later); !ok || v.Decision != Deny {
		t.Error("a live verdict was dropped while an expired one made room")
	}
	if _, ok := c.get("new", later); !ok {
		t.Error("the new verdict is not kept")
	}
	c.put("more", Verdict{}, later, later.Add(time.Hour)) // full of live ones: start over
	if len(c.items) != 1 {
		t.Errorf("%d items after overflowing, want 1", len(c.items))
	}
}
