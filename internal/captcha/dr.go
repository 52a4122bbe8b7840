package captcha

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// drWindow counts, per site and minute, the addresses that sent
// disaster-recovery tickets: many addresses mean the vendor's script
// really fails to load for users; few sending many mean an attack.
type drWindow struct {
	mu       sync.Mutex
	minute   time.Time
	ips      map[string]int
	reported bool // captcha.vendor.degraded raised for this minute's outage
	flagged  map[string]bool
}

func (w *drWindow) add(now time.Time, ip string) (addresses, fromIP int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := now.Truncate(time.Minute)
	if !m.Equal(w.minute) {
		w.minute, w.ips, w.reported, w.flagged = m, map[string]int{}, false, map[string]bool{}
	}
	w.ips[ip]++
	return len(w.ips), w.ips[ip]
}

func (w *drWindow) once(flag *bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if *flag {
		return false
	}
	*flag = true
	return true
}

func (w *drWindow) flagIP(ip string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flagged[ip] {
		return false
	}
	w.flagged[ip] = true
	return true
}

// verifyDR decides on a disaster-recovery ticket. A ticket passes, as
// degraded_allow with reason dr_ticket, only when the site accepts them,
// its app id is the site's, it is fresh (at most 5 minutes old, not from
// the future), it was not used before (recorded once, cluster-wide), and
// the site's and the address's DR budgets for this minute allow it. While
// the vendor is up the ticket is still verified with it (it is free; a DR
// ticket is answered 21): any answer other than 21 or the vendor's own
// failure is followed as it is.
func (s *Service) verifyDR(ctx context.Context, site Site, t DRTicket, req Request, ip netip.Addr) (Verdict, int) {
	deny := func(msg string) Verdict {
		return Verdict{Decision: Deny, Reason: ReasonDRTicket, VendorCode: "dr_" + t.Code, Message: msg}
	}
	if !site.Settings.AcceptDRTickets {
		return deny("the site does not accept disaster-recovery tickets"), 0
	}
	now := s.now()
	if why := checkDR(t, site.Keys.AppID, now, DefaultDRMaxAge); why != "" {
		return deny(why), 0
	}
	a, calls := s.call(ctx, site, req)
	switch {
	case a.Reason == ReasonOK:
		return Verdict{Decision: Allow, Reason: ReasonOK, VendorCode: a.VendorCode}, calls
	case a.VendorCode == "21", a.Reason == ReasonVendorUnavailable:
	default:
		v := s.decide(ctx, site, a, ip)
		return v, calls
	}

	s.mu.Lock()
	w := s.dr[site.ID]
	if w == nil {
		w = &drWindow{}
		s.dr[site.ID] = w
	}
	s.mu.Unlock()
	addresses, fromIP := w.add(now, ip.String())
	vendorUp := a.Reason != ReasonVendorUnavailable
	if addresses >= DefaultOutageAddresses && w.once(&w.reported) {
		// Many addresses cannot load the script: a real outage of the
		// vendor's front end, even if its API answers.
		s.event(site, EventVendorDegraded, map[string]any{"cause": "dr_tickets", "addresses": addresses})
	}
	if !s.spend(ctx, "captcha:dr:ip:"+site.ID+":"+ip.String(), site.Settings.DRPerIP) {
		if vendorUp && w.flagIP(ip.String()) {
			// Few addresses sending many DR tickets while the vendor
			// answers: someone is minting tickets to skip the CAPTCHA.
			s.event(site, EventDRSuspicious, map[string]any{"remote_ip": ip.String(), "tickets_this_minute": fromIP})
		}
		return deny("too many disaster-recovery tickets from this address this minute"), calls
	}
	if !s.spend(ctx, "captcha:dr:site:"+site.ID, site.Settings.DRPerSite) {
		return deny("the site's disaster-recovery budget for this minute is used up"), calls
	}
	h := sha256.Sum256([]byte(site.ID + "\x00" + req.Token + "\x00" + req.Randstr))
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	first, err := s.Store.UseDRTicket(uctx, hex.EncodeToString(h[:]), site.ProjectID, site.ID, now, t.At.Add(DefaultDRMaxAge+time.Minute))
	if err != nil {
		return deny("the ticket's single use could not be recorded"), calls
	}
	if !first {
		v := deny("the disaster-recovery ticket was used before")
		v.Reason = ReasonDuplicate
		return v, calls
	}
	return Verdict{Decision: DegradedAllow, Reason: ReasonDRTicket, VendorCode: a.VendorCode, Degraded: &Degraded{Cause: "dr_ticket"}}, calls
}
