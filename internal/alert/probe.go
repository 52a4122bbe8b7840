package alert

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"carrier/internal/store"
)

// BalanceSource answers the provider's balance (the provider seam's getbalance).
type BalanceSource interface {
	Balance(ctx context.Context) (string, error)
}

// Prober is the leader-only maintenance service that reads the provider's
// balance every Every, after a random wait of up to Jitter (so many
// Carriers on one provider account do not ask at once), and records it as
// the provider.balance gauge. A failed probe counts a failure and keeps the
// last good value: it is no data for the balance rule and, three times in a
// row, the probe_failures rule's alert, never a balance of 0. It probes only
// while an enabled rule reads the balance.
type Prober struct {
	Provider BalanceSource
	Store    store.AlertStore
	Every    time.Duration // default 60 s
	Jitter   time.Duration // default Every/10
	Timeout  time.Duration // default 10 s
	Now      func() time.Time
	// Probed, when set, is told every reading (metrics).
	Probed func(g store.Gauge)
}

func (p *Prober) Name() string { return "balance-probe" }

func (p *Prober) Interval() time.Duration {
	if p.Every > 0 {
		return p.Every
	}
	return time.Minute
}

// needed tells whether an enabled rule reads the balance (a provider
// metric, or a daily summary, which reports it): without one, no request
// is spent on it.
func (p *Prober) needed(ctx context.Context) (bool, error) {
	rules, err := p.Store.EnabledAlertRules(ctx)
	if err != nil {
		return false, err
	}
	for _, ar := range rules {
		r, err := Decode(ar)
		if err == nil && (strings.HasPrefix(r.Metric, "provider.") || r.Kind == KindSchedule) {
			return true, nil
		}
	}
	return false, nil
}

// Round probes once, if a rule needs the balance.
func (p *Prober) Round(ctx context.Context) error {
	if ok, err := p.needed(ctx); err != nil || !ok {
		return err
	}
	jitter := p.Jitter
	if jitter == 0 {
		jitter = p.Interval() / 10
	}
	if jitter > 0 {
		t := time.NewTimer(rand.N(jitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	raw, err := p.Provider.Balance(pctx)
	cancel()
	if ctx.Err() != nil {
		return nil // stopped leading or shutting down: not the provider's fault
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	g := store.Gauge{Name: GaugeBalance, Item: ProviderItem, ObservedAt: now}
	if err == nil {
		v, perr := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if perr != nil {
			err = perr
		} else {
			g.Value, g.OK = v, true
		}
	}
	if err != nil {
		g.Error = err.Error()
	}
	stored, serr := p.Store.RecordProbe(ctx, g)
	if serr != nil {
		return serr
	}
	if p.Probed != nil {
		p.Probed(stored)
	}
	return nil
}
